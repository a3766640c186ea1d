//! The client's documented contract against an embedded node: a wrong cluster id is its own
//! kind, never retried (at connect, and when a node's address now serves another cluster); a
//! removed partition that holds entries cannot be declared again; `query_index` past the last
//! entry is the last entry.

mod server_support;

use std::time::{Duration, Instant};

use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::client::{Client, ClientConfig};
use journalkeeper::server::Server;
use server_support::*;

/// Generous for a fail-fast path, far below the 30 s request timeout the clients use.
const FAST: Duration = Duration::from_secs(5);

fn config(cluster_id: u64) -> ClientConfig {
    let mut cfg = ClientConfig::new(cluster_id);
    cfg.set_request_timeout(Duration::from_secs(30));
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_cluster_id_fails_at_once_with_its_own_kind() {
    init_tracing();
    let mut c = Cluster::start(1).await;
    c.leader().await;
    let addr = c.addrs[0].to_string();

    // At connect.
    let started = Instant::now();
    let e = Client::connect([addr.clone()], config(CLUSTER_ID + 1))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::WrongCluster, "{e}");
    assert_eq!(e.kind.code(), "WRONG_CLUSTER");
    assert!(
        e.message.contains(&format!("cluster id is {CLUSTER_ID}")),
        "{e}"
    );
    assert!(started.elapsed() < FAST, "{:?}", started.elapsed());

    // During calls: the node's address is taken over by a node of another cluster.
    let client = Client::connect([addr.clone()], config(CLUSTER_ID))
        .await
        .unwrap();
    client
        .journal()
        .append(0, vec![b"x".to_vec()], ResponseConfig::Replication)
        .await
        .unwrap();
    c.stop_node(0).await;
    let mut foreign = c.config(0);
    foreign.cluster_id = CLUSTER_ID + 1;
    foreign.net.cluster_id = CLUSTER_ID + 1;
    foreign.data_dir = c.dir.path().join("foreign");
    let foreign = Server::start(foreign).await.expect("foreign node starts");
    let started = Instant::now();
    let e = client
        .journal()
        .get(0, 0, 1, QueryConsistency::Strict)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::WrongCluster, "{e}");
    // A one-way append is only queued; the background sender meets the foreign node, gives
    // the append up at once (never retried), and the next flush reports it with its kind.
    let queued = client
        .journal()
        .append(0, vec![b"y".to_vec()], ResponseConfig::OneWay)
        .await;
    assert_eq!(queued, Ok(None));
    let e = client.flush(Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::WrongCluster, "one-way writes too: {e}");
    assert!(started.elapsed() < FAST, "{:?}", started.elapsed());
    client.close();
    foreign.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_partition_with_entries_is_not_resurrected() {
    init_tracing();
    let c = Cluster::start(1).await;
    c.leader().await;
    let client = Client::connect([c.addrs[0].to_string()], config(CLUSTER_ID))
        .await
        .unwrap();
    let j = client.journal();
    j.scale_partitions(&[0, 1, 2]).await.unwrap();
    j.append(1, vec![b"old".to_vec()], ResponseConfig::Replication)
        .await
        .unwrap();
    j.scale_partitions(&[0, 2]).await.unwrap();
    let e = j.scale_partitions(&[0, 1, 2]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    assert!(e.message.contains("partition(s) 1 "), "{e}");
    assert_eq!(
        j.list_partitions().await.unwrap(),
        [0, 2].into(),
        "unchanged"
    );
    let e = j.get(1, 0, 1, QueryConsistency::Strict).await.unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::InvalidArgument,
        "the old entry stays hidden"
    );
    // An id that never held entries can be removed and added back.
    j.scale_partitions(&[0]).await.unwrap();
    j.scale_partitions(&[0, 2, 3]).await.unwrap();
    assert_eq!(j.list_partitions().await.unwrap(), [0, 2, 3].into());

    // query_index past the last entry: the last entry (the first sharing its time), not the end.
    let first = j
        .append(
            3,
            vec![b"a".to_vec(), b"b".to_vec()],
            ResponseConfig::Replication,
        )
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let last = j
        .append(3, vec![b"c".to_vec()], ResponseConfig::Replication)
        .await
        .unwrap()
        .unwrap();
    let entries = j.get(3, first, 10, QueryConsistency::Strict).await.unwrap();
    let last_time = entries.last().unwrap().timestamp_ms;
    let expected = entries
        .iter()
        .find(|e| e.timestamp_ms == last_time)
        .unwrap()
        .index;
    assert!(expected <= last);
    assert_eq!(j.query_index(3, u64::MAX).await.unwrap(), Some(expected));
    assert_eq!(
        j.query_index(3, last_time + 60_000).await.unwrap(),
        Some(expected)
    );
    assert_eq!(j.query_index(2, u64::MAX).await.unwrap(), None, "empty");
    client.close();
    c.shutdown().await;
}
