//! [`ProposalBatch`]: the writes accepted during one pass of the driver loop, proposed to raft
//! together.
//!
//! Why: proposing each client write on its own makes raft broadcast one AppendEntries per
//! write to every follower, hand one job per write to the storage writer and produce one
//! `Ready` per write. The driver drains every input that is ready before it handles `Ready`;
//! the writes among them are staged here and proposed with one `propose_batch`, so the whole
//! pass costs one broadcast, one storage job and one `Ready`.
//!
//! Invariants:
//! - Staged writes are proposed in arrival order, so log order is arrival order.
//! - A batch belongs to the term it was staged in: the driver proposes it only while that term
//!   and leadership last, and fails every staged write otherwise (the client retries; its
//!   session makes the retry safe).
//! - A session is staged at most once: a retry of a staged write must wait until the batch is
//!   proposed and then join the original ([`ProposalBatch::has_session`]).

use std::collections::HashSet;

use crate::api::ResponseConfig;
use crate::client::protocol::ReplyBody;
use crate::net::ConnHandle;
use crate::raft::Term;

use super::PeerWire;

/// What kind of result a write's reply carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WriteKind {
    Append,
    Kv,
    Scale,
    /// Cluster metadata (the preferred leader) or a snapshot recovery.
    Meta,
    /// A snapshot every node takes: answered with its index once saved here.
    Snapshot,
    /// A coordination write (always answered with its outcome).
    Coord,
    /// A user state machine update.
    User,
}

impl WriteKind {
    /// The reply of a write acknowledged before it has a result (RECEIVE, PERSISTENCE).
    pub fn reply_without_result(self) -> ReplyBody {
        match self {
            WriteKind::Append => ReplyBody::Appended { first_index: None },
            WriteKind::Kv => ReplyBody::KvWritten(None),
            WriteKind::Scale | WriteKind::Meta | WriteKind::Coord => ReplyBody::Done,
            WriteKind::Snapshot => ReplyBody::Index(None),
            WriteKind::User => ReplyBody::SmUpdated(None),
        }
    }
}

/// One accepted write: its log entries are `entries` consecutive entries of the batch.
pub(super) struct StagedWrite {
    pub conn: ConnHandle<PeerWire>,
    pub req: u64,
    pub entries: usize,
    pub response: ResponseConfig,
    pub kind: WriteKind,
    /// `(client, seq)` of an append's session.
    pub session: Option<(u64, u64)>,
}

/// Writes staged for one proposal, with their log entries in order.
#[derive(Default)]
pub(super) struct ProposalBatch {
    term: Term,
    datas: Vec<Vec<u8>>,
    bytes: usize,
    writes: Vec<StagedWrite>,
    sessions: HashSet<(u64, u64)>,
}

/// Entries staged before the driver proposes early, to bound one proposal.
pub(super) const MAX_BATCH_ENTRIES: usize = 8192;
/// Payload bytes staged before the driver proposes early.
pub(super) const MAX_BATCH_BYTES: usize = 8 << 20;

impl ProposalBatch {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The term the staged writes were accepted in.
    pub fn term(&self) -> Term {
        self.term
    }

    pub fn has_session(&self, key: &(u64, u64)) -> bool {
        self.sessions.contains(key)
    }

    /// Whether the batch has reached a bound and should be proposed before more is staged.
    pub fn is_full(&self) -> bool {
        self.datas.len() >= MAX_BATCH_ENTRIES || self.bytes >= MAX_BATCH_BYTES
    }

    /// Adds a write accepted in `term` (a batch holds writes of one term: stage only into an
    /// empty batch or one of the same term).
    pub fn stage(&mut self, term: Term, datas: Vec<Vec<u8>>, write: StagedWrite) {
        debug_assert!(self.is_empty() || self.term == term);
        debug_assert_eq!(datas.len(), write.entries);
        self.term = term;
        if let Some(key) = write.session {
            self.sessions.insert(key);
        }
        self.bytes += datas.iter().map(Vec::len).sum::<usize>();
        self.datas.extend(datas);
        self.writes.push(write);
    }

    /// Empties the batch: every staged entry in order, and the writes they belong to.
    pub fn take(&mut self) -> (Vec<Vec<u8>>, Vec<StagedWrite>) {
        self.sessions.clear();
        self.bytes = 0;
        (
            std::mem::take(&mut self.datas),
            std::mem::take(&mut self.writes),
        )
    }
}
