//! Snapshots streamed in small chunks: a lagging follower receives a multi-chunk snapshot,
//! assembled on disk (a staging file of its snapshot store), installs it and reads everything
//! back; one stopped mid-transfer keeps no half snapshot and completes the transfer on restart.

mod server_support;

use std::path::Path;

use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::client::protocol::{ReadAt, ReplyBody, RequestBody};
use journalkeeper::state::kv::{KvCommand, KvQuery, KvQueryResult, KvRequest};
use server_support::*;

const CHUNK: usize = 4096;
const VALUE: usize = 100_000;
const KEYS: usize = 60;

async fn kv_set(t: &mut TestClient, key: &str, value: &[u8]) {
    let (r, _) = t
        .call(RequestBody::KvWrite {
            request: KvRequest {
                id: None,
                command: KvCommand::Set {
                    key: key.into(),
                    value: value.to_vec(),
                },
            },
            response: ResponseConfig::Replication,
        })
        .await;
    assert!(r.is_ok(), "{r:?}");
}

async fn kv_get(t: &mut TestClient, key: &str, min_applied: u64) -> (Option<Vec<u8>>, u64) {
    let (r, applied) = t
        .call(RequestBody::KvRead {
            query: KvQuery::Get { key: key.into() },
            read: ReadAt {
                consistency: QueryConsistency::Sequential,
                min_applied,
            },
        })
        .await;
    match r {
        Ok(ReplyBody::KvRead(KvQueryResult::Value(v))) => (v, applied),
        Err(e) if e.kind == ErrorKind::IndexOverflow => (None, applied),
        other => panic!("{other:?}"),
    }
}

fn value(k: usize) -> Vec<u8> {
    (0..VALUE).map(|i| (i + k) as u8).collect()
}

/// Files of a node's snapshot store: (complete snapshot dirs, files of incoming snapshots).
fn snapshot_files(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut done = Vec::new();
    let mut staging = Vec::new();
    for e in std::fs::read_dir(dir.join("snapshots"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("staging-") && name.ends_with(".recv") {
            staging.push(name);
        } else if name.bytes().all(|b| b.is_ascii_digit()) {
            done.push(name);
        }
    }
    (done, staging)
}

/// A 3-node cluster with one follower stopped while the others write ~6 MB of KV state and
/// compact past it: it can only catch up through a snapshot of ~1500 chunks. Returns
/// (cluster, the stopped follower, the leader's commit index).
async fn lagging_cluster() -> (Cluster, usize, u64) {
    init_tracing();
    let mut c = Cluster::start_tweaked(3, 50, |cfg| {
        cfg.max_segment_bytes = 5 << 20;
        cfg.snapshot_chunk_bytes = CHUNK;
    })
    .await;
    let l = c.leader().await;
    let lag = (l + 1) % 3;
    c.stop_node(lag).await;
    let mut t = c.client(l).await;
    for k in 0..KEYS {
        kv_set(&mut t, &format!("k{k}"), &value(k)).await;
    }
    for k in 0..60 {
        kv_set(&mut t, &format!("small{k}"), b"x").await;
    }
    let leader = c.servers[l].as_ref().unwrap();
    let s = wait_until!("the leader compacted its log", {
        let s = leader.status();
        (s.first_index > 6).then_some(s)
    });
    (c, lag, s.commit_index)
}

async fn reads_everything_back(c: &Cluster, node: usize, commit: u64) {
    let mut f = c.client(node).await;
    wait_until!("the follower caught up through a snapshot", {
        let (_, applied) = kv_get(&mut f, "k0", commit).await;
        (applied >= commit).then_some(())
    });
    for k in 0..KEYS {
        let (v, _) = kv_get(&mut f, &format!("k{k}"), commit).await;
        assert_eq!(v, Some(value(k)), "k{k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_chunk_snapshot_is_assembled_on_disk_and_installed() {
    let (mut c, lag, commit) = lagging_cluster().await;
    c.start_node(lag).await;
    reads_everything_back(&c, lag, commit).await;
    let (done, staging) = snapshot_files(&c.config(lag).data_dir);
    assert!(
        !done.is_empty(),
        "the follower holds the installed snapshot"
    );
    assert!(staging.is_empty(), "no staging file left: {staging:?}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_stopped_mid_transfer_completes_it_after_restart() {
    let (mut c, lag, commit) = lagging_cluster().await;
    let dir = c.config(lag).data_dir;
    let (before, _) = snapshot_files(&dir);
    c.start_node(lag).await;
    // Stop it while the snapshot is half received: as soon as its staging file appears (the
    // ~1500 chunks, one round trip each, take far longer than stopping the node).
    wait_until!("the transfer started", {
        let (_, staging) = snapshot_files(&dir);
        (!staging.is_empty()).then_some(())
    });
    c.stop_node(lag).await;
    let (after, staging) = snapshot_files(&dir);
    assert_eq!(
        after, before,
        "no half snapshot was taken for a complete one"
    );
    assert!(!staging.is_empty(), "stopped mid-transfer");
    c.start_node(lag).await;
    reads_everything_back(&c, lag, commit).await;
    let (done, staging) = snapshot_files(&dir);
    assert!(done.len() > before.len(), "installed after the restart");
    assert!(staging.is_empty(), "{staging:?}");
    c.shutdown().await;
}
