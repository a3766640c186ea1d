//! Failover with the default node and client timeouts, on a 3-node cluster of real processes
//! (the cheap form of `journalkeeper bench failover`, which runs 20 kills): a few leader
//! kills -9 under a continuous REPLICATION writer, each gap from the kill to the next
//! acknowledged append under a bound generous enough for a loaded 2-core machine; and a
//! SIGSTOPped follower first in a fresh client's server list, which cost 6 s (connect 3 s +
//! first read 3 s) before connect tried every address at once.

use std::time::Duration;

use journalkeeper::cli::failover::{kill_gaps, paused_first};
use journalkeeper::cli::{LocalCluster, LocalClusterOptions};
use journalkeeper::client::ClientConfig;

/// Target is a median ≤ 1 s and a max ≤ 1.5 s (the bench); this bounds every single gap.
const KILL_GAP_BOUND: Duration = Duration::from_millis(2500);
/// Connect + first read with a stopped node first in the list (6 s before the fix).
const PAUSED_FIRST_BOUND: Duration = Duration::from_millis(1500);

fn cluster() -> LocalCluster {
    let opts = LocalClusterOptions {
        rust_log: std::env::var("JK_NODE_LOG").unwrap_or_else(|_| "warn".into()),
        ..LocalClusterOptions::server_defaults()
    };
    LocalCluster::create(env!("CARGO_BIN_EXE_journalkeeper"), opts).expect("cluster directory")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kills_and_a_paused_first_node_cost_well_under_the_old_timeouts() {
    let mut c = cluster();
    c.start_all().expect("spawn nodes");
    let client = ClientConfig::new(c.cluster_id());

    let report = kill_gaps(&mut c, 3, client.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.samples.len(), 3);
    assert_eq!(report.write_errors, 0, "{:?}", report.last_error);
    for s in &report.samples {
        assert!(
            s.gap <= KILL_GAP_BOUND,
            "kill of node {}: next ack after {:?}; all: {:?}",
            s.killed + 1,
            s.gap,
            report.samples
        );
    }

    let samples = paused_first(&mut c, 2, client)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(samples.len(), 2);
    for s in &samples {
        assert!(
            s.connect + s.first_read <= PAUSED_FIRST_BOUND
                && s.connect_and_first_write <= PAUSED_FIRST_BOUND,
            "node {} paused first in the list: {s:?}",
            s.paused + 1
        );
    }
}
