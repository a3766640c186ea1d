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
