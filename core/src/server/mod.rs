//! A node: drives the raft core with tokio, storage writer, apply loop. (Issue #4.)
