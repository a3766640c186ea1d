//! The whole cluster restarted from disk (three `journalkeeper server` processes): after
//! SIGKILL of every node, and after SIGTERM of every node (a clean exit), all acknowledged data
//! is back at the same indices on every node, and the cluster takes new writes.

mod support {
    pub mod cluster;
}

use std::collections::BTreeMap;
use std::time::Duration;

use journalkeeper::api::{JournalEntry, QueryConsistency, ResponseConfig};
use journalkeeper::client::Client;
use support::cluster::*;

async fn snapshot_of(
    c: &LocalCluster,
    i: usize,
) -> (BTreeMap<u16, Vec<JournalEntry>>, Vec<(String, Vec<u8>)>) {
    let client: Client = c.client_of(i).await.unwrap();
    let mut parts = BTreeMap::new();
    for p in 0..3u16 {
        parts.insert(p, read_partition(&client, p, QueryConsistency::None).await);
    }
    let kv = client
        .kv()
        .with_consistency(QueryConsistency::None)
        .list("k/")
        .await
        .unwrap();
    client.close();
    (parts, kv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fully_restarted_cluster_has_every_entry_at_the_same_index() {
    let (mut c, _) = started(3).await;
    let all: Vec<usize> = (0..3).collect();
    let client = c.client().await.unwrap();
    let mut acked: BTreeMap<(u16, u64), Vec<u8>> = BTreeMap::new();
    for k in 0..60u64 {
        let p = (k % 3) as u16;
        let batch: Vec<Vec<u8>> = (0..1 + k % 4)
            .map(|j| format!("{k}.{j}").into_bytes())
            .collect();
        let first = client
            .journal()
            .append(p, batch.clone(), ResponseConfig::Replication)
            .await
            .unwrap()
            .unwrap();
        for (j, e) in batch.into_iter().enumerate() {
            acked.insert((p, first + j as u64), e);
        }
        if k % 10 == 0 {
            client
                .kv()
                .set(&format!("k/{k}"), k.to_string().into_bytes())
                .await
                .unwrap();
        }
    }
    client.close();
    let (_, st) = leader_among(&c, &all).await;
    for i in 0..3 {
        c.wait_for_applied(i, st.commit_index, WAIT).await.unwrap();
    }
    let before = snapshot_of(&c, 0).await;
    for ((p, i), e) in &acked {
        assert_eq!(
            &before.0[p][*i as usize].payload, e,
            "{p}/{i} before restart"
        );
    }
    assert_eq!(before.1.len(), 6);

    for how in ["SIGKILL", "SIGTERM"] {
        for i in 0..3 {
            if how == "SIGKILL" {
                c.kill(i).unwrap();
            } else {
                assert!(
                    c.stop(i, Duration::from_secs(10)).unwrap(),
                    "node {} exits cleanly on SIGTERM\n{}",
                    i + 1,
                    logs(&c)
                );
            }
        }
        c.start_all().unwrap();
        let (_, st) = leader_among(&c, &all).await;
        for i in 0..3 {
            c.wait_for_applied(i, st.commit_index, WAIT).await.unwrap();
            let after = snapshot_of(&c, i).await;
            assert!(after == before, "node {} after {how} and restart", i + 1);
        }
    }

    // And it still takes writes, continuing the indices.
    let client = c.client().await.unwrap();
    let next = client
        .journal()
        .append(
            0,
            vec![b"after restarts".to_vec()],
            ResponseConfig::Replication,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next, before.0[&0].len() as u64);
    client.close();
}
