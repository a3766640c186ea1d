//! Changing a running cluster of `journalkeeper server` processes while writers append: grow
//! 3 → 5 with two joining nodes and shrink back removing the leader, replace a killed node,
//! change the membership with a minority paused, transfer leadership ten times and let the
//! preferred leader take over again after its restart. Afterwards every acknowledged append is
//! present exactly once, identically on every remaining node.

mod support {
    pub mod cluster;
    pub mod writers;
}

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use journalkeeper::client::Client;
use support::cluster::*;
use support::writers::{Writers, check_copies};

const PARTITIONS: u16 = 3;

async fn voters(client: &Client) -> BTreeSet<u64> {
    let c = client.admin().cluster_configuration().await.unwrap();
    assert!(c.joint_old_voters.is_none(), "{c:?}");
    c.voters.iter().map(|m| m.node_id).collect()
}

/// Waits until node `i`'s process has exited on its own (a removed node does).
async fn exits(c: &mut LocalCluster, i: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = c.exited(i) {
            assert!(status.success(), "node {} exited with {status}", i + 1);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {} did not exit\n{}",
            i + 1,
            logs(c)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn finish(c: &LocalCluster, nodes: &[usize], writers: Writers) {
    let logs = writers.stop().await;
    let (_, status) = leader_among(c, nodes).await;
    let stored = check_copies(c, nodes, status.commit_index, PARTITIONS, &logs).await;
    let acked: usize = logs.iter().map(|l| l.acked.len()).sum();
    assert!(acked >= 50, "too little progress: {acked}");
    eprintln!("acknowledged {acked}, stored {stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grow_to_five_and_shrink_to_three_removing_the_leader() {
    let (mut c, _) = started(3).await;
    let admin_client = c.client().await.unwrap();
    let admin = admin_client.admin();
    let writers = Writers::start(&c, 3, PARTITIONS).await;
    writers.progress("writes before the change", 30).await;
    for _ in 0..2 {
        let i = c.add_joining_node().unwrap();
        let t = Instant::now();
        admin
            .add_voter(i as u64 + 1, &c.addr(i))
            .await
            .unwrap_or_else(|e| panic!("add node {}: {e}\n{}", i + 1, logs(&c)));
        eprintln!("node {} added in {} ms", i + 1, t.elapsed().as_millis());
        writers.progress("writes after the join", 20).await;
    }
    assert_eq!(voters(&admin_client).await, BTreeSet::from([1, 2, 3, 4, 5]));

    let all: Vec<usize> = (0..5).collect();
    let (leader, _) = leader_among(&c, &all).await;
    admin.remove_voter(leader as u64 + 1).await.unwrap();
    exits(&mut c, leader).await;
    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
    let (new_leader, _) = leader_among(&c, &rest).await;
    writers.progress("writes after the leader left", 20).await;
    let other = *rest.iter().find(|&&i| i != new_leader).unwrap();
    admin.remove_voter(other as u64 + 1).await.unwrap();
    exits(&mut c, other).await;
    let rest: Vec<usize> = rest.into_iter().filter(|&i| i != other).collect();
    writers.progress("writes with three voters again", 20).await;
    let expect: BTreeSet<u64> = rest.iter().map(|&i| i as u64 + 1).collect();
    assert_eq!(voters(&admin_client).await, expect);
    admin_client.close();
    finish(&c, &rest, writers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_replaced_by_a_new_one() {
    let (mut c, leader) = started(3).await;
    let admin_client = c.client().await.unwrap();
    let admin = admin_client.admin();
    let writers = Writers::start(&c, 3, PARTITIONS).await;
    writers.progress("writes before the failure", 30).await;
    let failed = (leader + 1) % 3;
    c.kill(failed).unwrap();
    admin.remove_voter(failed as u64 + 1).await.unwrap();
    let i = c.add_joining_node().unwrap();
    admin.add_voter(i as u64 + 1, &c.addr(i)).await.unwrap();
    let rest: Vec<usize> = (0..4).filter(|&n| n != failed).collect();
    let expect: BTreeSet<u64> = rest.iter().map(|&n| n as u64 + 1).collect();
    assert_eq!(voters(&admin_client).await, expect);
    writers.progress("writes after the replacement", 30).await;
    admin_client.close();
    finish(&c, &rest, writers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_complete_with_a_minority_paused() {
    let (mut c, leader) = started(3).await;
    let admin_client = c.client().await.unwrap();
    let admin = admin_client.admin();
    let writers = Writers::start(&c, 3, PARTITIONS).await;
    writers.progress("writes before the pause", 30).await;
    let paused = (leader + 1) % 3;
    c.pause(paused).unwrap();
    let i = c.add_joining_node().unwrap();
    admin
        .add_voter(i as u64 + 1, &c.addr(i))
        .await
        .expect("added with one of three paused");
    writers.progress("writes with a node paused", 20).await;
    c.resume(paused).unwrap();
    writers.progress("writes after the resume", 20).await;

    // Pause another follower and remove it while it cannot hear of it.
    let all: Vec<usize> = (0..4).collect();
    let (leader, _) = leader_among(&c, &all).await;
    let gone = *all.iter().find(|&&n| n != leader && n != paused).unwrap();
    c.pause(gone).unwrap();
    admin
        .remove_voter(gone as u64 + 1)
        .await
        .expect("removed while paused");
    let rest: Vec<usize> = all.iter().copied().filter(|&n| n != gone).collect();
    writers.progress("writes after the removal", 20).await;
    c.resume(gone).unwrap();
    // The removed node learns it once it runs again, and exits.
    exits(&mut c, gone).await;
    let expect: BTreeSet<u64> = rest.iter().map(|&n| n as u64 + 1).collect();
    assert_eq!(voters(&admin_client).await, expect);
    admin_client.close();
    finish(&c, &rest, writers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_ten_times_and_the_preferred_leader_returns_after_a_restart() {
    let (mut c, mut leader) = started(3).await;
    let all: Vec<usize> = (0..3).collect();
    let admin_client = c.client().await.unwrap();
    let admin = admin_client.admin();
    let writers = Writers::start(&c, 3, PARTITIONS).await;
    writers.progress("writes before the transfers", 20).await;
    for round in 0..10 {
        let to = (leader + 1 + round % 2) % 3;
        admin
            .transfer_leader(to as u64 + 1)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}\n{}", logs(&c)));
        let (now, _) = leader_among(&c, &all).await;
        assert_eq!(now, to, "round {round}");
        leader = now;
        writers.progress("writes after a transfer", 10).await;
    }
    let preferred = (leader + 2) % 3;
    admin
        .set_preferred_leader(Some(preferred as u64 + 1))
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while leader_among(&c, &all).await.0 != preferred {
        assert!(Instant::now() < deadline, "the preferred node never led");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.kill(preferred).unwrap();
    let others: Vec<usize> = all.iter().copied().filter(|&n| n != preferred).collect();
    leader_among(&c, &others).await;
    writers
        .progress("writes while the preferred node is down", 20)
        .await;
    c.start(preferred).unwrap();
    let deadline = Instant::now() + WAIT;
    while leader_among(&c, &all).await.0 != preferred {
        assert!(
            Instant::now() < deadline,
            "the preferred node did not lead again after its restart\n{}",
            logs(&c)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writers.progress("writes after it took over", 20).await;
    admin_client.close();
    finish(&c, &all, writers).await;
}
