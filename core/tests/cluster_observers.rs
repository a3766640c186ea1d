//! Observers as processes (`journalkeeper server` with `role = "observer"`): 3 voters, 2
//! observers pulling from the voters and 2 pulling from those observers, under concurrent
//! writes; a first-level observer and then the leader are killed with SIGKILL and restarted.
//! Every observer ends with the leader's journal and KV, and one client's SEQUENTIAL reads
//! from the observers never go backwards.

mod support {
    pub mod cluster;
}

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use journalkeeper::api::{QueryConsistency, ResponseConfig};
use journalkeeper::cli::local_client_config;
use journalkeeper::client::Client;
use support::cluster::*;

async fn contents(c: &LocalCluster, i: usize) -> (Vec<Vec<u8>>, Vec<(String, Vec<u8>)>) {
    let client: Client = c.client_of(i).await.unwrap();
    let journal = read_partition(&client, 0, QueryConsistency::None)
        .await
        .into_iter()
        .map(|e| e.payload)
        .collect();
    let kv = client
        .kv()
        .with_consistency(QueryConsistency::None)
        .list("k/")
        .await
        .unwrap();
    client.close();
    (journal, kv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_in_levels_survive_kill_9_of_a_parent_and_of_the_leader() {
    let (mut c, leader) = started(3).await;
    let o1 = c.add_observer(&[0, 1, 2]).unwrap();
    let o2 = c.add_observer(&[2, 1, 0]).unwrap();
    let o3 = c.add_observer(&[o1, o2]).unwrap();
    let o4 = c.add_observer(&[o2, o1]).unwrap();
    let observers = [o1, o2, o3, o4];
    for i in observers {
        if let Err(e) = c.wait_for_applied(i, 1, WAIT).await {
            panic!("{e}\n{}", logs(&c));
        }
    }

    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let client = c.client().await.unwrap();
        let (written, stop) = (written.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                client
                    .journal()
                    .append(
                        0,
                        vec![format!("e{n}").into_bytes()],
                        ResponseConfig::Replication,
                    )
                    .await
                    .unwrap();
                client
                    .kv()
                    .set("k/counter", n.to_be_bytes().to_vec())
                    .await
                    .unwrap();
                written.store(n, Ordering::SeqCst);
            }
            client.close();
        })
    };
    // One client reading SEQUENTIAL from the observers only: its reads never go backwards.
    let reader = {
        let addrs: Vec<String> = observers.iter().map(|&i| c.addr(i)).collect();
        let client = Client::connect(addrs, local_client_config(c.cluster_id()))
            .await
            .unwrap();
        let stop = stop.clone();
        tokio::spawn(async move {
            let kv = client.kv().with_consistency(QueryConsistency::Sequential);
            let (mut last, mut reads) = (0u64, 0u64);
            while !stop.load(Ordering::SeqCst) {
                if let Ok(Some(v)) = kv.get("k/counter").await {
                    let n = u64::from_be_bytes(v.as_slice().try_into().unwrap());
                    assert!(n >= last, "SEQUENTIAL read went back from {last} to {n}");
                    last = n;
                    reads += 1;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            client.close();
            reads
        })
    };

    wait_count("writes before the faults", &written, 50).await;
    c.kill(o1).unwrap();
    let at = written.load(Ordering::SeqCst);
    wait_count("writes with a parent down", &written, at + 50).await;
    c.start(o1).unwrap();
    c.kill(leader).unwrap();
    let at = written.load(Ordering::SeqCst);
    wait_count("writes after the leader's kill", &written, at + 50).await;
    c.start(leader).unwrap();
    let at = written.load(Ordering::SeqCst);
    wait_count("writes after the restart", &written, at + 30).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let reads = reader.await.unwrap();
    assert!(reads > 0, "the reader read nothing from the observers");

    let all: Vec<usize> = (0..3).collect();
    let (now_leader, status) = leader_among(&c, &all).await;
    for i in (0..3).chain(observers) {
        if let Err(e) = c.wait_for_applied(i, status.applied_index, WAIT).await {
            panic!("{e}\n{}", logs(&c));
        }
    }
    let want = contents(&c, now_leader).await;
    let n = written.load(Ordering::SeqCst);
    assert_eq!(
        want.0.len() as u64,
        n,
        "the leader has every acknowledged entry"
    );
    for i in observers {
        assert_eq!(contents(&c, i).await, want, "observer {} differs", i + 1);
    }
    // The observers are listed, none of them a voter.
    let client = c.client().await.unwrap();
    let conf = client.admin().cluster_configuration().await.unwrap();
    let mut ids: Vec<u64> = conf.observers.iter().map(|m| m.node_id).collect();
    ids.sort();
    assert_eq!(
        ids,
        observers.iter().map(|&i| i as u64 + 1).collect::<Vec<_>>()
    );
    assert_eq!(conf.voters.len(), 3);
}
