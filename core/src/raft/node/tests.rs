//! Node-level tests: votes, durability before commit, robustness to garbage input.

use super::*;
use crate::raft::storage::MemStorage;

pub(super) fn node(id: NodeId, voters: &[NodeId]) -> RaftNode<MemStorage> {
    let cfg = Config {
        id,
        ..Config::default()
    };
    RaftNode::new(
        cfg,
        MemStorage::new(Membership::new(voters.iter().copied())),
        0,
        0,
    )
    .unwrap()
}

/// Persists everything a `Ready` asks for at once and returns the messages.
pub(super) fn flush(n: &mut RaftNode<MemStorage>) -> Vec<Message> {
    let mut out = Vec::new();
    for round in 0.. {
        // Without new input a node settles within a few Readys; more is a loop in the core.
        assert!(round < 1_000, "the node never stops producing Readys");
        if !n.has_ready() {
            break;
        }
        let rd = n.ready();
        for c in &rd.snapshot_chunks {
            n.storage_mut().receive_chunk(c);
        }
        if let Some(s) = rd.snapshot.clone() {
            n.storage_mut().install_received(s);
        }
        n.storage_mut().append(&rd.entries);
        if let Some(hs) = rd.hard_state.clone() {
            n.storage_mut().hard_state = hs;
        }
        if let Some((i, t)) = rd.persist_point() {
            n.on_persisted(i, t);
        }
        if let Some(e) = rd.committed_entries.last() {
            n.on_applied(e.index);
        }
        out.extend(rd.messages);
        out.extend(rd.persisted_messages);
    }
    out
}

/// Hands `m` to the node at the node's current time.
pub(super) fn step_now(n: &mut RaftNode<MemStorage>, m: Message) {
    let now = n.clock();
    n.step(m, now);
}

pub(super) fn elect(n: &mut RaftNode<MemStorage>, peers: &[NodeId]) {
    n.tick(5000);
    let msgs = flush(n);
    // Grant every (pre-)vote request.
    for m in msgs {
        let body = match m.body {
            MessageBody::PreVote { .. } => MessageBody::PreVoteResponse { reject: false },
            _ => continue,
        };
        step_now(
            n,
            Message {
                from: m.to,
                to: m.from,
                term: m.term,
                body,
            },
        );
    }
    for m in flush(n) {
        if let MessageBody::Vote { .. } = m.body {
            step_now(
                n,
                Message {
                    from: m.to,
                    to: m.from,
                    term: m.term,
                    body: MessageBody::VoteResponse { reject: false },
                },
            );
        }
    }
    assert_eq!(n.role(), Role::Leader, "peers {peers:?}");
    flush(n);
}

#[test]
fn vote_is_refused_to_a_candidate_with_a_stale_log() {
    let mut n = node(2, &[1, 2, 3]);
    let mut m = node(1, &[1, 2, 3]);
    elect(&mut m, &[2, 3]);
    // Node 2 gets the leader's no-op; a candidate that lacks it must not get the vote.
    for msg in flush(&mut m).into_iter().chain(std::iter::once(Message {
        from: 1,
        to: 2,
        term: m.term(),
        body: MessageBody::Append {
            prev_index: 0,
            prev_term: 0,
            entries: m.entries(1, 2).unwrap(),
            commit: 0,
        },
    })) {
        if msg.to == 2 {
            step_now(&mut n, msg);
        }
    }
    flush(&mut n);
    n.tick(10_000);
    step_now(
        &mut n,
        Message {
            from: 3,
            to: 2,
            term: 9,
            body: MessageBody::Vote {
                last_index: 0,
                last_term: 0,
                transfer: false,
            },
        },
    );
    let replies = flush(&mut n);
    assert!(
        replies
            .iter()
            .any(|r| r.to == 3 && r.body == MessageBody::VoteResponse { reject: true })
    );
    assert_eq!(n.status().vote, None);
}

#[test]
fn leader_commits_only_after_its_own_copy_is_durable() {
    let mut n = node(1, &[1]);
    n.tick(5000);
    let rd = n.ready();
    assert_eq!(n.role(), Role::Leader);
    assert_eq!(rd.entries.len(), 1, "the term's no-op");
    assert_eq!(n.status().commit, 0, "not durable yet");
    n.storage_mut().append(&rd.entries);
    let (i, t) = rd.persist_point().unwrap();
    n.on_persisted(i, t);
    assert_eq!(n.status().commit, 1);
}

#[test]
fn garbage_messages_never_panic() {
    let mut rng = 7u64;
    let mut next = move || {
        rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z ^ (z >> 27)
    };
    for round in 0..2 {
        let mut n = node(1, &[1, 2, 3]);
        if round == 1 {
            elect(&mut n, &[2, 3]);
        }
        for step in 0..20_000u64 {
            let big = |x: u64| match x % 4 {
                0 => x,
                1 => u64::MAX - x % 3,
                _ => x % 8,
            };
            let (a, b, c) = (big(next()), big(next()), big(next()));
            let entries = (0..next() % 3)
                .map(|k| Entry {
                    term: b,
                    index: a.wrapping_add(1 + k),
                    kind: EntryKind::Noop,
                })
                .collect();
            let body = match next() % 12 {
                0 => MessageBody::PreVote {
                    last_index: a,
                    last_term: b,
                },
                1 => MessageBody::PreVoteResponse { reject: a % 2 == 0 },
                2 => MessageBody::Vote {
                    last_index: a,
                    last_term: b,
                    transfer: c % 2 == 0,
                },
                3 => MessageBody::VoteResponse { reject: a % 2 == 0 },
                4 => MessageBody::Append {
                    prev_index: a,
                    prev_term: b,
                    entries,
                    commit: c,
                },
                5 => MessageBody::AppendResponse {
                    index: a,
                    reject: c % 2 == 0,
                    hint_index: b,
                    hint_term: c,
                },
                6 => MessageBody::Heartbeat {
                    commit: a,
                    round: b,
                },
                7 => MessageBody::HeartbeatResponse { round: a },
                8 => MessageBody::InstallSnapshot {
                    meta: SnapshotMeta {
                        index: a,
                        term: b,
                        membership: Membership::new([1, 2]),
                    },
                    offset: c,
                    data: vec![1, 2, 3],
                    done: c % 2 == 0,
                },
                9 => MessageBody::SnapshotResponse {
                    snapshot_index: a,
                    next_offset: b,
                    installed: c % 2 == 0,
                    skipped: c % 3 == 0,
                },
                10 => MessageBody::TimeoutNow,
                _ => MessageBody::Heartbeat {
                    commit: 0,
                    round: 0,
                },
            };
            let from = 1 + next() % 4;
            let term = n.term().saturating_add(next() % 3);
            let term = term.saturating_sub(next() % 2);
            step_now(
                &mut n,
                Message {
                    from,
                    to: 1,
                    term,
                    body,
                },
            );
            n.tick(5000 + step * 7);
            flush(&mut n);
        }
    }
}

/// A 3-voter leader (node 1) whose no-op is committed and whose lease was just confirmed by
/// node 2; returns it with the lease expiry.
pub(super) fn leader_with_lease() -> (RaftNode<MemStorage>, u64) {
    let mut n = node(1, &[1, 2, 3]);
    elect(&mut n, &[2, 3]);
    let term = n.term();
    let ack = |from: NodeId, body: MessageBody| Message {
        from,
        to: 1,
        term,
        body,
    };
    step_now(
        &mut n,
        ack(
            2,
            MessageBody::AppendResponse {
                index: 1,
                reject: false,
                hint_index: 0,
                hint_term: 0,
            },
        ),
    );
    flush(&mut n);
    assert_eq!(n.status().commit, 1, "the term's no-op commits");
    let t = n.clock() + n.cfg.heartbeat_interval;
    n.tick(t);
    let round = flush(&mut n)
        .into_iter()
        .find_map(|m| match m.body {
            MessageBody::Heartbeat { round, .. } => Some(round),
            _ => None,
        })
        .expect("a heartbeat round");
    step_now(&mut n, ack(2, MessageBody::HeartbeatResponse { round }));
    flush(&mut n);
    let expiry = n.lease_expiry().expect("lease confirmed by a quorum");
    assert_eq!(
        expiry,
        t + n.cfg.election_timeout - n.cfg.max_clock_drift,
        "the lease runs from the time the round was sent, less the drift margin"
    );
    (n, expiry)
}

#[test]
fn a_lease_read_is_served_at_once_while_the_lease_holds() {
    let (mut n, expiry) = leader_with_lease();
    n.read(b"r".to_vec(), ReadMode::Lease, expiry - 1).unwrap();
    let rd = n.ready();
    assert_eq!(rd.read_states.len(), 1, "served from the lease");
}

#[test]
fn a_lease_read_after_a_stall_is_judged_at_the_time_it_arrives_not_at_the_last_tick() {
    // The node's last tick was well inside its lease; the read arrives (after a stall) long
    // after the lease ran out. It must not be answered from the lease: it needs a new round.
    for late in [1, 4_000] {
        let (mut n, expiry) = leader_with_lease();
        assert!(n.clock() < expiry);
        n.read(b"r".to_vec(), ReadMode::Lease, expiry + late)
            .unwrap();
        let rd = n.ready();
        assert!(
            rd.read_states.is_empty(),
            "stale lease served (late {late})"
        );
        let rounds = rd.messages.iter().chain(&rd.persisted_messages);
        assert!(
            rounds
                .filter(|m| matches!(m.body, MessageBody::Heartbeat { .. }))
                .count()
                == 2,
            "the read starts a heartbeat round to both followers"
        );
        assert_eq!(
            n.lease_expiry(),
            Some(expiry),
            "no lease without a new quorum"
        );
    }
}

#[test]
fn a_follower_resuming_from_a_stall_promises_its_lease_from_the_time_it_hears_the_leader() {
    // Node 2 last ticked at 0, stalls, then hears the leader at 5000. Its promise not to vote
    // runs from 5000: a candidate asking half an election timeout later is refused.
    let mut n = node(2, &[1, 2, 3]);
    n.tick(0);
    flush(&mut n);
    let heartbeat = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Heartbeat {
            commit: 0,
            round: 1,
        },
    };
    n.step(heartbeat, 5_000);
    flush(&mut n);
    let half = 5_000 + n.cfg.election_timeout / 2;
    n.tick(half);
    for (from, body) in [
        (
            3,
            MessageBody::PreVote {
                last_index: 10,
                last_term: 1,
            },
        ),
        (
            3,
            MessageBody::Vote {
                last_index: 10,
                last_term: 1,
                transfer: false,
            },
        ),
    ] {
        n.step(
            Message {
                from,
                to: 2,
                term: 2,
                body,
            },
            half,
        );
    }
    let replies = flush(&mut n);
    assert!(
        replies.iter().all(|m| matches!(
            m.body,
            MessageBody::PreVoteResponse { reject: true }
                | MessageBody::VoteResponse { reject: true }
        )),
        "votes granted inside the promised lease: {replies:?}"
    );
    assert_eq!(n.term(), 1);
    assert_eq!(n.status().vote, None);
}

#[test]
fn check_quorum_after_a_stall_does_not_trust_acknowledgements_from_before_it() {
    // Both followers were heard from just before the stall; the first tick after it comes five
    // election timeouts later. Nothing was heard within the last election timeout: step down.
    let (mut n, _) = leader_with_lease();
    let later = n.clock() + 5 * n.cfg.election_timeout;
    n.tick(later);
    assert_ne!(
        n.role(),
        Role::Leader,
        "kept leading on acknowledgements older than the stall"
    );
}

#[test]
fn check_quorum_keeps_a_leader_that_hears_from_a_quorum() {
    let (mut n, _) = leader_with_lease();
    let term = n.term();
    let et = n.cfg.election_timeout;
    for k in 1..=5 {
        let t = n.clock() + et / 2;
        let hb = MessageBody::HeartbeatResponse { round: 0 };
        n.step(
            Message {
                from: 2,
                to: 1,
                term,
                body: hb,
            },
            t,
        );
        n.tick(t);
        flush(&mut n);
        assert_eq!(n.role(), Role::Leader, "step {k}");
    }
}
