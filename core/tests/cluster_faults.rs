//! Three `journalkeeper server` processes; concurrent clients append to several partitions while
//! the leader is SIGKILLed and restarted (three rounds), then a follower and then the leader
//! are SIGSTOPped and resumed. Afterwards every acknowledged append is present exactly once at the index it was
//! acknowledged with, identically on every node, and nothing is present that no client sent.

mod support {
    pub mod cluster;
    pub mod writers;
}

use support::cluster::*;
use support::writers::{Writers, check_copies};

const WRITERS: u64 = 4;
const PARTITIONS: u16 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_leader_kills_and_paused_nodes_exactly_once() {
    let (mut c, mut leader) = started(3).await;
    let all: Vec<usize> = (0..3).collect();
    let writers = Writers::start(&c, WRITERS, PARTITIONS).await;

    // Three rounds: SIGKILL the leader while the writers run, see progress under the new
    // leader, restart the old one.
    for round in 0..3 {
        writers.progress("progress before the kill", 30).await;
        c.kill(leader).unwrap();
        let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
        let (new_leader, _) = leader_among(&c, &survivors).await;
        assert_ne!(new_leader, leader, "round {round}");
        writers.progress("progress after the kill", 30).await;
        c.start(leader).unwrap();
        leader = leader_among(&c, &all).await.0;
    }
    // A paused follower: the cluster keeps committing; it catches up after SIGCONT.
    let follower = (leader + 1) % 3;
    c.pause(follower).unwrap();
    writers
        .progress("progress with a paused follower", 50)
        .await;
    c.resume(follower).unwrap();
    writers.progress("progress after resuming", 20).await;
    // A paused leader: deposed while stopped, it must not acknowledge anything stale when it
    // wakes up (the checks below would find a lost or duplicated acknowledgement).
    let old_leader = leader_among(&c, &all).await.0;
    c.pause(old_leader).unwrap();
    let others: Vec<usize> = all.iter().copied().filter(|&i| i != old_leader).collect();
    leader_among(&c, &others).await;
    writers
        .progress("progress with the leader paused", 30)
        .await;
    c.resume(old_leader).unwrap();
    writers.progress("progress after it resumed", 20).await;

    let logs = writers.stop().await;
    let (_, status) = leader_among(&c, &all).await;
    let commit = status.commit_index;
    let total = check_copies(&c, &all, commit, PARTITIONS, &logs).await;
    let acked_total: usize = logs.iter().map(|l| l.acked.len()).sum();
    let failed_total: u64 = logs.iter().map(|l| l.failed).sum();
    assert!(
        acked_total >= 250,
        "too little progress: {acked_total} acks"
    );
    eprintln!(
        "acknowledged {acked_total}, failed {failed_total}, stored {total} entries; \
         commit index {commit}"
    );
}
