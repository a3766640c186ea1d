//! A 3-node embedded cluster over loopback: election, replication to every node, leader
//! failover, full restart from disk.

mod server_support;

use journalkeeper::api::{QueryConsistency, ResponseConfig};
use journalkeeper::client::protocol::ReplyBody;
use server_support::*;

async fn entries_on(
    c: &mut TestClient,
    partition: u16,
    count: u64,
    min_applied: u64,
) -> Vec<Vec<u8>> {
    let (r, _) = c
        .get(
            partition,
            0,
            count as u32,
            QueryConsistency::Sequential,
            min_applied,
        )
        .await;
    match r {
        Ok(ReplyBody::Entries(es)) => {
            for (i, e) in es.iter().enumerate() {
                assert_eq!(e.index, i as u64);
                assert_eq!(e.partition, partition);
            }
            es.into_iter().map(|e| e.payload).collect()
        }
        other => panic!("get failed: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_replicate_and_serve_identical_partition_indices() {
    init_tracing();
    let c = Cluster::start(3).await;
    let l = c.leader().await;
    let mut w = c.client(l).await;
    let mut expected: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
    for round in 0..5u8 {
        for p in 0..3u16 {
            let batch: Vec<Vec<u8>> = (0..=p as u8).map(|k| vec![round, p as u8, k]).collect();
            let r = w
                .append(p, batch.clone(), ResponseConfig::Replication)
                .await;
            let first = expected[p as usize].len() as u64;
            assert_eq!(
                r,
                Ok(ReplyBody::Appended {
                    first_index: Some(first)
                })
            );
            expected[p as usize].extend(batch);
        }
    }
    let commit = c.servers[l].as_ref().unwrap().status().commit_index;
    for i in 0..3 {
        let mut r = c.client(i).await;
        for p in 0..3u16 {
            let want = &expected[p as usize];
            let got = wait_until!("entries replicated", {
                let (res, applied) = r
                    .get(
                        p,
                        0,
                        want.len() as u32,
                        QueryConsistency::Sequential,
                        commit,
                    )
                    .await;
                (applied >= commit).then_some(res)
            });
            match got {
                Ok(ReplyBody::Entries(es)) => {
                    let payloads: Vec<_> = es.iter().map(|e| e.payload.clone()).collect();
                    assert_eq!(&payloads, want, "node {} partition {p}", i + 1);
                    assert!(es.iter().enumerate().all(|(k, e)| e.index == k as u64));
                    assert!(
                        es.windows(2)
                            .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms)
                    );
                }
                other => panic!("node {} partition {p}: {other:?}", i + 1),
            }
        }
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_shutdown_reelects_and_writes_continue_then_full_restart_keeps_everything() {
    init_tracing();
    let mut c = Cluster::start(3).await;
    let l = c.leader().await;
    let mut w = c.client(l).await;
    for k in 0..10u8 {
        let r = w
            .append(1, vec![vec![k]], ResponseConfig::Replication)
            .await;
        assert_eq!(
            r,
            Ok(ReplyBody::Appended {
                first_index: Some(k as u64)
            })
        );
    }
    drop(w);
    c.stop_node(l).await;
    let l2 = c.leader().await;
    assert_ne!(l2, l);
    let mut w = c.client(l2).await;
    for k in 10..20u8 {
        let r = w
            .append(1, vec![vec![k]], ResponseConfig::Replication)
            .await;
        assert_eq!(
            r,
            Ok(ReplyBody::Appended {
                first_index: Some(k as u64)
            })
        );
    }
    drop(w);
    c.start_node(l).await;
    // Full restart from disk.
    for i in 0..3 {
        c.stop_node(i).await;
    }
    for i in 0..3 {
        c.start_node(i).await;
    }
    let l3 = c.leader().await;
    let commit = c.servers[l3].as_ref().unwrap().status().commit_index;
    let want: Vec<Vec<u8>> = (0..20u8).map(|k| vec![k]).collect();
    for i in 0..3 {
        let mut r = c.client(i).await;
        wait_until!("restarted node caught up", {
            let (_, applied) = r.get(1, 0, 1, QueryConsistency::None, 0).await;
            (applied >= commit).then_some(())
        });
        assert_eq!(
            entries_on(&mut r, 1, 20, commit).await,
            want,
            "node {}",
            i + 1
        );
    }
    c.shutdown().await;
}
