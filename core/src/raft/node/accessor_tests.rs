//! Accessors and the election-timeout generator.

use super::*;
use crate::raft::storage::MemStorage;

fn node(id: NodeId, seed: u64) -> RaftNode<MemStorage> {
    let cfg = Config {
        id,
        seed,
        ..Config::default()
    };
    RaftNode::new(cfg, MemStorage::new(Membership::new([1, 2, 3])), 0, 0).unwrap()
}

#[test]
fn accessors_report_the_configured_and_initial_state() {
    let n = node(3, 1);
    assert_eq!(n.id(), 3);
    assert_eq!(n.role(), Role::Follower);
    assert_eq!(n.term(), 0);
    assert_eq!(n.leader(), None);
    assert_eq!(n.membership(), &Membership::new([1, 2, 3]));
    assert_eq!(n.lease_expiry(), None, "a follower holds no lease");
    assert_eq!(n.status().id, 3);
}

#[test]
fn election_timeouts_are_spread_uniformly_over_t_to_2t() {
    for seed in [0, 1, 42, u64::MAX] {
        let mut n = node(1, seed);
        let t = n.cfg.election_timeout;
        let draws: Vec<u64> = (0..4000).map(|_| n.rand_timeout()).collect();
        assert!(draws.iter().all(|d| (t..2 * t).contains(d)), "seed {seed}");
        // Ten equal buckets over [T, 2T): each holds 10 % ± 3 % of the draws.
        let mut buckets = [0u32; 10];
        for d in &draws {
            buckets[((d - t) * 10 / t) as usize] += 1;
        }
        for (b, c) in buckets.iter().enumerate() {
            assert!(
                (280..=520).contains(c),
                "seed {seed}: bucket {b} holds {c} of 4000"
            );
        }
        // Consecutive draws are not correlated: as many rises as falls, roughly.
        let rises = draws.windows(2).filter(|w| w[1] > w[0]).count();
        assert!((1700..=2300).contains(&rises), "seed {seed}: {rises} rises");
    }
    // Different seeds give different sequences.
    let (mut n1, mut n2) = (node(1, 1), node(1, 2));
    let a: Vec<u64> = (0..8).map(|_| n1.rand_timeout()).collect();
    let b: Vec<u64> = (0..8).map(|_| n2.rand_timeout()).collect();
    assert_ne!(a, b);
}

mod admin {
    use super::super::tests::{elect, flush, leader_with_lease, node, step_now};
    use super::*;

    #[test]
    fn a_new_leader_holds_no_lease_until_a_round_is_confirmed() {
        let mut n = node(1, &[1, 2, 3]);
        elect(&mut n, &[2, 3]);
        assert_eq!(n.lease_expiry(), None);
        let (mut n, _) = leader_with_lease();
        // Deposed by a higher term: the old lease is no longer reported.
        let term = n.term() + 1;
        step_now(
            &mut n,
            Message {
                from: 2,
                to: 1,
                term,
                body: MessageBody::Heartbeat {
                    commit: 0,
                    round: 1,
                },
            },
        );
        assert_eq!(n.role(), Role::Follower);
        assert_eq!(n.lease_expiry(), None);
    }

    #[test]
    fn one_membership_change_at_a_time() {
        let (mut n, _) = leader_with_lease();
        // Adding 4 (a learner first, then joint at once: it is within the catch-up lag).
        n.change_membership([1, 2, 3, 4].into(), BTreeSet::new())
            .unwrap();
        flush(&mut n);
        assert!(matches!(
            n.change_membership([1, 2, 3].into(), BTreeSet::new()),
            Err(RaftError::ConfChangeInProgress)
        ));
        assert!(matches!(
            n.change_membership(BTreeSet::new(), BTreeSet::new()),
            Err(RaftError::InvalidArgument(_))
        ));
    }

    #[test]
    fn a_leader_transfer_holds_proposals_for_one_election_timeout() {
        let (mut n, _) = leader_with_lease();
        let now = n.clock();
        let t = n.cfg.election_timeout;
        // Node 3 is behind: the transfer waits for it to catch up.
        n.transfer_leader(3, now).unwrap();
        assert_eq!(n.lease_expiry(), None, "a transfer ends lease reads");
        assert!(matches!(
            n.propose(vec![1]),
            Err(RaftError::TransferInProgress(3))
        ));
        n.tick(now + t / 2);
        flush(&mut n);
        assert!(matches!(
            n.propose(vec![1]),
            Err(RaftError::TransferInProgress(3))
        ));
        n.tick(now + t);
        assert!(
            !matches!(n.propose(vec![1]), Err(RaftError::TransferInProgress(_))),
            "the transfer is given up after an election timeout"
        );
    }

    #[test]
    fn a_snapshot_may_be_taken_at_the_applied_and_durable_index_not_past_it() {
        let (mut n, _) = leader_with_lease();
        let s = n.status();
        assert_eq!((s.applied, s.persisted_index), (1, 1));
        assert!(matches!(
            n.on_snapshot_taken(2),
            Err(RaftError::SnapshotUnavailable { .. })
        ));
        let meta = n.on_snapshot_taken(1).unwrap();
        assert_eq!((meta.index, meta.term), (1, n.term()));
        assert_eq!(meta.membership, Membership::new([1, 2, 3]));
    }
}

mod monitor {
    use super::super::tests::{elect, flush, node};
    use super::*;
    use crate::raft::progress::ProgressState;

    #[test]
    fn the_leader_reports_each_followers_progress_and_when_it_last_heard_from_it() {
        let mut n = node(1, &[1, 2, 3]);
        assert!(n.follower_progress().is_empty(), "a follower tracks none");
        elect(&mut n, &[2, 3]);
        let term = n.term();
        let t0 = n.clock();
        let before = n.follower_progress();
        assert_eq!(before.iter().map(|p| p.id).collect::<Vec<_>>(), vec![2, 3]);
        assert!(before.iter().all(|p| p.matched == 0 && p.last_heard == t0));
        n.step(
            Message {
                from: 2,
                to: 1,
                term,
                body: MessageBody::AppendResponse {
                    index: 1,
                    reject: false,
                    hint_index: 0,
                    hint_term: 0,
                },
            },
            t0 + 7,
        );
        flush(&mut n);
        let p = n.follower_progress();
        assert_eq!(
            (p[0].id, p[0].matched, p[0].next, p[0].last_heard),
            (2, 1, 2, t0 + 7)
        );
        assert_eq!(p[0].state, ProgressState::Replicate);
        assert_eq!((p[1].id, p[1].matched, p[1].last_heard), (3, 0, t0));
        assert_eq!(n.leader_heard_at(), None, "a leader follows nobody");
    }

    #[test]
    fn a_follower_remembers_when_it_last_heard_its_leader_also_during_an_election() {
        let mut n = node(2, &[1, 2, 3]);
        assert_eq!(
            n.leader_heard_at(),
            None,
            "start-up is not hearing a leader"
        );
        n.step(
            Message {
                from: 1,
                to: 2,
                term: 1,
                body: MessageBody::Heartbeat {
                    commit: 0,
                    round: 1,
                },
            },
            40,
        );
        assert_eq!(n.leader_heard_at(), Some(40));
        n.tick(40 + 2 * n.cfg.election_timeout);
        assert_ne!(n.role(), Role::Follower, "the leader is gone: it campaigns");
        assert_eq!(n.leader(), None);
        assert_eq!(n.leader_heard_at(), Some(40));
        assert!(n.follower_progress().is_empty());
    }
}
