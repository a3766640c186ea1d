//! `journalkeeper bench observers`: the voters' write throughput with 0 and with 4 observers
//! attached in two levels, in the same run (0 observers before and after, their mean is the
//! baseline), and each observer's lag behind the leader in entries and milliseconds (p50 / p99).
//! Prints one JSON object.

use std::time::Duration;

use journalkeeper::cli::observer_bench;
use journalkeeper::cli::{LocalCluster, LocalClusterOptions};
use journalkeeper::client::ClientConfig;
use serde_json::json;

use crate::AnyResult;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds per phase (three phases).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Concurrent writers (REPLICATION appends, one entry each).
    #[arg(long, default_value_t = 32)]
    writers: usize,
    /// Bytes per entry.
    #[arg(long, default_value_t = 256)]
    payload: usize,
    /// Run the observers at this CPU priority (`renice`, 0..=19): with fewer cores than
    /// processes it shows the voters' throughput when observers take only the CPU left over.
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..=19))]
    observer_nice: Option<i32>,
}

fn quantile<T: Copy + Ord>(v: &mut [T], q: f64) -> Option<T> {
    if v.is_empty() {
        return None;
    }
    v.sort();
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    Some(v[i])
}

pub async fn run(args: Args) -> AnyResult<()> {
    let opts = LocalClusterOptions {
        rust_log: "warn".into(),
        ..LocalClusterOptions::server_defaults()
    };
    let client = ClientConfig::new(opts.cluster_id);
    let mut cluster = LocalCluster::create(std::env::current_exe()?, opts)?;
    cluster.start_all()?;
    let phase = Duration::from_secs_f64(args.seconds.max(0.5));
    let report = observer_bench::measure(
        &mut cluster,
        args.writers,
        args.payload,
        phase,
        client,
        args.observer_nice,
    )
    .await;
    cluster.kill_all();
    let r = report?;
    let baseline = (r.without_before + r.without_after) / 2.0;
    let observers: Vec<_> = r
        .lags
        .into_iter()
        .map(|mut l| {
            let mut ms: Vec<u64> = l.times.iter().map(|d| d.as_micros() as u64).collect();
            json!({
                "node": l.node + 1,
                "level": l.level,
                "lag_entries_p50": quantile(&mut l.entries, 0.5),
                "lag_entries_p99": quantile(&mut l.entries, 0.99),
                "lag_ms_p50": quantile(&mut ms, 0.5).map(|us| us as f64 / 1000.0),
                "lag_ms_p99": quantile(&mut ms, 0.99).map(|us| us as f64 / 1000.0),
                "samples": l.entries.len(),
            })
        })
        .collect();
    let line = json!({
        "bench": "observers",
        "writers": args.writers,
        "payload_bytes": args.payload,
        "seconds_per_phase": phase.as_secs_f64(),
        "writes_per_s_0_observers_before": r.without_before.round(),
        "writes_per_s_4_observers": r.with_observers.round(),
        "writes_per_s_0_observers_after": r.without_after.round(),
        "ratio_4_to_0": ((r.with_observers / baseline) * 1000.0).round() / 1000.0,
        "voter_cpu_us_per_write_0_before": r.voter_cpu_us_per_write[0],
        "voter_cpu_us_per_write_4": r.voter_cpu_us_per_write[1],
        "voter_cpu_us_per_write_0_after": r.voter_cpu_us_per_write[2],
        "observer_cpu_us_per_write": r.observer_cpu_us_per_write,
        "observer_nice": args.observer_nice.unwrap_or(0),
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "observers": observers,
    });
    println!("{line}");
    Ok(())
}
