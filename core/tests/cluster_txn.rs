//! Journal transactions on three `journalkeeper server` processes, across a leader kill -9:
//! concurrent transactions over 3 partitions commit or abort while readers at every level
//! check that no partition ever shows part of one. At the end every committed transaction is
//! fully visible, in append order and exactly once; every aborted or abandoned one is absent;
//! one whose outcome the caller never learned (its reply lost in the kill) is all or nothing.

mod support {
    pub mod cluster;
}

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use journalkeeper::api::QueryConsistency;
use journalkeeper::client::Client;
use support::cluster::*;

const PARTITIONS: [u16; 3] = [1, 2, 3];

/// The batches of transaction `tag`: `(partition, entries)`, in append order — 8 entries in
/// all, two batches in one partition so the order within a partition matters.
fn batches(tag: &str) -> Vec<(u16, Vec<Vec<u8>>)> {
    let batch = |p: u16, n: usize, first: usize| {
        (
            p,
            (first..first + n)
                .map(|k| format!("{tag}/{k}").into_bytes())
                .collect(),
        )
    };
    vec![
        batch(1, 3, 0),
        batch(2, 2, 3),
        batch(1, 1, 5),
        batch(3, 2, 6),
    ]
}

/// Payloads per transaction tag, in partition order, as `partition` holds them.
fn by_tag(
    entries: &[journalkeeper::api::JournalEntry],
) -> BTreeMap<String, Vec<(String, u16, u16)>> {
    let mut out: BTreeMap<String, Vec<(String, u16, u16)>> = BTreeMap::new();
    for e in entries {
        let text = String::from_utf8_lossy(&e.payload).to_string();
        if let Some((tag, _)) = text.split_once('/') {
            out.entry(tag.to_string())
                .or_default()
                .push((text.clone(), e.batch_size, e.offset));
        }
    }
    out
}

/// What `partition` must hold of transaction `tag` when it is visible.
fn expected(tag: &str, partition: u16) -> Vec<(String, u16, u16)> {
    batches(tag)
        .into_iter()
        .filter(|(p, _)| *p == partition)
        .flat_map(|(_, b)| {
            let n = b.len() as u16;
            b.into_iter()
                .enumerate()
                .map(move |(k, e)| (String::from_utf8(e).unwrap(), n, k as u16))
        })
        .collect()
}

#[derive(Default)]
struct Outcomes {
    committed: BTreeSet<String>,
    aborted: BTreeSet<String>,
    unknown: BTreeSet<String>,
}

async fn worker(client: Client, me: usize, stop: Arc<AtomicBool>, out: Arc<Mutex<Outcomes>>) {
    let txns = client.transactions();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let tag = format!("w{me}t{n}");
        let tx = match txns.create(BTreeMap::new()).await {
            Ok(tx) => tx,
            Err(_) => continue,
        };
        let mut filled = true;
        for (p, entries) in batches(&tag) {
            filled &= txns.append(tx, p, entries).await.is_ok();
        }
        let commit = n % 3 != 0 && filled;
        let result = if commit {
            txns.commit(tx).await.map(|_| true)
        } else {
            txns.abort(tx).await.map(|_| false)
        };
        let mut o = out.lock().unwrap();
        match result {
            Ok(true) => o.committed.insert(tag),
            Ok(false) => o.aborted.insert(tag),
            Err(_) => o.unknown.insert(tag),
        };
    }
}

/// Reads every partition at `level` until `stop`, checking each transaction is absent or
/// whole in every partition; returns how many full passes it made.
async fn reader(client: Client, level: QueryConsistency, stop: Arc<AtomicBool>) -> u64 {
    let mut passes = 0;
    while !stop.load(Ordering::SeqCst) {
        for p in PARTITIONS {
            let entries = read_partition(&client, p, level).await;
            for (tag, got) in by_tag(&entries) {
                assert_eq!(
                    got,
                    expected(&tag, p),
                    "{level:?} partition {p}, transaction {tag}"
                );
            }
        }
        passes += 1;
    }
    passes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_commit_whole_or_not_at_all_across_a_leader_kill() {
    let (mut c, first_leader) = started(3).await;
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));

    // Abandoned before the kill: created, filled, never completed; it must expire.
    let abandoner = c.client().await.unwrap();
    let abandoned = abandoner
        .transactions()
        .create_with_timeout(BTreeMap::new(), Duration::from_millis(500))
        .await
        .unwrap();
    for (p, entries) in batches("abandoned") {
        abandoner
            .transactions()
            .append(abandoned, p, entries)
            .await
            .unwrap();
    }

    let mut workers = Vec::new();
    for me in 0..4 {
        let client = c.client().await.unwrap();
        workers.push(tokio::spawn(worker(
            client,
            me,
            stop.clone(),
            outcomes.clone(),
        )));
    }
    let mut readers = Vec::new();
    for (i, level) in [
        QueryConsistency::Strict,
        QueryConsistency::Sequential,
        QueryConsistency::None,
    ]
    .into_iter()
    .enumerate()
    {
        let client = c.client_of(i).await.unwrap();
        readers.push(tokio::spawn(reader(client, level, stop.clone())));
    }

    let committed_now = || outcomes.lock().unwrap().committed.len();
    tokio::time::sleep(Duration::from_millis(800)).await;
    c.kill(first_leader).unwrap();
    let others: Vec<usize> = (0..3).filter(|i| *i != first_leader).collect();
    leader_among(&c, &others).await;
    let before_restart = committed_now();
    tokio::time::sleep(Duration::from_millis(800)).await;
    c.start(first_leader).unwrap();
    // Commits continue after the failover.
    let deadline = std::time::Instant::now() + WAIT;
    while committed_now() < before_restart + 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "no commits after the failover\n{}",
            logs(&c)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        tokio::time::timeout(WAIT, w).await.unwrap().unwrap();
    }
    for r in readers {
        let passes = tokio::time::timeout(WAIT, r).await.unwrap().unwrap();
        assert!(passes > 0);
    }

    // The abandoned one expired: gone from the open list, never visible.
    let client = c.client().await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let open = client
            .transactions()
            .opening(QueryConsistency::Strict)
            .await
            .unwrap();
        if open.iter().all(|t| t.tx != abandoned) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned transaction did not expire"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let o = std::mem::take(&mut *outcomes.lock().unwrap());
    eprintln!(
        "transactions: {} committed, {} aborted, {} outcome unknown",
        o.committed.len(),
        o.aborted.len(),
        o.unknown.len()
    );
    assert!(o.committed.len() >= 10, "{} committed", o.committed.len());
    assert!(!o.aborted.is_empty());
    let mut held = Vec::new();
    for p in PARTITIONS {
        held.push(by_tag(
            &read_partition(&client, p, QueryConsistency::Strict).await,
        ));
    }
    let visible: BTreeSet<String> = held.iter().flat_map(|m| m.keys().cloned()).collect();
    // Each visible transaction is whole in every partition: once, in append order, batches
    // intact (every transaction has entries in all three).
    for tag in &visible {
        for (p, part) in PARTITIONS.iter().zip(&held) {
            assert_eq!(
                part.get(tag).cloned().unwrap_or_default(),
                expected(tag, *p),
                "{tag} in partition {p}"
            );
        }
    }
    for tag in &o.committed {
        assert!(visible.contains(tag), "committed {tag} is not visible");
    }
    for tag in o.aborted.iter().chain(["abandoned".to_string()].iter()) {
        assert!(
            !visible.contains(tag),
            "{tag} was not committed but is visible"
        );
    }
    for tag in &visible {
        assert!(
            o.committed.contains(tag) || o.unknown.contains(tag),
            "{tag} visible from nowhere"
        );
    }
}
