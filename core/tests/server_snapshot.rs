//! Snapshots and log compaction on an embedded cluster: a lagging follower catches up through
//! InstallSnapshot, and every node restarts from snapshot + log with the same data.

mod server_support;

use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::client::protocol::{ReadAt, ReplyBody, RequestBody};
use journalkeeper::state::kv::{KvCommand, KvQuery, KvQueryResult, KvRequest};
use server_support::*;

async fn kv_set(t: &mut TestClient, key: &str, value: &[u8]) {
    let (r, _) = t
        .call(RequestBody::KvWrite {
            request: KvRequest {
                id: None,
                command: KvCommand::Set {
                    key: key.into(),
                    value: value.to_vec(),
                },
            },
            response: ResponseConfig::Replication,
        })
        .await;
    assert!(r.is_ok(), "{r:?}");
}

async fn kv_get(t: &mut TestClient, key: &str, min_applied: u64) -> (Option<Vec<u8>>, u64) {
    let (r, applied) = t
        .call(RequestBody::KvRead {
            query: KvQuery::Get { key: key.into() },
            read: ReadAt {
                consistency: QueryConsistency::Sequential,
                min_applied,
            },
        })
        .await;
    match r {
        Ok(ReplyBody::KvRead(KvQueryResult::Value(v))) => (v, applied),
        Err(e) if e.kind == ErrorKind::IndexOverflow => (None, applied),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_installs_a_snapshot_and_restart_restores_everything() {
    init_tracing();
    // Compaction frees whole segments only: small segments, and a filler that fills the first.
    let mut c = Cluster::start_tweaked(3, 50, |cfg| cfg.max_segment_bytes = 5 << 20).await;
    let l = c.leader().await;
    let lag = (l + 1) % 3;
    c.stop_node(lag).await;
    let mut t = c.client(l).await;
    for i in 0..6 {
        kv_set(&mut t, &format!("filler{i}"), &vec![i as u8; 1_000_000]).await;
    }
    for k in 0..200u64 {
        let r = t
            .append(
                5,
                vec![k.to_le_bytes().to_vec()],
                ResponseConfig::Replication,
            )
            .await;
        assert_eq!(
            r,
            Ok(ReplyBody::Appended {
                first_index: Some(k)
            })
        );
        if k % 10 == 0 {
            kv_set(&mut t, &format!("k{k}"), &k.to_le_bytes()).await;
        }
    }
    let leader = c.servers[l].as_ref().unwrap();
    // Compaction runs in the background, after the snapshot is saved.
    let s = wait_until!("the leader compacted its log", {
        let s = leader.status();
        (s.first_index > 6).then_some(s)
    });
    let commit = s.commit_index;

    c.start_node(lag).await;
    let mut f = c.client(lag).await;
    let (v, _) = wait_until!("follower caught up through a snapshot", {
        let (v, applied) = kv_get(&mut f, "k0", commit).await;
        (applied >= commit).then_some((v, applied))
    });
    assert_eq!(v, Some(0u64.to_le_bytes().to_vec()));
    // Its log starts after a snapshot (compaction runs in the background there too).
    wait_until!("the follower's log starts after a snapshot", {
        let fs = c.servers[lag].as_ref().unwrap().status();
        (fs.first_index > 1).then_some(fs)
    });
    // Entries after the follower's snapshot are readable there; indices match the leader's.
    let (r, _) = f
        .call(RequestBody::MaxIndices {
            read: ReadAt {
                consistency: QueryConsistency::Sequential,
                min_applied: commit,
            },
        })
        .await;
    match r {
        Ok(ReplyBody::Indices(m)) => assert_eq!(m.get(&5), Some(&200)),
        other => panic!("{other:?}"),
    }
    let (r, _) = f.get(5, 199, 1, QueryConsistency::Sequential, commit).await;
    match r {
        Ok(ReplyBody::Entries(es)) => {
            assert_eq!(es[0].payload, 199u64.to_le_bytes().to_vec());
            assert_eq!(es[0].index, 199);
        }
        other => panic!("{other:?}"),
    }
    let (r, _) = f.get(5, 0, 1, QueryConsistency::Sequential, commit).await;
    assert_eq!(kind(&r), Some(ErrorKind::IndexUnderflow));

    // Full restart: snapshot + retained log + replay give the same state on every node.
    drop((t, f));
    for i in 0..3 {
        c.stop_node(i).await;
    }
    for i in 0..3 {
        c.start_node(i).await;
    }
    let l = c.leader().await;
    let commit = c.servers[l].as_ref().unwrap().status().commit_index;
    for i in 0..3 {
        let mut t = c.client(i).await;
        let (v, _) = wait_until!("restarted node applied", {
            let (v, applied) = kv_get(&mut t, "k190", commit).await;
            (applied >= commit).then_some((v, applied))
        });
        assert_eq!(v, Some(190u64.to_le_bytes().to_vec()), "node {}", i + 1);
        let (r, _) = t
            .get(5, 190, 50, QueryConsistency::Sequential, commit)
            .await;
        match r {
            Ok(ReplyBody::Entries(es)) => {
                assert_eq!(es.len(), 10, "node {}", i + 1);
                for (k, e) in es.iter().enumerate() {
                    assert_eq!(e.payload, (190 + k as u64).to_le_bytes().to_vec());
                }
            }
            other => panic!("node {}: {other:?}", i + 1),
        }
    }
    c.shutdown().await;
}
