//! A process-cluster harness for the multi-process tests: [`LocalCluster`] running the real
//! `journalkeeper` binary of this build (children are SIGKILLed when it drops, also on panic),
//! plus polling helpers and whole-partition reads.
#![allow(dead_code)] // each cluster_*.rs test uses a different part

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use journalkeeper::api::{ErrorKind, JournalEntry, QueryConsistency};
pub use journalkeeper::cli::{LocalCluster, LocalClusterOptions};
use journalkeeper::client::Client;

/// Upper bound for any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// A stopped cluster of `n` nodes of this build's binary, with short timeouts. Node logs go to
/// `node<i>.log` in its directory at `RUST_LOG=$JK_NODE_LOG` (default `info`).
pub fn cluster(n: usize) -> LocalCluster {
    let opts = LocalClusterOptions {
        nodes: n,
        rust_log: std::env::var("JK_NODE_LOG").unwrap_or_else(|_| "info".into()),
        ..LocalClusterOptions::default()
    };
    LocalCluster::create(env!("CARGO_BIN_EXE_journalkeeper"), opts).expect("cluster directory")
}

/// A started cluster with an agreed leader; returns it and the leader's position.
pub async fn started(n: usize) -> (LocalCluster, usize) {
    let mut c = cluster(n);
    c.start_all().expect("spawn nodes");
    let all: Vec<usize> = (0..n).collect();
    let (leader, _) = leader_among(&c, &all).await;
    (c, leader)
}

/// Waits for an agreed leader among `among`; panics with the nodes' log tails otherwise.
pub async fn leader_among(
    c: &LocalCluster,
    among: &[usize],
) -> (usize, journalkeeper::client::protocol::NodeStatus) {
    match c.wait_for_leader(among, WAIT).await {
        Ok(r) => r,
        Err(e) => panic!("{e}\n{}", logs(c)),
    }
}

/// The last lines of every node's log.
pub fn logs(c: &LocalCluster) -> String {
    (0..c.len())
        .map(|i| format!("--- node {} ---\n{}", i + 1, c.log_tail(i, 30)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Polls until `counter` reaches `target`; panics after [`WAIT`].
pub async fn wait_count(what: &str, counter: &AtomicU64, target: u64) {
    let deadline = Instant::now() + WAIT;
    while counter.load(Ordering::SeqCst) < target {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {} < {target}",
            counter.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every entry of `partition` on the node(s) `client` reads from, with `consistency`.
pub async fn read_partition(
    client: &Client,
    partition: u16,
    consistency: QueryConsistency,
) -> Vec<JournalEntry> {
    let mut out: Vec<JournalEntry> = Vec::new();
    loop {
        let from = out.last().map_or(0, |e| e.index + 1);
        match client
            .journal()
            .get(partition, from, 4096, consistency)
            .await
        {
            Ok(es) if es.is_empty() => return out,
            Ok(es) => out.extend(es),
            Err(e) if e.kind == ErrorKind::IndexOverflow => return out,
            Err(e) => panic!("reading partition {partition} from {from}: {e}"),
        }
    }
}
