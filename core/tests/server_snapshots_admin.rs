//! Snapshots on request through the public client: every node snapshots at one index, each
//! node lists what it retains, and the cluster's KV rolls back to a retained snapshot on every
//! node (watchers see each difference; journal entries and write sessions stay).

mod server_support;

use std::collections::BTreeSet;
use std::time::Duration;

use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::client::{Client, ClientConfig};
use journalkeeper::state::watch::WatchFilter;
use server_support::{CLUSTER_ID, Cluster, WAIT, eventually};

async fn client_of(addrs: &[std::net::SocketAddr]) -> Client {
    let mut cfg = ClientConfig::new(CLUSTER_ID);
    cfg.request_timeout = Duration::from_secs(20);
    Client::connect(addrs.to_vec(), cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_snapshots_at_one_index_and_the_cluster_rolls_back_to_it() {
    let c = Cluster::start(3).await;
    let client = client_of(&c.addrs).await;
    let kv = client.kv();
    kv.set("a", b"1".to_vec()).await.unwrap();
    kv.set("b", b"1".to_vec()).await.unwrap();
    client
        .journal()
        .append(0, vec![b"before".to_vec()], ResponseConfig::Replication)
        .await
        .unwrap();
    let admin = client.admin();
    let index = admin.take_snapshot().await.unwrap();
    assert!(index > 0);
    let listed = eventually("every node saved the snapshot", WAIT, || async {
        let all = admin.snapshots().await.ok()?;
        all.iter()
            .all(|n| n.snapshots.iter().any(|s| s.index == index))
            .then_some(all)
    })
    .await;
    assert_eq!(listed.len(), 3);
    for n in &listed {
        let s = n.snapshots.iter().find(|s| s.index == index).unwrap();
        assert!(
            s.size_bytes > 0 && s.term > 0 && s.time_ms > 1_600_000_000_000,
            "{s:?}"
        );
        assert!(n.error.is_none());
    }

    kv.set("a", b"2".to_vec()).await.unwrap();
    kv.set("c", b"1".to_vec()).await.unwrap();
    client
        .journal()
        .append(0, vec![b"after".to_vec()], ResponseConfig::Replication)
        .await
        .unwrap();
    let mut watch = kv
        .watch(WatchFilter::Prefix(String::new()), 0)
        .await
        .unwrap();

    let e = admin.recover_snapshot(index + 1000).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("not by a majority"), "{e}");
    admin.recover_snapshot(index).await.unwrap();

    // Every node, once it applied the recovery, holds the snapshot's keys again; the journal
    // keeps both entries.
    let l = c.leader().await;
    let recovered_at = admin
        .status(&c.addrs[l].to_string())
        .await
        .unwrap()
        .applied_index;
    for addr in &c.addrs {
        eventually("the node applied the recovery", WAIT, || async {
            let s = admin.status(&addr.to_string()).await.ok()?;
            (s.applied_index >= recovered_at).then_some(())
        })
        .await;
        let node = client_of(&[*addr]).await;
        assert_eq!(
            node.kv()
                .with_consistency(QueryConsistency::None)
                .get("a")
                .await
                .unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(
            node.kv()
                .with_consistency(QueryConsistency::None)
                .get("c")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            node.kv()
                .with_consistency(QueryConsistency::None)
                .get("b")
                .await
                .unwrap(),
            Some(b"1".to_vec())
        );
        let entries = node
            .journal()
            .get(0, 0, 10, QueryConsistency::None)
            .await
            .unwrap();
        let payloads: Vec<&[u8]> = entries.iter().map(|e| e.payload.as_slice()).collect();
        assert_eq!(payloads, [b"before".as_slice(), b"after".as_slice()]);
        node.close();
    }
    let mut changed = BTreeSet::new();
    while changed.len() < 2 {
        let e = tokio::time::timeout(WAIT, watch.next())
            .await
            .unwrap()
            .unwrap();
        changed.insert((e.key.clone(), e.new_value.clone()));
    }
    assert_eq!(
        changed,
        BTreeSet::from([
            ("a".to_string(), Some(b"1".to_vec())),
            ("c".to_string(), None)
        ])
    );
    client.close();
    c.shutdown().await;
}
