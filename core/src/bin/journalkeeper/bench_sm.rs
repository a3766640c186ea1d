//! `journalkeeper bench sm`: concurrent updates of a user state machine acknowledged at
//! REPLICATION (each one applied on a majority, its result returned) against a running cluster
//! (`--servers`) for a fixed time; prints one JSON object with updates/s and latency
//! percentiles, after checking the machine counted every acknowledged update (`add 1` per
//! update; the final STRICT query must equal the value before plus the updates acknowledged).
//!
//! `journalkeeper bench sm-host`: the Rust side of `make bench-machines` — one embedded node per
//! TOML file, each hosting the counter machine below as "counter"; prints `ready` once node 1
//! knows a leader and serves until its stdin closes. The C, Python and Node hosts
//! (tests/cross_language/) host the same counter from the same files.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use journalkeeper::api::{ErrorKind, QueryConsistency};
use journalkeeper::cli::local_client_config;
use journalkeeper::client::Client;
use journalkeeper::server::{Server, ServerConfig};
use journalkeeper::state::{ApplyContext, StateError, StateMachine, io_error};
use serde_json::json;

use crate::AnyResult;
use crate::bench_cluster::percentile_ms;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The running cluster (host:port,…).
    #[arg(long, value_delimiter = ',', required = true)]
    servers: Vec<String>,
    #[arg(long, default_value_t = 42)]
    cluster_id: u64,
    /// The hosted machine: a counter (`add N` → the new value in decimal; any query → the value).
    #[arg(long, default_value = "counter")]
    name: String,
    /// Concurrent callers, each one update at a time.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// `Client` handles the callers share round-robin.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// A label for the JSON line (the language the machine is written in).
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(clap::Args, Debug)]
pub struct HostArgs {
    /// One TOML configuration per node of the cluster, started in this process.
    #[arg(required = true)]
    configs: Vec<PathBuf>,
}

/// The benchmark's trivial machine: one signed 64-bit value.
#[derive(Default)]
struct Counter {
    value: i64,
}

fn decimal(what: &str, bytes: &[u8]) -> Result<i64, StateError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StateError::Rejected(format!("{what}: not a decimal number")))
}

impl StateMachine for Counter {
    fn apply(&mut self, _ctx: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError> {
        let n = command
            .strip_prefix(b"add ")
            .ok_or_else(|| StateError::Rejected("unknown command".into()))?;
        self.value += decimal("add", n)?;
        Ok(self.value.to_string().into_bytes())
    }

    fn query(&self, _query: &[u8]) -> Result<Vec<u8>, StateError> {
        Ok(self.value.to_string().into_bytes())
    }

    fn snapshot(&self, out: &mut dyn Write) -> Result<(), StateError> {
        out.write_all(self.value.to_string().as_bytes())
            .map_err(|e| io_error("counter snapshot", &e))
    }

    fn restore(&mut self, input: &mut dyn Read) -> Result<(), StateError> {
        let mut text = Vec::new();
        input
            .read_to_end(&mut text)
            .map_err(|e| io_error("counter snapshot", &e))?;
        self.value = decimal("counter snapshot", &text).map_err(|_| StateError::Codec {
            what: "counter snapshot".into(),
            reason: "not a decimal number".into(),
        })?;
        Ok(())
    }
}

pub async fn host(args: HostArgs) -> AnyResult<()> {
    let mut servers = Vec::new();
    for path in &args.configs {
        let config = ServerConfig::from_toml_file(path)?;
        servers.push(
            Server::builder(config)
                .state_machine("counter", Counter::default())
                .start()
                .await?,
        );
    }
    servers[0]
        .wait_for(Duration::from_secs(60), |s| s.leader.is_some())
        .await?;
    println!("ready");
    std::io::stdout().flush()?;
    // Serve until the driver closes our stdin (or dies).
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
        .await??;
    for s in servers {
        s.shutdown().await;
    }
    Ok(())
}

pub async fn run(args: Args) -> AnyResult<()> {
    let budget = Duration::from_secs_f64(args.seconds);
    let config = local_client_config(args.cluster_id);
    let handles = args.connections.clamp(1, args.clients.max(1));
    let mut conns = Vec::new();
    for _ in 0..handles {
        let c = Client::connect(&args.servers, config.clone()).await?;
        // Find the leader before the clock starts.
        c.sync().await?;
        conns.push(c);
    }
    let name = args.name.clone();
    let query = |c: Client, name: String| async move {
        let v = c
            .state_machine(&name)
            .query(Vec::new(), QueryConsistency::Strict)
            .await?;
        decimal("query", &v).map_err(|e| Box::<dyn std::error::Error>::from(e.to_string()))
    };
    let before = query(conns[0].clone(), name.clone()).await?;
    let start = Instant::now();
    let deadline = start + budget;
    let mut tasks = Vec::new();
    for n in 0..args.clients {
        let client = conns[n % handles].clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            let sm = client.state_machine(&name);
            let mut lat_us = Vec::new();
            let (mut errors, mut rejected) = (0u64, 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                match sm.update(b"add 1".to_vec()).await {
                    Ok(_) => lat_us.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
                    Err(e) if e.kind == ErrorKind::Rejected => rejected += 1,
                    Err(_) => errors += 1,
                }
            }
            (lat_us, errors, rejected)
        }));
    }
    let mut all = Vec::new();
    let (mut errors, mut rejected) = (0, 0);
    for t in tasks {
        let (l, e, r) = t.await?;
        all.extend(l);
        errors += e;
        rejected += r;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = query(conns[0].clone(), name).await?;
    for c in &conns {
        c.close();
    }
    all.sort_unstable();
    // Each acknowledged update added 1; a failed one may or may not have applied.
    let counted = after - before;
    let acknowledged = all.len() as i64;
    if counted < acknowledged || counted > acknowledged + errors as i64 {
        return Err(format!(
            "the counter went from {before} to {after}, but {acknowledged} updates were acknowledged \
             ({errors} failed)"
        )
        .into());
    }
    println!(
        "{}",
        json!({
            "bench": "sm.update",
            "label": args.label,
            "machine": args.name,
            "ack": "REPLICATION",
            "nodes": args.servers.len(),
            "clients": args.clients,
            "connections": handles,
            "seconds": (elapsed * 100.0).round() / 100.0,
            "updates": all.len(),
            "errors": errors,
            "rejected": rejected,
            "updates_per_s": (all.len() as f64 / elapsed).round(),
            "p50_ms": percentile_ms(&all, 0.50),
            "p99_ms": percentile_ms(&all, 0.99),
            "max_ms": percentile_ms(&all, 1.0),
            "counter_after": after,
        })
    );
    Ok(())
}
