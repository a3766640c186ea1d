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
//!
//! Everything but [`raft`] sits behind the default feature `runtime`; without it
//! (`--no-default-features`) the crate is the consensus core alone, which is how the mutation
//! run over `core/src/raft` builds it in seconds per mutant (see `.cargo/mutants.toml`).

#[cfg(feature = "runtime")]
pub mod api;
#[cfg(feature = "runtime")]
mod bytes_serde;
#[cfg(feature = "runtime")]
pub mod cli;
#[cfg(feature = "runtime")]
pub mod client;
#[cfg(feature = "runtime")]
pub mod net;
pub mod raft;
#[cfg(feature = "runtime")]
pub mod server;
#[cfg(feature = "runtime")]
pub mod state;
#[cfg(feature = "runtime")]
pub mod storage;

/// The crate version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
