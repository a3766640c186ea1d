//! The guards of the public inputs, one case each: what `tick`, `propose_batch`,
//! `change_membership`, `transfer_leader`, `set_preferred_leader`, `on_persisted` and
//! `on_applied` accept, refuse or ignore, and what the accessors report after them.

use super::tests::{elect, flush, node, step_now};
use super::*;
use crate::raft::storage::MemStorage;

fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

fn with_cfg(voters: &[NodeId], cfg: Config) -> RaftNode<MemStorage> {
    RaftNode::new(
        cfg,
        MemStorage::new(Membership::new(voters.iter().copied())),
        0,
        0,
    )
    .unwrap()
}

/// A single-voter leader (node 1) with its term's no-op committed and applied.
fn single_leader() -> RaftNode<MemStorage> {
    let mut n = node(1, &[1]);
    n.tick(5000);
    flush(&mut n);
    assert_eq!(n.role(), Role::Leader);
    assert_eq!(n.status().commit, 1);
    n
}

/// Node 2 of {1, 2, 3} following leader 1 in term 3, having heard from it at `now`.
fn follower_at(now: u64) -> RaftNode<MemStorage> {
    let mut n = node(2, &[1, 2, 3]);
    n.tick(now);
    step_now(
        &mut n,
        Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::Heartbeat {
                commit: 0,
                round: 1,
            },
        },
    );
    flush(&mut n);
    n
}

#[test]
fn leader_is_reported_by_leader_and_follower() {
    assert_eq!(single_leader().leader(), Some(1));
    let f = follower_at(100);
    assert_eq!(f.leader(), Some(1));
    assert_eq!(f.term(), 3);
}

#[test]
fn vote_refusal_lasts_an_election_timeout_from_the_last_contact() {
    let f = follower_at(700);
    assert_eq!(f.vote_refused_until(), Some(700 + 1000));
    let cfg = Config {
        id: 2,
        check_quorum: false,
        lease_reads: false,
        ..Config::default()
    };
    assert_eq!(with_cfg(&[1, 2, 3], cfg).vote_refused_until(), None);
}

#[test]
fn a_leader_without_lease_reads_reports_no_lease() {
    let cfg = Config {
        lease_reads: false,
        ..Config::default()
    };
    let mut n = with_cfg(&[1], cfg);
    n.tick(5000);
    flush(&mut n);
    n.read(b"r".to_vec(), ReadMode::ReadIndex, 5000).unwrap();
    n.tick(5200);
    flush(&mut n);
    assert_eq!(n.role(), Role::Leader);
    assert_eq!(n.lease_expiry(), None);
}

#[test]
fn tick_never_moves_the_clock_back_and_fires_timers_at_an_observed_time() {
    let mut n = node(1, &[1, 2, 3]);
    n.tick(1000);
    n.tick(500);
    assert_eq!(n.clock(), 1000, "a tick from the past is ignored");
    // A time-carrying input moves the clock without firing timers; the tick at that same time
    // fires them.
    n.read(Vec::new(), ReadMode::ReadIndex, 9000).unwrap_err();
    assert_eq!(n.clock(), 9000);
    assert_eq!(n.role(), Role::Follower);
    n.tick(9000);
    assert_eq!(n.role(), Role::PreCandidate, "the overdue election starts");
}

#[test]
fn propose_batch_returns_the_last_index_and_appends_each_entry() {
    let mut n = single_leader();
    let last = n.propose_batch(vec![b"a".to_vec(), b"b".to_vec()]).unwrap();
    assert_eq!(last, 3);
    let kinds: Vec<EntryKind> = n
        .entries(2, 4)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            EntryKind::Normal(b"a".to_vec()),
            EntryKind::Normal(b"b".to_vec())
        ]
    );
    assert_eq!(
        n.propose_batch(Vec::new()).unwrap(),
        3,
        "an empty batch appends nothing"
    );
    let f = &mut follower_at(100);
    assert!(matches!(
        f.propose_batch(vec![b"x".to_vec()]),
        Err(RaftError::NotLeader { leader: Some(1) })
    ));
}

#[test]
fn change_membership_refuses_while_a_change_is_in_progress() {
    // Adding voter 2: it joins as a learner (committed at once by the single voter), then waits
    // to catch up (it never answers; no lag is allowed) — the change is still in progress
    // although its last entry is committed and the configuration is not joint.
    let cfg = Config {
        catchup_lag: 0,
        ..Config::default()
    };
    let mut n = with_cfg(&[1], cfg);
    n.tick(5000);
    flush(&mut n);
    n.change_membership(set(&[1, 2]), set(&[])).unwrap();
    flush(&mut n);
    assert_eq!(n.membership().learners, set(&[2]));
    let s = n.status();
    assert!(s.commit == s.membership_index && !s.membership.is_joint());
    assert_eq!(
        n.change_membership(set(&[1]), set(&[])),
        Err(RaftError::ConfChangeInProgress)
    );
}

#[test]
fn change_membership_is_accepted_once_the_last_change_is_committed() {
    let mut n = single_leader();
    n.change_membership(set(&[1]), set(&[4])).unwrap();
    flush(&mut n);
    assert_eq!(n.membership().learners, set(&[4]));
    let s = n.status();
    assert_eq!(
        s.commit, s.membership_index,
        "the change is committed and complete"
    );
    n.change_membership(set(&[1]), set(&[])).unwrap();
    flush(&mut n);
    assert_eq!(n.membership().learners, set(&[]));
}

#[test]
fn change_membership_refuses_while_the_configuration_entry_is_uncommitted() {
    // A new leader inherits an uncommitted configuration entry (no change target of its own).
    let mut n = node(1, &[1, 2, 3]);
    step_now(
        &mut n,
        Message {
            from: 2,
            to: 1,
            term: 1,
            body: MessageBody::Append {
                prev_index: 0,
                prev_term: 0,
                entries: vec![Entry {
                    term: 1,
                    index: 1,
                    kind: EntryKind::Config(Membership {
                        voters: set(&[1, 2, 3]),
                        outgoing: BTreeSet::new(),
                        learners: set(&[5]),
                    }),
                }],
                commit: 0,
            },
        },
    );
    flush(&mut n);
    assert_eq!(n.status().membership_index, 1);
    elect(&mut n, &[2, 3]);
    let s = n.status();
    assert!(s.membership_index > s.commit && !s.membership.is_joint());
    assert_eq!(
        n.change_membership(set(&[1, 2, 3]), set(&[])),
        Err(RaftError::ConfChangeInProgress)
    );
}

#[test]
fn transfer_leader_guards() {
    let mut n = node(1, &[1, 2, 3]);
    elect(&mut n, &[2, 3]);
    assert!(matches!(
        n.transfer_leader(7, n.clock()),
        Err(RaftError::InvalidArgument(_))
    ));
    assert_eq!(
        n.transfer_leader(1, n.clock()),
        Ok(()),
        "to itself: nothing to do"
    );
    assert!(n.lease_expiry().is_none() || n.transfer.is_none());
    let now = n.clock();
    n.transfer_leader(2, now).unwrap();
    assert_eq!(
        n.transfer,
        Some((2, now + 1000)),
        "gives up an election timeout later"
    );
    assert_eq!(n.lease_expiry(), None, "no lease reads during a transfer");
    // Node 2 has not acknowledged the leader's entries: no TimeoutNow yet.
    let msgs = flush(&mut n);
    assert!(
        !msgs
            .iter()
            .any(|m| matches!(m.body, MessageBody::TimeoutNow))
    );
    assert_eq!(
        n.transfer_leader(2, now + 10),
        Ok(()),
        "the same transfer again"
    );
    assert_eq!(n.transfer, Some((2, now + 1000)), "not restarted");
    assert!(matches!(
        n.propose(b"x".to_vec()),
        Err(RaftError::TransferInProgress(2))
    ));
}

#[test]
fn transfer_to_a_learner_is_refused() {
    let cfg = Config {
        catchup_lag: 0,
        ..Config::default()
    };
    let mut n = with_cfg(&[1], cfg);
    n.tick(5000);
    flush(&mut n);
    n.change_membership(set(&[1, 2]), set(&[])).unwrap();
    flush(&mut n);
    assert_eq!(
        n.membership().learners,
        set(&[2]),
        "2 has progress but no vote"
    );
    assert!(matches!(
        n.transfer_leader(2, n.clock()),
        Err(RaftError::InvalidArgument(_))
    ));
}

/// A follower's acknowledgement waits for the durability of what it acknowledges: a report
/// for an earlier write must not release the acknowledgement of a later one.
#[test]
fn an_earlier_durability_report_does_not_release_a_later_acknowledgement() {
    let mut n = node(2, &[1, 2, 3]);
    let append = |index: Index, prev_term: Term| Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Append {
            prev_index: index - 1,
            prev_term,
            entries: vec![Entry {
                term: 1,
                index,
                kind: EntryKind::Noop,
            }],
            commit: 0,
        },
    };
    step_now(&mut n, append(1, 0));
    let rd1 = n.ready();
    n.storage_mut().append(&rd1.entries);
    if let Some(hs) = rd1.hard_state.clone() {
        n.storage_mut().hard_state = hs;
    }
    step_now(&mut n, append(2, 1));
    let (i, t) = rd1.persist_point().unwrap();
    n.on_persisted(i, t);
    let rd2 = n.ready();
    let is_ack = |m: &Message| matches!(m.body, MessageBody::AppendResponse { .. });
    assert!(!rd2.messages.iter().any(is_ack), "{:?}", rd2.messages);
    assert!(rd2.persisted_messages.iter().any(is_ack));
}

#[test]
fn reads_are_bounded_across_all_their_queues() {
    let cfg = Config {
        max_pending_reads: 2,
        ..Config::default()
    };
    let mut n = with_cfg(&[1, 2, 3], cfg);
    elect(&mut n, &[2, 3]);
    // The term's no-op is not committed yet: both reads wait for it.
    let now = n.clock();
    n.read(b"a".to_vec(), ReadMode::ReadIndex, now).unwrap();
    n.read(b"b".to_vec(), ReadMode::Lease, now).unwrap();
    assert_eq!(
        n.read(b"c".to_vec(), ReadMode::ReadIndex, now),
        Err(RaftError::TooManyPendingReads)
    );
}

/// A new leader holds its traffic until its term is durable; the report that makes it durable
/// releases what was held meanwhile (here: heartbeats) to be sent at once.
#[test]
fn the_report_that_makes_the_leaders_term_durable_releases_held_traffic() {
    let mut n = node(1, &[1, 2, 3]);
    n.tick(5000);
    let grant = |n: &mut RaftNode<MemStorage>, msgs: Vec<Message>| {
        for m in msgs {
            let body = match m.body {
                MessageBody::PreVote { .. } => MessageBody::PreVoteResponse { reject: false },
                MessageBody::Vote { .. } => MessageBody::VoteResponse { reject: false },
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
    };
    let pre = flush(&mut n);
    grant(&mut n, pre);
    // The vote round's Ready (the new term) is written, its report is slow to come back.
    let rdv = n.ready();
    if let Some(hs) = rdv.hard_state.clone() {
        n.storage_mut().hard_state = hs;
    }
    let votes = rdv.persisted_messages.clone();
    grant(&mut n, votes);
    assert_eq!(n.role(), Role::Leader);
    n.tick(n.clock() + 100);
    let (i, t) = rdv.persist_point().unwrap();
    n.on_persisted(i, t);
    let rd2 = n.ready();
    let hb = |m: &Message| matches!(m.body, MessageBody::Heartbeat { .. });
    assert!(rd2.messages.iter().any(hb), "{rd2:?}");
    assert!(!rd2.persisted_messages.iter().any(hb));
}

#[test]
fn set_preferred_leader_is_recorded() {
    let mut n = single_leader();
    n.set_preferred_leader(Some(3));
    assert_eq!(n.preferred, Some(3));
    n.set_preferred_leader(None);
    assert_eq!(n.preferred, None);
}

#[test]
fn on_persisted_releases_held_messages_only_for_the_reported_point() {
    let mut n = node(1, &[1]);
    n.tick(5000);
    let rd = n.ready();
    assert_eq!(n.role(), Role::Leader);
    n.storage_mut().append(&rd.entries);
    if let Some(hs) = rd.hard_state.clone() {
        n.storage_mut().hard_state = hs;
    }
    let (i, t) = rd.persist_point().unwrap();
    n.on_persisted(i, t + 1);
    assert_eq!(
        n.status().commit,
        0,
        "a report for another term is not this entry's"
    );
    assert_eq!(n.durable_term, 0);
    n.on_persisted(i, t);
    assert_eq!(n.durable_term, t);
    assert_eq!(n.status().commit, 1);
}

#[test]
fn on_applied_moves_only_forward_and_only_over_handed_out_entries() {
    let mut n = single_leader();
    assert_eq!(n.status().applied, 1);
    n.on_applied(1);
    assert!(!n.has_ready(), "applying the same index again is no event");
    n.on_applied(0);
    assert_eq!(n.status().applied, 1);
    n.on_applied(50);
    assert_eq!(n.status().applied, 1, "nothing beyond what was handed out");
}

/// Each reason for a `Ready`, alone, makes `has_ready` true.
#[test]
fn has_ready_sees_each_reason_alone() {
    // Unsent entries only (a single voter sends no messages; the commit does not move yet).
    let mut n = single_leader();
    n.propose(b"x".to_vec()).unwrap();
    assert!(n.has_ready(), "an unsent entry");
    flush(&mut n);

    // Committed entries not yet handed out (one per Ready under a one-byte apply limit).
    let cfg = Config {
        max_apply_bytes: 1,
        ..Config::default()
    };
    let mut n = with_cfg(&[1], cfg);
    n.tick(5000);
    flush(&mut n);
    n.propose_batch(vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()])
        .unwrap();
    let rd = n.ready();
    n.storage_mut().append(&rd.entries);
    let (i, t) = rd.persist_point().unwrap();
    n.on_persisted(i, t);
    let rd = n.ready();
    assert_eq!(rd.committed_entries.len(), 1);
    assert!(n.has_ready(), "two committed entries still to hand out");
    flush(&mut n);

    // A read whose index is applied exactly.
    let mut n = single_leader();
    let now = n.clock();
    n.read(b"r".to_vec(), ReadMode::ReadIndex, now).unwrap();
    assert!(n.has_ready(), "a read ready to serve");
    let rd = n.ready();
    assert_eq!(rd.read_states.len(), 1);
    assert!(!n.has_ready());

    // An event only (the host reports an application).
    let mut n = single_leader();
    n.propose(b"y".to_vec()).unwrap();
    let rd = n.ready();
    n.storage_mut().append(&rd.entries);
    let (i, t) = rd.persist_point().unwrap();
    n.on_persisted(i, t);
    let rd = n.ready();
    assert_eq!(rd.committed_entries.len(), 1);
    assert!(!n.has_ready());
    n.on_applied(rd.committed_entries[0].index);
    assert!(n.has_ready(), "the Applied event");
}

/// A granted vote changes only the hard state; that write still gets a durability point, which
/// the vote's reply waits for.
#[test]
fn a_hard_state_alone_gets_a_persist_point() {
    let mut n = node(2, &[1, 2, 3]);
    n.tick(5000);
    flush(&mut n);
    step_now(
        &mut n,
        Message {
            from: 3,
            to: 2,
            term: 7,
            body: MessageBody::Vote {
                last_index: 0,
                last_term: 0,
                transfer: false,
            },
        },
    );
    let rd = n.ready();
    assert!(rd.hard_state.is_some() && rd.entries.is_empty() && rd.snapshot.is_none());
    assert!(rd.persist_point().is_some());
    assert!(
        rd.persisted_messages
            .iter()
            .any(|m| m.body == MessageBody::VoteResponse { reject: false })
    );
}

#[test]
fn step_ignores_messages_not_addressed_to_it_or_from_itself() {
    let heartbeat = |from, to| Message {
        from,
        to,
        term: 4,
        body: MessageBody::Heartbeat {
            commit: 0,
            round: 1,
        },
    };
    let mut n = node(2, &[1, 2, 3]);
    step_now(&mut n, heartbeat(1, 3));
    assert_eq!(n.term(), 0, "addressed to node 3");
    step_now(&mut n, heartbeat(2, 2));
    assert_eq!(n.term(), 0, "from itself");
    step_now(&mut n, heartbeat(1, 2));
    assert_eq!((n.term(), n.leader()), (4, Some(1)));
}

#[test]
fn step_answers_a_stale_leader_and_a_stale_pre_candidate() {
    let mut n = follower_at(100); // term 3
    let stale = |body| Message {
        from: 3,
        to: 2,
        term: 2,
        body,
    };
    for body in [
        MessageBody::Heartbeat {
            commit: 0,
            round: 1,
        },
        MessageBody::Append {
            prev_index: 0,
            prev_term: 0,
            entries: Vec::new(),
            commit: 0,
        },
    ] {
        step_now(&mut n, stale(body));
        let out = flush(&mut n);
        assert!(
            out.iter().any(|m| m.to == 3
                && m.term == 3
                && matches!(m.body, MessageBody::AppendResponse { reject: true, .. })),
            "{out:?}"
        );
    }
    step_now(
        &mut n,
        stale(MessageBody::PreVote {
            last_index: 9,
            last_term: 9,
        }),
    );
    let out = flush(&mut n);
    assert!(
        out.iter()
            .any(|m| m.to == 3 && m.body == MessageBody::PreVoteResponse { reject: true })
    );
    assert_eq!(n.term(), 3);
}

#[test]
fn a_pre_vote_for_the_current_term_is_refused() {
    // Long after the leader's last contact (no lease), an up-to-date pre-candidate asking for
    // the term this node is already in gets no pre-vote: it must ask for a later term.
    let mut n = follower_at(100);
    n.tick(100_000);
    flush(&mut n);
    let term = n.term();
    step_now(
        &mut n,
        Message {
            from: 3,
            to: 2,
            term,
            body: MessageBody::PreVote {
                last_index: 99,
                last_term: 99,
            },
        },
    );
    let out = flush(&mut n);
    assert!(
        out.iter()
            .any(|m| m.to == 3 && m.body == MessageBody::PreVoteResponse { reject: true }),
        "{out:?}"
    );
}

#[test]
fn snapshot_taken_only_over_applied_durable_uncompacted_entries() {
    let mut n = single_leader();
    n.propose(b"x".to_vec()).unwrap();
    flush(&mut n);
    let applied = n.status().applied;
    assert_eq!(applied, 2);
    assert!(matches!(
        n.on_snapshot_taken(applied + 1),
        Err(RaftError::SnapshotUnavailable { .. })
    ));
    let meta = n.on_snapshot_taken(1).unwrap();
    assert_eq!((meta.index, meta.term), (1, 1));
    n.storage_mut().compact(meta, Vec::new());
    let meta = n.on_snapshot_taken(applied).unwrap();
    assert_eq!((meta.index, meta.term), (2, 1));
    n.storage_mut().compact(meta, Vec::new());
    for index in [1, 2] {
        assert!(
            matches!(
                n.on_snapshot_taken(index),
                Err(RaftError::SnapshotUnavailable { .. })
            ),
            "{index} is compacted (the snapshot's own index included)"
        );
    }
}

#[test]
fn timeout_now_makes_a_follower_campaign_and_is_ignored_by_a_leader() {
    let timeout_now = |from, to, term| Message {
        from,
        to,
        term,
        body: MessageBody::TimeoutNow,
    };
    let mut f = follower_at(100);
    step_now(&mut f, timeout_now(1, 2, 3));
    assert_eq!(
        (f.role(), f.term()),
        (Role::Candidate, 4),
        "a transfer skips pre-vote"
    );
    let mut l = node(1, &[1, 2, 3]);
    elect(&mut l, &[2, 3]);
    let term = l.term();
    step_now(&mut l, timeout_now(2, 1, term));
    assert_eq!((l.role(), l.term()), (Role::Leader, term));
}

/// A configuration entry reaches a follower: one MembershipChanged event, no leader-side
/// progress tracking; later ordinary entries change no membership.
#[test]
fn membership_events_and_progress_follow_configuration_entries_only() {
    let mut n = node(2, &[1, 2, 3]);
    let append = |index: Index, prev_term: Term, kind: EntryKind| Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Append {
            prev_index: index - 1,
            prev_term,
            entries: vec![Entry {
                term: 1,
                index,
                kind,
            }],
            commit: 0,
        },
    };
    let with_learner = Membership {
        voters: set(&[1, 2, 3]),
        outgoing: BTreeSet::new(),
        learners: set(&[5]),
    };
    let changes = |n: &mut RaftNode<MemStorage>| {
        n.ready()
            .events
            .iter()
            .filter(|e| matches!(e, Event::MembershipChanged { .. }))
            .count()
    };
    step_now(
        &mut n,
        append(1, 0, EntryKind::Config(with_learner.clone())),
    );
    assert_eq!(changes(&mut n), 1);
    assert_eq!(n.membership(), &with_learner);
    assert!(n.progress.is_empty(), "a follower tracks no progress");
    step_now(&mut n, append(2, 1, EntryKind::Normal(b"x".to_vec())));
    assert_eq!(changes(&mut n), 0);
    // A leader tracks every member of a new configuration at once.
    let mut l = single_leader();
    l.change_membership(set(&[1]), set(&[4])).unwrap();
    assert!(l.progress.contains_key(&4));
}

#[test]
fn a_truncation_without_configuration_entries_changes_no_membership() {
    let mut n = node(2, &[1, 2, 3]);
    let append = |term: Term, prev_index: Index, prev_term: Term, terms: &[Term]| Message {
        from: 1,
        to: 2,
        term,
        body: MessageBody::Append {
            prev_index,
            prev_term,
            entries: terms
                .iter()
                .enumerate()
                .map(|(k, t)| Entry {
                    term: *t,
                    index: prev_index + 1 + k as Index,
                    kind: EntryKind::Noop,
                })
                .collect(),
            commit: 0,
        },
    };
    step_now(&mut n, append(1, 0, 0, &[1, 1]));
    flush(&mut n);
    step_now(&mut n, append(2, 1, 1, &[2]));
    assert_eq!(n.term_at(2), Some(2), "entry 2 was replaced");
    let rd = n.ready();
    assert!(
        !rd.events
            .iter()
            .any(|e| matches!(e, Event::MembershipChanged { .. })),
        "{:?}",
        rd.events
    );
}

/// A snapshot carrying the very membership the follower already has still moves the index the
/// configuration is known at (to the snapshot's).
#[test]
fn a_snapshot_with_the_same_membership_moves_the_configuration_index() {
    let mut n = node(2, &[1, 2, 3]);
    let meta = SnapshotMeta {
        index: 10,
        term: 1,
        membership: Membership::new([1, 2, 3]),
    };
    step_now(
        &mut n,
        Message {
            from: 1,
            to: 2,
            term: 1,
            body: MessageBody::InstallSnapshot {
                meta,
                offset: 0,
                data: Vec::new(),
                done: true,
            },
        },
    );
    assert_eq!(n.status().membership_index, 10);
}

/// Leader 1 of {1, 2, 3}; `ack` makes a follower report it holds the whole log, as of now.
fn leader3() -> RaftNode<MemStorage> {
    let mut n = node(1, &[1, 2, 3]);
    elect(&mut n, &[2, 3]);
    n
}

fn ack(n: &mut RaftNode<MemStorage>, from: NodeId) {
    let (term, last) = (n.term(), n.status().last_index);
    step_now(
        n,
        Message {
            from,
            to: n.id(),
            term,
            body: MessageBody::AppendResponse {
                index: last,
                reject: false,
                hint_index: 0,
                hint_term: 0,
            },
        },
    );
}

fn sends_timeout_now_to(msgs: &[Message], to: NodeId) -> bool {
    msgs.iter()
        .any(|m| m.to == to && m.body == MessageBody::TimeoutNow)
}

#[test]
fn the_preferred_leader_gets_leadership_once_it_is_caught_up() {
    let mut n = leader3();
    n.set_preferred_leader(Some(2));
    let now = n.clock();
    n.tick(now + 100);
    assert!(
        !sends_timeout_now_to(&flush(&mut n), 2),
        "2 is not caught up"
    );
    ack(&mut n, 2);
    ack(&mut n, 3);
    flush(&mut n);
    n.tick(now + 200);
    assert!(sends_timeout_now_to(&flush(&mut n), 2));
    assert_eq!(n.transfer.map(|(t, _)| t), Some(2));
}

#[test]
fn no_hand_over_to_itself_to_a_non_voter_or_during_a_change() {
    for preferred in [1, 9] {
        let mut n = leader3();
        ack(&mut n, 2);
        ack(&mut n, 3);
        flush(&mut n);
        n.set_preferred_leader(Some(preferred));
        let now = n.clock();
        n.tick(now + 100);
        flush(&mut n);
        assert_eq!(n.transfer, None, "preferred {preferred}");
        assert_eq!(n.role(), Role::Leader);
    }
}

/// A transfer that does not complete is given up an election timeout later: the leader takes
/// writes again.
#[test]
fn a_stuck_transfer_is_abandoned_after_an_election_timeout() {
    let mut n = leader3();
    ack(&mut n, 2);
    ack(&mut n, 3);
    let now = n.clock();
    n.transfer_leader(2, now).unwrap();
    flush(&mut n);
    ack(&mut n, 2);
    ack(&mut n, 3);
    n.tick(now + 999);
    assert!(n.transfer.is_some());
    ack(&mut n, 2);
    ack(&mut n, 3);
    n.tick(now + 1000);
    assert_eq!(n.transfer, None);
    assert!(n.propose(b"w".to_vec()).is_ok());
}

#[test]
fn a_transfer_in_progress_is_not_redirected_to_the_preferred_leader() {
    let mut n = leader3();
    ack(&mut n, 2);
    ack(&mut n, 3);
    flush(&mut n);
    let now = n.clock();
    n.transfer_leader(3, now).unwrap();
    n.set_preferred_leader(Some(2));
    n.tick(now + 100);
    flush(&mut n);
    assert_eq!(n.transfer.map(|(t, _)| t), Some(3));
}

fn heartbeat_ack(n: &mut RaftNode<MemStorage>, from: NodeId, round: u64) {
    let term = n.term();
    step_now(
        n,
        Message {
            from,
            to: n.id(),
            term,
            body: MessageBody::HeartbeatResponse { round },
        },
    );
}

fn rounds_sent(msgs: &[Message]) -> Vec<u64> {
    let mut r: Vec<u64> = msgs
        .iter()
        .filter_map(|m| match m.body {
            MessageBody::Heartbeat { round, .. } => Some(round),
            _ => None,
        })
        .collect();
    r.dedup();
    r
}

/// A ReadIndex read waits for a quorum's acknowledgement of a heartbeat round sent after it;
/// that round also grants the lease, from the round's send time, less the drift margin; a lease
/// read is served at once strictly before the lease's end and needs a round from then on.
#[test]
fn read_index_rounds_and_the_lease_they_grant() {
    let mut n = leader3();
    ack(&mut n, 2);
    ack(&mut n, 3);
    flush(&mut n);
    let t0 = n.clock();
    n.read(b"a".to_vec(), ReadMode::ReadIndex, t0).unwrap();
    let round = *rounds_sent(&flush(&mut n)).last().unwrap();
    heartbeat_ack(&mut n, 2, round + 5);
    assert!(
        !n.has_ready(),
        "an acknowledgement of a round never sent is ignored"
    );
    heartbeat_ack(&mut n, 2, round);
    let rd = n.ready();
    assert_eq!(rd.read_states.len(), 1, "leader + 2 are a quorum");
    assert_eq!(n.lease_expiry(), Some(t0 + 1000 - 100));
    n.read(b"b".to_vec(), ReadMode::Lease, t0 + 899).unwrap();
    let rd = n.ready();
    assert_eq!(rd.read_states.len(), 1, "inside the lease");
    assert!(rounds_sent(&rd.messages).is_empty(), "no round needed");
    n.read(b"c".to_vec(), ReadMode::Lease, t0 + 900).unwrap();
    let rd = n.ready();
    assert!(rd.read_states.is_empty(), "the lease ended");
    assert_eq!(rounds_sent(&rd.messages), vec![round + 1]);
}

/// A heartbeat acknowledgement from a follower that lacks entries brings it the entries.
#[test]
fn a_heartbeat_ack_from_a_lagging_follower_triggers_an_append() {
    let mut n = leader3();
    ack(&mut n, 3);
    flush(&mut n);
    let now = n.clock();
    n.tick(now + 100);
    let round = *rounds_sent(&flush(&mut n)).last().unwrap();
    // 2 never acknowledged the no-op: its probe is answered by the heartbeat ack.
    heartbeat_ack(&mut n, 2, round);
    let out = flush(&mut n);
    assert!(
        out.iter()
            .any(|m| m.to == 2 && matches!(m.body, MessageBody::Append { .. })),
        "{out:?}"
    );
    heartbeat_ack(&mut n, 3, round);
    let out = flush(&mut n);
    assert!(
        !out.iter()
            .any(|m| m.to == 3 && matches!(m.body, MessageBody::Append { .. }))
    );
}

fn vote_request(from: NodeId, to: NodeId, term: Term) -> Message {
    Message {
        from,
        to,
        term,
        body: MessageBody::Vote {
            last_index: 99,
            last_term: 99,
            transfer: false,
        },
    }
}

fn granted(msgs: &[Message], to: NodeId) -> bool {
    msgs.iter()
        .any(|m| m.to == to && m.body == MessageBody::VoteResponse { reject: false })
}

/// The vote promise lasts exactly an election timeout from the leader's last contact.
#[test]
fn votes_are_refused_inside_the_lease_and_granted_from_its_end() {
    let mut n = follower_at(700);
    let at = |n: &mut RaftNode<MemStorage>, now: u64, term: Term| {
        n.step(vote_request(3, 2, term), now);
        flush(n)
    };
    assert!(!granted(&at(&mut n, 1699, 4), 3), "inside the lease");
    assert_eq!(n.term(), 3, "the request did not even raise the term");
    assert!(granted(&at(&mut n, 1700, 4), 3), "the lease has ended");
}

/// Hearing from the leader of the current term: a follower that knew no leader learns it, a
/// pre-candidate goes back to following, and the vote of the term is kept.
#[test]
fn following_the_leader_of_the_current_term() {
    let heartbeat = Message {
        from: 1,
        to: 2,
        term: 7,
        body: MessageBody::Heartbeat {
            commit: 0,
            round: 1,
        },
    };
    let mut n = node(2, &[1, 2, 3]);
    n.step(vote_request(3, 2, 7), 5000); // long past any lease
    assert!(granted(&flush(&mut n), 3));
    assert_eq!((n.term(), n.leader(), n.status().vote), (7, None, Some(3)));
    step_now(&mut n, heartbeat.clone());
    assert_eq!(n.leader(), Some(1));
    assert_eq!(
        n.status().vote,
        Some(3),
        "a vote is kept for the whole term"
    );

    let mut f = follower_at(100);
    f.tick(100_000);
    assert_eq!(f.role(), Role::PreCandidate);
    step_now(
        &mut f,
        Message {
            term: 3,
            ..heartbeat
        },
    );
    assert_eq!((f.role(), f.leader()), (Role::Follower, Some(1)));
}

#[test]
fn a_leader_that_steps_down_drops_its_pending_reads() {
    let mut n = leader3();
    let now = n.clock();
    n.read(b"r".to_vec(), ReadMode::ReadIndex, now).unwrap();
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
    let rd = n.ready();
    assert!(
        rd.events
            .iter()
            .any(|e| matches!(e, Event::ReadDropped { ctx } if ctx == b"r")),
        "{:?}",
        rd.events
    );
    assert_eq!(n.role(), Role::Follower);
}

/// A voter removed by an uncommitted C_new may still campaign as a voter of the configuration
/// before it (it may hold the only log that can finish the change).
#[test]
fn a_voter_of_the_previous_configuration_stays_promotable_until_c_new_commits() {
    let mut n = node(3, &[1, 2, 3]);
    let cfg = |voters: &[NodeId], outgoing: &[NodeId]| {
        EntryKind::Config(Membership {
            voters: set(voters),
            outgoing: set(outgoing),
            learners: BTreeSet::new(),
        })
    };
    step_now(
        &mut n,
        Message {
            from: 1,
            to: 3,
            term: 1,
            body: MessageBody::Append {
                prev_index: 0,
                prev_term: 0,
                entries: vec![
                    Entry {
                        term: 1,
                        index: 1,
                        kind: cfg(&[1, 2], &[1, 2, 3]),
                    },
                    Entry {
                        term: 1,
                        index: 2,
                        kind: cfg(&[1, 2], &[]),
                    },
                ],
                commit: 0,
            },
        },
    );
    flush(&mut n);
    assert!(!n.membership().is_voter(3));
    assert!(n.promotable());
}

/// A new leader's first heartbeat is due a heartbeat interval after it took over, and its first
/// check-quorum an election timeout after: silent followers depose it exactly then.
#[test]
fn a_new_leaders_timers_start_when_it_takes_over() {
    let mut n = leader3();
    let t = n.clock();
    n.tick(t + 1);
    assert!(rounds_sent(&flush(&mut n)).is_empty(), "no heartbeat yet");
    n.tick(t + 100);
    assert!(!rounds_sent(&flush(&mut n)).is_empty(), "heartbeat due");
    n.tick(t + 999);
    assert_eq!(n.role(), Role::Leader);
    n.tick(t + 1000);
    assert_eq!(
        n.role(),
        Role::Follower,
        "no follower answered for an election timeout"
    );
}

/// Pipelined appends may arrive out of order: one past the end waits for the gap to be filled.
#[test]
fn an_append_past_the_end_waits_for_the_gap() {
    let mut n = node(2, &[1, 2, 3]);
    let append = |index: Index| Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Append {
            prev_index: index - 1,
            prev_term: if index > 1 { 1 } else { 0 },
            entries: vec![Entry {
                term: 1,
                index,
                kind: EntryKind::Noop,
            }],
            commit: 0,
        },
    };
    step_now(&mut n, append(2));
    let out = flush(&mut n);
    assert!(
        !out.iter()
            .any(|m| matches!(m.body, MessageBody::AppendResponse { reject: true, .. })),
        "kept, not rejected: {out:?}"
    );
    assert_eq!(n.status().last_index, 0);
    step_now(&mut n, append(1));
    flush(&mut n);
    assert_eq!(
        n.status().last_index,
        2,
        "the kept append follows the gap's"
    );
}

#[test]
fn out_of_order_appends_are_kept_up_to_the_bound() {
    let cfg = Config {
        id: 2,
        max_stashed_appends: 1,
        ..Config::default()
    };
    let mut n = with_cfg(&[1, 2, 3], cfg);
    let append = |index: Index| Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Append {
            prev_index: index - 1,
            prev_term: if index > 1 { 1 } else { 0 },
            entries: vec![Entry {
                term: 1,
                index,
                kind: EntryKind::Noop,
            }],
            commit: 0,
        },
    };
    step_now(&mut n, append(3));
    step_now(&mut n, append(4)); // beyond the bound: not kept
    step_now(&mut n, append(1));
    step_now(&mut n, append(2));
    flush(&mut n);
    assert_eq!(
        n.status().last_index,
        3,
        "only the kept append followed the gap"
    );
}

#[test]
fn a_repeated_configuration_entry_is_tracked_once() {
    let mut n = node(2, &[1, 2, 3]);
    let append = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Append {
            prev_index: 0,
            prev_term: 0,
            entries: vec![Entry {
                term: 1,
                index: 1,
                kind: EntryKind::Config(Membership::new([1, 2, 3, 4])),
            }],
            commit: 0,
        },
    };
    step_now(&mut n, append.clone());
    flush(&mut n);
    step_now(&mut n, append);
    flush(&mut n);
    assert_eq!(n.configs.len(), 1);
}

/// A follower with terms [1, 1, 3, 3, 3] rejects an append whose previous entry it does not
/// match, with a hint that skips every entry of a term above the leader's `prev_term`.
#[test]
fn a_rejection_hints_past_the_terms_above_the_leaders() {
    let mut n = node(2, &[1, 2, 3]);
    let terms = [1, 1, 3, 3, 3];
    step_now(
        &mut n,
        Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::Append {
                prev_index: 0,
                prev_term: 0,
                entries: (1..=5)
                    .map(|i| Entry {
                        term: terms[i as usize - 1],
                        index: i,
                        kind: EntryKind::Noop,
                    })
                    .collect(),
                commit: 0,
            },
        },
    );
    flush(&mut n);
    // (prev_index, prev_term) → (hint_index, hint_term)
    for (prev_index, prev_term, hint) in [
        (5, 2, (2, 1)),
        (3, 2, (2, 1)),
        (4, 1, (2, 1)),
        (5, 0, (0, 0)),
    ] {
        step_now(
            &mut n,
            Message {
                from: 4,
                to: 2,
                term: 4,
                body: MessageBody::Append {
                    prev_index,
                    prev_term,
                    entries: Vec::new(),
                    commit: 0,
                },
            },
        );
        let out = flush(&mut n);
        let got = out.iter().find_map(|m| match m.body {
            MessageBody::AppendResponse {
                index,
                reject: true,
                hint_index,
                hint_term,
            } if m.to == 4 => Some((index, hint_index, hint_term)),
            _ => None,
        });
        assert_eq!(
            got,
            Some((prev_index, hint.0, hint.1)),
            "prev ({prev_index}, {prev_term})"
        );
    }
}

fn install(
    n: &mut RaftNode<MemStorage>,
    meta: &SnapshotMeta,
    offset: u64,
    data: &[u8],
    done: bool,
) -> Vec<Message> {
    let term = n.term().max(1);
    step_now(
        n,
        Message {
            from: 1,
            to: n.id(),
            term,
            body: MessageBody::InstallSnapshot {
                meta: meta.clone(),
                offset,
                data: data.to_vec(),
                done,
            },
        },
    );
    flush(n)
}

fn snapshot_reply(out: &[Message]) -> Option<(u64, bool, bool)> {
    out.iter().find_map(|m| match m.body {
        MessageBody::SnapshotResponse {
            next_offset,
            installed,
            skipped,
            ..
        } => Some((next_offset, installed, skipped)),
        _ => None,
    })
}

/// A follower that already holds the snapshot's last entry (same term) keeps its log, even
/// uncommitted, and tells the leader to probe instead.
#[test]
fn a_snapshot_the_follower_already_holds_is_skipped() {
    let mut n = node(2, &[1, 2, 3]);
    step_now(
        &mut n,
        Message {
            from: 1,
            to: 2,
            term: 1,
            body: MessageBody::Append {
                prev_index: 0,
                prev_term: 0,
                entries: (1..=3)
                    .map(|index| Entry {
                        term: 1,
                        index,
                        kind: EntryKind::Noop,
                    })
                    .collect(),
                commit: 0,
            },
        },
    );
    flush(&mut n);
    let meta = SnapshotMeta {
        index: 2,
        term: 1,
        membership: Membership::new([1, 2, 3]),
    };
    assert_eq!(
        snapshot_reply(&install(&mut n, &meta, 0, b"s", true)),
        Some((0, false, true))
    );
    assert_eq!(n.status().last_index, 3, "the log is kept");
}

/// Chunks must arrive in order: one at the wrong offset is not appended, the follower asks for
/// the offset it has.
#[test]
fn a_snapshot_chunk_at_the_wrong_offset_is_not_appended() {
    let mut n = node(2, &[1, 2, 3]);
    let meta = SnapshotMeta {
        index: 10,
        term: 1,
        membership: Membership::new([1, 2, 3]),
    };
    assert_eq!(
        snapshot_reply(&install(&mut n, &meta, 0, b"abc", false)),
        Some((3, false, false))
    );
    assert_eq!(
        snapshot_reply(&install(&mut n, &meta, 5, b"xyz", false)),
        Some((3, false, false))
    );
    assert_eq!(
        snapshot_reply(&install(&mut n, &meta, 3, b"de", false)),
        Some((5, false, false))
    );
    let out = install(&mut n, &meta, 5, b"f", true);
    assert_eq!(snapshot_reply(&out).map(|r| r.1), Some(true));
    assert_eq!(n.status().last_index, 10);
}

/// The core hands every accepted chunk to the host and keeps only how many bytes it handed
/// over: after N chunks it holds none of their data, and the install carries the meta only.
#[test]
fn snapshot_chunks_go_to_the_host_and_the_core_keeps_no_bytes() {
    let mut n = node(2, &[1, 2, 3]);
    let meta = SnapshotMeta {
        index: 10,
        term: 1,
        membership: Membership::new([1, 2, 3]),
    };
    let chunk = vec![7u8; 1000];
    for k in 0..8u64 {
        step_now(
            &mut n,
            Message {
                from: 1,
                to: 2,
                term: 1,
                body: MessageBody::InstallSnapshot {
                    meta: meta.clone(),
                    offset: k * 1000,
                    data: chunk.clone(),
                    done: false,
                },
            },
        );
        let rd = n.ready();
        assert_eq!(rd.snapshot_chunks.len(), 1);
        assert_eq!(rd.snapshot_chunks[0].offset, k * 1000);
        assert!(rd.snapshot.is_none());
        n.storage_mut().receive_chunk(&rd.snapshot_chunks[0]);
        assert!(n.chunks_out.is_empty());
        assert_eq!(n.incoming_snap, Some((meta.clone(), (k + 1) * 1000)));
    }
    // A repeated chunk (a retry) is not handed out again.
    let out = install(&mut n, &meta, 3000, &chunk, false);
    assert_eq!(snapshot_reply(&out), Some((8000, false, false)));
    step_now(
        &mut n,
        Message {
            from: 1,
            to: 2,
            term: 1,
            body: MessageBody::InstallSnapshot {
                meta: meta.clone(),
                offset: 8000,
                data: b"end".to_vec(),
                done: true,
            },
        },
    );
    let rd = n.ready();
    assert_eq!(rd.snapshot_chunks.len(), 1);
    assert_eq!(rd.snapshot, Some(meta.clone()));
    assert_eq!(n.incoming_snap, None);
    n.storage_mut().receive_chunk(&rd.snapshot_chunks[0]);
    n.storage_mut().install_received(meta);
    assert_eq!(n.storage().snapshot.data.len(), 8003);
    assert!(n.storage().receiving.is_empty());
}

/// A leader that starts over (offset 0) restarts the host's file; a chunk of another snapshot
/// that does not start at 0 is refused.
#[test]
fn a_snapshot_restarted_at_offset_zero_restarts_the_file() {
    let mut n = node(2, &[1, 2, 3]);
    let meta = |index| SnapshotMeta {
        index,
        term: 1,
        membership: Membership::new([1, 2, 3]),
    };
    install(&mut n, &meta(10), 0, b"abc", false);
    assert_eq!(
        snapshot_reply(&install(&mut n, &meta(12), 3, b"zz", false)),
        Some((0, false, false))
    );
    install(&mut n, &meta(12), 0, b"xy", false);
    assert_eq!(n.incoming_snap, Some((meta(12), 2)));
    install(&mut n, &meta(12), 2, b"z", true);
    assert_eq!(n.storage().snapshot.data, b"xyz");
    assert_eq!(n.storage().snapshot.meta.index, 12);
}

/// A configuration entry overwritten by a new leader is rolled back, including one exactly at
/// the first overwritten index.
#[test]
fn an_overwritten_configuration_entry_is_rolled_back() {
    let mut n = node(2, &[1, 2, 3]);
    let append = |term: Term, prev_index: Index, prev_term: Term, entries: Vec<Entry>| Message {
        from: 1,
        to: 2,
        term,
        body: MessageBody::Append {
            prev_index,
            prev_term,
            entries,
            commit: 0,
        },
    };
    let grown = Membership::new([1, 2, 3, 4]);
    step_now(
        &mut n,
        append(
            1,
            0,
            0,
            vec![
                Entry {
                    term: 1,
                    index: 1,
                    kind: EntryKind::Noop,
                },
                Entry {
                    term: 1,
                    index: 2,
                    kind: EntryKind::Config(grown.clone()),
                },
            ],
        ),
    );
    flush(&mut n);
    assert_eq!(n.membership(), &grown);
    step_now(
        &mut n,
        append(
            2,
            1,
            1,
            vec![Entry {
                term: 2,
                index: 2,
                kind: EntryKind::Noop,
            }],
        ),
    );
    flush(&mut n);
    assert_eq!(n.membership(), &Membership::new([1, 2, 3]));
    assert!(n.configs.is_empty());
}

/// Adding a voter, step by step: a learner first, promoted through C_old,new once caught up
/// (no lag allowed here), then C_new; each step waits for the one before to commit.
#[test]
fn adding_a_voter_goes_learner_joint_new() {
    let cfg = Config {
        catchup_lag: 0,
        ..Config::default()
    };
    let mut n = with_cfg(&[1], cfg);
    n.tick(5000);
    flush(&mut n);
    n.change_membership(set(&[1, 2]), set(&[])).unwrap();
    flush(&mut n);
    let m = n.membership().clone();
    assert_eq!(
        (m.voters, m.outgoing, m.learners),
        (set(&[1]), set(&[]), set(&[2]))
    );
    let now = n.clock();
    n.tick(now + 100);
    flush(&mut n);
    assert_eq!(
        n.membership().learners,
        set(&[2]),
        "not caught up: still a learner"
    );
    ack(&mut n, 2);
    n.tick(now + 200);
    flush(&mut n);
    let m = n.membership().clone();
    assert_eq!(
        (m.voters, m.outgoing, m.learners),
        (set(&[1, 2]), set(&[1]), set(&[])),
        "joint, and 2 is no longer listed as a learner"
    );
    assert!(
        n.status().membership_index > n.status().commit,
        "C_old,new needs 2's copy"
    );
    ack(&mut n, 2);
    flush(&mut n);
    let m = n.membership().clone();
    assert_eq!(
        (m.voters, m.outgoing, m.learners),
        (set(&[1, 2]), set(&[]), set(&[]))
    );
    ack(&mut n, 2);
    flush(&mut n);
    let s = n.status();
    assert_eq!(s.commit, s.membership_index, "C_new committed");
    assert_eq!(n.target, None, "the change is complete");
    n.change_membership(set(&[1]), set(&[])).unwrap();
}

fn appends_to(msgs: &[Message], to: NodeId) -> usize {
    msgs.iter()
        .filter(|m| m.to == to && matches!(m.body, MessageBody::Append { .. }))
        .count()
}

/// An unanswered probe is resent after two heartbeat intervals.
#[test]
fn an_unanswered_probe_is_resent_after_two_heartbeats() {
    let mut n = leader3();
    let t = n.clock();
    ack(&mut n, 3);
    flush(&mut n);
    n.tick(t + 199);
    assert_eq!(appends_to(&flush(&mut n), 2), 0);
    n.tick(t + 200);
    assert_eq!(appends_to(&flush(&mut n), 2), 1, "the probe again");
}

/// Replicated entries nobody acknowledges for an election timeout are sent again from a probe.
#[test]
fn unacknowledged_replication_falls_back_to_a_probe_after_an_election_timeout() {
    let mut n = leader3();
    ack(&mut n, 2);
    ack(&mut n, 3);
    flush(&mut n);
    let t = n.clock();
    n.propose(b"x".to_vec()).unwrap();
    assert_eq!(appends_to(&flush(&mut n), 2), 1, "pipelined at once");
    for step in [100, 500, 900] {
        ack(&mut n, 3);
        n.tick(t + step);
        assert_eq!(appends_to(&flush(&mut n), 2), 0, "{step} ms: still waiting");
    }
    ack(&mut n, 3);
    n.tick(t + 999);
    assert_eq!(appends_to(&flush(&mut n), 2), 0);
    n.tick(t + 1000);
    assert_eq!(appends_to(&flush(&mut n), 2), 1, "resent as a probe");
}

/// Check-quorum runs every election timeout, not only once.
#[test]
fn check_quorum_runs_every_election_timeout() {
    let mut n = leader3();
    let t = n.clock();
    n.tick(t + 900);
    ack(&mut n, 2);
    flush(&mut n);
    n.tick(t + 1000);
    assert_eq!(n.role(), Role::Leader, "2 answered within the timeout");
    n.tick(t + 2000);
    assert_eq!(
        n.role(),
        Role::Follower,
        "nobody answered during the second timeout"
    );
}

/// A new member is probed at once, with an empty append right after the leader's last entry.
#[test]
fn a_new_member_is_probed_at_once() {
    let mut n = single_leader();
    n.change_membership(set(&[1]), set(&[4])).unwrap();
    let out = flush(&mut n);
    let last = n.status().last_index;
    assert!(
        out.iter().any(|m| m.to == 4
            && matches!(&m.body, MessageBody::Append { prev_index, entries, .. }
                if *prev_index == last && entries.is_empty())),
        "{out:?}"
    );
}

/// A replicating follower gets as many appends in one go as its window allows.
#[test]
fn replication_pipelines_several_appends_at_once() {
    let cfg = Config {
        max_append_bytes: 1,
        ..Config::default()
    };
    let mut n = with_cfg(&[1, 2, 3], cfg);
    elect(&mut n, &[2, 3]);
    ack(&mut n, 2);
    ack(&mut n, 3);
    flush(&mut n);
    n.propose_batch(vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()])
        .unwrap();
    assert_eq!(
        appends_to(&flush(&mut n), 2),
        3,
        "one entry per append, all at once"
    );
}

/// Reads that arrived before the term's first commit start once it commits.
#[test]
fn reads_waiting_for_the_terms_first_commit_start_when_it_commits() {
    let mut n = leader3();
    let now = n.clock();
    n.read(b"r".to_vec(), ReadMode::ReadIndex, now).unwrap();
    assert!(
        rounds_sent(&flush(&mut n)).is_empty(),
        "waits for the no-op to commit"
    );
    ack(&mut n, 2);
    let round = *rounds_sent(&flush(&mut n))
        .last()
        .expect("a round for the read");
    heartbeat_ack(&mut n, 2, round);
    assert_eq!(n.ready().read_states.len(), 1);
}

/// A leader that removes itself leads until C_new commits, then steps down.
#[test]
fn a_leader_removed_by_c_new_steps_down_when_it_commits() {
    let mut n = node(1, &[1, 2]);
    elect(&mut n, &[2]);
    ack(&mut n, 2);
    flush(&mut n);
    n.change_membership(set(&[2]), set(&[])).unwrap();
    flush(&mut n);
    assert!(n.membership().is_joint());
    ack(&mut n, 2);
    flush(&mut n);
    assert_eq!(n.membership().voters, set(&[2]), "C_new appended");
    assert_eq!(n.role(), Role::Leader, "C_new not committed yet");
    ack(&mut n, 2);
    flush(&mut n);
    assert_eq!(n.role(), Role::Follower);
}
