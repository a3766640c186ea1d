//! The core's two sides of observer replication (see [`crate::raft::observer`]): answering a
//! child's pull from this log, and taking a parent's answer into it.

use super::RaftNode;
use super::follower::SnapshotAck;
use crate::raft::message::{Index, SnapshotMeta};
use crate::raft::observer::{PullAnswer, PullOutcome, SnapshotPiece};
use crate::raft::storage::Storage;

impl<S: Storage> RaftNode<S> {
    /// Committed entries from `from` (at most `max_bytes`, at least one when there are any);
    /// never an entry past this node's commit index, so a child never sees an uncommitted entry.
    pub fn serve_pull(&self, from: Index, max_bytes: u64) -> PullAnswer {
        let from = from.max(1);
        let commit = self.log.commit;
        if from > commit {
            return PullAnswer::NotYet { commit };
        }
        let compacted = || PullAnswer::Compacted {
            snapshot: self.log.store.snapshot_meta(),
        };
        let Some(prev_term) = self.log.term(from - 1) else {
            return compacted();
        };
        match self.log.entries(from, commit + 1, max_bytes) {
            None => compacted(),
            Some(entries) if entries.is_empty() => PullAnswer::NotYet { commit },
            Some(entries) => PullAnswer::Entries {
                prev_term,
                entries,
                commit,
            },
        }
    }

    /// A chunk of this node's latest snapshot at `offset` (from 0 of the latest when `index`
    /// names another one); `None` when it cannot be read now (e.g. being replaced).
    pub fn serve_snapshot(
        &self,
        index: Index,
        offset: u64,
        max_bytes: usize,
    ) -> Option<SnapshotPiece> {
        let meta = self.log.store.snapshot_meta();
        let offset = if index == meta.index { offset } else { 0 };
        let (data, done) = self.log.store.snapshot_chunk(offset, max_bytes)?;
        // The data must be the snapshot `meta` names: a snapshot taken between the two reads
        // would mix two files.
        if self.log.store.snapshot_meta() != meta {
            return None;
        }
        Some(SnapshotPiece {
            meta,
            offset,
            data,
            done,
        })
    }

    /// Takes a parent's answer to a pull from `from` (the local last index + 1 when it was
    /// asked). Entries append by the log-matching rule and commit up to the parent's commit;
    /// nothing here ever appends an entry out of order or commits one the parent had not.
    pub fn pulled(&mut self, from: Index, answer: PullAnswer) -> PullOutcome {
        match answer {
            PullAnswer::NotYet { .. } => PullOutcome::Nothing,
            PullAnswer::Compacted { snapshot } => {
                if snapshot.index < from {
                    // The parent is not behind us after all: its log was just short.
                    PullOutcome::Mismatch
                } else {
                    PullOutcome::FetchState {
                        index: snapshot.index,
                    }
                }
            }
            PullAnswer::Entries {
                prev_term,
                entries,
                commit,
            } => {
                let Some(prev_index) = from.checked_sub(1) else {
                    return PullOutcome::Mismatch;
                };
                let contiguous = entries
                    .iter()
                    .enumerate()
                    .all(|(i, e)| e.index == from + i as Index);
                let last_sent = from + entries.len() as Index - 1;
                if entries.is_empty()
                    || !contiguous
                    || last_sent > commit
                    || prev_index > self.log.last_index()
                {
                    return PullOutcome::Mismatch;
                }
                match self.append_matching(prev_index, prev_term, entries) {
                    Some(last_new) => {
                        self.log.commit_to(commit.min(last_new));
                        PullOutcome::Appended { last: last_new }
                    }
                    None => PullOutcome::Mismatch,
                }
            }
        }
    }

    /// Takes a chunk of a parent's snapshot (an observer's state fetch). Once the last chunk is
    /// in, the snapshot is handed to the host to install as an InstallSnapshot's would be.
    pub fn pulled_snapshot(&mut self, piece: SnapshotPiece) -> Option<SnapshotAck> {
        self.take_snapshot_chunk(piece.meta, piece.offset, piece.data, piece.done)
    }

    /// The meta of the latest snapshot this node holds.
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.log.store.snapshot_meta()
    }
}
