//! Table tests of the log's transitions: durability reports (`stable_to`) that arrive late —
//! after their entries were truncated or replaced, while a snapshot is pending, beyond what was
//! handed out — conflicting appends over durable and not-yet-durable entries, and `commit_to`.
//! Every row states the exact resulting bookkeeping.

// The tables spell out their row types inline.
#![allow(clippy::type_complexity)]

use super::*;
use crate::raft::Membership;
use crate::raft::message::{EntryKind, Snapshot};
use crate::raft::storage::MemStorage;

fn e(index: Index, term: Term) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Noop,
    }
}

/// Entries `from..` with the given terms.
fn run(from: Index, terms: &[Term]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(k, t)| e(from + k as Index, *t))
        .collect()
}

fn meta(index: Index, term: Term) -> SnapshotMeta {
    SnapshotMeta {
        index,
        term,
        membership: Membership::new([1]),
    }
}

/// Everything `RaftLog` tracks, as one comparable value.
#[derive(Debug, PartialEq, Eq)]
struct View {
    first: Index,
    last: Index,
    offset: Index,
    sent_upto: Index,
    persisted: Index,
    commit: Index,
    pending_snap: Option<Index>,
    unstable: Vec<(Index, Term)>,
}

fn view(log: &RaftLog<MemStorage>) -> View {
    View {
        first: log.first_index(),
        last: log.last_index(),
        offset: log.offset,
        sent_upto: log.sent_upto,
        persisted: log.persisted,
        commit: log.commit,
        pending_snap: log.pending_snap.as_ref().map(|s| s.index),
        unstable: log.unstable.iter().map(|e| (e.index, e.term)).collect(),
    }
}

/// Hands the unsent part to the "host", which writes it to storage (written, report pending).
fn hand_out(log: &mut RaftLog<MemStorage>) -> Vec<Entry> {
    let (_, ents) = log.take_unsent();
    log.store.append(&ents);
    ents
}

/// A log whose entries with terms `durable` (from index 1) are reported durable, then `sent`
/// handed out (written, report not yet arrived), then `unsent` appended only.
fn log_of(durable: &[Term], sent: &[Term], unsent: &[Term]) -> RaftLog<MemStorage> {
    let mut log = RaftLog::new(MemStorage::new(Membership::new([1])), 0);
    let mut next = 1;
    for (k, part) in [durable, sent, unsent].into_iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        log.append(run(next, part));
        next += part.len() as Index;
        if k < 2 {
            hand_out(&mut log);
        }
        if k == 0 {
            let last = log.last_index();
            log.stable_to(last, log.term(last).unwrap());
        }
    }
    log
}

/// `(first, last, offset, sent_upto, persisted, commit, pending_snap, unstable)`.
fn v(
    (first, last, offset, sent_upto, persisted, commit): (Index, Index, Index, Index, Index, Index),
    pending_snap: Option<Index>,
    unstable: &[(Index, Term)],
) -> View {
    View {
        first,
        last,
        offset,
        sent_upto,
        persisted,
        commit,
        pending_snap,
        unstable: unstable.to_vec(),
    }
}

#[test]
fn builder_states() {
    assert_eq!(
        view(&log_of(&[1, 1], &[1, 2], &[2])),
        v((1, 5, 3, 4, 2, 0), None, &[(3, 1), (4, 2), (5, 2)])
    );
    assert_eq!(
        view(&log_of(&[], &[], &[])),
        v((1, 0, 1, 0, 0, 0), None, &[])
    );
}

#[test]
fn stable_to_table() {
    // (name, durable, sent, unsent, report, expected)
    let rows: Vec<(&str, &[Term], &[Term], &[Term], (Index, Term), View)> = vec![
        (
            "report of everything sent drains the unstable tail",
            &[],
            &[1, 1, 1],
            &[],
            (3, 1),
            v((1, 3, 4, 3, 3, 0), None, &[]),
        ),
        (
            "report of a prefix drains only that prefix",
            &[],
            &[1, 1, 1],
            &[],
            (2, 1),
            v((1, 3, 3, 3, 2, 0), None, &[(3, 1)]),
        ),
        (
            "report at exactly the last sent index counts",
            &[1],
            &[1, 2],
            &[2],
            (3, 2),
            v((1, 4, 4, 3, 3, 0), None, &[(4, 2)]),
        ),
        (
            "report beyond what was handed out is ignored",
            &[1],
            &[1],
            &[1],
            (3, 1),
            v((1, 3, 2, 2, 1, 0), None, &[(2, 1), (3, 1)]),
        ),
        (
            "report beyond the last index is ignored",
            &[1],
            &[1],
            &[],
            (9, 1),
            v((1, 2, 2, 2, 1, 0), None, &[(2, 1)]),
        ),
        (
            "report with another term at that index is ignored",
            &[1],
            &[2, 2],
            &[],
            (3, 1),
            v((1, 3, 2, 3, 1, 0), None, &[(2, 2), (3, 2)]),
        ),
        (
            "late report below the persisted index changes nothing",
            &[1, 1, 1],
            &[1],
            &[],
            (2, 1),
            v((1, 4, 4, 4, 3, 0), None, &[(4, 1)]),
        ),
        (
            "repeated report of the persisted index changes nothing",
            &[1, 1],
            &[],
            &[],
            (2, 1),
            v((1, 2, 3, 2, 2, 0), None, &[]),
        ),
        (
            "report of index 0 (empty log) changes nothing",
            &[],
            &[],
            &[],
            (0, 0),
            v((1, 0, 1, 0, 0, 0), None, &[]),
        ),
    ];
    for (name, durable, sent, unsent, (i, t), want) in rows {
        let mut log = log_of(durable, sent, unsent);
        log.stable_to(i, t);
        assert_eq!(view(&log), want, "{name}");
    }
}

#[test]
fn late_report_after_truncation_and_replacement() {
    // 1..=3 (term 1) handed out; before their report arrives a leader of term 2 replaces 2..
    let mut log = log_of(&[], &[1, 1, 1], &[]);
    assert_eq!(log.append(run(2, &[2])), Some(2));
    assert_eq!(view(&log), v((1, 2, 1, 1, 0, 0), None, &[(1, 1), (2, 2)]));
    // The old batch's report names (3, 1): index 3 is gone.
    log.stable_to(3, 1);
    assert_eq!(view(&log), v((1, 2, 1, 1, 0, 0), None, &[(1, 1), (2, 2)]));
    // A report for (2, 1): index 2 now has term 2.
    log.stable_to(2, 1);
    assert_eq!(view(&log), v((1, 2, 1, 1, 0, 0), None, &[(1, 1), (2, 2)]));
    // The replacement was not handed out yet: its own point is refused until it is.
    log.stable_to(2, 2);
    assert_eq!(view(&log), v((1, 2, 1, 1, 0, 0), None, &[(1, 1), (2, 2)]));
    // (1, 1) survived the truncation: a report for it still counts (it is below `offset`).
    log.stable_to(1, 1);
    assert_eq!(view(&log), v((1, 2, 2, 1, 1, 0), None, &[(2, 2)]));
    assert_eq!(hand_out(&mut log), vec![e(2, 2)]);
    log.stable_to(2, 2);
    assert_eq!(view(&log), v((1, 2, 3, 2, 2, 0), None, &[]));
    assert_eq!(log.store.term(2), Some(2));
}

#[test]
fn late_report_of_durable_entries_below_a_truncation_inside_the_durable_part() {
    // 1..=4 durable; 5 handed out; a leader of term 3 replaces 3.. (below `offset`).
    let mut log = log_of(&[1, 1, 2, 2], &[2], &[]);
    assert_eq!(log.append(run(3, &[3, 3])), Some(3));
    assert_eq!(view(&log), v((1, 4, 3, 2, 2, 0), None, &[(3, 3), (4, 3)]));
    assert_eq!(log.term(2), Some(1), "the kept prefix is read from storage");
    // Late report of the batch holding 5: gone.
    log.stable_to(5, 2);
    assert_eq!(view(&log), v((1, 4, 3, 2, 2, 0), None, &[(3, 3), (4, 3)]));
    assert_eq!(hand_out(&mut log), run(3, &[3, 3]));
    log.stable_to(4, 3);
    assert_eq!(view(&log), v((1, 4, 5, 4, 4, 0), None, &[]));
}

fn snapshot_log(durable: &[Term], sent: &[Term], snap: (Index, Term)) -> RaftLog<MemStorage> {
    let mut log = log_of(durable, sent, &[]);
    log.restore(meta(snap.0, snap.1));
    log
}

/// Hands out the pending snapshot; the host installs it in storage.
fn hand_out_snapshot(log: &mut RaftLog<MemStorage>) {
    let (snap, ents) = log.take_unsent();
    assert!(snap, "a snapshot was pending");
    let m = log.pending_snap.clone().unwrap();
    log.store.install_snapshot(Snapshot {
        meta: m,
        data: Vec::new(),
    });
    log.store.append(&ents);
}

#[test]
fn restore_resets_the_tail_and_waits_for_the_snapshot() {
    let log = snapshot_log(&[1, 1], &[1], (10, 3));
    assert_eq!(view(&log), v((11, 10, 11, 10, 0, 10), Some(10), &[]));
    assert_eq!(log.applied, 10);
    assert_eq!(log.apply_sent, 10);
    assert_eq!(log.term(10), Some(3));
    assert_eq!(
        log.term(2),
        None,
        "entries below a pending snapshot are gone"
    );
    assert!(log.has_unsent());
    // A snapshot at or below the commit index does not lower anything.
    let mut log = log_of(&[1, 1, 1], &[], &[]);
    log.commit_to(3);
    log.applied = 3;
    log.apply_sent = 3;
    log.restore(meta(2, 1));
    assert_eq!((log.commit, log.applied, log.apply_sent), (3, 3, 3));
}

#[test]
fn stable_to_while_a_snapshot_is_pending() {
    // (name, hand the snapshot out first, report, expected)
    let rows: Vec<(&str, bool, (Index, Term), View)> = vec![
        (
            "the snapshot's own point before it was handed out is ignored",
            false,
            (10, 3),
            v((11, 10, 11, 10, 0, 10), Some(10), &[]),
        ),
        (
            "a late report of an entry from before the snapshot is ignored",
            true,
            (3, 1),
            v((11, 10, 11, 10, 0, 10), Some(10), &[]),
        ),
        (
            "a report below the snapshot with the snapshot's term is ignored",
            true,
            (9, 3),
            v((11, 10, 11, 10, 0, 10), Some(10), &[]),
        ),
        (
            "the snapshot's index with another term is ignored",
            true,
            (10, 1),
            v((11, 10, 11, 10, 0, 10), Some(10), &[]),
        ),
        (
            "the snapshot's own point installs it",
            true,
            (10, 3),
            v((11, 10, 11, 10, 10, 10), None, &[]),
        ),
    ];
    for (name, sent, (i, t), want) in rows {
        let mut log = snapshot_log(&[1, 1], &[1], (10, 3));
        if sent {
            hand_out_snapshot(&mut log);
        }
        log.stable_to(i, t);
        assert_eq!(view(&log), want, "{name}");
    }
}

#[test]
fn snapshot_then_entries_in_one_batch_and_a_second_snapshot_before_the_report() {
    let mut log = snapshot_log(&[1], &[1], (10, 3));
    log.append(run(11, &[3, 3]));
    hand_out_snapshot(&mut log);
    assert_eq!(
        view(&log),
        v((11, 12, 11, 12, 0, 10), Some(10), &[(11, 3), (12, 3)])
    );
    // The batch's point is its last entry: it covers the snapshot too.
    let mut a = snapshot_log(&[1], &[1], (10, 3));
    a.append(run(11, &[3, 3]));
    hand_out_snapshot(&mut a);
    a.stable_to(12, 3);
    assert_eq!(view(&a), v((11, 12, 13, 12, 12, 10), None, &[]));
    // A point inside the batch covers the snapshot and a prefix.
    let mut b = snapshot_log(&[1], &[1], (10, 3));
    b.append(run(11, &[3, 3]));
    hand_out_snapshot(&mut b);
    b.stable_to(11, 3);
    assert_eq!(view(&b), v((11, 12, 12, 12, 11, 10), None, &[(12, 3)]));
    // A second snapshot arrives before the first one's report: that report no longer counts.
    log.restore(meta(20, 4));
    log.stable_to(12, 3);
    assert_eq!(view(&log), v((21, 20, 21, 20, 0, 20), Some(20), &[]));
    log.stable_to(10, 3);
    assert_eq!(view(&log), v((21, 20, 21, 20, 0, 20), Some(20), &[]));
    hand_out_snapshot(&mut log);
    log.stable_to(20, 4);
    assert_eq!(view(&log), v((21, 20, 21, 20, 20, 20), None, &[]));
}

#[test]
fn entries_appended_after_an_unsent_snapshot_are_handed_out_with_it() {
    let mut log = snapshot_log(&[1], &[], (5, 2));
    log.append(run(6, &[2]));
    let (snap, ents) = log.take_unsent();
    assert!(snap);
    assert_eq!(ents, vec![e(6, 2)]);
    assert!(!log.has_unsent());
    let (snap, ents) = log.take_unsent();
    assert!(!snap, "a snapshot is handed out once");
    assert!(ents.is_empty());
}

#[test]
fn append_table() {
    // (name, durable, sent, unsent, append (from, terms), returned, expected)
    let rows: Vec<(
        &str,
        &[Term],
        &[Term],
        &[Term],
        (Index, &[Term]),
        Option<Index>,
        View,
    )> = vec![
        (
            "appending after the last index truncates nothing",
            &[1],
            &[1],
            &[],
            (3, &[1, 2]),
            None,
            v((1, 4, 2, 2, 1, 0), None, &[(2, 1), (3, 1), (4, 2)]),
        ),
        (
            "an empty append does nothing",
            &[1],
            &[1],
            &[1],
            (2, &[]),
            None,
            v((1, 3, 2, 2, 1, 0), None, &[(2, 1), (3, 1)]),
        ),
        (
            "a conflict among unsent entries keeps what was handed out",
            &[1],
            &[1, 1],
            &[1, 1],
            (5, &[2]),
            Some(5),
            v((1, 5, 2, 3, 1, 0), None, &[(2, 1), (3, 1), (4, 1), (5, 2)]),
        ),
        (
            "a conflict among handed-out, unreported entries lowers sent_upto",
            &[1],
            &[1, 1, 1],
            &[],
            (3, &[2]),
            Some(3),
            v((1, 3, 2, 2, 1, 0), None, &[(2, 1), (3, 2)]),
        ),
        (
            "a conflict at the first unreported entry empties the tail",
            &[1, 1],
            &[1],
            &[],
            (3, &[2, 2]),
            Some(3),
            v((1, 4, 3, 2, 2, 0), None, &[(3, 2), (4, 2)]),
        ),
        (
            "a conflict inside the durable part lowers persisted and the offset",
            &[1, 1, 1, 1],
            &[1],
            &[1],
            (2, &[2]),
            Some(2),
            v((1, 2, 2, 1, 1, 0), None, &[(2, 2)]),
        ),
        (
            "a conflict right after the durable part keeps persisted",
            &[1, 1],
            &[1, 1],
            &[],
            (3, &[2]),
            Some(3),
            v((1, 3, 3, 2, 2, 0), None, &[(3, 2)]),
        ),
    ];
    for (name, durable, sent, unsent, (from, terms), ret, want) in rows {
        let mut log = log_of(durable, sent, unsent);
        assert_eq!(log.append(run(from, terms)), ret, "{name}: returned");
        assert_eq!(view(&log), want, "{name}");
        // Whatever is left unsent is exactly the tail after sent_upto.
        let unsent_now: Vec<(Index, Term)> = want
            .unstable
            .iter()
            .copied()
            .filter(|(i, _)| *i > want.sent_upto)
            .collect();
        let (_, got) = log.take_unsent();
        let got: Vec<(Index, Term)> = got.iter().map(|e| (e.index, e.term)).collect();
        assert_eq!(got, unsent_now, "{name}: handed out next");
    }
}

#[test]
fn commit_to_table() {
    // (name, commit before, commit_to, returned, commit after); the log holds 1..=5.
    let rows = [
        ("advances", 2, 4, true, 4),
        ("advances by one", 2, 3, true, 3),
        ("to the last index", 2, 5, true, 5),
        ("capped at the last index", 2, 9, true, 5),
        (
            "capped at the last index when already there",
            5,
            9,
            false,
            5,
        ),
        ("never decreases", 4, 3, false, 4),
        ("same index is no change", 4, 4, false, 4),
        ("from zero", 0, 1, true, 1),
        ("zero is no change", 0, 0, false, 0),
    ];
    for (name, before, to, ret, after) in rows {
        let mut log = log_of(&[1, 1], &[1, 1], &[1]);
        if before > 0 {
            assert!(log.commit_to(before));
        }
        assert_eq!(log.commit_to(to), ret, "{name}: returned");
        assert_eq!(log.commit, after, "{name}");
    }
}

#[test]
fn maybe_append_table() {
    // The log holds 1..=4 with terms [1, 1, 2, 2], 1..=2 durable, commit 1.
    // (name, prev (index, term), entries (from, terms), returned, terms after)
    let rows: Vec<(
        &str,
        (Index, Term),
        &[Term],
        Option<(Index, Option<Index>)>,
        Vec<Term>,
    )> = vec![
        ("mismatched prev term", (2, 2), &[2], None, vec![1, 1, 2, 2]),
        ("prev beyond the log", (5, 2), &[2], None, vec![1, 1, 2, 2]),
        (
            "matching entries only",
            (1, 1),
            &[1, 2],
            Some((3, None)),
            vec![1, 1, 2, 2],
        ),
        ("heartbeat", (4, 2), &[], Some((4, None)), vec![1, 1, 2, 2]),
        (
            "extends",
            (4, 2),
            &[2, 3],
            Some((6, None)),
            vec![1, 1, 2, 2, 2, 3],
        ),
        (
            "conflict truncates",
            (2, 1),
            &[2, 3],
            Some((4, Some(4))),
            vec![1, 1, 2, 3],
        ),
        (
            "conflict at prev+1",
            (2, 1),
            &[3],
            Some((3, Some(3))),
            vec![1, 1, 3],
        ),
        (
            "conflict with a committed entry",
            (0, 0),
            &[3],
            None,
            vec![1, 1, 2, 2],
        ),
        (
            "shorter matching run keeps the tail",
            (2, 1),
            &[2],
            Some((3, None)),
            vec![1, 1, 2, 2],
        ),
    ];
    for (name, (pi, pt), terms, ret, after) in rows {
        let mut log = log_of(&[1, 1], &[2, 2], &[]);
        log.commit_to(1);
        assert_eq!(log.maybe_append(pi, pt, run(pi + 1, terms)), ret, "{name}");
        let got: Vec<Term> = (1..=log.last_index())
            .map(|i| log.term(i).unwrap())
            .collect();
        assert_eq!(got, after, "{name}: terms");
    }
}

#[test]
fn entries_table() {
    // 1..=2 durable (in storage), 3..=4 unstable; each entry has the same size.
    let mut log = log_of(&[1, 1], &[2], &[2]);
    let one = e(1, 1).size();
    let idx = |v: Option<Vec<Entry>>| v.map(|v| v.iter().map(|e| e.index).collect::<Vec<_>>());
    assert_eq!(idx(log.entries(1, 5, u64::MAX)), Some(vec![1, 2, 3, 4]));
    assert_eq!(idx(log.entries(1, 9, u64::MAX)), Some(vec![1, 2, 3, 4]));
    assert_eq!(idx(log.entries(3, 5, u64::MAX)), Some(vec![3, 4]));
    assert_eq!(idx(log.entries(2, 3, u64::MAX)), Some(vec![2]));
    assert_eq!(idx(log.entries(3, 3, u64::MAX)), Some(vec![]));
    assert_eq!(idx(log.entries(5, 9, u64::MAX)), Some(vec![]));
    assert_eq!(idx(log.entries(1, 5, 1)), Some(vec![1]), "at least one");
    assert_eq!(
        idx(log.entries(3, 5, 1)),
        Some(vec![3]),
        "at least one (unstable)"
    );
    assert_eq!(idx(log.entries(1, 5, 3 * one)), Some(vec![1, 2, 3]));
    assert_eq!(idx(log.entries(2, 5, 2 * one)), Some(vec![2, 3]));
    assert_eq!(idx(log.entries(3, 5, 2 * one)), Some(vec![3, 4]));
    assert_eq!(idx(log.entries(3, 5, 2 * one - 1)), Some(vec![3]));
    // Compacted: storage starts at 2.
    log.store.compact(meta(1, 1), Vec::new());
    assert_eq!(idx(log.entries(1, 5, u64::MAX)), None);
    assert_eq!(idx(log.entries(2, 5, u64::MAX)), Some(vec![2, 3, 4]));
    assert_eq!(log.first_index(), 2);
    assert_eq!(log.snapshot_index(), 1);
}

/// When storage stops short of the unstable part (its byte cap), the result ends there: a
/// later unstable entry that would still fit must not follow across the gap.
#[test]
fn entries_stop_where_storage_stops() {
    let big = |index| Entry {
        term: 1,
        index,
        kind: EntryKind::Normal(vec![0; 100]),
    };
    let mut store = MemStorage::new(Membership::new([1]));
    store.append(&[big(1), big(2)]);
    let mut log = RaftLog::new(store, 0);
    log.append(vec![e(3, 1)]);
    assert_eq!(log.offset, 3, "3 is the first unstable entry");
    let cap = big(1).size() + e(3, 1).size() + 4; // room for 1 and 3, not for 1 and 2
    let got: Vec<Index> = log
        .entries(1, 4, cap)
        .unwrap()
        .iter()
        .map(|e| e.index)
        .collect();
    assert_eq!(got, vec![1]);
}

#[test]
fn has_unsent_follows_appends_hand_outs_and_snapshots() {
    let mut log = log_of(&[1], &[], &[]);
    assert!(!log.has_unsent(), "everything durable");
    log.append(vec![e(2, 1), e(3, 1)]);
    assert!(log.has_unsent(), "new entries");
    hand_out(&mut log);
    assert!(!log.has_unsent(), "handed out, report pending");
    log.append(vec![e(3, 2)]);
    assert!(log.has_unsent(), "a replacement of a handed-out entry");
    hand_out(&mut log);
    assert!(!log.has_unsent());
    log.restore(meta(9, 3));
    assert!(log.has_unsent(), "a snapshot to install");
    let (snap, ents) = log.take_unsent();
    assert!(snap && ents.is_empty());
    assert!(!log.has_unsent());
}

#[test]
fn take_committed_table() {
    let mut log = log_of(&[1, 1, 1], &[1], &[]);
    assert!(log.take_committed(u64::MAX).is_empty());
    log.commit_to(2);
    assert_eq!(log.take_committed(u64::MAX), run(1, &[1, 1]));
    assert_eq!(log.apply_sent, 2);
    assert!(log.take_committed(u64::MAX).is_empty());
    log.commit_to(4);
    assert_eq!(log.take_committed(1), run(3, &[1]), "bounded, at least one");
    assert_eq!(log.apply_sent, 3);
    assert_eq!(log.take_committed(u64::MAX), run(4, &[1]));
    assert_eq!(log.apply_sent, 4);
}

#[test]
fn up_to_date_and_terms() {
    let log = log_of(&[1, 1], &[2], &[]);
    assert_eq!(log.last_term(), 2);
    assert!(log.is_up_to_date(3, 2));
    assert!(log.is_up_to_date(4, 2));
    assert!(!log.is_up_to_date(2, 2));
    assert!(log.is_up_to_date(1, 3));
    assert!(!log.is_up_to_date(9, 1));
    assert!(log.match_term(3, 2));
    assert!(!log.match_term(3, 1));
    assert!(log.match_term(0, 0));
    assert_eq!(log_of(&[], &[], &[]).last_term(), 0);
}

#[test]
fn new_clamps_commit_and_applied_to_the_durable_log() {
    let mut s = MemStorage::new(Membership::new([1]));
    s.append(&run(1, &[1, 1, 1]));
    s.hard_state.commit = 9;
    let log = RaftLog::new(s.clone(), 7);
    assert_eq!((log.commit, log.applied, log.apply_sent), (3, 3, 3));
    assert_eq!(view(&log), v((1, 3, 4, 3, 3, 3), None, &[]));
    s.hard_state.commit = 2;
    let log = RaftLog::new(s.clone(), 1);
    assert_eq!((log.commit, log.applied, log.apply_sent), (2, 1, 1));
    // A snapshot bounds both from below.
    s.compact(meta(2, 1), Vec::new());
    s.hard_state.commit = 0;
    let log = RaftLog::new(s, 0);
    assert_eq!((log.commit, log.applied), (2, 2));
    assert_eq!(view(&log), v((3, 3, 4, 3, 3, 2), None, &[]));
}

#[test]
fn append_truncates_conflicting_unstable_suffix_and_lowers_persisted() {
    let mut log = RaftLog::new(MemStorage::new(Membership::new([1])), 0);
    log.append(vec![e(1, 1), e(2, 1), e(3, 1)]);
    let (_, sent) = log.take_unsent();
    assert_eq!(sent.len(), 3);
    log.store.append(&sent);
    log.stable_to(3, 1);
    assert_eq!(log.persisted, 3);
    let r = log.maybe_append(1, 1, vec![e(2, 2)]);
    assert_eq!(r, Some((2, Some(2))));
    assert_eq!(log.persisted, 1);
    assert_eq!(log.last_index(), 2);
    assert_eq!(log.term(2), Some(2));
    // A stale durability report for the truncated entry is ignored.
    log.stable_to(3, 1);
    assert_eq!(log.persisted, 1);
    let (_, sent) = log.take_unsent();
    assert_eq!(sent, vec![e(2, 2)]);
}

#[test]
fn maybe_append_rejects_mismatched_prev_and_never_truncates_committed() {
    let mut log = RaftLog::new(MemStorage::new(Membership::new([1])), 0);
    log.append(vec![e(1, 1), e(2, 1)]);
    assert_eq!(log.maybe_append(2, 2, vec![]), None);
    log.commit_to(2);
    assert_eq!(log.maybe_append(1, 1, vec![e(2, 3)]), None);
    assert_eq!(log.term(2), Some(1));
}
