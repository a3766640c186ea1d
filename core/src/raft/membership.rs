//! Cluster configuration: voters (with the outgoing voters during joint consensus) and
//! learners (non-voting members that catch up before they are promoted). Pure data and
//! set logic; the quorum arithmetic lives in [`super::quorum`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::message::NodeId;

/// A configuration. `outgoing` is non-empty only in the joint phase C_old,new, where `voters` is
/// C_new and `outgoing` is C_old; every decision then needs a majority of both.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
    pub outgoing: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    /// A simple (non-joint) configuration of voters.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Self {
            voters: voters.into_iter().collect(),
            ..Self::default()
        }
    }

    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Voter in either half of the configuration.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    /// Every member: voters of both halves and learners.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut all = self.voters.clone();
        all.extend(self.outgoing.iter().copied());
        all.extend(self.learners.iter().copied());
        all
    }

    /// Structural validity: at least one voter; learners are not voters.
    pub fn is_valid(&self) -> bool {
        !self.voters.is_empty() && self.learners.iter().all(|l| !self.is_voter(*l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joint_configuration_counts_both_halves_as_voters() {
        let m = Membership {
            voters: [1, 2, 4].into(),
            outgoing: [1, 2, 3].into(),
            learners: [5].into(),
        };
        assert!(m.is_joint());
        assert!(m.is_voter(3) && m.is_voter(4) && !m.is_voter(5));
        assert_eq!(m.members(), [1, 2, 3, 4, 5].into());
        assert!(m.is_valid());
    }

    #[test]
    fn learner_that_is_also_voter_is_invalid() {
        let m = Membership {
            voters: [1].into(),
            outgoing: Default::default(),
            learners: [1].into(),
        };
        assert!(!m.is_valid());
        assert!(!Membership::default().is_valid());
    }

    #[test]
    fn roles_table() {
        let m = Membership {
            voters: [1, 2].into(),
            outgoing: [2, 3].into(),
            learners: [4].into(),
        };
        // (id, voter, member)
        for (id, voter, member) in [
            (1, true, true),
            (2, true, true),
            (3, true, true),
            (4, false, true),
            (5, false, false),
        ] {
            assert_eq!(m.is_voter(id), voter, "voter {id}");
            assert_eq!(m.contains(id), member, "member {id}");
        }
        let simple = Membership::new([7]);
        assert!(!simple.is_joint());
        assert!(simple.is_valid());
        assert_eq!(simple.members(), [7].into());
        let learner_in_outgoing = Membership {
            voters: [1].into(),
            outgoing: [2].into(),
            learners: [2].into(),
        };
        assert!(!learner_in_outgoing.is_valid());
        let only_learners = Membership {
            learners: [2].into(),
            ..Membership::default()
        };
        assert!(!only_learners.is_valid());
    }
}
