//! Journal transactions through the public client on an in-process 3-node cluster: committed
//! ones appear whole and in append order on every node (readers at every level never see part
//! of one), aborted and expired ones never; a commit decided before the leader stops is
//! published by the next leader, once; the bounds.

mod server_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::client::{Client, ClientConfig};
use journalkeeper::state::txn::TxnPhase;
use server_support::{CLUSTER_ID, Cluster, WAIT, eventually};

async fn client_of(addrs: &[std::net::SocketAddr]) -> Client {
    let mut cfg = ClientConfig::new(CLUSTER_ID);
    cfg.request_timeout = Duration::from_secs(20);
    Client::connect(addrs.to_vec(), cfg).await.unwrap()
}

fn bytes(xs: &[&str]) -> Vec<Vec<u8>> {
    xs.iter().map(|x| x.as_bytes().to_vec()).collect()
}

/// `(payload, batch_size, offset)` of every entry of `partition`, read at `level`.
async fn entries(c: &Client, partition: u16, level: QueryConsistency) -> Vec<(String, u16, u16)> {
    let max = c.journal().max_indices().await.unwrap()[&partition];
    if max == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut from = 0;
    while from < max {
        let got = match c.journal().get(partition, from, 1000, level).await {
            Ok(got) => got,
            // A node behind the max read above (NONE on a follower): what it has.
            Err(e) if e.kind == ErrorKind::IndexOverflow => break,
            Err(e) => panic!("{e}"),
        };
        from += got.len() as u64;
        out.extend(got.into_iter().map(|e| {
            (
                String::from_utf8(e.payload).unwrap(),
                e.batch_size,
                e.offset,
            )
        }));
    }
    out
}

fn of_tx(all: &[(String, u16, u16)], tag: &str) -> usize {
    all.iter().filter(|(p, _, _)| p.starts_with(tag)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn committed_transactions_appear_whole_in_append_order_and_aborted_ones_never() {
    let c = Cluster::start(3).await;
    let client = Arc::new(client_of(&c.addrs).await);
    let journal = client.journal();
    let txns = client.transactions();
    journal
        .append(1, bytes(&["before"]), ResponseConfig::Replication)
        .await
        .unwrap();

    // Readers at every level, each on its own node, while the transaction fills and commits:
    // each partition shows none of it or all of its part, and once one partition showed it
    // the partitions read after it show theirs too (the publication is one log entry).
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for (i, level) in [
        QueryConsistency::Strict,
        QueryConsistency::Sequential,
        QueryConsistency::None,
    ]
    .into_iter()
    .enumerate()
    {
        let (stop, reader) = (stop.clone(), client_of(&c.addrs[i..=i]).await);
        readers.push(tokio::spawn(async move {
            let mut saw_whole = false;
            while !stop.load(Ordering::SeqCst) {
                let mut visible = false;
                for (p, part) in [(1, 3), (2, 1), (3, 3)] {
                    let count = of_tx(&entries(&reader, p, level).await, "A");
                    assert!(
                        count == 0 || count == part,
                        "{level:?}: {count} of {part} in {p}"
                    );
                    assert!(
                        !visible || count == part,
                        "{level:?}: {p} behind an earlier one"
                    );
                    visible |= count == part;
                }
                saw_whole |= visible;
            }
            saw_whole
        }));
    }

    let context = BTreeMap::from([("order".to_string(), "42".to_string())]);
    let a = txns.create(context.clone()).await.unwrap();
    assert_eq!(txns.append(a, 1, bytes(&["A1", "A2"])).await.unwrap(), 2);
    assert_eq!(txns.append(a, 2, bytes(&["A-b1"])).await.unwrap(), 3);
    journal
        .append(1, bytes(&["mid"]), ResponseConfig::Replication)
        .await
        .unwrap();
    assert_eq!(txns.append(a, 1, bytes(&["A3"])).await.unwrap(), 4);
    assert_eq!(
        txns.append(a, 3, bytes(&["A-c1", "A-c2", "A-c3"]))
            .await
            .unwrap(),
        7
    );
    let b = txns.create(BTreeMap::new()).await.unwrap();
    assert!(b > a, "ids increase");
    txns.append(b, 1, bytes(&["B1"])).await.unwrap();

    let open = txns.opening(QueryConsistency::Strict).await.unwrap();
    assert_eq!(open.len(), 2);
    assert_eq!((open[0].tx, &open[0].context), (a, &context));
    assert_eq!((open[0].phase, open[0].entries), (TxnPhase::Open, 7));
    assert_eq!(open[0].partitions, [1, 2, 3].into());
    assert_eq!(
        of_tx(&entries(&client, 1, QueryConsistency::Strict).await, "A"),
        0
    );

    assert!(txns.abort(b).await.unwrap());
    assert!(
        !txns.abort(b).await.unwrap(),
        "a second abort finds it gone"
    );
    let late = txns.append(b, 1, bytes(&["B2"])).await.unwrap_err();
    assert_eq!(late.kind, ErrorKind::InvalidArgument, "{late}");

    txns.commit(a).await.unwrap();
    // Visible to this client at once (commit returns after the publish applied).
    assert_eq!(
        entries(&client, 1, QueryConsistency::Sequential).await,
        [
            ("before".to_string(), 1, 0),
            ("mid".to_string(), 1, 0),
            ("A1".to_string(), 2, 0),
            ("A2".to_string(), 2, 1),
            ("A3".to_string(), 1, 0),
        ]
    );
    assert_eq!(
        entries(&client, 2, QueryConsistency::Strict).await,
        [("A-b1".to_string(), 1, 0)]
    );
    assert_eq!(
        entries(&client, 3, QueryConsistency::Strict).await,
        [
            ("A-c1".to_string(), 3, 0),
            ("A-c2".to_string(), 3, 1),
            ("A-c3".to_string(), 3, 2),
        ]
    );
    assert!(
        txns.opening(QueryConsistency::Strict)
            .await
            .unwrap()
            .is_empty()
    );
    let again = txns.commit(a).await.unwrap_err();
    assert!(again.message.contains("not open"), "{again}");

    // Every node ends with the same partitions; no reader ever saw part of a transaction.
    for i in 0..3 {
        let node = client_of(&c.addrs[i..=i]).await;
        let want = entries(&client, 1, QueryConsistency::Strict).await;
        eventually("every node holds the transaction", WAIT, || {
            let (node, want) = (&node, want.clone());
            async move { (entries(node, 1, QueryConsistency::None).await == want).then_some(()) }
        })
        .await;
    }
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        assert!(
            r.await.unwrap(),
            "every reader saw the committed transaction"
        );
    }
    c.shutdown().await;
}

fn hold_publication(cfg: &mut journalkeeper::server::ServerConfig) {
    cfg.publish_transactions = false;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_decided_before_the_leader_stops_is_published_by_the_next_one_once() {
    // Every node holds decided transactions back, so the commit stays between PRE_COMPLETE
    // and COMPLETE until a node that publishes leads.
    let mut c = Cluster::start_tweaked(3, 0, hold_publication).await;
    let client = Arc::new(client_of(&c.addrs).await);
    let txns = client.transactions();
    let tx = txns.create(BTreeMap::new()).await.unwrap();
    txns.append(tx, 4, bytes(&["T1", "T2"])).await.unwrap();
    txns.append(tx, 5, bytes(&["T3"])).await.unwrap();
    txns.append(tx, 4, bytes(&["T4"])).await.unwrap();
    let committer = {
        let client = client.clone();
        tokio::spawn(async move { client.transactions().commit(tx).await })
    };
    eventually("the commit is decided", WAIT, || {
        let client = client.clone();
        async move {
            let open = client
                .transactions()
                .opening(QueryConsistency::Strict)
                .await
                .ok()?;
            (open.first().map(|t| t.phase) == Some(TxnPhase::Committing)).then_some(())
        }
    })
    .await;
    assert!(
        !committer.is_finished(),
        "answered before the entries are visible"
    );
    assert!(
        entries(&client, 4, QueryConsistency::Strict)
            .await
            .is_empty()
    );

    // The followers come back as nodes that publish; then the leader stops.
    c.tweak = |_| {};
    let leader = c.leader().await;
    for i in (0..3).filter(|&i| i != leader) {
        c.stop_node(i).await;
        c.start_node(i).await;
    }
    c.stop_node(leader).await;
    tokio::time::timeout(WAIT, committer)
        .await
        .expect("the next leader publishes")
        .unwrap()
        .unwrap();
    assert_eq!(
        entries(&client, 4, QueryConsistency::Strict).await,
        [
            ("T1".to_string(), 2, 0),
            ("T2".to_string(), 2, 1),
            ("T4".to_string(), 1, 0),
        ]
    );
    assert_eq!(
        entries(&client, 5, QueryConsistency::Strict).await,
        [("T3".to_string(), 1, 0)]
    );
    c.start_node(leader).await;
    let node = client_of(&c.addrs[leader..=leader]).await;
    eventually("the old leader holds it once", WAIT, || {
        let node = &node;
        async move { (entries(node, 4, QueryConsistency::None).await.len() == 3).then_some(()) }
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abandoned_transactions_expire_and_the_bounds_hold() {
    let c = Cluster::start(3).await;
    let client = client_of(&c.addrs).await;
    let txns = client.transactions();
    let idle = txns
        .create_with_timeout(BTreeMap::new(), Duration::from_millis(300))
        .await
        .unwrap();
    txns.append(idle, 0, bytes(&["lost"])).await.unwrap();
    let busy = txns
        .create_with_timeout(BTreeMap::new(), Duration::from_millis(300))
        .await
        .unwrap();
    // Kept busy for longer than its timeout plus the new-leader extension: it stays.
    for i in 0..12 {
        txns.append(busy, 0, bytes(&[&format!("kept{i}")]))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open: Vec<u64> = txns
        .opening(QueryConsistency::Strict)
        .await
        .unwrap()
        .iter()
        .map(|t| t.tx)
        .collect();
    assert_eq!(open, [busy], "the idle one expired, the busy one did not");
    let e = txns.append(idle, 0, bytes(&["late"])).await.unwrap_err();
    assert!(e.message.contains("not open"), "{e}");
    txns.commit(busy).await.unwrap();
    let seen = entries(&client, 0, QueryConsistency::Strict).await;
    assert_eq!(seen.len(), 12);
    assert_eq!(of_tx(&seen, "lost"), 0);

    // At most 128 open at once; ending one frees its slot.
    let mut ids = Vec::new();
    for _ in 0..128 {
        ids.push(txns.create(BTreeMap::new()).await.unwrap());
    }
    let full = txns.create(BTreeMap::new()).await.unwrap_err();
    assert_eq!(full.kind, ErrorKind::InvalidArgument);
    assert!(full.message.contains("128 transactions are open"), "{full}");
    assert!(txns.abort(ids[0]).await.unwrap());
    txns.create(BTreeMap::new()).await.unwrap();
    let huge = txns
        .append(ids[1], 0, vec![vec![0u8; 3 * 1024 * 1024 + 1]])
        .await
        .unwrap_err();
    assert_eq!(huge.kind, ErrorKind::InvalidArgument, "{huge}");
    let nowhere = txns.append(ids[1], 99, bytes(&["x"])).await.unwrap_err();
    assert!(nowhere.message.contains("no such partition"), "{nowhere}");
    c.shutdown().await;
}
