//! The follower side: in-order AppendEntries processing (with a stash for pipelined
//! out-of-order arrivals) and chunked InstallSnapshot.

use super::RaftNode;
use crate::raft::membership::Membership;
use crate::raft::message::{
    EntryKind, Index, Message, MessageBody, NodeId, SnapshotChunk, SnapshotMeta,
};
use crate::raft::storage::Storage;

impl<S: Storage> RaftNode<S> {
    pub(super) fn handle_append(&mut self, m: Message) {
        let MessageBody::Append {
            prev_index,
            prev_term,
            entries,
            commit,
        } = m.body
        else {
            return;
        };
        let from = m.from;
        // Entries must be contiguous after prev_index; anything else is malformed.
        if entries
            .iter()
            .enumerate()
            .any(|(i, e)| e.index != prev_index + 1 + i as Index)
        {
            return;
        }
        if prev_index < self.log.commit {
            self.send(
                from,
                MessageBody::AppendResponse {
                    index: self.log.commit,
                    reject: false,
                    hint_index: 0,
                    hint_term: 0,
                },
            );
            return;
        }
        let last = self.log.last_index();
        // Out of order (pipelined): keep it until the gap is filled. A second copy of the same
        // message is a retransmission (the leader is probing): answer it with a hint instead.
        if prev_index > last
            && self.stash.len() < self.cfg.max_stashed_appends
            && self.stash.remove(&prev_index).is_none()
        {
            self.stash.insert(
                prev_index,
                Message {
                    from,
                    to: self.cfg.id,
                    term: m.term,
                    body: MessageBody::Append {
                        prev_index,
                        prev_term,
                        entries,
                        commit,
                    },
                },
            );
            return;
        }
        match self.append_matching(prev_index, prev_term, entries) {
            Some(last_new) => {
                self.log.commit_to(commit.min(last_new));
                self.send(
                    from,
                    MessageBody::AppendResponse {
                        index: last_new,
                        reject: false,
                        hint_index: 0,
                        hint_term: 0,
                    },
                );
                // Process stashed successors that now fit.
                let new_last = self.log.last_index();
                let ready: Vec<Index> = self.stash.range(..=new_last).map(|(k, _)| *k).collect();
                for k in ready {
                    if let Some(sm) = self.stash.remove(&k) {
                        self.handle_append(sm);
                    }
                }
            }
            None => {
                let mut hint_index = prev_index.min(self.log.last_index());
                while hint_index > 0 {
                    match self.log.term(hint_index) {
                        Some(t) if t > prev_term => hint_index -= 1,
                        _ => break,
                    }
                }
                let hint_term = self.log.term(hint_index).unwrap_or(0);
                self.send(
                    from,
                    MessageBody::AppendResponse {
                        index: prev_index,
                        reject: true,
                        hint_index,
                        hint_term,
                    },
                );
            }
        }
    }

    /// Raft's AppendEntries rule on the local log, keeping the configuration history in step
    /// (a leader's entries, or a parent's for an observer). Returns the last new index, or
    /// `None` when `prev_index` / `prev_term` does not match this log.
    pub(super) fn append_matching(
        &mut self,
        prev_index: Index,
        prev_term: crate::raft::message::Term,
        entries: Vec<crate::raft::message::Entry>,
    ) -> Option<Index> {
        let last = self.log.last_index();
        let confs: Vec<(Index, Membership)> = entries
            .iter()
            .filter_map(|e| match &e.kind {
                EntryKind::Config(c) => Some((e.index, c.clone())),
                _ => None,
            })
            .collect();
        let (last_new, truncated) = self.log.maybe_append(prev_index, prev_term, entries)?;
        let from_idx = truncated.unwrap_or(last + 1);
        if truncated.is_some() {
            self.configs.retain(|(i, _)| *i < from_idx);
        }
        let new_confs: Vec<_> = confs.into_iter().filter(|(i, _)| *i >= from_idx).collect();
        if truncated.is_some() || !new_confs.is_empty() {
            self.configs.extend(new_confs);
            self.refresh_membership();
        }
        Some(last_new)
    }

    pub(super) fn handle_snapshot(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        data: Vec<u8>,
        done: bool,
    ) {
        let index = meta.index;
        if let Some(ack) = self.take_snapshot_chunk(meta, offset, data, done) {
            self.send(
                from,
                MessageBody::SnapshotResponse {
                    snapshot_index: index,
                    next_offset: ack.next_offset,
                    installed: ack.installed,
                    skipped: ack.skipped,
                },
            );
        }
    }

    /// Takes one chunk of a snapshot (from a leader, or from a parent for an observer); `None`
    /// when the snapshot is malformed and is ignored.
    pub(super) fn take_snapshot_chunk(
        &mut self,
        meta: SnapshotMeta,
        offset: u64,
        data: Vec<u8>,
        done: bool,
    ) -> Option<SnapshotAck> {
        let ack = |next_offset: u64, installed: bool, skipped: bool| {
            Some(SnapshotAck {
                next_offset,
                installed,
                skipped,
            })
        };
        let index = meta.index;
        if index <= self.log.commit || self.log.match_term(meta.index, meta.term) {
            // Already have it: keep the log, probe instead.
            self.log.commit_to(index);
            self.incoming_snap = None;
            return ack(0, false, true);
        }
        if !meta.membership.is_valid() {
            return None;
        }
        // Accept a chunk that continues the one being received, or any chunk at offset 0 (a
        // new snapshot, or the sender starting over); the host writes it, the core counts it.
        let received = match &self.incoming_snap {
            Some((m, got)) if *m == meta && *got == offset => offset,
            _ if offset == 0 => 0,
            Some((m, got)) if *m == meta => return ack(*got, false, false),
            _ => return ack(0, false, false),
        };
        let buf_len = received.saturating_add(data.len() as u64);
        self.incoming_snap = Some((meta.clone(), buf_len));
        self.chunks_out.push(SnapshotChunk {
            meta: meta.clone(),
            offset,
            data,
        });
        if !done {
            return ack(buf_len, false, false);
        }
        self.incoming_snap = None;
        self.log.restore(meta.clone());
        self.stash.clear();
        self.base_config = (meta.index, meta.membership.clone());
        self.configs.clear();
        self.refresh_membership();
        self.snapshot_out = Some(meta);
        ack(buf_len, true, false)
    }
}

/// How a snapshot chunk was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotAck {
    /// The offset expected next.
    pub next_offset: u64,
    /// The snapshot is complete and handed to the host to install.
    pub installed: bool,
    /// This node is already past the snapshot; it keeps its log.
    pub skipped: bool,
}
