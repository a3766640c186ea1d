//! State machines applied in log order on every node.
//!
//! Owns: the [`StateMachine`] contract (deterministic apply, query, snapshot, restore), the
//! coordination KV ([`kv`]) with its watch events ([`watch`]), client sessions that make
//! retried writes idempotent ([`session`]), and the built-in SQL database ([`sql`]).
//!
//! Never does: I/O, clock reads or randomness. Everything that influences a result comes from
//! the log entry being applied (its index, term and timestamp are in [`ApplyContext`]), so every
//! replica computes the same state from the same log.

pub mod cluster_meta;
pub mod coord;
pub mod journal_store;
pub mod kv;
pub mod session;
pub mod sql;
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

/// A deterministic, replicated state machine: the contract of the built-in machines and of the
/// ones a user hosts on a server (`Server::builder(..).state_machine(name, machine)`).
///
/// Every node applies the same committed commands in the same log order, so `apply` must be a
/// pure function of the current state and its inputs (the seed calls this "atomic and
/// idempotent"): no clock, no randomness, no I/O whose result differs between nodes. The host
/// keeps the applied index and the client sessions (a retried command applies once); the machine
/// keeps only its own state.
///
/// Failure rules:
/// - An `Err` *returned* by `apply` is a deterministic result: every node returns the same one,
///   the state must be unchanged by it, and the caller receives it (`Rejected` arrives as
///   `ErrorKind::Rejected` with the machine's message).
/// - A panic inside `apply` (or `restore`) is a crash: the node stops applying (fail-stop: its
///   status says `failed`, with a log line naming the machine and the index) rather than skip
///   the entry and diverge. The other nodes go on serving.
pub trait StateMachine: Send + 'static {
    /// Applies one committed command and returns its result.
    fn apply(&mut self, ctx: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError>;
    /// Answers a read-only query against the current state.
    fn query(&self, query: &[u8]) -> Result<Vec<u8>, StateError>;
    /// Writes the whole state to `out`, as a stream (the host writes it to disk as it comes,
    /// never holding it in memory).
    fn snapshot(&self, out: &mut dyn std::io::Write) -> Result<(), StateError>;
    /// Replaces the whole state with one written by [`StateMachine::snapshot`], read from
    /// `input` as a stream.
    fn restore(&mut self, input: &mut dyn std::io::Read) -> Result<(), StateError>;

    /// Applies several committed commands in log order, one result each — what the host calls
    /// when consecutive entries update this machine. The default calls [`apply`](Self::apply)
    /// for each; a machine whose every call crosses a boundary (another thread, a language
    /// runtime) overrides it to cross once per batch. Returning fewer or more results than
    /// commands is a crash (fail-stop), like a panic.
    fn apply_batch(&mut self, batch: &[(ApplyContext, &[u8])]) -> Vec<Result<Vec<u8>, StateError>> {
        batch
            .iter()
            .map(|(ctx, command)| self.apply(ctx, command))
            .collect()
    }
}

/// A snapshot stream failed.
pub fn io_error(what: &str, e: &std::io::Error) -> StateError {
    StateError::Codec {
        what: what.to_string(),
        reason: e.to_string(),
    }
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
