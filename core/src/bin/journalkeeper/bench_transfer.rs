//! `journalkeeper bench transfer`: how long writes pause while leadership is handed over, on a
//! 3-node cluster of child processes with the default node timeouts. One writer appends
//! continuously; each round transfers leadership to the next node (`--transfers`, default 10).
//!
//! Prints one JSON object: min/median/p90/max of the longest gap between acknowledged appends
//! during a transfer, of the same in an equally long window just before it (the same-run
//! baseline), and of the transfer's own duration, with every sample.

use journalkeeper::cli::failover;
use journalkeeper::cli::transfer;
use journalkeeper::cli::{LocalCluster, LocalClusterOptions};
use journalkeeper::client::ClientConfig;
use serde_json::json;

use crate::AnyResult;
use crate::bench_json::{add_summary, ms_list};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Leader transfers.
    #[arg(long, default_value_t = 10)]
    transfers: usize,
}

pub async fn run(args: Args) -> AnyResult<()> {
    let opts = LocalClusterOptions::server_defaults();
    let client = ClientConfig::new(opts.cluster_id);
    let mut cluster = LocalCluster::create(std::env::current_exe()?, opts.clone())?;
    cluster.start_all()?;
    let report = transfer::transfer_gaps(&cluster, args.transfers, client).await;
    cluster.kill_all();
    let report = report?;
    let gaps: Vec<_> = report.samples.iter().map(|s| s.gap).collect();
    let base: Vec<_> = report.samples.iter().map(|s| s.baseline_gap).collect();
    let took: Vec<_> = report.samples.iter().map(|s| s.took).collect();
    let mut line = json!({"bench": "transfer", "transfers": gaps.len()});
    add_summary(&mut line, "gap_", failover::summary_ms(&gaps));
    add_summary(&mut line, "baseline_gap_", failover::summary_ms(&base));
    add_summary(&mut line, "transfer_", failover::summary_ms(&took));
    line["gap_samples_ms"] = json!(ms_list(&gaps));
    line["appends_acked"] = json!(report.acked);
    line["append_errors"] = json!(report.write_errors);
    line["settings"] = json!({
        "election_timeout_ms": opts.election_timeout_ms,
        "heartbeat_interval_ms": opts.heartbeat_interval_ms,
    });
    println!("{line}");
    Ok(())
}
