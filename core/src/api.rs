//! The vocabulary every language shares: write acknowledgement levels, read consistency levels,
//! error kinds, and the journal entry as clients see it.
//!
//! The C ABI, Python and Node bindings map these one to one, so the same error kinds, roles
//! and levels exist everywhere. Nothing here does I/O.
//!
//! **Names.** Every role, level and error kind has one canonical name, upper snake case
//! (`PRE_CANDIDATE`, `ONE_WAY`, `NOT_LEADER`): `name()` / `Display` give it, and it is what the
//! CLI prints (text and `--json`), Python's and Node's strings, and C's `jk_*_name()` return.
//! `FromStr` accepts any case and `-` for `_` (`one-way`, `One_Way` and `ONE_WAY` are the same
//! level); nothing else (no abbreviations, no surrounding blanks).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Parses a canonical name the lenient way (any ASCII case, `-` for `_`).
fn parse_name<T: Copy>(
    what: &str,
    all: &[T],
    name: fn(T) -> &'static str,
    s: &str,
) -> Result<T, Error> {
    let wanted = s.replace('-', "_");
    all.iter()
        .copied()
        .find(|&v| name(v).eq_ignore_ascii_case(&wanted))
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|&v| name(v)).collect();
            Error::new(
                ErrorKind::InvalidArgument,
                format!("{what} {s:?} is not one of {}", names.join(", ")),
            )
        })
}

/// `Display` (the canonical name) and case-insensitive `FromStr` from `name()` and `ALL`.
macro_rules! named {
    ($t:ty, $what:literal) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $t {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                parse_name($what, &<$t>::ALL, <$t>::name, s)
            }
        }
    };
}

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
    /// Every level, weakest first.
    pub const ALL: [ResponseConfig; 5] = [
        ResponseConfig::OneWay,
        ResponseConfig::Receive,
        ResponseConfig::Persistence,
        ResponseConfig::Replication,
        ResponseConfig::All,
    ];

    /// The canonical name: `ONE_WAY`, `RECEIVE`, `PERSISTENCE`, `REPLICATION`, `ALL`.
    pub fn name(self) -> &'static str {
        match self {
            ResponseConfig::OneWay => "ONE_WAY",
            ResponseConfig::Receive => "RECEIVE",
            ResponseConfig::Persistence => "PERSISTENCE",
            ResponseConfig::Replication => "REPLICATION",
            ResponseConfig::All => "ALL",
        }
    }

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

impl QueryConsistency {
    /// Every level, strongest first.
    pub const ALL: [QueryConsistency; 3] = [
        QueryConsistency::Strict,
        QueryConsistency::Sequential,
        QueryConsistency::None,
    ];

    /// The canonical name: `STRICT`, `SEQUENTIAL`, `NONE`.
    pub fn name(self) -> &'static str {
        match self {
            QueryConsistency::Strict => "STRICT",
            QueryConsistency::Sequential => "SEQUENTIAL",
            QueryConsistency::None => "NONE",
        }
    }
}

named!(ResponseConfig, "response level");
named!(QueryConsistency, "consistency level");

/// A node's role as it reports itself (status calls, the CLI's `status`). The variant order
/// is the wire order (new roles are appended), not an order of meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeRole {
    /// The voter that orders writes for the current term.
    Leader,
    /// A voter following a leader (or waiting for one).
    Follower,
    /// A voter campaigning for leadership in a new term.
    Candidate,
    /// A non-voting replica (Raft's learner): stores the log, never votes or leads.
    Observer,
    /// A voter asking whether it could win before starting a real election (pre-vote).
    PreCandidate,
}

impl NodeRole {
    /// Every role.
    pub const ALL: [NodeRole; 5] = [
        NodeRole::Leader,
        NodeRole::Follower,
        NodeRole::PreCandidate,
        NodeRole::Candidate,
        NodeRole::Observer,
    ];

    /// The canonical name: `LEADER`, `FOLLOWER`, `PRE_CANDIDATE`, `CANDIDATE`, `OBSERVER`.
    pub fn name(self) -> &'static str {
        match self {
            NodeRole::Leader => "LEADER",
            NodeRole::Follower => "FOLLOWER",
            NodeRole::PreCandidate => "PRE_CANDIDATE",
            NodeRole::Candidate => "CANDIDATE",
            NodeRole::Observer => "OBSERVER",
        }
    }
}

named!(NodeRole, "role");

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
    /// A server refused the handshake because its cluster id differs from the client's: a
    /// configuration error. Never retried (the call fails at once, not after the timeout).
    WrongCluster,
    /// The lease does not exist: it expired, was revoked or was never granted (a lock, an
    /// election or a registration made under it is gone too).
    LeaseExpired,
    /// A state machine applied the command and refused it: a deterministic result, the same
    /// on every node (e.g. a transfer refused for lack of funds). The message is the machine's.
    Rejected,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 14] = [
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
        ErrorKind::WrongCluster,
        ErrorKind::LeaseExpired,
        ErrorKind::Rejected,
    ];

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
            ErrorKind::WrongCluster => "WRONG_CLUSTER",
            ErrorKind::LeaseExpired => "LEASE_EXPIRED",
            ErrorKind::Rejected => "REJECTED",
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
    fn names_round_trip_in_any_case_with_dash_or_underscore() {
        for r in ResponseConfig::ALL {
            let n = r.to_string();
            assert_eq!(n, r.name());
            assert_eq!(n, n.to_ascii_uppercase());
            assert_eq!(n.parse::<ResponseConfig>().unwrap(), r);
            assert_eq!(n.to_ascii_lowercase().parse::<ResponseConfig>().unwrap(), r);
            assert_eq!(n.replace('_', "-").parse::<ResponseConfig>().unwrap(), r);
        }
        for c in QueryConsistency::ALL {
            assert_eq!(
                c.name().to_ascii_lowercase().parse::<QueryConsistency>(),
                Ok(c)
            );
        }
        for r in NodeRole::ALL {
            assert_eq!(
                r.to_string().to_ascii_lowercase().parse::<NodeRole>(),
                Ok(r)
            );
        }
        assert_eq!(
            "One-Way".parse::<ResponseConfig>(),
            Ok(ResponseConfig::OneWay)
        );
        assert_eq!(
            "pre-candidate".parse::<NodeRole>(),
            Ok(NodeRole::PreCandidate)
        );
        assert_eq!(
            "sTrIcT".parse::<QueryConsistency>(),
            Ok(QueryConsistency::Strict)
        );
    }

    #[test]
    fn unknown_names_are_invalid_arguments_listing_the_names() {
        for bad in ["", "oneway", " ONE_WAY", "REPLICATION ", "majority"] {
            let e = bad.parse::<ResponseConfig>().unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument);
            assert!(
                e.message
                    .contains("ONE_WAY, RECEIVE, PERSISTENCE, REPLICATION, ALL")
            );
        }
        let e = "leaderr".parse::<NodeRole>().unwrap_err();
        assert!(
            e.message
                .contains("LEADER, FOLLOWER, PRE_CANDIDATE, CANDIDATE, OBSERVER")
        );
        assert!("strict!".parse::<QueryConsistency>().is_err());
    }

    #[test]
    fn names_are_distinct() {
        let roles: std::collections::BTreeSet<_> = NodeRole::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(roles.len(), NodeRole::ALL.len());
        let acks: std::collections::BTreeSet<_> =
            ResponseConfig::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(acks.len(), ResponseConfig::ALL.len());
    }

    #[test]
    fn error_codes_are_distinct() {
        let codes: std::collections::BTreeSet<_> =
            ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
    }
}
