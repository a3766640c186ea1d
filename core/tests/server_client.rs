//! The real cluster client against an embedded 3-node cluster: read levels, write
//! acknowledgement levels, KV compare-and-set under contention, watches, snapshots.

mod server_support;

use std::collections::BTreeSet;
use std::time::Duration;

use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::client::protocol::{
    MAX_APPEND_ENTRIES, MAX_ENTRY_BYTES, ReplyBody, RequestBody,
};
use journalkeeper::client::{Client, ClientConfig};
use journalkeeper::state::watch::WatchFilter;
use server_support::*;

async fn client(c: &Cluster) -> Client {
    let mut cfg = ClientConfig::new(CLUSTER_ID);
    cfg.request_timeout = Duration::from_secs(15);
    cfg.attempt_timeout = Duration::from_secs(2);
    Client::connect(c.addrs.iter().map(|a| a.to_string()), cfg)
        .await
        .expect("client connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_reads_see_acknowledged_writes_also_after_a_leader_change() {
    init_tracing();
    let mut c = Cluster::start(3).await;
    let cl = client(&c).await;
    let j = cl.journal();
    for k in 0..20u64 {
        let first = j
            .append(
                3,
                vec![k.to_le_bytes().to_vec()],
                ResponseConfig::Replication,
            )
            .await
            .unwrap();
        assert_eq!(first, Some(k));
        let max = j.max_indices().await.unwrap();
        assert_eq!(
            max.get(&3),
            Some(&(k + 1)),
            "strict max index right after write {k}"
        );
        cl.kv().set("last", k.to_le_bytes().to_vec()).await.unwrap();
        assert_eq!(
            cl.kv().get("last").await.unwrap(),
            Some(k.to_le_bytes().to_vec())
        );
    }
    let l = c.leader().await;
    c.stop_node(l).await;
    // The first STRICT reads after the change must already see everything acknowledged.
    let max = j.max_indices().await.unwrap();
    assert_eq!(max.get(&3), Some(&20));
    assert_eq!(
        cl.kv().get("last").await.unwrap(),
        Some(19u64.to_le_bytes().to_vec())
    );
    let first = j
        .append(3, vec![b"after".to_vec()], ResponseConfig::Replication)
        .await
        .unwrap();
    assert_eq!(first, Some(20));
    let got = j.get(3, 20, 1, QueryConsistency::Strict).await.unwrap();
    assert_eq!(got[0].payload, b"after".to_vec());
    cl.close();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_reads_never_go_backwards() {
    init_tracing();
    let c = Cluster::start(3).await;
    let writer = client(&c).await;
    let reader = client(&c).await;
    let w = tokio::spawn(async move {
        for k in 0..60u64 {
            writer
                .journal()
                .append(
                    0,
                    vec![k.to_le_bytes().to_vec()],
                    ResponseConfig::Replication,
                )
                .await
                .unwrap();
        }
        writer.close();
    });
    let mut last_max = 0;
    let mut last_floor = 0;
    while !w.is_finished() {
        let j = reader
            .journal()
            .with_consistency(QueryConsistency::Sequential);
        let max = j.max_indices().await.unwrap().get(&0).copied().unwrap_or(0);
        assert!(
            max >= last_max,
            "max index went back from {last_max} to {max}"
        );
        let floor = reader.applied_floor();
        assert!(floor >= last_floor);
        last_max = max;
        last_floor = floor;
    }
    w.await.unwrap();
    // After a two-step read (sync), sequential reads anywhere see every write.
    reader.sync().await.unwrap();
    let j = reader
        .journal()
        .with_consistency(QueryConsistency::Sequential);
    assert_eq!(j.max_indices().await.unwrap().get(&0), Some(&60));
    reader.close();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistence_ack_means_the_leaders_disk_covers_the_entries() {
    init_tracing();
    let c = Cluster::start(3).await;
    let l = c.leader().await;
    let leader = c.servers[l].as_ref().unwrap();
    let mut t = c.client(l).await;
    for n in 1..=5usize {
        let before = leader.status().last_index;
        let batch = vec![vec![7u8; 100]; n];
        let r = t.append(2, batch, ResponseConfig::Persistence).await;
        assert_eq!(r, Ok(ReplyBody::Appended { first_index: None }));
        let s = leader.status();
        assert!(
            s.durable_index >= before + n as u64,
            "durable {} < {}",
            s.durable_index,
            before + n as u64
        );
        let r = t.append(2, vec![vec![1]], ResponseConfig::All).await;
        assert!(
            matches!(
                r,
                Ok(ReplyBody::Appended {
                    first_index: Some(_)
                })
            ),
            "{r:?}"
        );
        let s = leader.status();
        let all_index = before + n as u64 + 1;
        assert!(
            s.durable_index >= all_index && s.applied_index >= all_index,
            "{s:?}"
        );
        let r = t.append(2, vec![vec![2]], ResponseConfig::Receive).await;
        assert_eq!(r, Ok(ReplyBody::Appended { first_index: None }));
    }
    // Retrying a session returns the first result and appends nothing.
    let session = t.session();
    let a = t
        .append_with(
            4,
            vec![b"x".to_vec(), b"y".to_vec()],
            ResponseConfig::Replication,
            session,
        )
        .await;
    let b = t
        .append_with(
            4,
            vec![b"x".to_vec(), b"y".to_vec()],
            ResponseConfig::Replication,
            session,
        )
        .await;
    assert_eq!(
        a,
        Ok(ReplyBody::Appended {
            first_index: Some(0)
        })
    );
    assert_eq!(a, b);
    let (r, _) = t.get(4, 0, 10, QueryConsistency::Strict, 0).await;
    match r {
        Ok(ReplyBody::Entries(es)) => assert_eq!(es.len(), 2),
        other => panic!("{other:?}"),
    }
    // Two pipelined sends of one session (a retry racing the original) append once.
    let session = t.session();
    for id in [900u64, 901] {
        t.conn
            .send(&journalkeeper::client::protocol::Wire::Request(
                journalkeeper::client::protocol::ClientRequest {
                    id,
                    body: journalkeeper::client::protocol::RequestBody::Append {
                        partition: 4,
                        entries: vec![b"z".to_vec()],
                        response: ResponseConfig::Replication,
                        session,
                    },
                },
            ))
            .await
            .unwrap();
    }
    let mut replies = Vec::new();
    while replies.len() < 2 {
        if let journalkeeper::client::protocol::Wire::Server(
            journalkeeper::client::protocol::ServerMessage::Reply { result, .. },
        ) = t.conn.recv_timeout(WAIT).await.unwrap()
        {
            replies.push(result);
        }
    }
    assert_eq!(
        replies[0],
        Ok(ReplyBody::Appended {
            first_index: Some(2)
        })
    );
    assert_eq!(replies[0], replies[1]);
    let (r, _) = t.get(4, 0, 10, QueryConsistency::Strict, 0).await;
    match r {
        Ok(ReplyBody::Entries(es)) => assert_eq!(es.len(), 3),
        other => panic!("{other:?}"),
    }
    // Reserved partitions and bad reads are refused with the documented kinds.
    let r = t
        .append(30_000, vec![vec![1]], ResponseConfig::Replication)
        .await;
    assert_eq!(
        kind(&r),
        Some(journalkeeper::api::ErrorKind::InvalidArgument)
    );
    let (r, _) = t.get(4, 3, 1, QueryConsistency::Strict, 0).await;
    assert_eq!(kind(&r), Some(journalkeeper::api::ErrorKind::IndexOverflow));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas_counter_counts_exactly_the_successful_swaps() {
    init_tracing();
    let c = Cluster::start(3).await;
    let cl = client(&c).await;
    cl.kv()
        .set("counter", 0u64.to_le_bytes().to_vec())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let cl = cl.clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = 0u64;
            for _ in 0..15 {
                let cur = cl.kv().get("counter").await.unwrap().unwrap();
                let n = u64::from_le_bytes(cur.as_slice().try_into().unwrap());
                let r = cl
                    .kv()
                    .compare_and_set("counter", Some(cur), Some((n + 1).to_le_bytes().to_vec()))
                    .await
                    .unwrap();
                if r.swapped {
                    wins += 1;
                }
            }
            wins
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let v = cl.kv().get("counter").await.unwrap().unwrap();
    assert_eq!(u64::from_le_bytes(v.as_slice().try_into().unwrap()), total);
    assert!(total > 0);
    cl.close();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_an_index_sees_every_change_once_in_order() {
    init_tracing();
    let c = Cluster::start(3).await;
    let cl = client(&c).await;
    cl.kv().set("other", b"-".to_vec()).await.unwrap();
    for k in 0..10u8 {
        cl.kv().set(&format!("w/{k}"), vec![k]).await.unwrap();
    }
    // From index 1: the history (the unrelated key filtered out), then live changes.
    let mut watch = cl
        .kv()
        .watch(WatchFilter::Prefix("w/".into()), 1)
        .await
        .unwrap();
    for k in 10..20u8 {
        cl.kv().set(&format!("w/{k}"), vec![k]).await.unwrap();
    }
    cl.kv().remove("w/0").await.unwrap();
    let mut last = 0;
    for k in 0..20u8 {
        let e = tokio::time::timeout(WAIT, watch.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.key, format!("w/{k}"));
        assert_eq!(e.new_value, Some(vec![k]));
        assert!(e.index > last);
        last = e.index;
    }
    let e = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.key.as_str(), e.old_value, e.new_value),
        ("w/0", Some(vec![0]), None)
    );
    drop(watch);
    cl.close();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_indices_and_query_index_follow_the_journal() {
    init_tracing();
    let c = Cluster::start(3).await;
    let cl = client(&c).await;
    let j = cl.journal();
    j.scale_partitions(&[0, 1, 7]).await.unwrap();
    assert_eq!(
        j.list_partitions().await.unwrap(),
        [0, 1, 7].into_iter().collect()
    );
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    j.append(7, vec![b"a".to_vec(), b"b".to_vec()], ResponseConfig::All)
        .await
        .unwrap();
    let e = j
        .append(9, vec![b"c".to_vec()], ResponseConfig::Replication)
        .await
        .unwrap_err();
    assert_eq!(
        e.kind,
        journalkeeper::api::ErrorKind::InvalidArgument,
        "undeclared partition"
    );
    let e = j.get(9, 0, 1, QueryConsistency::Strict).await.unwrap_err();
    assert_eq!(e.kind, journalkeeper::api::ErrorKind::InvalidArgument);
    let entries = j.get(7, 0, 10, QueryConsistency::Strict).await.unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!((entries[1].batch_size, entries[1].offset), (2, 1));
    assert!(entries[0].timestamp_ms >= t0);
    let max = j.max_indices().await.unwrap();
    let min = j.min_indices().await.unwrap();
    assert_eq!(
        (max.get(&7), max.get(&9), max.get(&0)),
        (Some(&2), None, Some(&0))
    );
    assert_eq!(min.get(&7), Some(&0));
    assert_eq!(j.query_index(7, 0).await.unwrap(), Some(0));
    assert_eq!(
        j.query_index(7, u64::MAX).await.unwrap(),
        Some(0),
        "equal times: the first"
    );
    assert_eq!(j.query_index(1, t0).await.unwrap(), None, "empty partition");
    let st = cl.admin().cluster_configuration().await.unwrap();
    assert_eq!(st.voters.len(), 3);
    assert!(st.leader.is_some());
    for (i, addr) in c.addrs.iter().enumerate() {
        let s = cl.admin().status(&addr.to_string()).await.unwrap();
        assert_eq!(s.node_id, i as u64 + 1);
        assert_eq!(s.configuration.voters.len(), 3);
        assert!(s.leader.is_some() && s.term > 0 && s.last_index >= s.commit_index);
        assert_eq!(
            s.role == journalkeeper::client::protocol::NodeRole::Leader,
            s.leader.as_ref().map(|m| m.node_id) == Some(s.node_id)
        );
    }
    cl.close();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_across_a_leader_crash_are_each_present_once_in_order() {
    init_tracing();
    let mut c = Cluster::start(3).await;
    let l = c.leader().await;
    let cl = client(&c).await;
    let w = {
        let cl = cl.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for k in 0..80u64 {
                match cl
                    .journal()
                    .append(
                        0,
                        vec![k.to_le_bytes().to_vec()],
                        ResponseConfig::Replication,
                    )
                    .await
                {
                    Ok(_) => acked.push(k),
                    Err(e) => panic!("append {k} failed: {e}"),
                }
            }
            acked
        })
    };
    wait_until!("some writes", {
        let s = c.servers[l].as_ref().unwrap().status();
        (s.applied_index > 20).then_some(())
    });
    c.stop_node(l).await;
    let acked = w.await.unwrap();
    let got: Vec<u64> = {
        let mut out = Vec::new();
        let mut from = 0;
        loop {
            match cl
                .journal()
                .get(0, from, 1000, QueryConsistency::Strict)
                .await
            {
                Ok(es) => {
                    from += es.len() as u64;
                    out.extend(
                        es.iter()
                            .map(|e| u64::from_le_bytes(e.payload.as_slice().try_into().unwrap())),
                    );
                }
                Err(e) if e.kind == journalkeeper::api::ErrorKind::IndexOverflow => break,
                Err(e) => panic!("{e}"),
            }
        }
        out
    };
    assert_eq!(got, acked, "every acknowledged write once, in order");
    cl.close();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_yet_and_compacted_watch_history_are_reported_with_their_kinds() {
    use journalkeeper::api::ErrorKind;
    use journalkeeper::client::protocol::{ReadAt, RequestBody};
    init_tracing();
    let c = Cluster::start_tweaked(3, 0, |cfg| cfg.kv_limits.event_history = 4).await;
    let l = c.leader().await;
    let cl = client(&c).await;
    for k in 0..10u8 {
        cl.kv().set(&format!("h/{k}"), vec![k]).await.unwrap();
    }
    let mut t = c.client(l).await;
    // A SEQUENTIAL read for an index the node has not applied: "not yet".
    let (r, applied) = t
        .call(RequestBody::ListPartitions {
            read: ReadAt {
                consistency: QueryConsistency::Sequential,
                min_applied: 1_000_000,
            },
        })
        .await;
    assert_eq!(kind(&r), Some(ErrorKind::IndexOverflow));
    assert!(applied < 1_000_000);
    // A watch from before the retained history.
    let (r, _) = t
        .call(RequestBody::Watch {
            watch_id: 1,
            filter: WatchFilter::Prefix("h/".into()),
            from_index: 1,
        })
        .await;
    assert_eq!(kind(&r), Some(ErrorKind::IndexUnderflow));
    // From 0: only new changes, pushed live.
    let (r, _) = t
        .call(RequestBody::Watch {
            watch_id: 2,
            filter: WatchFilter::Key("h/3".into()),
            from_index: 0,
        })
        .await;
    assert!(matches!(r, Ok(ReplyBody::Watching { .. })), "{r:?}");
    cl.kv().set("h/2", vec![20]).await.unwrap();
    cl.kv().set("h/3", vec![30]).await.unwrap();
    match t.next_push().await {
        journalkeeper::client::protocol::ServerMessage::WatchEvents { watch_id, events } => {
            assert_eq!(watch_id, 2);
            assert_eq!(events.len(), 1);
            assert_eq!(
                (events[0].key.as_str(), events[0].new_value.clone()),
                ("h/3", Some(vec![30]))
            );
        }
        other => panic!("{other:?}"),
    }
    cl.close();
    c.shutdown().await;
}

/// The apply thread indexes a partition entry only once the local journal holds it, so a read
/// right after an acknowledged append always finds it — even when the followers' copies made the
/// entry committed before the leader's own writer had appended it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_get_right_after_an_append_finds_the_entry() {
    init_tracing();
    let c = Cluster::start(3).await;
    let cl = client(&c).await;
    let mut tasks = Vec::new();
    for t in 0..8u16 {
        let cl = cl.clone();
        tasks.push(tokio::spawn(async move {
            let j = cl.journal();
            for k in 0..40u64 {
                let payload = format!("task {t} write {k}").into_bytes();
                let index = j
                    .append(t, vec![payload.clone()], ResponseConfig::Replication)
                    .await
                    .expect("append")
                    .expect("REPLICATION returns the index");
                let got = j
                    .get(t, index, 1, QueryConsistency::Strict)
                    .await
                    .unwrap_or_else(|e| panic!("get({t}, {index}) right after its append: {e}"));
                assert_eq!(got.len(), 1);
                assert_eq!(got[0].payload, payload);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_through_one_client_are_coalesced_and_keep_their_batches() {
    init_tracing();
    let c = Cluster::start(3).await;
    let cl = client(&c).await;
    // Find the leader first, so the appends below overlap with requests in flight.
    cl.sync().await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..64u32 {
        let cl = cl.clone();
        tasks.push(tokio::spawn(async move {
            let len = 1 + (t % 4) as usize;
            let payloads: Vec<Vec<u8>> =
                (0..len).map(|k| format!("{t}/{k}").into_bytes()).collect();
            let first = cl
                .journal()
                .append(6, payloads.clone(), ResponseConfig::Replication)
                .await
                .unwrap()
                .expect("REPLICATION returns the first index");
            (first, payloads)
        }));
    }
    let mut calls = Vec::new();
    for t in tasks {
        calls.push(t.await.unwrap());
    }
    let firsts: BTreeSet<u64> = calls.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        firsts.len(),
        calls.len(),
        "every call has its own first index"
    );
    let total: usize = calls.iter().map(|(_, p)| p.len()).sum();
    let mut entries = Vec::new();
    while entries.len() < total {
        let got = cl
            .journal()
            .get(6, entries.len() as u64, 4096, QueryConsistency::Strict)
            .await
            .unwrap();
        entries.extend(got);
    }
    assert_eq!(entries.len(), total, "nothing else was appended");
    for (first, payloads) in &calls {
        for (k, payload) in payloads.iter().enumerate() {
            let e = &entries[*first as usize + k];
            assert_eq!(e.index, first + k as u64);
            assert_eq!(&e.payload, payload, "index {}", e.index);
            assert_eq!(
                (e.batch_size as usize, e.offset as usize),
                (payloads.len(), k),
                "the caller's batch reads back as one batch"
            );
        }
    }
    let sent = cl.append_requests_sent();
    assert!(sent < 64, "{sent} append requests for 64 concurrent calls");
    cl.close();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_batches_bounds_are_checked_by_the_server() {
    init_tracing();
    let c = Cluster::start(3).await;
    let l = c.leader().await;
    let mut t = c.client(l).await;
    let batches = |b: Vec<Vec<Vec<u8>>>, session| RequestBody::AppendBatches {
        partition: 7,
        batches: b,
        response: ResponseConfig::Replication,
        session,
    };
    let one = vec![b"x".to_vec()];
    let cases = [
        (vec![], "0 entries"),
        (
            vec![one.clone(), vec![], one.clone()],
            "batch 1 of the append",
        ),
        (
            vec![vec![vec![]; MAX_APPEND_ENTRIES], one.clone()],
            "entries is outside",
        ),
        (
            vec![vec![vec![0; MAX_ENTRY_BYTES]; 2], one.clone()],
            "bytes exceeds the limit",
        ),
    ];
    for (b, says) in cases {
        let session = t.session();
        let (r, _) = t.call(batches(b, session)).await;
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
        assert!(e.message.contains(says), "{e} should say {says}");
    }
    // Reserved partitions too.
    let session = t.session();
    let (r, _) = t
        .call(RequestBody::AppendBatches {
            partition: 30_000,
            batches: vec![one.clone()],
            response: ResponseConfig::Replication,
            session,
        })
        .await;
    assert_eq!(kind(&r), Some(ErrorKind::InvalidArgument));
    // A good one answers with the first sub-batch's index; a retry appends nothing.
    let session = t.session();
    let good = || {
        batches(
            vec![one.clone(), vec![b"a".to_vec(), b"b".to_vec()]],
            session,
        )
    };
    let (a, _) = t.call(good()).await;
    let (b, _) = t.call(good()).await;
    assert_eq!(
        a,
        Ok(ReplyBody::Appended {
            first_index: Some(0)
        })
    );
    assert_eq!(a, b);
    let (r, _) = t.get(7, 0, 10, QueryConsistency::Strict, 0).await;
    let Ok(ReplyBody::Entries(es)) = r else {
        panic!("{r:?}")
    };
    let shape: Vec<_> = es
        .iter()
        .map(|e| (e.batch_size, e.offset, e.payload.clone()))
        .collect();
    assert_eq!(
        shape,
        vec![
            (1, 0, b"x".to_vec()),
            (2, 0, b"a".to_vec()),
            (2, 1, b"b".to_vec())
        ]
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_holds_at_most_1024_watches_and_releases_them_when_it_ends() {
    init_tracing();
    let c = Cluster::start(1).await;
    let addr = c.addrs[0].to_string();
    let monitor = client(&c).await;
    let cl = client(&c).await;
    let mut watches = Vec::new();
    for k in 0..1024 {
        watches.push(
            cl.kv()
                .watch(WatchFilter::Key(format!("w/{k}")), 0)
                .await
                .unwrap(),
        );
    }
    let e = cl
        .kv()
        .watch(WatchFilter::Key("one/too/many".into()), 0)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("1024 watches"), "{e}");
    let r = monitor
        .admin()
        .status(&addr)
        .await
        .unwrap()
        .resources
        .unwrap();
    assert_eq!((r.watches, r.watching_connections), (1024, 1));
    assert_eq!(r.client_connections, 2);
    // Unwatching makes room (the Unwatch goes out on the connection before the next Watch).
    drop(watches.pop());
    let mut last = cl
        .kv()
        .watch(WatchFilter::Key("w/x".into()), 0)
        .await
        .unwrap();
    cl.kv().set("w/x", b"v".to_vec()).await.unwrap();
    let ev = tokio::time::timeout(WAIT, last.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.key, "w/x");
    // Freed without unwatching anything: the server drops all 1024 with the connection.
    cl.close();
    drop(cl);
    let settled = eventually("the watches released", WAIT, || async {
        let r = monitor.admin().status(&addr).await.ok()?.resources?;
        (r.watches == 0 && r.client_connections == 1).then_some(r)
    })
    .await;
    assert_eq!(settled.watching_connections, 0);
    drop(watches);
    drop(last);
    monitor.close();
    c.shutdown().await;
}
