//! JournalKeeper-rs: a Raft-based, strongly consistent, partitioned journal store with an
//! in-process coordination service.
//!
//! Layers, bottom up (see `ARCHITECTURE.md` at the repository root for the full map):
//! - [`storage`]: the durable segmented journal (which *is* the Raft log), partition indices,
//!   metadata and snapshot directories.
//! - [`raft`]: the sans-IO consensus core — a deterministic state machine with no threads,
//!   sockets, files or clock reads.
//! - [`state`]: state machines applied in log order (journal store, coordination KV).
//! - [`net`]: the wire protocol (postcard frames, handshake) and TCP transport.
//! - [`server`] / [`client`]: a node driven by tokio, and the cluster client.

pub mod api;
mod bytes_serde;
pub mod cli;
pub mod client;
pub mod net;
pub mod raft;
pub mod server;
pub mod state;
pub mod storage;

/// The crate version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
