//! `journalkeeper bench coord`: the coordination recipes and journal transactions on a 3-node
//! cluster of child processes, each case next to etcd's equivalent when an `etcd` binary is on
//! `PATH` (a 3-member etcd on the same loopback and file system, see `bench_etcd.rs`):
//! - `coord.lock`: `--contenders` tasks (default 16), each with its own client and lease,
//!   acquire and release one lock in a loop — pairs/s and the latency of a pair (its wait for
//!   the others included). etcd: `/v3/lock/lock` + `/v3/lock/unlock` with a lease each.
//! - `coord.ids`: the same number of tasks take ranges of 100 IDs — ranges/s. etcd has no ID
//!   range call: a compare-and-swap transaction on a counter key, retried on conflict.
//! - `txn.commit`: tasks create a transaction, append 8 entries to each of 3 partitions (one
//!   batch each) and commit it — commits/s, latency of the whole. etcd: one `/v3/kv/txn` of 24
//!   puts (etcd's transactions are single requests, ours are sessions).
//!
//! Before the cases: the same-run `write+fdatasync` baseline (`bench cluster`'s). One JSON
//! object per line; each etcd line carries `"ours_over_etcd"`, our rate over etcd's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use journalkeeper::cli::{LocalCluster, LocalClusterOptions};
use journalkeeper::client::Client;
use serde_json::{Value, json};

use crate::AnyResult;
use crate::bench_cluster::{fdatasync_baseline, percentile_ms};
use crate::bench_etcd::{self, Conn, b64};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// 2 s per case instead of 5 s.
    #[arg(long)]
    quick: bool,
    /// Seconds per case (overrides --quick).
    #[arg(long)]
    seconds: Option<f64>,
    /// Concurrent tasks per case.
    #[arg(long, default_value_t = 16)]
    contenders: usize,
    /// Skip etcd even when it is installed.
    #[arg(long)]
    no_etcd: bool,
}

type Task = tokio::task::JoinHandle<Result<Vec<u32>, String>>;

/// Runs `op` in a loop until `budget` has passed; the latency of each call in µs.
async fn timed<F, Fut>(budget: Duration, mut op: F) -> Result<Vec<u32>, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    let mut lat = Vec::new();
    while start.elapsed() < budget {
        let t = Instant::now();
        op().await?;
        lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
    Ok(lat)
}

/// Collects the tasks' latencies into one line: ops/s, p50, p99.
async fn line(bench: &str, system: &str, unit: &str, tasks: Vec<Task>) -> AnyResult<Value> {
    let start = Instant::now();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?.map_err(|e| format!("{bench} on {system}: {e}"))?);
    }
    let elapsed = start.elapsed().as_secs_f64().max(0.001);
    lat.sort_unstable();
    Ok(json!({
        "bench": bench,
        "system": system,
        "tasks": 0,
        format!("{unit}_per_s"): (lat.len() as f64 / elapsed).round(),
        "p50_ms": percentile_ms(&lat, 0.50),
        "p99_ms": percentile_ms(&lat, 0.99),
        "ops": lat.len(),
    }))
}

fn e(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub async fn run(args: Args) -> AnyResult<()> {
    let budget =
        Duration::from_secs_f64(args.seconds.unwrap_or(if args.quick { 2.0 } else { 5.0 }));
    let opts = LocalClusterOptions {
        election_timeout_ms: 1000,
        heartbeat_interval_ms: 100,
        tick_ms: 10,
        rust_log: "warn".into(),
        ..LocalClusterOptions::default()
    };
    let mut cluster = LocalCluster::create(std::env::current_exe()?, opts)?;
    cluster.start_all()?;
    let all: Vec<usize> = (0..cluster.len()).collect();
    cluster
        .wait_for_leader(&all, Duration::from_secs(20))
        .await?;
    let root = cluster.root().to_path_buf();
    let base_dir = root.clone();
    let baseline =
        tokio::task::spawn_blocking(move || fdatasync_baseline(&base_dir, Duration::from_secs(2)))
            .await??;
    println!("{}", baseline.json);

    let n = args.contenders.max(1);
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(Arc::new(cluster.client().await?));
    }
    let ours = vec![
        lock_ours(&clients, budget).await?,
        ids_ours(&clients, budget).await?,
        txn_ours(&clients, budget).await?,
    ];
    let theirs = if !args.no_etcd && bench_etcd::available() {
        let etcd = bench_etcd::start(&root).await?;
        let lines = vec![
            lock_etcd(&etcd, n, budget).await?,
            ids_etcd(&etcd, n, budget).await?,
            txn_etcd(&etcd, n, budget).await?,
        ];
        Some(lines)
    } else {
        println!(
            "{}",
            json!({"bench": "coord.etcd", "skipped": "no etcd binary on PATH (apt-get install etcd-server) or --no-etcd"})
        );
        None
    };
    for (i, mut line) in ours.into_iter().enumerate() {
        line["tasks"] = json!(n);
        line["baseline_fdatasync_p50_ms"] = json!(baseline.p50_ms);
        println!("{line}");
        if let Some(theirs) = &theirs {
            let mut t = theirs[i].clone();
            t["tasks"] = json!(n);
            let rate = |v: &Value| {
                v.as_object()
                    .and_then(|o| o.iter().find(|(k, _)| k.ends_with("_per_s")))
                    .and_then(|(_, v)| v.as_f64())
                    .unwrap_or(0.0)
            };
            let ratio = rate(&line) / rate(&t).max(0.001);
            t["ours_over_etcd"] = json!((ratio * 100.0).round() / 100.0);
            println!("{t}");
        }
    }
    for c in clients {
        c.close();
    }
    cluster.kill_all();
    Ok(())
}

async fn lock_ours(clients: &[Arc<Client>], budget: Duration) -> AnyResult<Value> {
    let mut tasks: Vec<Task> = Vec::new();
    for c in clients {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let coord = c.coord();
            let lease = coord.grant(Duration::from_secs(60)).await.map_err(e)?;
            let lat = timed(budget, || async {
                coord.lock("bench", lease).await.map_err(e)?;
                coord.unlock("bench", lease).await.map_err(e)?;
                Ok(())
            })
            .await;
            let _ = coord.revoke(lease).await;
            lat
        }));
    }
    line("coord.lock", "journalkeeper", "pairs", tasks).await
}

async fn ids_ours(clients: &[Arc<Client>], budget: Duration) -> AnyResult<Value> {
    let mut tasks: Vec<Task> = Vec::new();
    for c in clients {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            timed(budget, || async {
                c.coord()
                    .next_ids("bench", 100)
                    .await
                    .map(|_| ())
                    .map_err(e)
            })
            .await
        }));
    }
    line("coord.ids", "journalkeeper", "ranges", tasks).await
}

fn txn_entries(task: usize, n: u64, p: u16) -> Vec<Vec<u8>> {
    (0..8)
        .map(|k| format!("t{task}/{n}/p{p}/{k}").into_bytes())
        .collect()
}

async fn txn_ours(clients: &[Arc<Client>], budget: Duration) -> AnyResult<Value> {
    let mut tasks: Vec<Task> = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            timed(budget, || {
                n += 1;
                let c = c.clone();
                async move {
                    let txns = c.transactions();
                    let tx = txns.create(BTreeMap::new()).await.map_err(e)?;
                    for p in 0..3 {
                        txns.append(tx, p, txn_entries(i, n, p)).await.map_err(e)?;
                    }
                    txns.commit(tx).await.map_err(e)
                }
            })
            .await
        }));
    }
    line("txn.commit", "journalkeeper", "commits", tasks).await
}

async fn conns(etcd: &bench_etcd::Etcd, n: usize) -> AnyResult<Vec<Conn>> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(Conn::connect(etcd.clients[i % etcd.clients.len()]).await?);
    }
    Ok(out)
}

async fn lock_etcd(etcd: &bench_etcd::Etcd, n: usize, budget: Duration) -> AnyResult<Value> {
    let mut tasks: Vec<Task> = Vec::new();
    for mut conn in conns(etcd, n).await? {
        tasks.push(tokio::spawn(async move {
            let grant = conn
                .call("/v3/lease/grant", &json!({"TTL": 60}))
                .await
                .map_err(e)?;
            let lease = grant["ID"].clone();
            let name = b64(b"bench-lock");
            let conn = tokio::sync::Mutex::new(conn);
            timed(budget, || async {
                let mut c = conn.lock().await;
                let held = c
                    .call("/v3/lock/lock", &json!({"name": name, "lease": lease}))
                    .await
                    .map_err(e)?;
                c.call("/v3/lock/unlock", &json!({"key": held["key"]}))
                    .await
                    .map_err(e)?;
                Ok(())
            })
            .await
        }));
    }
    line("coord.lock", "etcd", "pairs", tasks).await
}

async fn ids_etcd(etcd: &bench_etcd::Etcd, n: usize, budget: Duration) -> AnyResult<Value> {
    let key = b64(b"bench-seq");
    let mut tasks: Vec<Task> = Vec::new();
    for conn in conns(etcd, n).await? {
        let key = key.clone();
        let conn = tokio::sync::Mutex::new(conn);
        tasks.push(tokio::spawn(async move {
            timed(budget, || async {
                let mut c = conn.lock().await;
                loop {
                    let got = c
                        .call("/v3/kv/range", &json!({"key": key}))
                        .await
                        .map_err(e)?;
                    let kv = &got["kvs"][0];
                    let rev = kv["mod_revision"].as_str().unwrap_or("0").to_string();
                    let next: u64 = kv["value"]
                        .as_str()
                        .map(|v| v.len() as u64)
                        .unwrap_or(0)
                        + 100;
                    // The value's length stands for the counter (any encoding works for a
                    // CAS race; what is measured is the compare-and-swap round trip).
                    let value = b64(&vec![b'x'; (next % 1000) as usize]);
                    let cas = json!({
                        "compare": [{"key": key, "target": "MOD", "result": "EQUAL", "mod_revision": rev}],
                        "success": [{"request_put": {"key": key, "value": value}}],
                    });
                    let r = c.call("/v3/kv/txn", &cas).await.map_err(e)?;
                    if r["succeeded"].as_bool() == Some(true) {
                        return Ok(());
                    }
                }
            })
            .await
        }));
    }
    line("coord.ids", "etcd", "ranges", tasks).await
}

async fn txn_etcd(etcd: &bench_etcd::Etcd, n: usize, budget: Duration) -> AnyResult<Value> {
    let mut tasks: Vec<Task> = Vec::new();
    for (i, conn) in conns(etcd, n).await?.into_iter().enumerate() {
        let conn = tokio::sync::Mutex::new(conn);
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            timed(budget, || {
                n += 1;
                let conn = &conn;
                async move {
                    let puts: Vec<Value> = (0..3)
                        .flat_map(|p| {
                            txn_entries(i, n, p)
                                .into_iter()
                                .enumerate()
                                .map(move |(k, v)| (p, k, v))
                        })
                        .map(|(p, k, v)| {
                            let key = format!("txn/{i}/{n}/{p}/{k}");
                            json!({"request_put": {"key": b64(key.as_bytes()), "value": b64(&v)}})
                        })
                        .collect();
                    conn.lock()
                        .await
                        .call("/v3/kv/txn", &json!({"success": puts}))
                        .await
                        .map(|_| ())
                        .map_err(e)
                }
            })
            .await
        }));
    }
    line("txn.commit", "etcd", "commits", tasks).await
}
