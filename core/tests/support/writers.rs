//! Concurrent writers for the multi-process tests, and the check that follows them: every
//! acknowledged append is present exactly once at the index it was acknowledged with,
//! identically on every node named, and nothing is present that no writer sent.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::client::Client;

use super::cluster::{LocalCluster, WAIT, read_partition};

/// What one writer saw: acknowledged (partition, index, payload) and how many it sent.
pub struct WriterLog {
    pub acked: Vec<(u16, u64, Vec<u8>)>,
    pub sent: u64,
    pub failed: u64,
}

fn payload(writer: u64, seq: u64) -> Vec<u8> {
    format!("w{writer}-s{seq}").into_bytes()
}

fn parse(p: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(p).ok()?;
    let (w, s) = s.strip_prefix('w')?.split_once("-s")?;
    Some((w.parse().ok()?, s.parse().ok()?))
}

/// Writers appending at REPLICATION to `partitions` partitions until stopped.
pub struct Writers {
    pub acks: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<WriterLog>>,
    pub partitions: u16,
}

impl Writers {
    /// Starts `n` writers, each with its own client of `c` (knowing every node's address now).
    pub async fn start(c: &LocalCluster, n: u64, partitions: u16) -> Writers {
        let acks = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for w in 0..n {
            let client = c.client().await.expect("client connects");
            tasks.push(tokio::spawn(write_until_stopped(
                client,
                w,
                partitions,
                acks.clone(),
                stop.clone(),
            )));
        }
        Writers {
            acks,
            stop,
            tasks,
            partitions,
        }
    }

    pub fn acked(&self) -> u64 {
        self.acks.load(Ordering::SeqCst)
    }

    /// Waits for `more` acknowledgements after the ones counted so far.
    pub async fn progress(&self, what: &str, more: u64) {
        super::cluster::wait_count(what, &self.acks, self.acked() + more).await;
    }

    pub async fn stop(self) -> Vec<WriterLog> {
        self.stop.store(true, Ordering::SeqCst);
        let mut logs = Vec::new();
        for t in self.tasks {
            logs.push(t.await.expect("writer task"));
        }
        logs
    }
}

async fn write_until_stopped(
    client: Client,
    w: u64,
    partitions: u16,
    acks: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> WriterLog {
    let mut log = WriterLog {
        acked: Vec::new(),
        sent: 0,
        failed: 0,
    };
    while !stop.load(Ordering::SeqCst) {
        let seq = log.sent;
        let partition = ((w + seq) % u64::from(partitions)) as u16;
        log.sent += 1;
        let r = client
            .journal()
            .append(
                partition,
                vec![payload(w, seq)],
                ResponseConfig::Replication,
            )
            .await;
        match r {
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
}

/// Reads every partition from each of `nodes` once it applied `commit` and checks the copies
/// are identical and hold every acknowledged append exactly once; returns the entries stored.
pub async fn check_copies(
    c: &LocalCluster,
    nodes: &[usize],
    commit: u64,
    partitions: u16,
    logs: &[WriterLog],
) -> usize {
    let mut copies: Vec<BTreeMap<u16, Vec<Vec<u8>>>> = Vec::new();
    for &i in nodes {
        c.wait_for_applied(i, commit, WAIT).await.unwrap();
        let client = c.client_of(i).await.unwrap();
        let mut parts = BTreeMap::new();
        for p in 0..partitions {
            let es = read_partition(&client, p, QueryConsistency::None).await;
            for (k, e) in es.iter().enumerate() {
                assert_eq!(e.index, k as u64, "node {} partition {p} is dense", i + 1);
            }
            parts.insert(p, es.into_iter().map(|e| e.payload).collect::<Vec<_>>());
        }
        client.close();
        copies.push(parts);
    }
    for (k, copy) in copies.iter().enumerate().skip(1) {
        assert!(
            *copy == copies[0],
            "node {} differs from node {}",
            nodes[k] + 1,
            nodes[0] + 1
        );
    }
    let stored = &copies[0];
    for (w, log) in logs.iter().enumerate() {
        for (p, index, data) in &log.acked {
            assert_eq!(
                stored[p].get(*index as usize),
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
                (w as usize) < logs.len() && s < logs[w as usize].sent,
                "{p}/{k}: never sent"
            );
            assert!(seen.insert((w, s)), "{p}/{k}: w{w}-s{s} stored twice");
        }
    }
    total
}
