//! State machines applied in log order on every node.
//!
//! Owns: the [`StateMachine`] contract (deterministic apply, query, snapshot, restore), the
//! coordination KV ([`kv`]) with its watch events ([`watch`]), and client sessions that make
//! retried writes idempotent ([`session`]).
//!
//! Never does: I/O, clock reads or randomness. Everything that influences a result comes from
//! the log entry being applied (its index, term and timestamp are in [`ApplyContext`]), so every
//! replica computes the same state from the same log.

pub mod cluster_meta;
pub mod coord;
pub mod journal_store;
pub mod kv;
pub mod session;
pub mod txn;
pub mod watch;

use serde::{Deserialize, Serialize};

/// Where in the log the entry being applied sits. Deterministic inputs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyContext {
    /// Global log index of the entry.
    pub index: u64,
    /// Term in which the entry was proposed.
    pub term: u64,
    /// Store time chosen by the leader when the entry was appended (milliseconds since epoch).
    pub timestamp_ms: u64,
}

/// Errors a state machine reports. `Rejected` is a deterministic outcome of applying a command
/// (every replica rejects it the same way); the others mean the input itself is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum StateError {
    /// A bound was crossed (key, value or batch size); names the bound and the value.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A command, query, result or snapshot could not be decoded (or encoded).
    #[error("cannot encode or decode {what}: {reason}")]
    Codec { what: String, reason: String },
    /// The command was applied and deterministically refused (e.g. a stale session sequence).
    #[error("rejected: {0}")]
    Rejected(String),
    /// A watch asked for events older than the retained history.
    #[error("events before index {requested} are no longer retained (oldest retained: {oldest})")]
    EventsCompacted { requested: u64, oldest: u64 },
    /// The lease does not exist: never granted, revoked, or expired.
    #[error("lease {0} does not exist (it expired, was revoked or was never granted)")]
    LeaseExpired(u64),
}

/// A deterministic state machine. Applied strictly in log order; `apply` must be a pure function
/// of the current state and the entry (the seed calls this "atomic and idempotent").
pub trait StateMachine: Send + 'static {
    /// Applies one committed command and returns its encoded result.
    fn apply(&mut self, ctx: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError>;
    /// Answers a read-only query against the current state.
    fn query(&self, query: &[u8]) -> Result<Vec<u8>, StateError>;
    /// The index of the last applied entry (0 before any).
    fn applied_index(&self) -> u64;
    /// Serializes the whole state, including the applied index.
    fn snapshot(&self) -> Result<Vec<u8>, StateError>;
    /// Replaces the state with a snapshot produced by [`StateMachine::snapshot`].
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), StateError>;
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StateError> {
    postcard::from_bytes(bytes).map_err(|e| StateError::Codec {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

pub(crate) fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StateError> {
    postcard::to_allocvec(value).map_err(|e| StateError::Codec {
        what: what.to_string(),
        reason: e.to_string(),
    })
}
