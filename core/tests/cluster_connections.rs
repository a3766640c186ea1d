//! Short-lived watching clients leave nothing behind, on three `journalkeeper server`
//! processes: 10 000 rounds of connect → get → open a watch → close it → free the client (no
//! pause between the close and the free, so the client's `Unwatch` usually never leaves it),
//! some rounds freeing the client with the watch still open. Afterwards every node's open
//! client connections, watches, pending requests and sessions in flight (the node status'
//! `resources`) return to their starting values, and the leader's resident memory stays flat;
//! `journalkeeper status` (text and `--json`) shows those counts.

mod support {
    pub mod cluster;
}

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use journalkeeper::cli::local_client_config;
use journalkeeper::client::Client;
use journalkeeper::client::protocol::NodeResources;
use journalkeeper::state::watch::WatchFilter;
use support::cluster::*;

const ROUNDS: usize = 10_000;
/// Rounds run at once (each task runs its share one after the other).
const CONCURRENCY: usize = 8;
/// Rounds run before the memory baseline is taken (allocator and table growth settle).
const WARMUP: usize = 1_000;
/// Most the leader's resident memory may grow over the measured rounds. The leak this guards
/// against held ~800 bytes per round (8 MB over 10 000 rounds).
const MAX_RSS_GROWTH_KIB: u64 = 3 * 1024;

/// Node `addr`'s resource counts, asked over `monitor`'s connection (which counts itself).
async fn resources(monitor: &Client, addr: &str) -> NodeResources {
    let status = monitor.admin().status(addr).await.expect("status");
    status
        .resources
        .expect("a node of this build reports its resources")
}

/// Polls node `addr` (bounded by [`WAIT`]) until `pred` holds; returns the last counts.
async fn wait_resources(
    monitor: &Client,
    addr: &str,
    what: &str,
    pred: impl Fn(&NodeResources) -> bool,
) -> NodeResources {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = resources(monitor, addr).await;
        if pred(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{addr}: {what} not reached within {WAIT:?}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Resident set size of `pid` in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// One short-lived client: connect, get, watch, (close the watch,) free the client.
async fn round(addrs: &[String], cluster_id: u64, n: usize) {
    let client = Client::connect(addrs, local_client_config(cluster_id))
        .await
        .expect("connect");
    client.kv().get("k").await.expect("get");
    let watch = client
        .kv()
        .watch(WatchFilter::Prefix("k".into()), 0)
        .await
        .expect("watch");
    if n % 4 == 3 {
        // Freed mid-watch: the stream outlives the client's connections.
        client.close();
        drop(client);
        drop(watch);
    } else {
        // Closed, then freed at once (as `jk_watch_close` + `jk_client_free`).
        drop(watch);
        client.close();
        drop(client);
    }
}

async fn rounds(addrs: &Arc<Vec<String>>, cluster_id: u64, count: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (addrs, next) = (addrs.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        break;
                    }
                    round(&addrs, cluster_id, n).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("round task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_watching_clients_release_every_connection_and_watch() {
    let (c, leader) = started(3).await;
    // The leader first: the clients connect there and their watches (any node) stay there.
    let mut list = c.addrs();
    list.rotate_left(leader);
    let addrs = Arc::new(list);
    // One long-lived monitor per node: its own connection is the only one expected to stay.
    let mut monitors = Vec::new();
    for i in 0..c.len() {
        monitors.push(c.client_of(i).await.expect("monitor"));
    }
    let settled = |r: &NodeResources| {
        r.client_connections == 1
            && r.watches == 0
            && r.watching_connections == 0
            && r.pending_requests == 0
            && r.sessions_in_flight == 0
    };
    let mut start = Vec::new();
    for (i, m) in monitors.iter().enumerate() {
        // The connections of `started`'s status polls may still be closing.
        start.push(wait_resources(m, &c.addr(i), "a settled start", settled).await);
    }

    rounds(&addrs, c.cluster_id(), WARMUP).await;
    let leader_pid = c.pid(leader).expect("leader pid");
    let before_kib = rss_kib(leader_pid);
    let t = Instant::now();
    rounds(&addrs, c.cluster_id(), ROUNDS).await;
    let elapsed = t.elapsed();
    let during = resources(&monitors[leader], &c.addr(leader)).await;

    for (i, m) in monitors.iter().enumerate() {
        let addr = c.addr(i);
        let s = start[i];
        let end = wait_resources(m, &addr, "the starting counts", |r| {
            r.client_connections == s.client_connections
                && r.watches == s.watches
                && r.watching_connections == s.watching_connections
                && r.pending_requests == s.pending_requests
                && r.sessions_in_flight == s.sessions_in_flight
        })
        .await;
        assert_eq!(end.peer_connections, s.peer_connections, "{addr}");
    }
    let after_kib = rss_kib(leader_pid);
    eprintln!(
        "{ROUNDS} rounds in {elapsed:.2?} ({:.0}/s, {CONCURRENCY} at once); leader RSS \
         {before_kib} -> {after_kib} KiB; leader counts right after the rounds: {during:?}",
        ROUNDS as f64 / elapsed.as_secs_f64(),
    );
    assert!(
        after_kib <= before_kib + MAX_RSS_GROWTH_KIB,
        "leader RSS grew from {before_kib} to {after_kib} KiB over {ROUNDS} rounds"
    );
    // The CLI shows the same counts (its own connection is one more client).
    let cli = |json: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_journalkeeper"));
        cmd.args(["status", "--servers", &c.addr(leader)])
            .args(["--cluster-id", &c.cluster_id().to_string()]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("run journalkeeper status");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let json: serde_json::Value = serde_json::from_str(cli(true).trim()).expect("one JSON line");
    let r = &json["resources"];
    assert_eq!(r["watches"], 0, "{json}");
    assert_eq!(r["watching_connections"], 0, "{json}");
    assert_eq!(r["pending_requests"], 0, "{json}");
    assert_eq!(
        r["peer_connections"], start[leader].peer_connections,
        "{json}"
    );
    assert_eq!(
        r["client_connections"],
        start[leader].client_connections + 1,
        "{json}"
    );
    let text = cli(false);
    assert!(
        text.contains("\twatches 0 (on 0 connections)\tpending 0"),
        "{text}"
    );
    for m in &monitors {
        m.close();
    }
}
