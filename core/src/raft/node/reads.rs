//! Heartbeat rounds: they confirm leadership for ReadIndex reads and extend the leader lease.

use super::{PendingRead, RaftNode};
use crate::raft::message::{Index, MessageBody, NodeId};
use crate::raft::planted::{self, PlantedBug};
use crate::raft::progress::ProgressState;
use crate::raft::quorum::joint_index;
use crate::raft::ready::{ReadMode, ReadState, Role};
use crate::raft::storage::Storage;

impl<S: Storage> RaftNode<S> {
    pub(super) fn start_read(&mut self, ctx: Vec<u8>, mode: ReadMode) {
        let index = self.log.commit;
        if mode == ReadMode::Lease && self.lease_valid() {
            self.reads_ready.push(ReadState { ctx, index });
            return;
        }
        let round = self.broadcast_heartbeat();
        self.reads.push_back(PendingRead { ctx, index, round });
        self.update_confirmed_round();
    }

    pub(super) fn lease_valid(&self) -> bool {
        self.cfg.lease_reads && !self.lease_disabled && self.now < self.lease_until
    }

    /// Starts a heartbeat round; returns its number.
    pub(super) fn broadcast_heartbeat(&mut self) -> u64 {
        self.round += 1;
        let round = self.round;
        self.round_sent.push_back((round, self.now));
        let commit = self.log.commit;
        let targets: Vec<(NodeId, Index)> = self
            .progress
            .iter()
            .map(|(id, p)| (*id, p.matched.min(commit)))
            .collect();
        for (id, c) in targets {
            self.send(id, MessageBody::Heartbeat { commit: c, round });
        }
        round
    }

    pub(super) fn update_confirmed_round(&mut self) {
        let id = self.cfg.id;
        let round = self.round;
        let pr = &self.progress;
        let acked = |n: NodeId| {
            if n == id {
                Some(round)
            } else {
                pr.get(&n).map(|p| p.acked_round)
            }
        };
        let q = joint_index(&self.membership, &acked).min(round);
        if q <= self.confirmed_round {
            return;
        }
        self.confirmed_round = q;
        while let Some(&(r, sent)) = self.round_sent.front() {
            if r > q {
                break;
            }
            self.round_sent.pop_front();
            if r == q && !self.lease_disabled {
                let margin = if planted::active(PlantedBug::NoDriftMargin) {
                    0
                } else {
                    self.cfg.max_clock_drift
                };
                self.lease_until = sent + self.cfg.election_timeout - margin;
            }
        }
        while self.reads.front().is_some_and(|r| r.round <= q) {
            if let Some(r) = self.reads.pop_front() {
                self.reads_ready.push(ReadState {
                    ctx: r.ctx,
                    index: r.index,
                });
            }
        }
    }

    pub(super) fn handle_heartbeat_response(&mut self, from: NodeId, round: u64) {
        if self.role != Role::Leader || round > self.round {
            return;
        }
        let last = self.log.last_index();
        let now = self.now;
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.last_heard = now;
        pr.acked_round = pr.acked_round.max(round);
        if pr.state == ProgressState::Probe {
            pr.probe_sent = false;
        }
        let behind = pr.matched < last;
        self.update_confirmed_round();
        if behind {
            self.send_append(from);
        }
    }
}
