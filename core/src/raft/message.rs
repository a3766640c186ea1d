//! Wire and log types of the consensus core: entries, hard state, snapshot metadata and the
//! peer [`Message`]s. Everything here is plain data (serde, postcard on the wire); no logic.

use serde::{Deserialize, Serialize};

use super::membership::Membership;

/// Identifies one server of the cluster.
pub type NodeId = u64;
/// A Raft term.
pub type Term = u64;
/// A position in the replicated log (the first entry has index 1).
pub type Index = u64;

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// Appended by every new leader at the start of its term.
    Noop,
    /// Opaque client data for the state machine.
    Normal(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A configuration; it takes effect on every node as soon as it is appended.
    Config(Membership),
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub kind: EntryKind,
}

impl Entry {
    /// Approximate encoded size, used for the byte limits of messages and the in-flight window.
    pub fn size(&self) -> u64 {
        let payload = match &self.kind {
            EntryKind::Noop => 0,
            EntryKind::Normal(d) => d.len(),
            EntryKind::Config(m) => 8 * (m.voters.len() + m.outgoing.len() + m.learners.len()),
        };
        16 + payload as u64
    }
}

/// State that must be durable before any message that depends on it is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<NodeId>,
    pub commit: Index,
}

/// Describes the state a snapshot captures: everything up to and including `index`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub index: Index,
    pub term: Term,
    /// The configuration in effect at `index`.
    pub membership: Membership,
}

/// A complete snapshot received from a leader, for the host to install.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// A message between two servers. `term` is the sender's term, except for a pre-vote request and
/// a granted pre-vote response, which carry the term the candidate would campaign in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MessageBody,
}

/// The kinds of peer messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    PreVote {
        last_index: Index,
        last_term: Term,
    },
    PreVoteResponse {
        reject: bool,
    },
    Vote {
        last_index: Index,
        last_term: Term,
        /// Campaign started by a leader transfer: voters ignore their leader lease.
        transfer: bool,
    },
    VoteResponse {
        reject: bool,
    },
    Append {
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
    },
    AppendResponse {
        /// On success the follower's durable match index; on reject the rejected `prev_index`.
        index: Index,
        reject: bool,
        /// Reject hint: the largest index whose term is ≤ the leader's `prev_term`...
        hint_index: Index,
        /// ...and its term (fast back-off).
        hint_term: Term,
    },
    Heartbeat {
        commit: Index,
        /// Heartbeat round, echoed back; confirms leadership for reads and leases.
        round: u64,
    },
    HeartbeatResponse {
        round: u64,
    },
    InstallSnapshot {
        meta: SnapshotMeta,
        offset: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        done: bool,
    },
    SnapshotResponse {
        snapshot_index: Index,
        /// The offset the follower expects next.
        next_offset: u64,
        /// The snapshot is installed (and durable).
        installed: bool,
        /// The follower will not use this snapshot (already past it); probe instead.
        skipped: bool,
    },
    /// Leader transfer: campaign now, ignoring leases.
    TimeoutNow,
}

impl MessageBody {
    /// Every index, term and offset is below `u64::MAX / 2` (so `+ 1` and sums cannot overflow).
    pub fn indexes_sane(&self) -> bool {
        const LIM: u64 = u64::MAX / 2;
        let ok = |v: &[u64]| v.iter().all(|x| *x < LIM);
        match self {
            MessageBody::PreVote {
                last_index,
                last_term,
            }
            | MessageBody::Vote {
                last_index,
                last_term,
                ..
            } => ok(&[*last_index, *last_term]),
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                ok(&[*prev_index, *prev_term, *commit, entries.len() as u64])
                    && entries.iter().all(|e| ok(&[e.index, e.term]))
            }
            MessageBody::AppendResponse {
                index,
                hint_index,
                hint_term,
                ..
            } => ok(&[*index, *hint_index, *hint_term]),
            MessageBody::Heartbeat { commit, round } => ok(&[*commit, *round]),
            MessageBody::HeartbeatResponse { round } => ok(&[*round]),
            MessageBody::InstallSnapshot {
                meta, offset, data, ..
            } => ok(&[meta.index, meta.term, *offset, data.len() as u64]),
            MessageBody::SnapshotResponse {
                snapshot_index,
                next_offset,
                ..
            } => ok(&[*snapshot_index, *next_offset]),
            MessageBody::PreVoteResponse { .. }
            | MessageBody::VoteResponse { .. }
            | MessageBody::TimeoutNow => true,
        }
    }
}
