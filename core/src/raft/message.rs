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

/// A snapshot with its data, as [`super::MemStorage`] keeps it (a host assembles a received one
/// from [`SnapshotChunk`]s; the core never holds it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// One accepted chunk of an incoming snapshot, for the host to write at `offset` of the file it
/// assembles for `meta` (offset 0 starts the file over). The chunks of one snapshot come in
/// order, each starting where the previous ended; [`super::Ready::snapshot`] then installs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotChunk {
    pub meta: SnapshotMeta,
    pub offset: u64,
    pub data: Vec<u8>,
}

impl SnapshotChunk {
    /// Adds the chunk to an in-memory assembly `buf` (tests and embeddings that keep snapshots
    /// in memory); `false`, leaving `buf` alone, when it does not continue `buf`.
    pub fn assemble_into(&self, buf: &mut Vec<u8>) -> bool {
        if self.offset == 0 {
            buf.clear();
        }
        if buf.len() as u64 != self.offset {
            return false;
        }
        buf.extend_from_slice(&self.data);
        true
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: EntryKind) -> Entry {
        Entry {
            term: 1,
            index: 1,
            kind,
        }
    }

    #[test]
    fn entry_size_is_a_fixed_header_plus_the_payload() {
        let m = Membership {
            voters: [1, 2, 3].into(),
            outgoing: [4, 5].into(),
            learners: [6].into(),
        };
        assert_eq!(entry(EntryKind::Noop).size(), 16);
        assert_eq!(entry(EntryKind::Normal(vec![0; 5])).size(), 21);
        assert_eq!(entry(EntryKind::Config(m)).size(), 16 + 8 * 6);
        assert_eq!(entry(EntryKind::Config(Membership::new([1, 2]))).size(), 32);
    }

    #[test]
    fn indexes_sane_refuses_any_value_from_half_of_u64_up() {
        const LIM: u64 = u64::MAX / 2;
        let meta = |index, term| SnapshotMeta {
            index,
            term,
            membership: Membership::new([1]),
        };
        let e = |index, term| Entry {
            term,
            index,
            kind: EntryKind::Noop,
        };
        // Each body with one field at `v`, the others small.
        let bodies = |v: u64| -> Vec<MessageBody> {
            vec![
                MessageBody::PreVote {
                    last_index: v,
                    last_term: 1,
                },
                MessageBody::PreVote {
                    last_index: 1,
                    last_term: v,
                },
                MessageBody::Vote {
                    last_index: v,
                    last_term: 1,
                    transfer: false,
                },
                MessageBody::Vote {
                    last_index: 1,
                    last_term: v,
                    transfer: true,
                },
                MessageBody::Append {
                    prev_index: v,
                    prev_term: 1,
                    entries: vec![],
                    commit: 1,
                },
                MessageBody::Append {
                    prev_index: 1,
                    prev_term: v,
                    entries: vec![],
                    commit: 1,
                },
                MessageBody::Append {
                    prev_index: 1,
                    prev_term: 1,
                    entries: vec![],
                    commit: v,
                },
                MessageBody::Append {
                    prev_index: 1,
                    prev_term: 1,
                    entries: vec![e(2, 1), e(v, 1)],
                    commit: 1,
                },
                MessageBody::Append {
                    prev_index: 1,
                    prev_term: 1,
                    entries: vec![e(2, v)],
                    commit: 1,
                },
                MessageBody::AppendResponse {
                    index: v,
                    reject: false,
                    hint_index: 1,
                    hint_term: 1,
                },
                MessageBody::AppendResponse {
                    index: 1,
                    reject: true,
                    hint_index: v,
                    hint_term: 1,
                },
                MessageBody::AppendResponse {
                    index: 1,
                    reject: true,
                    hint_index: 1,
                    hint_term: v,
                },
                MessageBody::Heartbeat {
                    commit: v,
                    round: 1,
                },
                MessageBody::Heartbeat {
                    commit: 1,
                    round: v,
                },
                MessageBody::HeartbeatResponse { round: v },
                MessageBody::InstallSnapshot {
                    meta: meta(v, 1),
                    offset: 0,
                    data: vec![],
                    done: true,
                },
                MessageBody::InstallSnapshot {
                    meta: meta(1, v),
                    offset: 0,
                    data: vec![],
                    done: true,
                },
                MessageBody::InstallSnapshot {
                    meta: meta(1, 1),
                    offset: v,
                    data: vec![],
                    done: false,
                },
                MessageBody::SnapshotResponse {
                    snapshot_index: v,
                    next_offset: 0,
                    installed: false,
                    skipped: false,
                },
                MessageBody::SnapshotResponse {
                    snapshot_index: 1,
                    next_offset: v,
                    installed: false,
                    skipped: false,
                },
            ]
        };
        for v in [0, 3, LIM - 1] {
            for b in bodies(v) {
                assert!(b.indexes_sane(), "{v}: {b:?}");
            }
        }
        for v in [LIM, LIM + 1, u64::MAX] {
            for b in bodies(v) {
                assert!(!b.indexes_sane(), "{v}: {b:?}");
            }
        }
        for b in [
            MessageBody::PreVoteResponse { reject: true },
            MessageBody::VoteResponse { reject: false },
            MessageBody::TimeoutNow,
        ] {
            assert!(b.indexes_sane(), "{b:?}");
        }
    }
}
