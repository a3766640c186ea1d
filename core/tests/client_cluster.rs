//! The cluster client against fake nodes on loopback (see `client_fake`): leader discovery,
//! idempotent retries, deadlines, SEQUENTIAL reads, watch resumption, multiplexing, argument
//! checks and close. No sleeps as synchronisation: waits are on the fake's request log or on
//! the client's own futures, each under a bounded safety timeout.

mod client_fake;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client_fake::{Behaviour, FakeNode, Store, WAIT};
use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::client::protocol::{MAX_ENTRY_BYTES, RequestBody};
use journalkeeper::client::{Client, ClientConfig};
use journalkeeper::state::watch::WatchFilter;

fn config() -> ClientConfig {
    let mut c = ClientConfig::new(client_fake::CLUSTER);
    c.request_timeout = Duration::from_secs(5);
    c.attempt_timeout = Duration::from_secs(2);
    c.backoff_initial = Duration::from_millis(5);
    c.backoff_max = Duration::from_millis(50);
    c
}

fn store() -> Arc<Mutex<Store>> {
    Arc::new(Mutex::new(Store::default()))
}

fn leader() -> Behaviour {
    Behaviour {
        leader: true,
        ..Behaviour::default()
    }
}

fn follower_of(leader: &FakeNode) -> Behaviour {
    Behaviour {
        leader_hint: Some(leader.addr_string()),
        ..Behaviour::default()
    }
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("safety timeout")
}

/// A leader that drops the connection after every third append it receives.
fn dropping_leader() -> Behaviour {
    Behaviour {
        drop_after_append: 3,
        ..leader()
    }
}

/// `tasks` tasks each making `calls` REPLICATION appends to `partition` through clones of
/// `client`; call `i` of task `t` appends `entries(t, i)`. Returns each call's first index
/// with its entries.
async fn append_from_tasks(
    client: &Client,
    partition: u16,
    tasks: u8,
    calls: u8,
    entries: fn(u8, u8) -> Vec<Vec<u8>>,
) -> Vec<(u64, Vec<Vec<u8>>)> {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let client = client.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..calls {
                let batch = entries(t, i);
                let first = client
                    .journal()
                    .append(partition, batch.clone(), ResponseConfig::Replication)
                    .await
                    .unwrap()
                    .unwrap();
                got.push((first, batch));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(within(h).await.unwrap());
    }
    all
}

fn appends(bodies: &[RequestBody]) -> usize {
    bodies
        .iter()
        .filter(|b| matches!(b, RequestBody::Append { .. }))
        .count()
}

#[tokio::test]
async fn the_leader_is_found_by_following_the_not_leader_hint() {
    let s = store();
    let b = FakeNode::start(s.clone(), leader()).await;
    let a = FakeNode::start(s.clone(), follower_of(&b)).await;
    let client = Client::connect([a.addr_string()], config()).await.unwrap();
    let j = client.journal();
    assert_eq!(
        within(j.append(0, vec![b"x".to_vec()], ResponseConfig::Replication))
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(client.leader(), Some(b.addr_string()));
    assert_eq!(appends(&a.bodies()), 1, "the follower answered once");
    // The leader is remembered: the next write goes straight to it.
    assert_eq!(
        within(j.append(0, vec![b"y".to_vec()], ResponseConfig::All))
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(appends(&a.bodies()), 1);
    assert_eq!(appends(&b.bodies()), 2);
    // Strict reads go to the leader too; status asks exactly the node named.
    let got = within(j.get(0, 0, 10, QueryConsistency::Strict))
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    let status = within(client.admin().status(&a.addr_string()))
        .await
        .unwrap();
    assert_eq!(status.leader.unwrap().addr, b.addr_string());
    client.close();
}

#[tokio::test]
async fn a_write_retried_after_a_dropped_connection_keeps_its_session_seq() {
    let s = store();
    let node = FakeNode::start(
        s.clone(),
        Behaviour {
            drop_after_append: 1,
            ..leader()
        },
    )
    .await;
    let client = Client::connect([node.addr_string()], config())
        .await
        .unwrap();
    let first = within(client.journal().append(
        0,
        vec![b"once".to_vec()],
        ResponseConfig::Replication,
    ))
    .await
    .unwrap();
    assert_eq!(first, Some(0));
    let sessions: Vec<_> = node
        .bodies()
        .into_iter()
        .filter_map(|b| match b {
            RequestBody::Append { session, .. } => Some(session),
            _ => None,
        })
        .collect();
    assert_eq!(sessions.len(), 2, "the append was sent twice");
    assert_eq!(sessions[0], sessions[1], "the retry reuses the request id");
    assert_eq!(sessions[0].client_id, client.client_id());
    assert_eq!(s.lock().unwrap().journal[&0].len(), 1, "applied once");
    // The next write gets the next sequence number; the first is no longer unacknowledged.
    within(
        client
            .journal()
            .append(0, vec![b"next".to_vec()], ResponseConfig::Replication),
    )
    .await
    .unwrap();
    let last = node.bodies().into_iter().rev().find_map(|b| match b {
        RequestBody::Append { session, .. } => Some(session),
        _ => None,
    });
    let last = last.unwrap();
    assert_eq!(last.seq, sessions[0].seq + 1);
    assert_eq!(last.first_unacked, last.seq);
}

#[tokio::test]
async fn a_silent_server_yields_timeout_within_the_deadline() {
    let node = FakeNode::start(
        store(),
        Behaviour {
            silent: true,
            ..leader()
        },
    )
    .await;
    let mut cfg = config();
    cfg.request_timeout = Duration::from_millis(300);
    cfg.attempt_timeout = Duration::from_millis(300);
    let client = Client::connect(&[node.addr], cfg).await.unwrap(); // SocketAddrs work too
    let start = Instant::now();
    let err = within(client.kv().get("k")).await.unwrap_err();
    let elapsed = start.elapsed();
    assert_eq!(err.kind, ErrorKind::Timeout, "{err}");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[tokio::test]
async fn sequential_reads_carry_the_floor_and_skip_a_node_that_is_behind() {
    let s = store();
    let b = FakeNode::start(s.clone(), leader()).await;
    let a = FakeNode::start(
        s.clone(),
        Behaviour {
            applied_override: Some(0),
            ..follower_of(&b)
        },
    )
    .await;
    let client = Client::connect([a.addr_string(), b.addr_string()], config())
        .await
        .unwrap();
    for i in 0..3u8 {
        within(
            client
                .journal()
                .append(0, vec![vec![i]], ResponseConfig::Replication),
        )
        .await
        .unwrap();
    }
    let floor = client.applied_floor();
    assert_eq!(floor, 3, "write replies raised the floor");
    let got = within(client.journal().get(0, 0, 10, QueryConsistency::Sequential))
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    let to_a: Vec<u64> = a
        .bodies()
        .into_iter()
        .filter_map(|b| match b {
            RequestBody::Get { read, .. } => Some(read.min_applied),
            _ => None,
        })
        .collect();
    assert_eq!(
        to_a,
        vec![floor],
        "the lagging node was asked with the floor"
    );
    assert!(
        b.bodies()
            .iter()
            .any(|r| matches!(r, RequestBody::Get { read, .. } if read.min_applied >= floor)),
        "the retry went to a node that is caught up"
    );
    // Once the follower catches up it serves again (after the leader, it is tried again).
    a.set(|b| b.applied_override = None);
    let kv = client.kv().with_consistency(QueryConsistency::Sequential);
    assert_eq!(within(kv.get("missing")).await.unwrap(), None);
    // NONE reads never require a floor.
    let none = client.journal().with_consistency(QueryConsistency::None);
    within(none.max_indices()).await.unwrap();
    let last_min = a
        .bodies()
        .into_iter()
        .chain(b.bodies())
        .filter_map(|r| match r {
            RequestBody::MaxIndices { read } => Some(read.min_applied),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(last_min, vec![0]);
}

#[tokio::test]
async fn a_not_yet_node_is_retried_until_it_catches_up() {
    let s = store();
    let node = FakeNode::start(s.clone(), leader()).await;
    let client = Client::connect([node.addr_string()], config())
        .await
        .unwrap();
    within(client.kv().set("k", b"v".to_vec())).await.unwrap();
    node.set(|b| b.applied_override = Some(0));
    let kv = client.kv().with_consistency(QueryConsistency::Sequential);
    let read = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .kv()
                .with_consistency(QueryConsistency::Sequential)
                .get("k")
                .await
        }
    });
    // Wait for two "not yet" answers, then let the node catch up.
    node.wait_until(|log| {
        log.iter()
            .filter(|r| matches!(r, RequestBody::KvRead { .. }))
            .count()
            >= 2
    })
    .await;
    node.set(|b| b.applied_override = None);
    assert_eq!(within(read).await.unwrap().unwrap(), Some(b"v".to_vec()));
    assert!(within(kv.exists("k")).await.unwrap());
}

#[tokio::test]
async fn a_watch_resumes_after_the_connection_drops_without_loss_or_duplicates() {
    let s = store();
    let node = FakeNode::start(s.clone(), leader()).await;
    let client = Client::connect([node.addr_string()], config())
        .await
        .unwrap();
    let kv = client.kv();
    within(kv.set("a/1", b"1".to_vec())).await.unwrap();
    let mut stream = within(kv.watch(WatchFilter::Prefix("a/".into()), 1))
        .await
        .unwrap();
    let e1 = within(stream.next()).await.unwrap();
    assert_eq!((e1.index, e1.new_value.as_deref()), (1, Some(&b"1"[..])));

    node.restart().await;
    within(kv.set("a/1", b"2".to_vec())).await.unwrap();
    within(kv.set("b/other", b"x".to_vec())).await.unwrap();
    let e2 = within(stream.next()).await.unwrap();
    assert_eq!((e2.index, e2.new_value.as_deref()), (2, Some(&b"2"[..])));
    within(kv.remove("a/1")).await.unwrap();
    let e3 = within(stream.next()).await.unwrap();
    assert_eq!((e3.index, e3.new_value), (4, None));

    let froms: Vec<u64> = node
        .bodies()
        .into_iter()
        .filter_map(|b| match b {
            RequestBody::Watch { from_index, .. } => Some(from_index),
            _ => None,
        })
        .collect();
    assert_eq!(froms, vec![1, 2], "resumed from the last index + 1");
    assert_eq!(stream.next_index(), 5);
}

/// 32 tasks × 16 appends through one client; returns the client and the fake node's log.
async fn concurrent_appends(coalescing: bool) -> (Client, Vec<RequestBody>) {
    let s = store();
    let node = FakeNode::start(s.clone(), leader()).await;
    let mut cfg = config();
    cfg.append_coalescing = coalescing;
    let client = Client::connect([node.addr_string()], cfg).await.unwrap();
    let all = append_from_tasks(&client, 1, 32, 16, |t, i| vec![vec![t, i]]).await;
    let indices: BTreeSet<u64> = all.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, (0..512).collect::<BTreeSet<u64>>());
    let journal = s.lock().unwrap().journal[&1].clone();
    for (index, entries) in &all {
        let e = &journal[*index as usize];
        assert_eq!(&e.payload, &entries[0], "index {index}");
        assert_eq!(
            (e.batch_size, e.offset),
            (1, 0),
            "each call is its own batch"
        );
    }
    let requests = node.requests();
    let conns: BTreeSet<_> = requests.iter().map(|(c, _)| *c).collect();
    assert_eq!(conns.len(), 1, "multiplexed over one connection");
    let bodies: Vec<RequestBody> = requests.into_iter().map(|(_, b)| b).collect();
    let seqs: BTreeSet<u64> = bodies.iter().filter_map(append_seq).collect();
    assert_eq!(
        seqs.len() as u64,
        client.append_requests_sent(),
        "one sequence number per request"
    );
    (client, bodies)
}

fn append_seq(b: &RequestBody) -> Option<u64> {
    match b {
        RequestBody::Append { session, .. } | RequestBody::AppendBatches { session, .. } => {
            Some(session.seq)
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_one_connection_and_get_their_own_replies() {
    let (client, bodies) = concurrent_appends(false).await;
    assert_eq!(client.append_requests_sent(), 512, "one request per write");
    assert_eq!(appends(&bodies), 512);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_through_one_client_are_coalesced() {
    let (client, bodies) = concurrent_appends(true).await;
    let batched = bodies
        .iter()
        .filter(|b| matches!(b, RequestBody::AppendBatches { .. }))
        .count() as u64;
    let sent = client.append_requests_sent();
    assert_eq!(appends(&bodies) as u64 + batched, sent);
    assert!(sent < 512, "{sent} requests for 512 appends");
    assert!(batched > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coalesced_append_retried_after_a_dropped_connection_is_applied_once() {
    let s = store();
    let node = FakeNode::start(s.clone(), dropping_leader()).await;
    let client = Client::connect([node.addr_string()], config())
        .await
        .unwrap();
    let all = append_from_tasks(&client, 1, 16, 8, |t, i| {
        vec![vec![t, i]; 1 + (t % 3) as usize]
    })
    .await;
    let total: usize = all.iter().map(|(_, e)| e.len()).sum();
    let journal = s.lock().unwrap().journal[&1].clone();
    assert_eq!(journal.len(), total, "every append applied exactly once");
    for (first, entries) in &all {
        for (k, payload) in entries.iter().enumerate() {
            let e = &journal[*first as usize + k];
            assert_eq!(&e.payload, payload);
            assert_eq!(
                (e.batch_size as usize, e.offset as usize),
                (entries.len(), k)
            );
        }
    }
    let bodies = node.bodies();
    let sessions: Vec<u64> = bodies.iter().filter_map(append_seq).collect();
    let distinct: BTreeSet<u64> = sessions.iter().copied().collect();
    assert!(sessions.len() > distinct.len(), "some request was retried");
    assert_eq!(distinct.len() as u64, client.append_requests_sent());
}

#[tokio::test]
async fn bad_arguments_are_rejected_without_network_traffic() {
    let node = FakeNode::start(store(), leader()).await;
    let client = Client::connect([node.addr_string()], config())
        .await
        .unwrap();
    let j = client.journal();
    let errors = [
        j.append(
            0,
            vec![vec![0; MAX_ENTRY_BYTES + 1]],
            ResponseConfig::Replication,
        )
        .await
        .unwrap_err(),
        j.append(0, vec![], ResponseConfig::Replication)
            .await
            .unwrap_err(),
        j.get(0, 0, 0, QueryConsistency::Strict).await.unwrap_err(),
        j.scale_partitions(&[]).await.unwrap_err(),
        client.kv().set("", b"v".to_vec()).await.unwrap_err(),
        client
            .kv()
            .set("k", vec![0; (1 << 20) + 1])
            .await
            .unwrap_err(),
        client.admin().status("nonsense").await.unwrap_err(),
    ];
    for e in errors {
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    }
    assert!(node.bodies().is_empty(), "nothing was sent");
    let bad = Client::connect(["no-port"], config()).await.unwrap_err();
    assert_eq!(bad.kind, ErrorKind::InvalidArgument);
}

#[tokio::test]
async fn close_fails_calls_in_flight_and_every_later_call_with_closed() {
    let node = FakeNode::start(
        store(),
        Behaviour {
            silent: true,
            ..leader()
        },
    )
    .await;
    let client = Client::connect([node.addr_string()], config())
        .await
        .unwrap();
    let pending = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .journal()
                .append(0, vec![b"x".to_vec()], ResponseConfig::Replication)
                .await
        }
    });
    node.wait_until(|log| appends(log) == 1).await;
    client.close();
    let start = Instant::now();
    assert_eq!(
        within(pending).await.unwrap().unwrap_err().kind,
        ErrorKind::Closed
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(
        client.kv().get("k").await.unwrap_err().kind,
        ErrorKind::Closed
    );
    assert_eq!(
        client
            .kv()
            .watch(WatchFilter::Key("k".into()), 0)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Closed
    );
    assert_eq!(client.sync().await.unwrap_err().kind, ErrorKind::Closed);
    assert!(client.is_closed());
}

#[tokio::test]
async fn a_watch_stream_ends_with_closed_when_the_client_closes() {
    let node = FakeNode::start(store(), leader()).await;
    let client = Client::connect([node.addr_string()], config())
        .await
        .unwrap();
    let mut stream = within(client.kv().watch(WatchFilter::Prefix(String::new()), 0))
        .await
        .unwrap();
    let waiting = tokio::spawn(async move { stream.next().await });
    node.wait_until(|log| log.iter().any(|r| matches!(r, RequestBody::Watch { .. })))
        .await;
    client.close();
    assert_eq!(
        within(waiting).await.unwrap().unwrap_err().kind,
        ErrorKind::Closed
    );
}

#[tokio::test]
async fn no_reachable_server_is_unavailable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = Client::connect([format!("127.0.0.1:{port}")], config())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn journal_and_kv_calls_map_replies_to_values() {
    let node = FakeNode::start(store(), leader()).await;
    let client = Client::connect([node.addr_string()], config())
        .await
        .unwrap();
    let (j, kv) = (client.journal(), client.kv());
    within(j.scale_partitions(&[0, 2])).await.unwrap();
    assert_eq!(
        within(j.list_partitions()).await.unwrap(),
        BTreeSet::from([0, 2])
    );
    within(j.append(
        2,
        vec![b"a".to_vec(), b"b".to_vec()],
        ResponseConfig::Replication,
    ))
    .await
    .unwrap();
    assert_eq!(
        within(j.append(2, vec![b"c".to_vec()], ResponseConfig::Persistence))
            .await
            .unwrap(),
        None
    );
    assert_eq!(within(j.max_indices()).await.unwrap()[&2], 3);
    assert_eq!(within(j.min_indices()).await.unwrap()[&2], 0);
    assert_eq!(within(j.query_index(2, 1500)).await.unwrap(), Some(1));
    let err = within(j.get(2, 3, 1, QueryConsistency::Strict))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::IndexOverflow, "past the end is final");
    assert_eq!(
        within(j.append(2, vec![b"d".to_vec()], ResponseConfig::OneWay))
            .await
            .unwrap(),
        None
    );
    node.wait_until(|log| appends(log) == 3).await;

    assert_eq!(within(kv.set("k1", b"1".to_vec())).await.unwrap(), None);
    assert_eq!(
        within(kv.set("k1", b"2".to_vec())).await.unwrap(),
        Some(b"1".to_vec())
    );
    within(kv.set("k2", b"x".to_vec())).await.unwrap();
    within(kv.set("z", b"x".to_vec())).await.unwrap();
    let listed = within(kv.list("k")).await.unwrap();
    assert_eq!(
        listed,
        vec![
            ("k1".to_string(), b"2".to_vec()),
            ("k2".to_string(), b"x".to_vec())
        ]
    );
    let cas = within(kv.compare_and_set("k1", Some(b"1".to_vec()), Some(b"3".to_vec())))
        .await
        .unwrap();
    assert!(!cas.swapped);
    assert_eq!(cas.current, Some(b"2".to_vec()));
    let cas = within(kv.compare_and_set("k1", Some(b"2".to_vec()), Some(b"3".to_vec())))
        .await
        .unwrap();
    assert!(cas.swapped);
    assert_eq!(within(kv.remove("k1")).await.unwrap(), Some(b"3".to_vec()));
    assert!(!within(kv.exists("k1")).await.unwrap());
    let applied = within(client.sync()).await.unwrap();
    assert!(applied >= 8 && client.applied_floor() >= applied);
    within(client.admin().cluster_configuration())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_watch_that_overflows_its_queue_resubscribes_without_losing_events() {
    let node = FakeNode::start(store(), leader()).await;
    let mut cfg = config();
    cfg.watch_queue_depth = 1;
    let client = Client::connect([node.addr_string()], cfg).await.unwrap();
    let kv = client.kv();
    let mut stream = within(kv.watch(WatchFilter::Prefix(String::new()), 0))
        .await
        .unwrap();
    for i in 0..10u8 {
        within(kv.set(&format!("k{i}"), vec![i])).await.unwrap();
    }
    let mut indices = Vec::new();
    for _ in 0..10 {
        indices.push(within(stream.next()).await.unwrap().index);
    }
    assert_eq!(indices, (1..=10).collect::<Vec<u64>>());
    let bodies = node.bodies();
    let froms: Vec<u64> = bodies
        .iter()
        .filter_map(|b| match b {
            RequestBody::Watch { from_index, .. } => Some(*from_index),
            _ => None,
        })
        .collect();
    assert_eq!(froms, vec![0, 2], "resubscribed after the first event");
    assert!(
        bodies
            .iter()
            .any(|b| matches!(b, RequestBody::Unwatch { .. })),
        "the overflowed watch was closed on the server"
    );
}

#[tokio::test]
async fn a_leader_change_is_followed_and_unhinted_refusals_move_on() {
    let s = store();
    let a = FakeNode::start(s.clone(), Behaviour::default()).await;
    let b = FakeNode::start(s.clone(), leader()).await;
    // `a` knows no leader: the client tries the next address.
    let client = Client::connect([a.addr_string(), b.addr_string()], config())
        .await
        .unwrap();
    within(client.kv().set("k", b"1".to_vec())).await.unwrap();
    assert_eq!(client.leader(), Some(b.addr_string()));
    // Leadership moves to `a`; `b` now points there.
    a.set(|x| x.leader = true);
    let hint = a.addr_string();
    b.set(move |x| {
        x.leader = false;
        x.leader_hint = Some(hint);
    });
    within(client.kv().set("k", b"2".to_vec())).await.unwrap();
    assert_eq!(client.leader(), Some(a.addr_string()));
    assert_eq!(
        within(client.kv().get("k")).await.unwrap(),
        Some(b"2".to_vec())
    );
}

#[tokio::test]
async fn without_any_leader_the_call_ends_after_max_attempts_or_the_deadline() {
    let s = store();
    let a = FakeNode::start(s.clone(), Behaviour::default()).await;
    let b = FakeNode::start(s.clone(), Behaviour::default()).await;
    let mut cfg = config();
    cfg.max_attempts = 3;
    let client = Client::connect([a.addr_string(), b.addr_string()], cfg)
        .await
        .unwrap();
    let err = within(client.sync()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotLeader, "{err}");
    let asked = [&a, &b]
        .iter()
        .map(|n| {
            n.bodies()
                .iter()
                .filter(|r| matches!(r, RequestBody::AppliedIndex))
                .count()
        })
        .sum::<usize>();
    assert_eq!(asked, 3, "exactly max_attempts attempts");

    let mut cfg = config();
    cfg.request_timeout = Duration::from_millis(200);
    cfg.attempt_timeout = Duration::from_millis(200);
    let client = Client::connect([a.addr_string()], cfg).await.unwrap();
    let start = Instant::now();
    let err = within(client.sync()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout, "{err}");
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn connect_skips_an_unreachable_address() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let node = FakeNode::start(store(), leader()).await;
    let client = Client::connect([dead, node.addr_string()], config())
        .await
        .unwrap();
    assert_eq!(
        within(
            client
                .journal()
                .append(0, vec![b"x".to_vec()], ResponseConfig::Replication)
        )
        .await
        .unwrap(),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_survive_dropped_connections_each_applied_once() {
    let s = store();
    let node = FakeNode::start(s.clone(), dropping_leader()).await;
    let client = Client::connect([node.addr_string()], config())
        .await
        .unwrap();
    let all = append_from_tasks(&client, 0, 8, 8, |t, i| vec![vec![t, i]]).await;
    let journal = s.lock().unwrap().journal[&0].clone();
    assert_eq!(journal.len(), 64, "every write applied exactly once");
    for (index, entries) in &all {
        assert_eq!(
            &journal[*index as usize].payload, &entries[0],
            "index {index}"
        );
    }
    // Three append requests went unanswered (connection dropped) and were sent again.
    let sent = node.bodies().iter().filter_map(append_seq).count() as u64;
    assert!(sent >= client.append_requests_sent() + 3, "{sent}");
}

#[tokio::test]
async fn keepalives_keep_a_watch_only_connection_open_past_the_server_idle_timeout() {
    let mut net = journalkeeper::net::NetConfig::new(client_fake::CLUSTER);
    net.client_idle_timeout = Duration::from_millis(200);
    let node = FakeNode::start_with(store(), leader(), net).await;
    let mut cfg = config();
    cfg.net.keepalive_interval = Duration::from_millis(40);
    let client = Client::connect([node.addr_string()], cfg).await.unwrap();
    let mut stream = within(client.kv().watch(WatchFilter::Key("k".into()), 0))
        .await
        .unwrap();
    // The behaviour under test is idleness itself: stay silent for three idle timeouts.
    tokio::time::sleep(Duration::from_millis(600)).await;
    within(client.kv().set("k", b"v".to_vec())).await.unwrap();
    assert_eq!(within(stream.next()).await.unwrap().index, 1);
    let conns: BTreeSet<_> = node.requests().iter().map(|(c, _)| *c).collect();
    assert_eq!(conns.len(), 1, "the connection was never closed as idle");
}

#[tokio::test]
async fn a_hint_naming_a_dead_node_is_not_followed_again() {
    // A follower that still names its dead leader (it does until its election timer fires),
    // and the new leader.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let s = store();
    let stale = FakeNode::start(
        s.clone(),
        Behaviour {
            leader_hint: Some(dead),
            ..Behaviour::default()
        },
    )
    .await;
    let new_leader = FakeNode::start(s.clone(), leader()).await;
    let mut cfg = config();
    // A backoff long enough to see: no attempt may wait for it.
    cfg.backoff_initial = Duration::from_millis(400);
    cfg.backoff_max = Duration::from_millis(400);
    // Rotation starts at whichever node handshook first: several clients take both orders.
    for round in 0..6 {
        let before = stale.bodies().len();
        let client = Client::connect([stale.addr_string(), new_leader.addr_string()], cfg.clone())
            .await
            .unwrap();
        let start = Instant::now();
        within(client.kv().set("k", vec![round])).await.unwrap();
        assert!(
            start.elapsed() < Duration::from_millis(200),
            "round {round}: a backoff on the way: {:?}",
            start.elapsed()
        );
        assert_eq!(client.leader(), Some(new_leader.addr_string()));
        let asked = stale.bodies()[before..]
            .iter()
            .filter(|b| matches!(b, RequestBody::KvWrite { .. }))
            .count();
        assert!(
            asked <= 2,
            "round {round}: the stale follower was asked {asked} times"
        );
        client.close();
    }
}

#[tokio::test]
async fn a_node_that_accepts_but_never_handshakes_costs_no_timeout() {
    // The kernel completes TCP connects into the backlog of a listener nobody accepts from:
    // what a SIGSTOPped node looks like.
    let stopped = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = store();
    let node = FakeNode::start(s.clone(), leader()).await;
    let start = Instant::now();
    let client = Client::connect(
        [
            stopped.local_addr().unwrap().to_string(),
            node.addr_string(),
        ],
        config(),
    )
    .await
    .unwrap();
    within(client.kv().set("k", b"1".to_vec())).await.unwrap();
    within(client.kv().get("k")).await.unwrap();
    let took = start.elapsed();
    assert!(
        took < config().net.handshake_timeout / 2,
        "connect + write + read took {took:?}"
    );
}
