//! `journalkeeper bench failover`: how long writes stop when the leader dies, and what a node
//! that is SIGSTOPped first in a client's server list costs, on a 3-node cluster of child
//! processes on loopback with the *default* node timeouts (`ServerConfig::new`) and the
//! default `ClientConfig` (override the timeouts with `--election-timeout-ms` /
//! `--heartbeat-interval-ms`).
//!
//! - `failover.kill`: one writer appends continuously (REPLICATION, one record per call); each
//!   round SIGKILLs the leader, measures the time from the signal to the next acknowledged
//!   append, restarts the node and waits until it has caught up (`--kills`, default 20).
//! - `failover.pause_first`: SIGSTOPs a follower, puts it first in the server list of a fresh
//!   client and measures `Client::connect`, its first SEQUENTIAL read, and connect + first
//!   append of a second fresh client (`--pause-rounds`, default 5).
//!
//! Prints one JSON object per case: min/median/p90/max in ms, every sample, and the settings.

use journalkeeper::cli::failover;
use journalkeeper::cli::{LocalCluster, LocalClusterOptions};
use journalkeeper::client::ClientConfig;
use serde_json::{Value, json};

use crate::AnyResult;
use crate::bench_json::{add_summary, ms_list};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Leader kills (the `failover.kill` case; 0 skips it).
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Rounds of the `failover.pause_first` case (0 skips it).
    #[arg(long, default_value_t = 5)]
    pause_rounds: usize,
    /// Node election timeout (default: the server's default).
    #[arg(long)]
    election_timeout_ms: Option<u64>,
    /// Node heartbeat interval (default: the server's default).
    #[arg(long)]
    heartbeat_interval_ms: Option<u64>,
}

pub async fn run(args: Args) -> AnyResult<()> {
    let mut opts = LocalClusterOptions::server_defaults();
    if let Some(t) = args.election_timeout_ms {
        opts.election_timeout_ms = t;
    }
    if let Some(h) = args.heartbeat_interval_ms {
        opts.heartbeat_interval_ms = h;
    }
    let client = ClientConfig::new(opts.cluster_id);
    let settings = settings(&opts, &client);
    let mut cluster = LocalCluster::create(std::env::current_exe()?, opts)?;
    cluster.start_all()?;
    if args.kills > 0 {
        let report = failover::kill_gaps(&mut cluster, args.kills, client.clone()).await?;
        let gaps: Vec<_> = report.samples.iter().map(|s| s.gap).collect();
        let mut line = json!({"bench": "failover.kill", "kills": gaps.len()});
        add_summary(&mut line, "", failover::summary_ms(&gaps));
        line["samples_ms"] = json!(ms_list(&gaps));
        line["appends_acked"] = json!(report.acked);
        line["append_errors"] = json!(report.write_errors);
        line["last_append_error"] = json!(report.last_error);
        line["settings"] = settings.clone();
        println!("{line}");
    }
    if args.pause_rounds > 0 {
        let samples = failover::paused_first(&mut cluster, args.pause_rounds, client).await?;
        let connect: Vec<_> = samples.iter().map(|s| s.connect).collect();
        let read: Vec<_> = samples.iter().map(|s| s.first_read).collect();
        let total: Vec<_> = samples.iter().map(|s| s.connect + s.first_read).collect();
        let write: Vec<_> = samples.iter().map(|s| s.connect_and_first_write).collect();
        let mut line = json!({"bench": "failover.pause_first", "rounds": samples.len()});
        add_summary(&mut line, "connect_", failover::summary_ms(&connect));
        add_summary(&mut line, "first_read_", failover::summary_ms(&read));
        add_summary(
            &mut line,
            "connect_and_first_read_",
            failover::summary_ms(&total),
        );
        add_summary(
            &mut line,
            "connect_and_first_write_",
            failover::summary_ms(&write),
        );
        line["settings"] = settings;
        println!("{line}");
    }
    cluster.kill_all();
    Ok(())
}

fn settings(opts: &LocalClusterOptions, client: &ClientConfig) -> Value {
    let raft = failover::node_raft_config(opts);
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    json!({
        "election_timeout_ms": raft.election_timeout,
        "election_timeout_range_ms": [raft.election_timeout, 2 * raft.election_timeout],
        "heartbeat_interval_ms": raft.heartbeat_interval,
        "tick_ms": opts.tick_ms,
        "max_clock_drift_ms": raft.max_clock_drift,
        "lease_ms": raft.election_timeout - raft.max_clock_drift,
        "pre_vote": raft.pre_vote,
        "check_quorum": raft.check_quorum,
        "lease_reads": raft.lease_reads,
        "client_request_timeout_ms": ms(client.request_timeout),
        "client_attempt_timeout_ms": ms(client.attempt_timeout),
        "client_backoff_initial_ms": ms(client.backoff_initial),
        "client_backoff_max_ms": ms(client.backoff_max),
        "client_connect_timeout_ms": ms(client.net.connect_timeout),
        "client_handshake_timeout_ms": ms(client.net.handshake_timeout),
    })
}
