//! The coordination recipes through the public client on an in-process 3-node cluster:
//! leases (expiry, keep-alive across a failover, attached keys), locks with fencing tokens
//! served in order, elections, IDs and liveness groups.

mod server_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use journalkeeper::api::ErrorKind;
use journalkeeper::client::{Client, ClientConfig, MemberEvent};
use journalkeeper::state::watch::WatchFilter;
use server_support::{CLUSTER_ID, Cluster, WAIT};

async fn client_of(addrs: &[std::net::SocketAddr]) -> Client {
    let mut cfg = ClientConfig::new(CLUSTER_ID);
    cfg.request_timeout = Duration::from_secs(20);
    Client::connect(addrs.to_vec(), cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_passes_to_waiters_with_increasing_tokens() {
    let c = Cluster::start(3).await;
    let client = Arc::new(client_of(&c.addrs).await);
    let coord = client.coord();
    let a = coord.grant(Duration::from_secs(30)).await.unwrap();
    let t1 = coord.lock("res", a).await.unwrap();
    assert_eq!(
        coord.try_lock("res", a, Duration::ZERO).await.unwrap(),
        Some(t1),
        "the holder asking again gets its own token"
    );

    let other = coord.grant(Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        coord
            .try_lock("res", other, Duration::from_millis(200))
            .await
            .unwrap(),
        None,
        "held: a bounded wait gives up"
    );
    // Waiters block until the holder releases; each gets a higher token than the one before.
    let held = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for _ in 0..3 {
        let lease = coord.grant(Duration::from_secs(30)).await.unwrap();
        let (cl, held) = (client.clone(), held.clone());
        waiters.push(tokio::spawn(async move {
            let token = cl.coord().lock("res", lease).await.unwrap();
            held.lock().await.push(token);
            assert!(cl.coord().unlock("res", lease).await.unwrap());
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        held.lock().await.is_empty(),
        "nobody holds it before the release"
    );
    assert!(coord.unlock("res", a).await.unwrap());
    for w in waiters {
        tokio::time::timeout(WAIT, w).await.unwrap().unwrap();
    }
    let tokens = held.lock().await.clone();
    assert_eq!(tokens.len(), 3);
    assert!(
        tokens[0] > t1 && tokens.windows(2).all(|w| w[1] > w[0]),
        "{tokens:?}"
    );
    assert!(!coord.unlock("res", a).await.unwrap(), "released already");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_not_kept_alive_expires_and_takes_its_keys_and_locks_along() {
    let c = Cluster::start(3).await;
    let client = client_of(&c.addrs).await;
    let coord = client.coord();
    let ttl = Duration::from_millis(500);
    let short = coord.grant(ttl).await.unwrap();
    let long = coord.grant(Duration::from_secs(60)).await.unwrap();
    coord.put("svc/a", b"up".to_vec(), short).await.unwrap();
    let status = coord.time_to_live(short).await.unwrap();
    assert_eq!(status.keys, vec!["svc/a".to_string()]);
    assert!(status.remaining_ms <= status.ttl_ms + 600 * 2);
    let token = coord.lock("l", short).await.unwrap();
    let mut watch = client
        .kv()
        .watch(WatchFilter::Key("svc/a".into()), 0)
        .await
        .unwrap();
    let cl = &client;
    let waiter = async move { cl.coord().lock("l", long).await };
    let granted_at = Instant::now();
    let next_token = tokio::time::timeout(WAIT, waiter).await.unwrap().unwrap();
    let waited = granted_at.elapsed();
    assert!(next_token > token);
    // The lease lived at least its TTL (the leader extends leases only at a leader change).
    assert!(waited >= ttl - Duration::from_millis(100), "{waited:?}");
    let removal = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((removal.key.as_str(), removal.new_value), ("svc/a", None));
    assert_eq!(client.kv().get("svc/a").await.unwrap(), None);
    let e = coord.keep_alive(short).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::LeaseExpired);
    let e = coord.put("k", vec![], short).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::LeaseExpired);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kept_alive_lease_survives_a_failover_and_ids_keep_increasing() {
    let mut c = Cluster::start(3).await;
    let client = client_of(&c.addrs).await;
    let coord = client.coord();
    let lease = coord.grant(Duration::from_millis(800)).await.unwrap();
    let keeper = coord.keep_alive_forever(lease).await.unwrap();
    coord.put("held", b"1".to_vec(), lease).await.unwrap();
    let before = coord.next_ids("orders", 5).await.unwrap();
    assert_eq!(before, 1..6);
    let leader = c.leader().await;
    c.stop_node(leader).await;
    // Well past the TTL, through the election.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = coord.time_to_live(lease).await.unwrap();
    assert_eq!(status.keys, vec!["held".to_string()]);
    assert!(matches!(
        keeper.state(),
        journalkeeper::client::KeepAliveState::Alive { .. }
    ));
    let after = coord.next_id("orders").await.unwrap();
    assert_eq!(after, 6, "a new leader continues the sequence");
    keeper.revoke().await.unwrap();
    assert_eq!(client.kv().get("held").await.unwrap(), None);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_id_ranges_never_overlap() {
    let c = Cluster::start(3).await;
    let client = Arc::new(client_of(&c.addrs).await);
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let cl = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..20 {
                got.push(cl.coord().next_ids("ids", t + 1).await.unwrap());
            }
            got
        }));
    }
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for t in tasks {
        let ranges = t.await.unwrap();
        for w in ranges.windows(2) {
            assert!(w[1].start >= w[0].end, "one caller's ranges increase");
        }
        for r in ranges {
            total += r.end - r.start;
            seen.extend(r);
        }
    }
    assert_eq!(seen.len() as u64, total, "no id handed out twice");
    assert_eq!(seen.iter().copied().max(), Some(total), "no gaps either");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_abandoned_lock_wait_leaves_the_queue() {
    let c = Cluster::start(3).await;
    let client = Arc::new(client_of(&c.addrs).await);
    let coord = client.coord();
    let holder = coord.grant(Duration::from_secs(30)).await.unwrap();
    coord.lock("res", holder).await.unwrap();
    // A waiter that gives up after 300 ms by dropping its wait (its lease lives on).
    let quitter = coord.grant(Duration::from_secs(30)).await.unwrap();
    let gave_up =
        tokio::time::timeout(Duration::from_millis(300), coord.lock("res", quitter)).await;
    assert!(
        gave_up.is_err(),
        "the lock is held: the wait cannot end by itself"
    );
    let last = coord.grant(Duration::from_secs(30)).await.unwrap();
    assert!(coord.unlock("res", holder).await.unwrap());
    // Had the quitter stayed queued it would hold the lock now, and `last` would wait 30 s.
    let token = coord
        .try_lock("res", last, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(token.is_some(), "the abandoned waiter kept its place");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_election_has_one_leader_at_a_time_and_observers_follow_it() {
    let c = Cluster::start(3).await;
    let client = client_of(&c.addrs).await;
    let coord = client.coord();
    assert_eq!(coord.leader("svc").await.unwrap(), None);
    let mut observer = coord.observe("svc").await.unwrap();
    assert_eq!(observer.next().await.unwrap(), None);
    let a = coord.grant(Duration::from_secs(30)).await.unwrap();
    let b = coord.grant(Duration::from_secs(30)).await.unwrap();
    let ta = coord.campaign("svc", b"a".to_vec(), a).await.unwrap();
    let seen = observer.next().await.unwrap().unwrap();
    assert_eq!(
        (seen.value.as_slice(), seen.lease, seen.token),
        (&b"a"[..], a, ta)
    );
    let cl = &client;
    let b_campaign = async move { cl.coord().campaign("svc", b"b".to_vec(), b).await };
    let resign = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(coord.leader("svc").await.unwrap().unwrap().lease, a);
        coord.resign("svc", a).await.unwrap()
    };
    let (tb, resigned) = tokio::join!(b_campaign, resign);
    assert!(resigned);
    let tb = tb.unwrap();
    assert!(tb > ta);
    let seen = tokio::time::timeout(WAIT, observer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((seen.value.as_slice(), seen.token), (&b"b"[..], tb));
    coord.revoke(b).await.unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, observer.next())
            .await
            .unwrap()
            .unwrap(),
        None
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_register_list_and_leave_with_events() {
    let c = Cluster::start(3).await;
    let client = client_of(&c.addrs).await;
    let coord = client.coord();
    let mut events = coord.watch_members("workers").await.unwrap();
    let r1 = coord
        .register(
            "workers",
            "w1",
            b"10.0.0.1".to_vec(),
            Duration::from_millis(600),
        )
        .await
        .unwrap();
    let r2 = coord
        .register(
            "workers",
            "w2",
            b"10.0.0.2".to_vec(),
            Duration::from_millis(600),
        )
        .await
        .unwrap();
    let names = |m: Vec<journalkeeper::client::GroupMember>| {
        m.into_iter().map(|m| m.member).collect::<Vec<_>>()
    };
    assert_eq!(names(coord.members("workers").await.unwrap()), ["w1", "w2"]);
    for expected in ["w1", "w2"] {
        match events.next().await.unwrap() {
            MemberEvent::Joined(m) => assert_eq!(m.member, expected),
            other => panic!("{other:?}"),
        }
    }
    // Kept alive well past the TTL.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(coord.members("workers").await.unwrap().len(), 2);
    r1.close().await.unwrap();
    assert_eq!(
        events.next().await.unwrap(),
        MemberEvent::Left {
            member: "w1".into()
        }
    );
    // A member whose process stops keeping it alive leaves within its TTL (+ slack).
    let stopped = Instant::now();
    drop(r2);
    assert_eq!(
        tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap()
            .unwrap(),
        MemberEvent::Left {
            member: "w2".into()
        }
    );
    assert!(stopped.elapsed() < Duration::from_secs(3));
    assert!(coord.members("workers").await.unwrap().is_empty());
    c.shutdown().await;
}
