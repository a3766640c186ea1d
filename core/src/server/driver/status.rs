//! The node's status as the embedding program sees it ([`ServerStatus`]) and as clients ask
//! for it (status, resources, cluster configuration).

use super::Driver;
use crate::client::protocol::{ClusterConfiguration, Member, NodeResources, NodeRole, NodeStatus};
use crate::raft::{Index, Membership, Role, Term};

/// A node's externally visible state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerStatus {
    pub node_id: u64,
    /// `None` until the node has started.
    pub role: Option<Role>,
    pub leader: Option<u64>,
    pub term: Term,
    pub commit_index: Index,
    pub applied_index: Index,
    /// Highest log index durable on this node's disk.
    pub durable_index: Index,
    pub first_index: Index,
    pub last_index: Index,
    pub membership: Membership,
    /// The node stopped serving after a storage failure or a state machine's crash (fail-stop;
    /// the reason is logged and answered to every request but the status ones).
    pub failed: bool,
    /// Joining (not yet added), member, or removed (serves nothing; a standalone server exits).
    pub standing: super::Standing,
    /// The preferred leader recorded in the replicated configuration.
    pub preferred_leader: Option<u64>,
}

impl ServerStatus {
    pub fn is_leader(&self) -> bool {
        self.role == Some(Role::Leader)
    }

    /// The role in the shared vocabulary (`None` until the node has started): a follower
    /// that is not a voter is an `Observer`.
    pub fn node_role(&self) -> Option<NodeRole> {
        self.role.map(|r| match r {
            Role::Leader => NodeRole::Leader,
            Role::PreCandidate => NodeRole::PreCandidate,
            Role::Candidate => NodeRole::Candidate,
            Role::Follower if !self.membership.is_voter(self.node_id) => NodeRole::Observer,
            Role::Follower => NodeRole::Follower,
        })
    }
}

impl Driver {
    pub(super) fn member(&self, id: u64) -> Member {
        Member {
            node_id: id,
            addr: self.addrs.get(&id).cloned().unwrap_or_default(),
        }
    }

    /// A learner or a registered observer (the registry has its address).
    fn observer_member(&self, id: u64) -> Member {
        match self.observers.get(&id) {
            Some(a) => Member {
                node_id: id,
                addr: a.to_string(),
            },
            None => self.member(id),
        }
    }

    pub(super) fn configuration(&self) -> ClusterConfiguration {
        let m = self.raft.membership();
        ClusterConfiguration {
            voters: m.voters.iter().map(|&i| self.member(i)).collect(),
            joint_old_voters: m
                .is_joint()
                .then(|| m.outgoing.iter().map(|&i| self.member(i)).collect()),
            observers: m
                .learners
                .iter()
                .chain(self.observers.keys().filter(|id| !m.contains(**id)))
                .map(|&i| self.observer_member(i))
                .collect(),
            leader: self.raft.leader().map(|l| self.member(l)),
        }
    }

    pub(super) fn node_status(&self) -> NodeStatus {
        let s = self.raft.status();
        let role = match s.role {
            Role::Leader => NodeRole::Leader,
            // The wire's 1.x clients know no PreCandidate; the local status has it.
            Role::Candidate | Role::PreCandidate => NodeRole::Candidate,
            Role::Follower if !s.membership.is_voter(s.id) => NodeRole::Observer,
            Role::Follower => NodeRole::Follower,
        };
        NodeStatus {
            node_id: s.id,
            role,
            term: s.term,
            leader: s.leader.map(|l| self.member(l)),
            commit_index: s.commit,
            applied_index: s.applied,
            last_index: s.last_index,
            configuration: self.configuration(),
            resources: None,
            detail: None,
        }
    }

    pub(super) fn resources(&self) -> NodeResources {
        let n = |n: usize| n as u64;
        NodeResources {
            client_connections: self.conn_counts.clients(),
            peer_connections: self.conn_counts.peers(),
            watches: n(self.watches.len()),
            watching_connections: n(self.watches.connections()),
            pending_requests: n(self.pending_count),
            sessions_in_flight: n(self.sessions.len()),
        }
    }
}
