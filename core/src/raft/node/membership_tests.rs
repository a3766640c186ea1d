//! Live membership changes as a host drives them: a new member must answer before it is
//! promoted, a change can be cancelled before its joint phase, and members a configuration
//! removes are told so (they receive it and its commit) before the leader forgets them.

use super::tests::{flush, node};
use super::*;
use crate::raft::storage::MemStorage;

fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

fn single_leader() -> RaftNode<MemStorage> {
    let mut n = node(1, &[1]);
    n.tick(5000);
    flush(&mut n);
    assert_eq!(n.role(), Role::Leader);
    n
}

fn answer(n: &mut RaftNode<MemStorage>, from: NodeId, index: Index) {
    let (term, now) = (n.term(), n.clock());
    n.step(
        Message {
            from,
            to: n.id(),
            term,
            body: MessageBody::AppendResponse {
                index,
                reject: false,
                hint_index: 0,
                hint_term: 0,
            },
        },
        now,
    );
}

#[test]
fn a_learner_that_never_answered_is_not_promoted_even_when_the_log_is_short() {
    // The default catch-up lag (64) is longer than this whole log.
    let mut n = single_leader();
    n.change_membership(set(&[1, 2]), set(&[])).unwrap();
    flush(&mut n);
    assert_eq!(n.membership().learners, set(&[2]));
    for t in 1..=5 {
        let now = n.clock() + 100 * t;
        n.tick(now);
        flush(&mut n);
    }
    assert_eq!(
        n.membership().learners,
        set(&[2]),
        "silent learner stays one"
    );
    assert!(n.membership_change_pending());
    let since = n.status().membership_index;
    answer(&mut n, 2, since - 1);
    n.tick(n.clock() + 100);
    flush(&mut n);
    assert_eq!(
        n.membership().learners,
        set(&[2]),
        "an answer that does not hold the learner's own configuration is not enough"
    );
    answer(&mut n, 2, since);
    n.tick(n.clock() + 100);
    flush(&mut n);
    assert!(n.membership().is_joint(), "promoted once it holds it");
}

#[test]
fn a_change_is_cancelled_before_its_joint_phase_and_not_after() {
    let mut n = single_leader();
    n.change_membership(set(&[1, 2]), set(&[])).unwrap();
    flush(&mut n);
    assert!(n.membership_change_pending());
    n.cancel_membership_change().unwrap();
    assert!(!n.membership_change_pending());
    assert_eq!(n.membership().learners, set(&[2]), "the learner stays");
    // A later change removes it.
    n.change_membership(set(&[1]), set(&[])).unwrap();
    flush(&mut n);
    assert_eq!(n.membership(), &Membership::new([1]));
    assert!(!n.membership_change_pending());

    n.change_membership(set(&[1, 2]), set(&[])).unwrap();
    flush(&mut n);
    let since = n.status().membership_index;
    answer(&mut n, 2, since);
    n.tick(n.clock() + 100);
    flush(&mut n);
    assert!(n.membership().is_joint());
    assert_eq!(
        n.cancel_membership_change(),
        Err(RaftError::ConfChangeInProgress)
    );
    assert!(n.membership_change_pending(), "the joint change goes on");
}

#[test]
fn a_removed_voter_receives_the_configuration_and_its_commit_before_it_is_forgotten() {
    let mut n = single_leader();
    n.change_membership(set(&[1, 2]), set(&[])).unwrap();
    flush(&mut n);
    let since = n.status().membership_index;
    answer(&mut n, 2, since);
    n.tick(n.clock() + 100);
    flush(&mut n);
    // C_old,new then C_new, each acknowledged by 2.
    for _ in 0..2 {
        let last = n.status().last_index;
        answer(&mut n, 2, last);
        flush(&mut n);
    }
    assert_eq!(n.membership(), &Membership::new([1, 2]));
    assert!(!n.membership_change_pending());

    n.change_membership(set(&[1]), set(&[])).unwrap();
    let msgs = flush(&mut n);
    assert!(n.membership().is_joint());
    let appended_to_2 = |msgs: &[Message]| {
        msgs.iter()
            .filter_map(|m| match &m.body {
                MessageBody::Append {
                    entries, commit, ..
                } if m.to == 2 => Some((entries.last().map(|e| e.index), *commit)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(!appended_to_2(&msgs).is_empty(), "2 receives C_old,new");
    let last = n.status().last_index;
    answer(&mut n, 2, last);
    let msgs = flush(&mut n);
    let c_new = n.status().membership_index;
    assert_eq!(n.membership(), &Membership::new([1]));
    assert_eq!(n.status().commit, c_new, "committed by 1 alone");
    assert!(
        appended_to_2(&msgs)
            .iter()
            .any(|(last, _)| *last == Some(c_new)),
        "2 receives the configuration that removes it: {msgs:?}"
    );
    answer(&mut n, 2, c_new);
    let t = n.clock();
    let hb = n.cfg.heartbeat_interval;
    n.tick(t + hb);
    let commits_to_2: Vec<u64> = flush(&mut n)
        .iter()
        .filter_map(|m| match m.body {
            MessageBody::Heartbeat { commit, .. } if m.to == 2 => Some(commit),
            _ => None,
        })
        .collect();
    assert_eq!(
        commits_to_2,
        vec![c_new],
        "and learns it is committed from the next heartbeat"
    );
    let et = n.cfg.election_timeout;
    n.tick(t + et + 50);
    flush(&mut n);
    assert!(
        !n.progress.contains_key(&2),
        "forgotten an election timeout after the commit"
    );
    n.tick(t + et + 100);
    assert!(
        flush(&mut n).iter().all(|m| m.to != 2),
        "nothing more is sent to 2"
    );
}
