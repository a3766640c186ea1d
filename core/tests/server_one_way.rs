//! `ResponseConfig::OneWay` appends on a healthy embedded 3-node cluster: every accepted append
//! is stored, also when the client's first server is a follower and when the client is shut
//! down right after the last send; a follower answers a wire-level `OneWay` it cannot take.

mod server_support;

use std::time::{Duration, Instant};

use journalkeeper::api::{ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::client::protocol::{ClientRequest, ReplyBody, RequestBody, Wire};
use journalkeeper::client::{Client, ClientConfig};
use server_support::*;

const N: u32 = 1000;
const PARTITION: u16 = 5;

/// A client whose address list starts with node `first` (then the others).
async fn client_starting_at(c: &Cluster, first: usize) -> Client {
    let mut addrs = vec![c.addrs[first].to_string()];
    addrs.extend(
        (0..c.addrs.len())
            .filter(|&i| i != first)
            .map(|i| c.addrs[i].to_string()),
    );
    let mut cfg = ClientConfig::new(CLUSTER_ID);
    cfg.request_timeout = Duration::from_secs(15);
    cfg.attempt_timeout = Duration::from_secs(2);
    let cl = Client::connect(addrs, cfg).await.expect("client connects");
    assert_eq!(cl.leader(), None, "the client does not know the leader yet");
    cl
}

async fn send_one_way(cl: &Client) -> Duration {
    let started = Instant::now();
    for i in 0..N {
        let r = cl
            .journal()
            .append(
                PARTITION,
                vec![i.to_le_bytes().to_vec()],
                ResponseConfig::OneWay,
            )
            .await;
        assert_eq!(r.unwrap(), None, "append {i}");
    }
    started.elapsed()
}

/// Every entry of the partition, read STRICT through a fresh client.
async fn strict_payloads(c: &Cluster) -> Vec<u32> {
    let reader = client_starting_at(c, 0).await;
    let mut out = Vec::new();
    loop {
        let from = out.len() as u64;
        match reader
            .journal()
            .get(PARTITION, from, 4096, QueryConsistency::Strict)
            .await
        {
            Ok(es) if !es.is_empty() => out.extend(es.iter().map(|e| {
                assert_eq!(e.batch_size, 1, "each one-way call is its own batch");
                u32::from_le_bytes(e.payload.as_slice().try_into().expect("4-byte payload"))
            })),
            Ok(_) => break,
            Err(e) if e.kind == ErrorKind::IndexOverflow => break,
            Err(e) => panic!("strict read from {from}: {e}"),
        }
    }
    reader.close();
    out
}

fn follower_of(leader: usize) -> usize {
    (leader + 1) % 3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_appends_through_a_follower_first_client_are_all_stored() {
    init_tracing();
    let c = Cluster::start(3).await;
    let leader = c.leader().await;
    let cl = client_starting_at(&c, follower_of(leader)).await;
    let sent = send_one_way(&cl).await;
    let started = Instant::now();
    cl.flush(Duration::from_secs(10))
        .await
        .expect("every accepted one-way append is stored");
    let flushed = started.elapsed();
    eprintln!("{N} one-way appends accepted in {sent:?}, flushed in {flushed:?}");
    assert_eq!(cl.one_way_pending(), 0);
    assert_eq!(cl.one_way_dropped(), 0);
    assert!(
        cl.append_requests_sent() < u64::from(N),
        "queued one-way appends travel together ({} requests)",
        cl.append_requests_sent()
    );
    assert_eq!(
        cl.leader(),
        Some(c.addrs[leader].to_string()),
        "the sender followed the follower's hint"
    );
    assert_eq!(strict_payloads(&c).await, (0..N).collect::<Vec<_>>());
    cl.close();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_appends_are_stored_when_the_client_shuts_down_right_after_the_last_send() {
    init_tracing();
    let c = Cluster::start(3).await;
    let leader = c.leader().await;
    // Follower first, then leader first (the case that lost all but one of them before).
    for (round, first) in [follower_of(leader), leader].into_iter().enumerate() {
        let cl = client_starting_at(&c, first).await;
        let sent = send_one_way(&cl).await;
        let started = Instant::now();
        cl.shutdown()
            .await
            .expect("the flush on shutdown stores them");
        eprintln!(
            "round {round}: {N} one-way appends accepted in {sent:?}, shutdown (flush) took {:?}",
            started.elapsed()
        );
        assert!(cl.is_closed());
        let e = cl
            .journal()
            .append(PARTITION, vec![b"late".to_vec()], ResponseConfig::OneWay)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Closed, "{e}");
        drop(cl);
        let want: Vec<u32> = (0..=round as u32).flat_map(|_| 0..N).collect();
        assert_eq!(strict_payloads(&c).await, want, "after round {round}");
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_answers_a_wire_one_way_append_with_not_leader() {
    init_tracing();
    let c = Cluster::start(3).await;
    let leader = c.leader().await;
    let mut tc = c.client(follower_of(leader)).await;
    let session = tc.session();
    let (result, _) = tc
        .call(RequestBody::Append {
            partition: PARTITION,
            entries: vec![b"x".to_vec()],
            response: ResponseConfig::OneWay,
            session,
        })
        .await;
    let e = result.expect_err("a follower cannot take it");
    assert_eq!(e.kind, ErrorKind::NotLeader, "{e}");
    assert_eq!(e.leader_hint, Some(c.addrs[leader].to_string()));
    // Accepted by the leader: no reply, and the entry is stored (before the next write).
    let mut tl = c.client(leader).await;
    let session = tl.session();
    let one_way = RequestBody::Append {
        partition: PARTITION,
        entries: vec![b"y".to_vec()],
        response: ResponseConfig::OneWay,
        session,
    };
    tl.conn
        .send(&Wire::Request(ClientRequest {
            id: 999,
            body: one_way,
        }))
        .await
        .unwrap();
    let next = tl
        .append(PARTITION, vec![b"z".to_vec()], ResponseConfig::Replication)
        .await;
    assert!(
        matches!(
            next,
            Ok(ReplyBody::Appended {
                first_index: Some(1)
            })
        ),
        "{next:?}"
    );
    assert!(
        tl.pushes.is_empty(),
        "no reply to an accepted one-way write: {:?}",
        tl.pushes
    );
    c.shutdown().await;
}
