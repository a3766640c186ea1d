//! The bank under faults, with each node its own process (`bank-node`): transfers run the whole
//! time while the leader is killed with SIGKILL twice (and restarted), and a follower is paused
//! with SIGSTOP while the others go on. At the end every node — and a fresh node added as a
//! voter, which can only catch up through a snapshot because the log behind it is compacted —
//! holds the same balances, and the total is what was deposited.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::cli::{LocalCluster, LocalClusterOptions, local_client_config};
use journalkeeper::client::Client;
use journalkeeper_bank_example::total;

const WAIT: Duration = Duration::from_secs(30);
const ACCOUNTS: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// Answered transfers (applied or refused for short funds) and failed calls.
#[derive(Default)]
struct Progress {
    answered: AtomicU64,
    failed: AtomicU64,
}

impl Progress {
    /// Waits until `more` transfers beyond the current count were answered.
    async fn advance(&self, what: &str, more: u64) {
        let target = self.answered.load(Ordering::SeqCst) + more;
        let deadline = Instant::now() + WAIT;
        while self.answered.load(Ordering::SeqCst) < target {
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {target} transfers answered within {WAIT:?} ({} calls failed)",
                self.answered.load(Ordering::SeqCst),
                self.failed.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn transfers(client: Client, worker: usize, stop: Arc<AtomicBool>, p: Arc<Progress>) {
    let bank = client.state_machine("bank");
    let mut k = 0;
    while !stop.load(Ordering::SeqCst) {
        let from = ACCOUNTS[(worker + k) % ACCOUNTS.len()];
        let to = ACCOUNTS[(worker + k + 1) % ACCOUNTS.len()];
        let amount = 1 + (k * 37 + worker * 11) % 300;
        k += 1;
        match bank
            .update(format!("transfer {from} {to} {amount}").into_bytes())
            .await
        {
            Ok(_) => p.answered.fetch_add(1, Ordering::SeqCst),
            Err(e) if e.kind == ErrorKind::Rejected => p.answered.fetch_add(1, Ordering::SeqCst),
            // The outcome of a call cut by a kill is unknown; a transfer moves money
            // atomically either way, so the total stays.
            Err(_) => p.failed.fetch_add(1, Ordering::SeqCst),
        };
    }
}

/// The first index of node `i`'s log (1 until compaction has dropped a segment).
async fn first_index(c: &LocalCluster, i: usize) -> u64 {
    let status = c.status(i, WAIT).await.expect("status");
    status.detail.expect("status detail").first_index
}

async fn leader(c: &LocalCluster, among: &[usize]) -> usize {
    c.wait_for_leader(among, WAIT).await.expect("a leader").0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_holds_the_same_balances_after_kills_pauses_and_a_snapshot_install() {
    let opts = LocalClusterOptions {
        snapshot_interval: 40,
        snapshot_retained_entries: 20,
        max_segment_bytes: 5 << 20,
        rust_log: "warn".into(),
        ..LocalClusterOptions::default()
    };
    let mut c = LocalCluster::create(env!("CARGO_BIN_EXE_bank-node"), opts).expect("cluster");
    c.start_all().expect("start");
    leader(&c, &[0, 1, 2]).await;
    let client = Client::connect(c.addrs(), local_client_config(c.cluster_id()))
        .await
        .expect("client");
    let bank = client.state_machine("bank");
    for a in ACCOUNTS {
        bank.update(format!("deposit {a} 1000").into_bytes())
            .await
            .unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(Progress::default());
    let workers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(transfers(client.clone(), w, stop.clone(), progress.clone())))
        .collect();
    progress.advance("before the faults", 50).await;

    for round in 1..=2 {
        let l = leader(&c, &[0, 1, 2]).await;
        c.kill(l).expect("kill -9 the leader");
        progress
            .advance(&format!("after leader kill {round}"), 50)
            .await;
        c.start(l).expect("restart the killed node");
    }
    let l = leader(&c, &[0, 1, 2]).await;
    let paused = (l + 1) % 3;
    c.pause(paused).expect("SIGSTOP a follower");
    progress.advance("with a follower paused", 100).await;
    c.resume(paused).expect("SIGCONT");
    progress.advance("after the pause", 50).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }

    // Journal appends fill segments, so the snapshot that follows lets compaction drop the
    // log's start: a fresh voter can then only catch up through a snapshot.
    let filler = vec![7u8; 1_000_000];
    for _ in 0..12 {
        client
            .journal()
            .append(1, vec![filler.clone()], ResponseConfig::Replication)
            .await
            .unwrap();
    }
    // More than the retained entries after the filler, so the snapshot's compaction point
    // lies past the filled segments.
    for a in ACCOUNTS.iter().cycle().take(40) {
        bank.update(format!("deposit {a} 1").into_bytes())
            .await
            .unwrap();
    }
    client.admin().take_snapshot().await.unwrap();
    let deadline = Instant::now() + WAIT;
    for i in 0..3 {
        while first_index(&c, i).await <= 1 {
            assert!(
                Instant::now() < deadline,
                "node {} never compacted its log",
                i + 1
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let fresh = c.add_joining_node().expect("a fresh node");
    client
        .admin()
        .add_voter(fresh as u64 + 1, &c.addr(fresh))
        .await
        .expect("add the fresh node as a voter");

    let applied = client.sync().await.unwrap();
    let mut views = Vec::new();
    for i in 0..c.len() {
        c.wait_for_applied(i, applied, WAIT).await.unwrap();
        let local = c.client_of(i).await.unwrap();
        let balances = local
            .state_machine("bank")
            .query(b"balances".to_vec(), QueryConsistency::None)
            .await
            .unwrap();
        views.push((i + 1, String::from_utf8(balances).unwrap()));
        local.close();
    }
    for (node, view) in &views {
        assert_eq!(
            view, &views[0].1,
            "node {node} differs from node {}",
            views[0].0
        );
    }
    // 4 x 1000 deposited before the faults, 40 x 1 after them.
    assert_eq!(
        total(&views[0].1),
        4040,
        "the total is conserved: {}",
        views[0].1
    );
    assert!(
        c.log_tail(fresh, 400)
            .contains("bank restored from a snapshot"),
        "the fresh node caught up through a snapshot:\n{}",
        c.log_tail(fresh, 40)
    );
    eprintln!(
        "answered {} transfers, {} calls cut by faults; balances {}",
        progress.answered.load(Ordering::SeqCst),
        progress.failed.load(Ordering::SeqCst),
        views[0].1.replace('\n', " ")
    );
    client.close();
}
