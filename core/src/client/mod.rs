//! Cluster client: leader discovery, redirects, retries, journal / KV / admin APIs. (Issue #4.)

pub mod protocol;
