//! The output side of the core: the [`Ready`] batch drained by the host, read results and
//! events. Plain data.

use super::membership::Membership;
use super::message::{Entry, HardState, Index, Message, NodeId, SnapshotChunk, SnapshotMeta, Term};

/// A server's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// How a linearizable read confirms leadership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// A heartbeat round acknowledged by a quorum after the request.
    ReadIndex,
    /// The leader lease, when valid; otherwise falls back to ReadIndex.
    Lease,
}

/// A confirmed read: the host may serve `ctx` from its state machine (it has applied `index`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    pub ctx: Vec<u8>,
    pub index: Index,
}

/// Something the host may want to know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    RoleChanged {
        role: Role,
        term: Term,
    },
    LeaderChanged {
        leader: Option<NodeId>,
        term: Term,
    },
    MembershipChanged {
        index: Index,
        membership: Membership,
    },
    Applied {
        index: Index,
    },
    /// A read request was dropped (leadership lost before it was confirmed).
    ReadDropped {
        ctx: Vec<u8>,
    },
}

/// One drained batch of effects. The host handles it in this order:
/// 1. write `snapshot_chunks` in order to the file being assembled for their snapshot (not yet
///    durably), then install `snapshot` (if any: the assembled file, made durable, becomes the
///    snapshot at that meta), append `entries` (truncating the log from `entries[0].index`),
///    persist `hard_state` — durably, in `Ready` order — then call
///    [`super::RaftNode::on_persisted`] with [`Ready::persist_point`];
/// 2. send `messages` at once; send `persisted_messages` only after step 1 is durable;
/// 3. apply `committed_entries` in order, then call [`super::RaftNode::on_applied`];
/// 4. answer `read_states` from the state machine.
#[derive(Clone, Debug, Default)]
pub struct Ready {
    pub hard_state: Option<HardState>,
    /// Accepted chunks of an incoming snapshot; the core keeps none of their bytes.
    pub snapshot_chunks: Vec<SnapshotChunk>,
    /// Install the snapshot assembled from the chunks received for this meta.
    pub snapshot: Option<SnapshotMeta>,
    pub entries: Vec<Entry>,
    pub messages: Vec<Message>,
    pub persisted_messages: Vec<Message>,
    pub committed_entries: Vec<Entry>,
    pub read_states: Vec<ReadState>,
    pub events: Vec<Event>,
    /// Set when the batch writes anything; see [`Ready::persist_point`].
    pub(crate) persist_point: Option<(Index, Term)>,
}

impl Ready {
    /// `(index, term)` to report to `on_persisted` once this batch (entries, snapshot and hard
    /// state) is durable; `None` if it writes nothing.
    pub fn persist_point(&self) -> Option<(Index, Term)> {
        self.persist_point
    }

    pub(crate) fn persist_point_of_writes(&self) -> Option<(Index, Term)> {
        if let Some(e) = self.entries.last() {
            return Some((e.index, e.term));
        }
        self.snapshot.as_ref().map(|s| (s.index, s.term))
    }

    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.snapshot_chunks.is_empty()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.persisted_messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
            && self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::message::{EntryKind, MessageBody, SnapshotMeta};

    fn entry(index: Index, term: Term) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Noop,
        }
    }

    fn msg() -> Message {
        Message {
            from: 1,
            to: 2,
            term: 1,
            body: MessageBody::TimeoutNow,
        }
    }

    fn snapshot(index: Index, term: Term) -> SnapshotMeta {
        SnapshotMeta {
            index,
            term,
            ..SnapshotMeta::default()
        }
    }

    #[test]
    fn any_one_field_makes_a_ready_non_empty() {
        assert!(Ready::default().is_empty());
        let setters: Vec<fn(&mut Ready)> = vec![
            |r| r.hard_state = Some(HardState::default()),
            |r| r.snapshot = Some(snapshot(1, 1)),
            |r| {
                r.snapshot_chunks = vec![SnapshotChunk {
                    meta: snapshot(1, 1),
                    offset: 0,
                    data: vec![1],
                }]
            },
            |r| r.entries = vec![entry(1, 1)],
            |r| r.messages = vec![msg()],
            |r| r.persisted_messages = vec![msg()],
            |r| r.committed_entries = vec![entry(1, 1)],
            |r| {
                r.read_states = vec![ReadState {
                    ctx: vec![1],
                    index: 1,
                }]
            },
            |r| r.events = vec![Event::Applied { index: 1 }],
        ];
        for (k, set) in setters.into_iter().enumerate() {
            let mut r = Ready::default();
            set(&mut r);
            assert!(!r.is_empty(), "field {k}");
        }
    }

    #[test]
    fn persist_point_of_writes_is_the_last_entry_else_the_snapshot() {
        let mut r = Ready::default();
        assert_eq!(r.persist_point_of_writes(), None);
        assert_eq!(r.persist_point(), None);
        r.snapshot = Some(snapshot(5, 2));
        assert_eq!(r.persist_point_of_writes(), Some((5, 2)));
        r.entries = vec![entry(6, 3), entry(7, 3)];
        assert_eq!(r.persist_point_of_writes(), Some((7, 3)));
        r.persist_point = Some((7, 3));
        assert_eq!(r.persist_point(), Some((7, 3)));
    }
}
