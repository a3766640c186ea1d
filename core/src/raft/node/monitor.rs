//! Read-only views for monitoring: each follower's replication progress on the leader and when
//! a follower last heard from its leader. Times are in the core's clock (the `now` the host
//! passes in); the host turns them into "so long ago".

use super::RaftNode;
use crate::raft::message::{Index, NodeId};
use crate::raft::progress::ProgressState;
use crate::raft::ready::Role;
use crate::raft::storage::Storage;

/// One follower's replication as the leader tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerProgress {
    pub id: NodeId,
    /// Next index the leader sends it.
    pub next: Index,
    /// Highest index known durable on it and matching the leader's log.
    pub matched: Index,
    /// When the leader last heard from it (the core's clock).
    pub last_heard: u64,
    pub state: ProgressState,
}

impl<S: Storage> RaftNode<S> {
    /// While leader: every other member's progress (voters and learners), by node id; empty
    /// otherwise.
    pub fn follower_progress(&self) -> Vec<FollowerProgress> {
        if self.role != Role::Leader {
            return Vec::new();
        }
        self.progress
            .iter()
            .filter(|(id, _)| **id != self.cfg.id)
            .map(|(&id, p)| FollowerProgress {
                id,
                next: p.next,
                matched: p.matched,
                last_heard: p.last_heard,
                state: p.state,
            })
            .collect()
    }

    /// When (the core's clock) this node last heard from a leader: a heartbeat, append or
    /// snapshot of the leader it follows. `None` on the leader itself and before any leader
    /// was heard; kept while an election runs, so it tells how long the leader has been gone.
    pub fn leader_heard_at(&self) -> Option<u64> {
        if self.role == Role::Leader {
            return None;
        }
        self.leader_heard
    }
}
