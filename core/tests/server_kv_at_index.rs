//! KV reads at an index (the two-step read's second step) on an embedded cluster with an
//! observer: a seeded run of KV writes, compare-and-sets, removals, keys under a lease and a
//! rollback to a snapshot is replayed on a model in the test; at the leader's applied index after each operation, every
//! node's `get_at` / `list_at` must return exactly the model's state after that operation —
//! reaching back past the newest snapshot to the oldest retained one (`retain_history`), and
//! again after every node restarted from disk. Beyond the applied index is `IndexOverflow`,
//! before the history `IndexUnderflow`.

mod server_support;

use std::collections::BTreeMap;
use std::time::Duration;

use journalkeeper::api::{Error, ErrorKind, ResponseConfig};
use journalkeeper::client::Client;
use journalkeeper::server::{Server, ServerConfig};
use server_support::{Cluster, client_of, eventually, free_addr};

type Model = BTreeMap<String, Vec<u8>>;

const SNAPSHOT_INTERVAL: u64 = 40;

/// Compaction frees whole segments only: small ones, which the journal filler fills.
fn small_segments(cfg: &mut ServerConfig) {
    cfg.max_segment_bytes = 5 << 20;
}

fn with_history(cfg: &mut ServerConfig) {
    small_segments(cfg);
    cfg.retain_history = true;
    cfg.snapshots_retained = 5;
}

/// A small deterministic generator, so a failure names its operation.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Runs `ops` seeded operations through `c`, applying each to `model`; returns the leader's
/// applied index after each one with the model's state then.
async fn run_ops(c: &Client, model: &mut Model, ops: usize, seed: u64) -> Vec<(u64, Model)> {
    let mut rng = Lcg(seed);
    let kv = c.kv();
    let mut lease: Option<(u64, Vec<String>)> = None;
    let mut out = Vec::with_capacity(ops);
    for op in 0..ops {
        let key = format!("k{:02}", rng.next(24));
        let value = format!("v{op}").into_bytes();
        match rng.next(10) {
            0..=4 => {
                kv.set(&key, value.clone()).await.unwrap();
                model.insert(key, value);
            }
            5 => {
                kv.remove(&key).await.unwrap();
                model.remove(&key);
            }
            6 => {
                let expect = model.get(&key).cloned();
                let r = kv
                    .compare_and_set(&key, expect, Some(value.clone()))
                    .await
                    .unwrap();
                assert!(r.swapped, "operation {op}: CAS on {key} with its own value");
                model.insert(key, value);
            }
            7 => {
                // A CAS that must fail leaves the state as it is.
                let r = kv
                    .compare_and_set(&key, Some(b"never".to_vec()), Some(value))
                    .await
                    .unwrap();
                assert!(!r.swapped);
            }
            8 => {
                // Keys under a lease: written by the recipes, removed with the lease.
                let (id, keys) = match lease.take() {
                    Some(l) => l,
                    None => (
                        c.coord().grant(Duration::from_secs(120)).await.unwrap(),
                        Vec::new(),
                    ),
                };
                let leased = format!("lease{}", rng.next(100));
                c.coord().put(&leased, value.clone(), id).await.unwrap();
                model.insert(leased.clone(), value);
                let mut keys = keys;
                keys.push(leased);
                lease = Some((id, keys));
            }
            _ => {
                if let Some((id, keys)) = lease.take() {
                    assert!(c.coord().revoke(id).await.unwrap());
                    for k in keys {
                        model.remove(&k);
                    }
                }
            }
        }
        if op % 8 == 7 {
            // A journal entry between the KV writes: replays skip it, and it fills segments.
            c.journal()
                .append(
                    0,
                    vec![vec![op as u8; 600_000]],
                    ResponseConfig::Replication,
                )
                .await
                .unwrap();
        }
        out.push((c.sync().await.unwrap(), model.clone()));
    }
    out
}

/// The state at `index` as one node (and, when it lacks it, the leader) serves it.
async fn read_at(c: &Client, index: u64) -> Result<Model, Error> {
    let listed: Model = c.kv().list_at("", index).await?.into_iter().collect();
    // A single key read agrees with the listing.
    if let Some((k, v)) = listed.iter().next() {
        assert_eq!(c.kv().get_at(k, index).await?, Some(v.clone()));
    }
    assert_eq!(c.kv().get_at("absent-key", index).await?, None);
    Ok(listed)
}

/// Checks every recorded state on the node `c` talks to, newest first; returns the oldest
/// index of the unbroken run served from the newest on. (Older than that, a retained
/// snapshot's own index may still be served without the log after it.)
async fn check_history(who: &str, c: &Client, history: &[(u64, Model)]) -> u64 {
    let mut reach = None;
    let mut underflowed = false;
    for (index, expected) in history.iter().rev() {
        match read_at(c, *index).await {
            Ok(state) => {
                assert_eq!(&state, expected, "{who}: the state at index {index}");
                if !underflowed {
                    reach = Some(*index);
                }
            }
            Err(e) if e.kind == ErrorKind::IndexUnderflow => underflowed = true,
            Err(e) => panic!("{who}: read at {index}: {e}"),
        }
    }
    reach.unwrap_or_else(|| panic!("{who}: the newest index was not served"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_at_an_index_return_exactly_the_state_there_on_every_node_and_after_restart() {
    let mut c = Cluster::start_tweaked(3, SNAPSHOT_INTERVAL, with_history).await;
    let voters = c.addrs.clone();
    let obs_addr = free_addr();
    let mut obs_cfg = c.observer_config(4, obs_addr, voters.clone());
    with_history(&mut obs_cfg);
    let observer = Server::start(obs_cfg.clone()).await.unwrap();

    let writer = client_of(&voters).await;
    let mut model = Model::new();
    let mut history = run_ops(&writer, &mut model, 240, 7).await;
    // A rollback to a snapshot is a log entry too: replays go through it.
    let snapshot = writer.admin().take_snapshot().await.unwrap();
    let at_snapshot = model.clone();
    history.extend(run_ops(&writer, &mut model, 20, 8).await);
    writer.admin().recover_snapshot(snapshot).await.unwrap();
    model = at_snapshot;
    history.push((writer.sync().await.unwrap(), model.clone()));
    history.extend(run_ops(&writer, &mut model, 60, 9).await);
    let last = history.last().unwrap().0;
    eventually(
        "the observer applied every operation",
        Duration::from_secs(30),
        || async { (observer.status().applied_index >= last).then_some(()) },
    )
    .await;

    let mut readers: Vec<(String, Client)> = Vec::new();
    for (i, a) in voters.iter().enumerate() {
        readers.push((format!("voter {}", i + 1), client_of(&[*a]).await));
    }
    readers.push(("observer".into(), client_of(&[obs_addr]).await));
    for (who, r) in &readers {
        let oldest = check_history(who, r, &history).await;
        // The history reaches back past the newest snapshots, to the oldest retained one.
        assert!(
            oldest + 3 * SNAPSHOT_INTERVAL <= last,
            "{who}: only indices from {oldest} on (of {last}) were served"
        );
        // Past the end: nobody has applied it.
        let e = r.kv().get_at("k01", last + 10_000).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::IndexOverflow, "{who}: {e}");
    }
    // The oldest operations are behind the retained history.
    let e = readers[0]
        .1
        .kv()
        .list_at("", history[0].0)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::IndexUnderflow, "{e}");
    for (_, r) in readers.drain(..) {
        r.close();
    }
    writer.close();

    // Every node restarts from its snapshots and log: the same answers.
    observer.shutdown().await;
    for i in 0..3 {
        c.stop_node(i).await;
    }
    for i in 0..3 {
        c.start_node(i).await;
    }
    let observer = Server::start(obs_cfg).await.unwrap();
    let r = client_of(&[obs_addr]).await;
    let oldest = check_history("observer after restart", &r, &history).await;
    assert!(oldest + 3 * SNAPSHOT_INTERVAL <= last);
    let r1 = client_of(&[voters[0]]).await;
    check_history("voter 1 after restart", &r1, &history).await;
    r.close();
    r1.close();
    observer.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_retained_history_reads_reach_back_to_the_newest_snapshot() {
    let c = Cluster::start_tweaked(3, SNAPSHOT_INTERVAL, small_segments).await;
    let writer = client_of(&c.addrs).await;
    let mut model = Model::new();
    let history = run_ops(&writer, &mut model, 200, 11).await;
    let leader = c.leader().await;
    let r = client_of(&[c.addrs[leader]]).await;
    let oldest = check_history("leader", &r, &history).await;
    // Every index since the newest snapshot is served; the oldest ones were compacted away.
    let addr = c.addrs[leader].to_string();
    let snapshots = writer.admin().node_snapshots(&addr).await.unwrap();
    let newest = snapshots.iter().map(|s| s.index).max().unwrap();
    assert!(
        oldest <= newest,
        "served from {oldest}, newest snapshot {newest}"
    );
    let e = r.kv().get_at("k01", history[0].0).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::IndexUnderflow, "{e}");
    r.close();
    writer.close();
    c.shutdown().await;
}

/// A client that knows only an observer stuck behind (its one parent is gone) still reads at
/// the cluster's applied index: the observer answers `IndexOverflow`, the client finds the
/// leader through a leader-only read and asks it. Past the leader's applied index the answer
/// stays `IndexOverflow`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_of_a_lagging_observer_reads_at_an_index_from_the_leader() {
    let c = Cluster::start_tweaked(3, SNAPSHOT_INTERVAL, with_history).await;
    let (parent_addr, child_addr) = (free_addr(), free_addr());
    let parent = Server::start(c.observer_config(4, parent_addr, c.addrs.clone()))
        .await
        .unwrap();
    let child = Server::start(c.observer_config(5, child_addr, vec![parent_addr]))
        .await
        .unwrap();
    let writer = client_of(&c.addrs).await;
    writer.kv().set("k", b"old".to_vec()).await.unwrap();
    let before = writer.sync().await.unwrap();
    eventually(
        "the child observer applied the write",
        Duration::from_secs(30),
        || async { (child.status().applied_index >= before).then_some(()) },
    )
    .await;
    parent.shutdown().await;
    writer.kv().set("k", b"new".to_vec()).await.unwrap();
    let after = writer.sync().await.unwrap();
    let stuck = child.status().applied_index;
    assert!(stuck < after, "the child cannot pull without its parent");

    let reader = client_of(&[child_addr]).await;
    assert_eq!(
        reader.kv().get_at("k", before).await.unwrap(),
        Some(b"old".to_vec())
    );
    assert_eq!(
        reader.kv().get_at("k", after).await.unwrap(),
        Some(b"new".to_vec())
    );
    assert_eq!(
        reader.kv().list_at("", after).await.unwrap(),
        vec![("k".to_string(), b"new".to_vec())]
    );
    let e = reader.kv().get_at("k", after + 10_000).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::IndexOverflow, "{e}");
    assert!(
        child.status().applied_index < after,
        "still stuck: the leader answered"
    );
    reader.close();
    writer.close();
    child.shutdown().await;
    c.shutdown().await;
}
