//! The vocabulary every language shares: write acknowledgement levels, read consistency levels,
//! error kinds, and the journal entry as clients see it.
//!
//! The C ABI, Python and Node bindings map these one to one (names follow each language's
//! conventions), so the same error kinds and levels exist everywhere. Nothing here does I/O.

use serde::{Deserialize, Serialize};

/// When a write is acknowledged (the seed's ResponseConfig). Only [`ResponseConfig::Replication`]
/// and [`ResponseConfig::All`] return the assigned index / the state machine's result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResponseConfig {
    /// Sent; no reply at all.
    OneWay,
    /// The server received the request.
    Receive,
    /// Written to the leader's disk (fdatasync done), not necessarily replicated.
    Persistence,
    /// Committed: on the disks of a majority. The default.
    #[default]
    Replication,
    /// Committed and on the leader's own disk.
    All,
}

impl ResponseConfig {
    /// Whether the reply carries the assigned index / result.
    pub fn returns_result(self) -> bool {
        matches!(self, ResponseConfig::Replication | ResponseConfig::All)
    }
}

/// How fresh a read must be (the seed's QueryConsistency).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QueryConsistency {
    /// Linearizable: served after the leader confirms its leadership (ReadIndex or lease).
    #[default]
    Strict,
    /// Any node, in log order, never going backwards for one client.
    Sequential,
    /// Local state, no guarantee.
    None,
}

/// The kinds of failure every API reports, in every language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The node is not the leader; the error carries a hint when the leader is known.
    NotLeader,
    /// The operation did not complete in time; it may or may not have taken effect.
    Timeout,
    /// The index is at or beyond the end (not yet written, or not yet reached by this node).
    IndexOverflow,
    /// The index is before the start (compacted away).
    IndexUnderflow,
    /// An argument is malformed or crosses a bound; the message names it.
    InvalidArgument,
    /// The client or server was closed.
    Closed,
    /// An operating-system I/O error.
    Io,
    /// Stored data failed its checks; the message names the file and offset.
    Corruption,
    /// A transaction could not be created, appended to or completed.
    Transaction,
    /// No quorum or no leader could be reached.
    Unavailable,
    /// A bug: an invariant did not hold. Always reported, never hidden.
    Internal,
}

impl ErrorKind {
    /// A stable identifier (`NOT_LEADER`, …) for the C enum, Python exception names and Node's
    /// `error.code`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::NotLeader => "NOT_LEADER",
            ErrorKind::Timeout => "TIMEOUT",
            ErrorKind::IndexOverflow => "INDEX_OVERFLOW",
            ErrorKind::IndexUnderflow => "INDEX_UNDERFLOW",
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::Closed => "CLOSED",
            ErrorKind::Io => "IO",
            ErrorKind::Corruption => "CORRUPTION",
            ErrorKind::Transaction => "TRANSACTION",
            ErrorKind::Unavailable => "UNAVAILABLE",
            ErrorKind::Internal => "INTERNAL",
        }
    }
}

/// The error clients see: a kind, a message naming what went wrong, and for
/// [`ErrorKind::NotLeader`] the leader's address when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{}: {message}", kind.code())]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub leader_hint: Option<String>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            leader_hint: None,
        }
    }

    pub fn not_leader(leader_hint: Option<String>) -> Self {
        let message = match &leader_hint {
            Some(leader) => format!("this node is not the leader; the leader is {leader}"),
            None => "this node is not the leader and knows no leader yet".to_string(),
        };
        Self {
            kind: ErrorKind::NotLeader,
            message,
            leader_hint,
        }
    }
}

/// One journal entry as clients read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub partition: u16,
    /// Dense index within the partition.
    pub index: u64,
    /// Entries appended together share a batch; `batch_size` is its length.
    pub batch_size: u16,
    /// Position of this entry within its batch (0-based).
    pub offset: u16,
    /// The Raft term the entry was written in.
    pub term: u64,
    /// Store time chosen by the leader (milliseconds since the Unix epoch; never decreasing).
    pub timestamp_ms: u64,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds() {
        assert_eq!(ResponseConfig::default(), ResponseConfig::Replication);
        assert_eq!(QueryConsistency::default(), QueryConsistency::Strict);
        assert!(ResponseConfig::All.returns_result());
        assert!(!ResponseConfig::Persistence.returns_result());
    }

    #[test]
    fn error_message_names_kind_and_leader() {
        let e = Error::not_leader(Some("127.0.0.1:7001".into()));
        assert_eq!(e.kind, ErrorKind::NotLeader);
        assert!(e.to_string().starts_with("NOT_LEADER: "));
        assert!(e.to_string().contains("127.0.0.1:7001"));
    }

    #[test]
    fn error_codes_are_distinct() {
        let kinds = [
            ErrorKind::NotLeader,
            ErrorKind::Timeout,
            ErrorKind::IndexOverflow,
            ErrorKind::IndexUnderflow,
            ErrorKind::InvalidArgument,
            ErrorKind::Closed,
            ErrorKind::Io,
            ErrorKind::Corruption,
            ErrorKind::Transaction,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ];
        let codes: std::collections::BTreeSet<_> = kinds.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), kinds.len());
    }
}
