//! Quorum arithmetic for simple majorities and joint configurations: the committed index of a
//! set of acknowledged indexes, and the outcome of an election. No state; table-tested.

use std::collections::BTreeSet;

use super::membership::Membership;
use super::message::{Index, NodeId};

/// Outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    Won,
    Lost,
    Pending,
}

/// The largest index acknowledged by a majority of `voters`; `acked(id)` is `None` for a voter
/// that has acknowledged nothing. An empty voter set imposes no constraint (`Index::MAX`).
pub fn majority_index(
    voters: &BTreeSet<NodeId>,
    acked: &impl Fn(NodeId) -> Option<Index>,
) -> Index {
    if voters.is_empty() {
        return Index::MAX;
    }
    let mut v: Vec<Index> = voters.iter().map(|id| acked(*id).unwrap_or(0)).collect();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v[voters.len() / 2]
}

/// The largest index acknowledged by a majority of both halves of a joint configuration.
pub fn joint_index(m: &Membership, acked: &impl Fn(NodeId) -> Option<Index>) -> Index {
    majority_index(&m.voters, acked).min(majority_index(&m.outgoing, acked))
}

/// Election outcome in one majority configuration; `vote(id)` is `Some(granted)` if `id` answered.
pub fn majority_vote(
    voters: &BTreeSet<NodeId>,
    vote: &impl Fn(NodeId) -> Option<bool>,
) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut yes, mut no) = (0, 0);
    for id in voters {
        match vote(*id) {
            Some(true) => yes += 1,
            Some(false) => no += 1,
            None => {}
        }
    }
    let q = voters.len() / 2 + 1;
    if yes >= q {
        VoteResult::Won
    } else if no > voters.len() - q {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

/// Election outcome in a (possibly joint) configuration: both halves must be won.
pub fn joint_vote(m: &Membership, vote: &impl Fn(NodeId) -> Option<bool>) -> VoteResult {
    match (
        majority_vote(&m.voters, vote),
        majority_vote(&m.outgoing, vote),
    ) {
        (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
        (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
        _ => VoteResult::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    type IndexCase<'a> = (&'a [NodeId], &'a [(NodeId, Index)], Index);
    type VoteCase<'a> = (&'a [NodeId], &'a [(NodeId, bool)], VoteResult);

    fn set(v: &[NodeId]) -> BTreeSet<NodeId> {
        v.iter().copied().collect()
    }

    #[test]
    fn majority_index_table() {
        // (voters, acked (id, index), expected)
        let table: &[IndexCase] = &[
            (&[1], &[(1, 5)], 5),
            (&[1], &[], 0),
            (&[1, 2, 3], &[(1, 5), (2, 3), (3, 1)], 3),
            (&[1, 2, 3], &[(1, 5)], 0),
            (&[1, 2, 3], &[(1, 5), (2, 5)], 5),
            (&[1, 2, 3, 4], &[(1, 9), (2, 8), (3, 7), (4, 1)], 7),
            (
                &[1, 2, 3, 4, 5],
                &[(1, 9), (2, 8), (3, 7), (4, 1), (5, 1)],
                7,
            ),
            (&[], &[], Index::MAX),
        ];
        for (voters, acked, want) in table {
            let m: BTreeMap<NodeId, Index> = acked.iter().copied().collect();
            let got = majority_index(&set(voters), &|id| m.get(&id).copied());
            assert_eq!(got, *want, "voters {voters:?} acked {acked:?}");
        }
    }

    #[test]
    fn joint_index_is_the_minimum_of_both_halves() {
        let m = Membership {
            voters: set(&[1, 2, 3]),
            outgoing: set(&[3, 4, 5]),
            learners: set(&[]),
        };
        let acked: BTreeMap<NodeId, Index> = [(1, 10), (2, 10), (3, 4), (4, 6), (5, 2)].into();
        assert_eq!(joint_index(&m, &|id| acked.get(&id).copied()), 4);
        let simple = Membership::new([1, 2, 3]);
        assert_eq!(joint_index(&simple, &|id| acked.get(&id).copied()), 10);
    }

    #[test]
    fn vote_table() {
        use VoteResult::*;
        let table: &[VoteCase] = &[
            (&[1], &[(1, true)], Won),
            (&[1], &[], Pending),
            (&[1, 2, 3], &[(1, true)], Pending),
            (&[1, 2, 3], &[(1, true), (2, true)], Won),
            (&[1, 2, 3], &[(1, true), (2, false)], Pending),
            (&[1, 2, 3], &[(1, true), (2, false), (3, false)], Lost),
            (&[1, 2, 3, 4], &[(1, true), (2, true)], Pending),
            (&[1, 2, 3, 4], &[(1, true), (2, false), (3, false)], Lost),
            (&[1], &[(1, false)], Lost),
            (&[1, 2, 3, 4, 5], &[(1, false), (2, false)], Pending),
            (
                &[1, 2, 3, 4, 5],
                &[(1, false), (2, false), (3, false)],
                Lost,
            ),
        ];
        for (voters, votes, want) in table {
            let m: BTreeMap<NodeId, bool> = votes.iter().copied().collect();
            assert_eq!(
                majority_vote(&set(voters), &|id| m.get(&id).copied()),
                *want
            );
        }
    }

    #[test]
    fn joint_vote_needs_both_halves() {
        let m = Membership {
            voters: set(&[1, 2, 3]),
            outgoing: set(&[1, 4, 5]),
            learners: set(&[]),
        };
        let v: BTreeMap<NodeId, bool> = [(1, true), (2, true)].into();
        assert_eq!(
            joint_vote(&m, &|id| v.get(&id).copied()),
            VoteResult::Pending
        );
        let v: BTreeMap<NodeId, bool> = [(1, true), (2, true), (4, true)].into();
        assert_eq!(joint_vote(&m, &|id| v.get(&id).copied()), VoteResult::Won);
        let v: BTreeMap<NodeId, bool> = [(4, false), (5, false)].into();
        assert_eq!(joint_vote(&m, &|id| v.get(&id).copied()), VoteResult::Lost);
    }
}
