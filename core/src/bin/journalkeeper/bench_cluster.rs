//! `journalkeeper bench cluster`: appends acknowledged at REPLICATION (committed on a majority
//! of fsynced disks) against a 3-node cluster — child processes on loopback started here, or
//! the running cluster given by `--servers`. Each client is one task appending `--batch`
//! records per call (by default each case runs with 1, 4 and 8), sequentially; cases run for
//! a fixed time. The tasks share `--connections` `Client` handles (default 8, like 8 producer
//! processes with several concurrent callers each) round-robin: task n uses handle n % N and
//! partition (n % N) % 8, like one producer per partition, so concurrent appends through one
//! handle can be coalesced into one request. `--connections 0` gives every task its own
//! `Client` (and partition `n % 8`). Before the cases it measures a same-run baseline — raw
//! `write+fdatasync` on the nodes' file system — and every case line carries its p50 and the
//! ratio of the case's p50 to it. Prints one JSON object per case (with `"connections"`
//! and `"append_requests"`, the request frames the clients actually sent), then one with each
//! node's peak RSS (VmHWM) when the nodes are ours.

use std::time::{Duration, Instant};

use journalkeeper::api::ResponseConfig;
use journalkeeper::cli::{LocalCluster, LocalClusterOptions, cpu_time_of, local_client_config};
use journalkeeper::client::Client;
use serde_json::json;

use crate::AnyResult;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// 1 s per case instead of 5 s.
    #[arg(long)]
    quick: bool,
    /// Seconds per case (overrides --quick).
    #[arg(long)]
    seconds: Option<f64>,
    /// Benchmark a running cluster instead of starting one (host:port,…).
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    #[arg(long, default_value_t = 42)]
    cluster_id: u64,
    /// Client counts to run (default 1,16,128).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 128])]
    clients: Vec<usize>,
    /// Record sizes in bytes (default 100,1024).
    #[arg(long, value_delimiter = ',', default_values_t = [100usize, 1024])]
    sizes: Vec<usize>,
    /// Records per append call (one batch per call; default 1,4,8: each case runs once per value).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 4, 8])]
    batch: Vec<usize>,
    /// Share this many `Client` handles among the client tasks (default 8; 0: one per task).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Client `append_max_in_flight_per_partition` (default: the client's default).
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// Turn the client's append coalescing off.
    #[arg(long)]
    no_coalescing: bool,
}

pub async fn run(args: Args) -> AnyResult<()> {
    let budget =
        Duration::from_secs_f64(args.seconds.unwrap_or(if args.quick { 1.0 } else { 5.0 }));
    let mut cluster = None;
    let (addrs, cluster_id) = if args.servers.is_empty() {
        let opts = LocalClusterOptions {
            // A loaded 2-core machine: no spurious elections under benchmark load.
            election_timeout_ms: 1000,
            heartbeat_interval_ms: 100,
            tick_ms: 10,
            rust_log: "warn".into(),
            ..LocalClusterOptions::default()
        };
        let mut c = LocalCluster::create(std::env::current_exe()?, opts)?;
        c.start_all()?;
        let all: Vec<usize> = (0..c.len()).collect();
        c.wait_for_leader(&all, Duration::from_secs(20)).await?;
        let r = (c.addrs(), c.cluster_id());
        cluster = Some(c);
        r
    } else {
        (args.servers.clone(), args.cluster_id)
    };
    // Same-run baseline: this machine's raw `write+fdatasync` on the nodes' file system.
    let base_dir = cluster
        .as_ref()
        .map_or_else(std::env::temp_dir, |c| c.root().to_path_buf());
    let base_budget = budget.min(Duration::from_secs(2));
    let baseline =
        tokio::task::spawn_blocking(move || fdatasync_baseline(&base_dir, base_budget)).await??;
    println!("{}", baseline.json);
    let result = cases(
        &args,
        &addrs,
        cluster_id,
        budget,
        cluster.as_ref(),
        &baseline,
    )
    .await;
    if let Some(c) = &cluster {
        let rss: Vec<_> = (0..c.len())
            .map(|i| {
                json!({
                    "node": i + 1,
                    "peak_rss_mib": c.peak_rss_kib(i).map(|k| (k as f64 / 1024.0 * 10.0).round() / 10.0),
                })
            })
            .collect();
        println!("{}", json!({"bench": "cluster.rss", "nodes": rss}));
    }
    if let Some(mut c) = cluster {
        c.kill_all();
    }
    result
}

async fn cases(
    args: &Args,
    addrs: &[String],
    cluster_id: u64,
    budget: Duration,
    cluster: Option<&LocalCluster>,
    baseline: &Baseline,
) -> AnyResult<()> {
    for &size in &args.sizes {
        for &batch in &args.batch {
            for &clients in &args.clients {
                let shape = Shape {
                    size,
                    clients,
                    batch: batch.max(1),
                    connections: args.connections,
                    max_in_flight: args.max_in_flight,
                    coalescing: !args.no_coalescing,
                };
                let mut line = case(addrs, cluster_id, shape, budget, cluster).await?;
                let p50 = line["p50_ms"].as_f64().unwrap_or(0.0);
                line["baseline_fdatasync_p50_ms"] = json!(baseline.p50_ms);
                line["p50_over_baseline"] =
                    json!((p50 / baseline.p50_ms.max(0.001) * 10.0).round() / 10.0);
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// The raw durability cost of this machine, measured in the same run.
pub(crate) struct Baseline {
    pub p50_ms: f64,
    pub json: serde_json::Value,
}

/// One thread writing 100-byte records to a fresh file in `dir`, each followed by
/// `fdatasync`, for `budget`: the latency floor under every acknowledged append (a REPLICATION
/// ack waits for at least two of these, on two nodes, in parallel at best).
pub(crate) fn fdatasync_baseline(
    dir: &std::path::Path,
    budget: Duration,
) -> std::io::Result<Baseline> {
    use std::os::unix::fs::FileExt;
    let path = dir.join(format!("bench-baseline-{}", std::process::id()));
    let file = std::fs::File::create(&path)?;
    let record = [0x5au8; 100];
    let mut lat_us = Vec::new();
    let start = Instant::now();
    let mut offset = 0u64;
    while start.elapsed() < budget {
        let t = Instant::now();
        file.write_all_at(&record, offset)?;
        file.sync_data()?;
        lat_us.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
        offset += record.len() as u64;
    }
    drop(file);
    std::fs::remove_file(&path)?;
    let elapsed = start.elapsed().as_secs_f64();
    lat_us.sort_unstable();
    let p50_ms = percentile_ms(&lat_us, 0.50);
    let json = json!({
        "bench": "cluster.baseline",
        "what": "write+fdatasync of one 100-byte record, one thread, same file system as the nodes",
        "ops_per_s": (lat_us.len() as f64 / elapsed).round(),
        "p50_ms": p50_ms,
        "p99_ms": percentile_ms(&lat_us, 0.99),
        "p999_ms": percentile_ms(&lat_us, 0.999),
    });
    Ok(Baseline { p50_ms, json })
}

pub(crate) fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 * q).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    (sorted_us[i] as f64 / 100.0).round() / 10.0
}

/// One case: record size, concurrent clients, records per append call.
struct Shape {
    size: usize,
    clients: usize,
    batch: usize,
    /// Shared `Client` handles; 0 = one per task.
    connections: usize,
    max_in_flight: Option<usize>,
    coalescing: bool,
}

async fn case(
    addrs: &[String],
    cluster_id: u64,
    shape: Shape,
    budget: Duration,
    cluster: Option<&LocalCluster>,
) -> AnyResult<serde_json::Value> {
    let Shape {
        size,
        clients,
        batch,
        connections,
        max_in_flight,
        coalescing,
    } = shape;
    let mut config = local_client_config(cluster_id);
    config.append_coalescing = coalescing;
    if let Some(m) = max_in_flight {
        config.append_max_in_flight_per_partition = m;
    }
    let handles = if connections == 0 {
        clients
    } else {
        connections.min(clients)
    };
    let mut conns = Vec::new();
    for _ in 0..handles {
        let c = Client::connect(addrs, config.clone()).await?;
        // Find the leader before the clock starts.
        c.sync().await?;
        conns.push(c);
    }
    let node_cpu = || -> Option<Duration> {
        let c = cluster?;
        (0..c.len()).map(|i| c.cpu_time(i)).sum()
    };
    let own_cpu = || cpu_time_of(std::process::id());
    let load = std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| {
        l.split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
    });
    let (node_cpu0, own_cpu0) = (node_cpu(), own_cpu());
    let start = Instant::now();
    let deadline = start + budget;
    let mut tasks = Vec::new();
    for n in 0..clients {
        let client = conns[n % handles].clone();
        tasks.push(tokio::spawn(async move {
            let partition = ((n % handles) % 8) as u16;
            let mut lat_us = Vec::new();
            let mut errors = 0u64;
            let mut seq = 0u64;
            while Instant::now() < deadline {
                let mut payloads = Vec::with_capacity(batch);
                for _ in 0..batch {
                    let mut payload = vec![0x5a; size];
                    let tag = seq.to_le_bytes();
                    let k = tag.len().min(size);
                    payload[..k].copy_from_slice(&tag[..k]);
                    seq += 1;
                    payloads.push(payload);
                }
                let t = Instant::now();
                match client
                    .journal()
                    .append(partition, payloads, ResponseConfig::Replication)
                    .await
                {
                    Ok(_) => lat_us.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
                    Err(_) => errors += 1,
                }
            }
            (lat_us, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let append_requests: u64 = conns.iter().map(Client::append_requests_sent).sum();
    for c in &conns {
        c.close();
    }
    let secs = |a: Option<Duration>, b: Option<Duration>| {
        a.zip(b)
            .map(|(a, b)| (a.saturating_sub(b).as_secs_f64() * 100.0).round() / 100.0)
    };
    let nodes_cpu_s = secs(node_cpu(), node_cpu0);
    let client_cpu_s = secs(own_cpu(), own_cpu0);
    all.sort_unstable();
    // `all` holds one latency per append call; each call carries `batch` records.
    let n_records = all.len() * batch;
    let records = n_records.max(1) as f64;
    Ok(json!({
        "bench": "cluster.append",
        "ack": "REPLICATION",
        "nodes": addrs.len(),
        "payload_bytes": size,
        "clients": clients,
        "seconds": (elapsed * 100.0).round() / 100.0,
        "batch": batch,
        "connections": handles,
        "append_requests": append_requests,
        "coalescing": coalescing,
        "append_max_in_flight": config.append_max_in_flight_per_partition,
        "calls": all.len(),
        "records": n_records,
        "errors": errors,
        "records_per_s": (n_records as f64 / elapsed).round(),
        "mb_per_s": ((n_records * size) as f64 / elapsed / 1e6 * 100.0).round() / 100.0,
        "p50_ms": percentile_ms(&all, 0.50),
        "p99_ms": percentile_ms(&all, 0.99),
        "p999_ms": percentile_ms(&all, 0.999),
        "max_ms": percentile_ms(&all, 1.0),
        "nodes_cpu_s": nodes_cpu_s,
        "nodes_cpu_us_per_record": nodes_cpu_s.map(|c| (c * 1e6 / records).round()),
        "bench_process_cpu_s": client_cpu_s,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "load_avg_1m_before": load,
    }))
}
