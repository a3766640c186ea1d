//! Pieces the `journalkeeper` binary shares with the multi-process tests: a cluster of real
//! `journalkeeper server` child processes on loopback ([`LocalCluster`]), small helpers
//! around the client for it, and the failover measurements ([`failover`]: leader kills, a
//! paused node first in the server list) and the write pause of a leader transfer
//! ([`transfer`]); the snapshot transfer to a fresh node ([`snapshot_bench`]).
//!
//! Owns: generating node configurations, spawning, killing (SIGKILL), pausing (SIGSTOP) and
//! resuming nodes, reading their peak RSS, and polling their status. Never does: anything a
//! node does itself — it only starts the binary and talks to it through the client protocol.
//! Every child is killed when the [`LocalCluster`] is dropped (including on panic).

pub mod failover;
mod local_cluster;
pub mod observer_bench;
pub mod snapshot_bench;
pub mod transfer;

pub use local_cluster::{LocalCluster, LocalClusterOptions, cpu_time_of, local_client_config};
