//! Elections: randomized timeouts, pre-vote, leader stickiness, role changes, vote counting.

use super::RaftNode;
use crate::raft::message::{EntryKind, MessageBody, NodeId, Term};
use crate::raft::planted::{self, PlantedBug};
use crate::raft::quorum::{VoteResult, joint_vote};
use crate::raft::ready::{Event, Role};
use crate::raft::storage::Storage;

impl<S: Storage> RaftNode<S> {
    pub(super) fn rand_timeout(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        self.cfg.election_timeout + z % self.cfg.election_timeout
    }

    pub(super) fn reset_election_timer(&mut self) {
        self.election_deadline = self.now + self.rand_timeout();
    }

    /// May campaign: a voter of the latest configuration, or — while that configuration is not
    /// known committed — of the one before it. (A leader removed by C_new that crashed before C_new
    /// committed may hold the only log that can win; it must be able to finish the change.)
    pub(super) fn promotable(&self) -> bool {
        let id = self.cfg.id;
        if self.membership.is_voter(id) {
            return true;
        }
        if self.membership_index <= self.log.commit {
            return false;
        }
        let prev = match self.configs.len() {
            0 => return false,
            1 => &self.base_config.1,
            n => &self.configs[n - 2].1,
        };
        prev.is_voter(id)
    }

    pub(super) fn in_lease(&self) -> bool {
        if planted::active(PlantedBug::VoteIgnoresLease) {
            return false;
        }
        self.cfg.check_quorum
            && (self.role == Role::Leader
                || self.now < self.leader_contact + self.cfg.election_timeout)
    }

    pub(super) fn set_role(&mut self, role: Role) {
        if self.role != role {
            self.role = role;
            self.events.push(Event::RoleChanged {
                role,
                term: self.term,
            });
        }
    }

    pub(super) fn set_leader(&mut self, leader: Option<NodeId>) {
        if self.leader != leader {
            self.leader = leader;
            self.events.push(Event::LeaderChanged {
                leader,
                term: self.term,
            });
        }
    }

    pub(super) fn follow(&mut self, leader: NodeId) {
        if self.role != Role::Follower || self.leader != Some(leader) {
            self.become_follower(self.term, Some(leader));
        }
        self.leader_contact = self.now;
        self.leader_heard = Some(self.now);
        self.reset_election_timer();
    }

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        debug_assert!(term >= self.term);
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.stash.clear();
            self.incoming_snap = None;
        }
        if self.role == Role::Leader {
            for r in self.reads.drain(..) {
                self.events.push(Event::ReadDropped { ctx: r.ctx });
            }
            for (ctx, _) in self.reads_before_commit.drain(..) {
                self.events.push(Event::ReadDropped { ctx });
            }
            self.progress.clear();
            self.transfer = None;
            self.target = None;
            self.lease_until = 0;
        }
        self.set_role(Role::Follower);
        self.set_leader(leader);
        self.reset_election_timer();
    }

    pub(super) fn campaign(&mut self, pre: bool, transfer: bool) {
        let id = self.cfg.id;
        self.votes.clear();
        self.set_leader(None);
        self.reset_election_timer();
        let (term, body) = if pre {
            self.set_role(Role::PreCandidate);
            (
                self.term + 1,
                MessageBody::PreVote {
                    last_index: self.log.last_index(),
                    last_term: self.log.last_term(),
                },
            )
        } else {
            self.term += 1;
            self.vote = Some(id);
            self.stash.clear();
            self.set_role(Role::Candidate);
            (
                self.term,
                MessageBody::Vote {
                    last_index: self.log.last_index(),
                    last_term: self.log.last_term(),
                    transfer,
                },
            )
        };
        let peers: Vec<NodeId> = self
            .membership
            .voters
            .union(&self.membership.outgoing)
            .copied()
            .collect();
        for p in peers {
            if p != id {
                self.send_with_term(p, term, body.clone());
            }
        }
        self.poll(id, true);
    }

    pub(super) fn poll(&mut self, from: NodeId, granted: bool) {
        self.votes.insert(from, granted);
        let votes = &self.votes;
        match joint_vote(&self.membership, &|id| votes.get(&id).copied()) {
            VoteResult::Won => {
                if self.role == Role::PreCandidate {
                    self.campaign(false, false);
                } else {
                    self.become_leader();
                }
            }
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    pub(super) fn become_leader(&mut self) {
        self.set_role(Role::Leader);
        self.set_leader(Some(self.cfg.id));
        self.transfer = None;
        self.target = None;
        self.lease_until = 0;
        self.lease_disabled = false;
        self.round_sent.clear();
        self.confirmed_round = self.round;
        self.heartbeat_due = self.now + self.cfg.heartbeat_interval;
        self.check_quorum_due = self.now + self.cfg.election_timeout;
        self.progress.clear();
        self.sync_progress();
        self.append_as_leader(vec![EntryKind::Noop]);
    }
}
