//! Drives a requested membership change: learners first, then C_old,new, then C_new.

use std::collections::BTreeSet;

use super::RaftNode;
use crate::raft::membership::Membership;
use crate::raft::message::{EntryKind, NodeId};
use crate::raft::ready::Role;
use crate::raft::storage::Storage;

impl<S: Storage> RaftNode<S> {
    /// Moves an ongoing membership change one step when the current configuration is committed.
    pub(super) fn drive_membership(&mut self) {
        if self.role != Role::Leader
            || self.membership_index > self.log.commit
            || self.transfer.is_some()
        {
            return;
        }
        let cur = self.membership.clone();
        if cur.is_joint() {
            let learners = self
                .target
                .as_ref()
                .map_or(cur.learners.clone(), |t| t.learners.clone());
            let learners = learners.difference(&cur.voters).copied().collect();
            self.append_as_leader(vec![EntryKind::Config(Membership {
                voters: cur.voters,
                outgoing: BTreeSet::new(),
                learners,
            })]);
            return;
        }
        let Some(t) = self.target.clone() else { return };
        if cur.voters == t.voters && cur.learners == t.learners {
            self.target = None;
            return;
        }
        let members = cur.members();
        let missing: BTreeSet<NodeId> = t
            .voters
            .union(&t.learners)
            .filter(|n| !members.contains(n))
            .copied()
            .collect();
        if !missing.is_empty() {
            let learners = cur.learners.union(&missing).copied().collect();
            self.append_as_leader(vec![EntryKind::Config(Membership {
                voters: cur.voters,
                outgoing: BTreeSet::new(),
                learners,
            })]);
            return;
        }
        if cur.voters == t.voters {
            self.append_as_leader(vec![EntryKind::Config(t)]);
            return;
        }
        let last = self.log.last_index();
        let lag = self.cfg.catchup_lag;
        let (now, et) = (self.now, self.cfg.election_timeout);
        // A learner is caught up once it holds the configuration that made it a learner (so it
        // has answered since) and lags at most `catchup_lag` entries, recently heard from.
        let since = self.membership_index;
        let caught_up = t.voters.difference(&cur.voters).all(|n| {
            self.progress.get(n).is_some_and(|p| {
                p.heard_within(now, et) && p.matched >= since && p.matched + lag >= last
            })
        });
        if caught_up {
            let all: BTreeSet<NodeId> = t.voters.union(&cur.voters).copied().collect();
            let learners = cur
                .learners
                .union(&t.learners)
                .filter(|n| !all.contains(n))
                .copied()
                .collect();
            self.append_as_leader(vec![EntryKind::Config(Membership {
                voters: t.voters,
                outgoing: cur.voters,
                learners,
            })]);
        }
    }
}
