//! The leader side of replication: timers, pipelined AppendEntries within the window, snapshot
//! chunks, handling of responses, commit by quorum of durable copies, leader transfer hand-off.

use super::RaftNode;
use crate::raft::message::{Entry, EntryKind, Index, MessageBody, NodeId, Term};
use crate::raft::progress::{Progress, ProgressState};
use crate::raft::quorum::{VoteResult, joint_index, joint_vote};
use crate::raft::ready::Role;
use crate::raft::storage::Storage;

impl<S: Storage> RaftNode<S> {
    pub(super) fn tick_leader(&mut self) {
        let now = self.now;
        if now >= self.check_quorum_due {
            self.check_quorum_due = now + self.cfg.election_timeout;
            if self.cfg.check_quorum {
                let id = self.cfg.id;
                let pr = &self.progress;
                let et = self.cfg.election_timeout;
                let active = |n: NodeId| {
                    Some(n == id || pr.get(&n).is_some_and(|p| p.heard_within(now, et)))
                };
                if joint_vote(&self.membership, &active) != VoteResult::Won {
                    self.become_follower(self.term, None);
                    return;
                }
            }
        }
        if let Some((_, deadline)) = self.transfer
            && now >= deadline
        {
            self.transfer = None;
        }
        if now >= self.heartbeat_due {
            self.heartbeat_due = now + self.cfg.heartbeat_interval;
            self.broadcast_heartbeat();
            self.update_confirmed_round();
            self.check_preferred();
            self.drive_membership();
            self.sync_progress();
        }
        let et = self.cfg.election_timeout;
        let hb = self.cfg.heartbeat_interval;
        let ids: Vec<NodeId> = self.progress.keys().copied().collect();
        for id in ids {
            let Some(pr) = self.progress.get_mut(&id) else {
                continue;
            };
            let stalled = match pr.state {
                ProgressState::Replicate => pr.inflight_len() > 0 && now >= pr.last_send + et,
                ProgressState::Probe => pr.probe_sent && now >= pr.last_send + 2 * hb,
                ProgressState::Snapshot => now >= pr.last_send + et / 2,
            };
            if stalled {
                match pr.state {
                    ProgressState::Replicate => pr.become_probe(),
                    ProgressState::Probe => pr.probe_sent = false,
                    ProgressState::Snapshot => {
                        self.send_snapshot_chunk(id);
                        continue;
                    }
                }
                self.send_append(id);
            }
        }
    }

    pub(super) fn check_preferred(&mut self) {
        let Some(p) = self.preferred else { return };
        // `transfer_leader` refuses a non-voter, and this node has no progress of its own.
        if self.transfer.is_some() || self.target.is_some() {
            return;
        }
        let last = self.log.last_index();
        if self.progress.get(&p).is_some_and(|pr| {
            pr.heard_within(self.now, self.cfg.election_timeout) && pr.matched == last
        }) {
            let _ = self.transfer_leader(p, self.now);
        }
    }

    /// Adds progress for new members and drops it for removed ones — once the configuration that
    /// removed them is committed and an election timeout has passed since (`departing_until`),
    /// so they receive it and its commit and know they are out.
    pub(super) fn sync_progress(&mut self) {
        let members = self.membership.members();
        let (index, until) = self.departing_until;
        let departing = self.membership_index > self.log.commit
            || (index == self.membership_index && self.now < until);
        self.progress
            .retain(|id, _| departing || members.contains(id));
        let next = self.log.last_index() + 1;
        for id in members {
            if id != self.cfg.id {
                self.progress
                    .entry(id)
                    .or_insert_with(|| Progress::new(next, self.now));
            }
        }
        if let Some((t, _)) = self.transfer
            && !self.membership.voters.contains(&t)
        {
            self.transfer = None;
        }
    }

    pub(super) fn append_as_leader(&mut self, kinds: Vec<EntryKind>) -> Index {
        let mut idx = self.log.last_index();
        let mut ents = Vec::with_capacity(kinds.len());
        let mut confs = Vec::new();
        for kind in kinds {
            idx += 1;
            if let EntryKind::Config(m) = &kind {
                confs.push((idx, m.clone()));
            }
            ents.push(Entry {
                term: self.term,
                index: idx,
                kind,
            });
        }
        self.log.append(ents);
        if !confs.is_empty() {
            self.configs.extend(confs);
            self.refresh_membership();
        }
        self.broadcast_append();
        self.maybe_commit();
        idx
    }

    pub(super) fn broadcast_append(&mut self) {
        let ids: Vec<NodeId> = self.progress.keys().copied().collect();
        for id in ids {
            while self.send_append(id) {}
        }
    }

    /// Sends one AppendEntries to `to` if its window allows; returns whether more may follow.
    pub(super) fn send_append(&mut self, to: NodeId) -> bool {
        let Some(pr) = self.progress.get(&to) else {
            return false;
        };
        if !pr.can_send(self.cfg.max_inflight_msgs, self.cfg.max_inflight_bytes) {
            return false;
        }
        let prev = pr.next - 1;
        let state = pr.state;
        let last = self.log.last_index();
        if state == ProgressState::Replicate && pr.next > last {
            return false;
        }
        let prev_term = self.log.term(prev);
        let ents = self
            .log
            .entries(pr.next, last + 1, self.cfg.max_append_bytes);
        let (Some(prev_term), Some(ents)) = (prev_term, ents) else {
            // Needed entries are compacted: send the snapshot instead.
            self.send_snapshot_chunk(to);
            return false;
        };
        if state == ProgressState::Replicate && ents.is_empty() {
            return false;
        }
        let bytes: u64 = ents.iter().map(Entry::size).sum();
        let sent_last = ents.last().map_or(prev, |e| e.index);
        let has = !ents.is_empty();
        let now = self.now;
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.on_sent(sent_last, bytes, has, now);
        }
        let commit = self.log.commit;
        self.send(
            to,
            MessageBody::Append {
                prev_index: prev,
                prev_term,
                entries: ents,
                commit,
            },
        );
        state == ProgressState::Replicate
    }

    pub(super) fn send_snapshot_chunk(&mut self, to: NodeId) {
        let meta = self.log.store.snapshot_meta();
        let now = self.now;
        let chunk = self.cfg.snapshot_chunk_bytes;
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        if pr.state != ProgressState::Snapshot || pr.snap_index != meta.index {
            pr.become_snapshot(meta.index);
        }
        pr.last_send = now;
        let offset = pr.snap_offset;
        let Some((data, done)) = self.log.store.snapshot_chunk(offset, chunk) else {
            return;
        };
        self.send(
            to,
            MessageBody::InstallSnapshot {
                meta,
                offset,
                data,
                done,
            },
        );
    }

    pub(super) fn maybe_commit(&mut self) {
        let id = self.cfg.id;
        let persisted = self.log.persisted;
        let pr = &self.progress;
        let acked = |n: NodeId| {
            if n == id {
                Some(persisted)
            } else {
                pr.get(&n).map(|p| p.matched)
            }
        };
        let q = joint_index(&self.membership, &acked);
        if q == Index::MAX || q <= self.log.commit {
            return;
        }
        debug_assert!(
            q <= self.log.last_index(),
            "quorum index {q} beyond the leader's log"
        );
        // Only entries of the current term are committed by counting replicas.
        if self.log.term(q) != Some(self.term) {
            return;
        }
        self.log.commit_to(q);
        self.on_commit_advanced();
    }

    pub(super) fn on_commit_advanced(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        if !self.reads_before_commit.is_empty() && self.log.term(self.log.commit) == Some(self.term)
        {
            for (ctx, mode) in std::mem::take(&mut self.reads_before_commit) {
                self.start_read(ctx, mode);
            }
        }
        if self.membership_index <= self.log.commit
            && self.departing_until.0 != self.membership_index
        {
            self.departing_until = (self.membership_index, self.now + self.cfg.election_timeout);
        }
        if self.membership_index <= self.log.commit && !self.membership.is_voter(self.cfg.id) {
            // Not in C_new and C_new is committed: step down.
            self.become_follower(self.term, None);
            return;
        }
        self.drive_membership();
    }

    pub(super) fn handle_append_response(
        &mut self,
        from: NodeId,
        index: Index,
        reject: bool,
        hint_index: Index,
        hint_term: Term,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let now = self.now;
        let last = self.log.last_index();
        let hint = if reject {
            self.find_conflict_by_term(hint_index, hint_term)
        } else {
            0
        };
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.last_heard = now;
        if reject {
            if pr.on_reject(index, hint) {
                self.send_append(from);
            }
            return;
        }
        if index > last {
            return; // malformed
        }
        let advanced = pr.on_success(index, now);
        if pr.state == ProgressState::Probe && pr.matched + 1 >= pr.next {
            pr.become_replicate();
        }
        let matched = pr.matched;
        if advanced {
            self.maybe_commit();
        }
        if self.role != Role::Leader {
            return;
        }
        if self.transfer.map(|(t, _)| t) == Some(from) && matched == self.log.last_index() {
            self.send(from, MessageBody::TimeoutNow);
        }
        while self.send_append(from) {}
    }

    pub(super) fn find_conflict_by_term(&self, index: Index, term: Term) -> Index {
        let mut i = index.min(self.log.last_index());
        while i > 0 {
            match self.log.term(i) {
                Some(t) if t > term => i -= 1,
                _ => break,
            }
        }
        i
    }

    pub(super) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        snapshot_index: Index,
        next_offset: u64,
        installed: bool,
        skipped: bool,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let now = self.now;
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.last_heard = now;
        if installed && snapshot_index <= last {
            pr.matched = pr.matched.max(snapshot_index);
            pr.next = pr.next.max(pr.matched + 1);
        }
        if pr.state != ProgressState::Snapshot || pr.snap_index != snapshot_index {
            return;
        }
        if installed || skipped {
            pr.become_probe();
            pr.last_send = now;
            self.maybe_commit();
            self.send_append(from);
        } else {
            pr.snap_offset = next_offset;
            self.send_snapshot_chunk(from);
        }
    }
}
