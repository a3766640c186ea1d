//! Three `journalkeeper server` processes; concurrent clients append to several partitions while
//! the leader is SIGKILLed and restarted (three rounds), then a follower and then the leader
//! are SIGSTOPped and resumed. Afterwards every acknowledged append is present exactly once at the index it was
//! acknowledged with, identically on every node, and nothing is present that no client sent.

mod support {
    pub mod cluster;
}

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use support::cluster::*;

const WRITERS: u64 = 4;
const PARTITIONS: u16 = 3;

/// What one writer saw: acknowledged (partition, index, payload) and how many it sent.
struct WriterLog {
    acked: Vec<(u16, u64, Vec<u8>)>,
    sent: u64,
    failed: u64,
}

fn payload(writer: u64, seq: u64) -> Vec<u8> {
    format!("w{writer}-s{seq}").into_bytes()
}

fn parse(p: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(p).ok()?;
    let (w, s) = s.strip_prefix('w')?.split_once("-s")?;
    Some((w.parse().ok()?, s.parse().ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_leader_kills_and_paused_nodes_exactly_once() {
    let (mut c, mut leader) = started(3).await;
    let all: Vec<usize> = (0..3).collect();
    let acks = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let client = c.client().await.expect("client connects");
        let (acks, stop) = (acks.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut log = WriterLog {
                acked: Vec::new(),
                sent: 0,
                failed: 0,
            };
            while !stop.load(Ordering::SeqCst) {
                let seq = log.sent;
                let partition = ((w + seq) % PARTITIONS as u64) as u16;
                log.sent += 1;
                match client
                    .journal()
                    .append(
                        partition,
                        vec![payload(w, seq)],
                        ResponseConfig::Replication,
                    )
                    .await
                {
                    Ok(Some(index)) => {
                        log.acked.push((partition, index, payload(w, seq)));
                        acks.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(None) => panic!("REPLICATION append returned no index"),
                    Err(e) if e.kind == ErrorKind::InvalidArgument => {
                        panic!("writer {w}: append refused: {e}")
                    }
                    Err(_) => log.failed += 1,
                }
            }
            client.close();
            log
        }));
    }

    // Three rounds: SIGKILL the leader while the writers run, see progress under the new
    // leader, restart the old one.
    for round in 0..3 {
        wait_count(
            "progress before the kill",
            &acks,
            acks.load(Ordering::SeqCst) + 30,
        )
        .await;
        c.kill(leader).unwrap();
        let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
        let (new_leader, _) = leader_among(&c, &survivors).await;
        assert_ne!(new_leader, leader, "round {round}");
        wait_count(
            "progress after the kill",
            &acks,
            acks.load(Ordering::SeqCst) + 30,
        )
        .await;
        c.start(leader).unwrap();
        leader = leader_among(&c, &all).await.0;
    }
    // A paused follower: the cluster keeps committing; it catches up after SIGCONT.
    let follower = (leader + 1) % 3;
    c.pause(follower).unwrap();
    wait_count(
        "progress with a paused follower",
        &acks,
        acks.load(Ordering::SeqCst) + 50,
    )
    .await;
    c.resume(follower).unwrap();
    wait_count(
        "progress after resuming",
        &acks,
        acks.load(Ordering::SeqCst) + 20,
    )
    .await;
    // A paused leader: deposed while stopped, it must not acknowledge anything stale when it
    // wakes up (the checks below would find a lost or duplicated acknowledgement).
    let old_leader = leader_among(&c, &all).await.0;
    c.pause(old_leader).unwrap();
    let others: Vec<usize> = all.iter().copied().filter(|&i| i != old_leader).collect();
    leader_among(&c, &others).await;
    wait_count(
        "progress with the leader paused",
        &acks,
        acks.load(Ordering::SeqCst) + 30,
    )
    .await;
    c.resume(old_leader).unwrap();
    wait_count(
        "progress after it resumed",
        &acks,
        acks.load(Ordering::SeqCst) + 20,
    )
    .await;

    stop.store(true, Ordering::SeqCst);
    let mut logs_by_writer = Vec::new();
    for w in writers {
        logs_by_writer.push(w.await.unwrap());
    }
    let (leader, status) = leader_among(&c, &all).await;
    let commit = status.commit_index;

    // Every node's copy, read locally (NONE) once it applied the leader's commit index.
    let mut copies: Vec<BTreeMap<u16, Vec<Vec<u8>>>> = Vec::new();
    for i in 0..3 {
        c.wait_for_applied(i, commit, WAIT).await.unwrap();
        let client = c.client_of(i).await.unwrap();
        let mut parts = BTreeMap::new();
        for p in 0..PARTITIONS {
            let es = read_partition(&client, p, QueryConsistency::None).await;
            for (k, e) in es.iter().enumerate() {
                assert_eq!(e.index, k as u64, "node {} partition {p} is dense", i + 1);
            }
            parts.insert(p, es.into_iter().map(|e| e.payload).collect::<Vec<_>>());
        }
        client.close();
        copies.push(parts);
    }
    for i in 1..3 {
        assert!(
            copies[i] == copies[0],
            "node {} differs from node 1 (leader is node {})",
            i + 1,
            leader + 1
        );
    }
    let stored = &copies[0];

    // Acknowledged → present at its index; everything present was sent, once.
    let mut acked_total = 0;
    let mut failed_total = 0;
    for (w, log) in logs_by_writer.iter().enumerate() {
        failed_total += log.failed;
        for (p, index, data) in &log.acked {
            acked_total += 1;
            let got = stored[p].get(*index as usize);
            assert_eq!(
                got,
                Some(data),
                "writer {w}: ack of partition {p} index {index} not found there"
            );
        }
    }
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for (p, entries) in stored {
        for (k, e) in entries.iter().enumerate() {
            total += 1;
            let (w, s) = parse(e).unwrap_or_else(|| panic!("garbage at {p}/{k}: {e:?}"));
            assert!(
                w < WRITERS && s < logs_by_writer[w as usize].sent,
                "{p}/{k}: never sent"
            );
            assert!(seen.insert((w, s)), "{p}/{k}: w{w}-s{s} stored twice");
        }
    }
    assert!(
        acked_total >= 250,
        "too little progress: {acked_total} acks"
    );
    eprintln!(
        "acknowledged {acked_total}, failed {failed_total}, stored {total} entries; \
         commit index {commit}"
    );
}
