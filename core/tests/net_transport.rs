//! Transport behaviour over real loopback sockets: delivery and order, bad input isolation,
//! handshake refusals, reconnect, and client request/reply. No sleeps: every wait is a
//! channel or socket read under a deadline.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use journalkeeper::net::codec::{decode_value, encode_messages_frame, encode_value_frame};
use journalkeeper::net::frame::{FrameDecoder, encode_frame};
use journalkeeper::net::handshake::{HANDSHAKE_MAX_FRAME, PROTOCOL_VERSION};
use journalkeeper::net::{
    Connection, Hello, HelloReply, Inbound, Listener, NetConfig, NetError, Peers, RejectReason,
    Role, Transport,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::Receiver;

const CLUSTER: u64 = 42;
const WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Seq(u64),
    Req { id: u64, body: String },
    Resp { id: u64, body: String },
}

/// Test config; also installs a log subscriber (shown for failed tests; `RUST_LOG=warn`).
fn config() -> NetConfig {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut c = NetConfig::new(CLUSTER);
    c.backoff_initial = Duration::from_millis(10);
    c.backoff_max = Duration::from_millis(200);
    c.keepalive_interval = Duration::from_millis(100);
    c.idle_timeout = Duration::from_secs(2);
    c.peer_queue_depth = 16_384;
    c
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The next message, skipping the notices of ended client connections.
async fn next(rx: &mut Receiver<Inbound<Msg>>) -> Inbound<Msg> {
    loop {
        match next_any(rx).await {
            Inbound::ClientClosed { .. } => continue,
            other => return other,
        }
    }
}

async fn next_any(rx: &mut Receiver<Inbound<Msg>>) -> Inbound<Msg> {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("timed out waiting for an inbound message")
        .expect("inbound channel closed")
}

async fn next_peer(rx: &mut Receiver<Inbound<Msg>>) -> (u64, Msg) {
    match next(rx).await {
        Inbound::Peer { from, msg } => (from, msg),
        other => panic!("expected a peer message, got {other:?}"),
    }
}

/// Reads until the server closes the socket; panics if it stays open past the deadline.
async fn assert_closed_by_server(mut s: TcpStream) {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => panic!("server kept the connection open"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue, // e.g. a Reject frame before the close
        }
    }
}

/// Performs a handshake by hand on a raw socket and returns the reply.
async fn raw_handshake(addr: SocketAddr, hello: &Hello) -> (TcpStream, HelloReply) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    encode_value_frame(hello, "hello", HANDSHAKE_MAX_FRAME, &mut out).unwrap();
    s.write_all(&out).await.unwrap();
    let mut dec = FrameDecoder::new(HANDSHAKE_MAX_FRAME);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(payload) = dec.next_frame().unwrap() {
            return (s, decode_value(&payload, "reply").unwrap());
        }
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before the handshake reply");
        dec.extend(&buf[..n]);
    }
}

fn client_hello(client_id: u64) -> Hello {
    Hello::new(Role::Client { client_id }, &config())
}

/// Sends one request on a fresh client connection and expects the echo.
async fn client_roundtrip(addr: SocketAddr, rx: &mut Receiver<Inbound<Msg>>, id: u64) {
    let mut conn = Connection::<Msg>::connect(addr, client_hello(id), &config())
        .await
        .unwrap();
    conn.send(&Msg::Req {
        id,
        body: "ping".into(),
    })
    .await
    .unwrap();
    match next(rx).await {
        Inbound::Client {
            conn: handle,
            msg: Msg::Req { id: got, body },
        } => {
            assert_eq!(got, id);
            handle.send(&Msg::Resp { id, body }).unwrap();
        }
        other => panic!("expected a client request, got {other:?}"),
    }
    let reply = conn.recv_timeout(WAIT).await.unwrap();
    assert_eq!(
        reply,
        Msg::Resp {
            id,
            body: "ping".into()
        }
    );
}

#[tokio::test]
async fn two_transports_exchange_messages_both_ways() {
    let (mut a, mut a_rx) = Transport::<Msg>::start(1, loopback(), config())
        .await
        .unwrap();
    let (mut b, mut b_rx) = Transport::<Msg>::start(2, loopback(), config())
        .await
        .unwrap();
    let (a_addr, b_addr) = (a.local_addr(), b.local_addr());
    a.peers_mut().add(2, b_addr);
    b.peers_mut().add(1, a_addr);

    a.peers().send(2, &Msg::Seq(10)).unwrap();
    assert_eq!(next_peer(&mut b_rx).await, (1, Msg::Seq(10)));
    b.peers().send(1, &Msg::Seq(20)).unwrap();
    assert_eq!(next_peer(&mut a_rx).await, (2, Msg::Seq(20)));
    assert!(matches!(
        a.peers().send(9, &Msg::Seq(0)),
        Err(NetError::UnknownPeer(9))
    ));

    let sender = a.peers().get(2).unwrap().clone();
    a.shutdown().await;
    b.shutdown().await;
    assert!(matches!(sender.send(&Msg::Seq(1)), Err(NetError::Closed)));
}

// Single-threaded on purpose: all 10k are queued before the writer runs, so batching is
// deterministic (157 frames of at most 64 messages).
#[tokio::test]
async fn ten_thousand_pipelined_messages_arrive_in_order_in_batches() {
    // The receiver accepts smaller batches than the sender would build: the bound negotiated
    // in the handshake is the smaller one.
    let mut small = config();
    small.max_batch_messages = 64;
    let (b, mut b_rx) = Listener::<Msg>::bind(loopback(), 2, small).await.unwrap();
    let mut peers = Peers::<Msg>::new(1, config()).unwrap();
    let to_b = peers.add(2, b.local_addr());
    const N: u64 = 10_000;
    for i in 0..N {
        to_b.send(&Msg::Seq(i)).unwrap();
    }
    for i in 0..N {
        assert_eq!(next_peer(&mut b_rx).await, (1, Msg::Seq(i)));
    }
    let stats = to_b.stats();
    assert_eq!(stats.sent, N);
    assert_eq!(stats.frames, N.div_ceil(64), "{stats:?}");
    assert_eq!(stats.dropped_full + stats.dropped_unsent, 0);
    assert_eq!(stats.connects, 1);
    peers.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn full_peer_queue_drops_without_blocking() {
    let mut c = config();
    c.peer_queue_depth = 4;
    // Nobody listens on this port yet: the writer cannot drain the queue.
    let (b, _rx) = Listener::<Msg>::bind(loopback(), 2, c.clone())
        .await
        .unwrap();
    let addr = b.local_addr();
    b.shutdown().await;
    let mut peers = Peers::<Msg>::new(1, c).unwrap();
    let to_b = peers.add(2, addr);
    let mut refused = 0;
    for i in 0..20 {
        if let Err(e) = to_b.send(&Msg::Seq(i)) {
            assert!(matches!(e, NetError::QueueFull), "{e}");
            refused += 1;
        }
    }
    assert!(refused >= 15, "only {refused} refused");
    assert_eq!(to_b.stats().dropped_full, refused);
    peers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_closes_only_that_connection() {
    let (b, mut b_rx) = Listener::<Msg>::bind(loopback(), 2, config())
        .await
        .unwrap();
    let addr = b.local_addr();
    let mut peers = Peers::<Msg>::new(1, config()).unwrap();
    let to_b = peers.add(2, addr);
    to_b.send(&Msg::Seq(0)).unwrap();
    assert_eq!(next_peer(&mut b_rx).await, (1, Msg::Seq(0)));

    // 1. Text garbage: "GET " read as a length prefix is far over the frame bound.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_closed_by_server(s).await;

    // 2. An oversized length prefix alone, before any handshake.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
    assert_closed_by_server(s).await;

    // 3. A well-framed payload whose checksum is wrong.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[5, 0, 0, 0, 1, 2, 3, 4, b'h', b'e', b'l', b'l', b'o'])
        .await
        .unwrap();
    assert_closed_by_server(s).await;

    // 4. A valid frame that is not a Hello: a message before the handshake.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    encode_messages_frame(&[Msg::Seq(1)], 1 << 20, &mut out).unwrap();
    s.write_all(&out).await.unwrap();
    assert_closed_by_server(s).await;

    // 5. After a good handshake: an oversized length prefix.
    let (mut s, reply) = raw_handshake(addr, &client_hello(5)).await;
    assert!(matches!(reply, HelloReply::Welcome(_)));
    s.write_all(&(config().max_frame_size + 1).to_le_bytes())
        .await
        .unwrap();
    assert_closed_by_server(s).await;

    // 6. After a good handshake: a valid frame whose payload is not a batch of `Msg`.
    let (mut s, _) = raw_handshake(addr, &client_hello(6)).await;
    let mut out = Vec::new();
    encode_frame(&[1, 0xff, 0xff, 0xff, 0xff, 0xff], 1 << 20, &mut out).unwrap();
    s.write_all(&out).await.unwrap();
    assert_closed_by_server(s).await;

    // 7. A connection that closes in the middle of the handshake frame.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[200, 0, 0]).await.unwrap();
    drop(s);

    // The well-behaved peer and new clients are still served.
    for i in 1..=100 {
        to_b.send(&Msg::Seq(i)).unwrap();
    }
    for i in 1..=100 {
        assert_eq!(next_peer(&mut b_rx).await, (1, Msg::Seq(i)));
    }
    assert_eq!(
        to_b.stats().connects,
        1,
        "the peer connection was not disturbed"
    );
    client_roundtrip(addr, &mut b_rx, 77).await;
    peers.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn handshake_with_wrong_cluster_or_version_is_rejected_with_reason() {
    let (b, _b_rx) = Listener::<Msg>::bind(loopback(), 2, config())
        .await
        .unwrap();
    let addr = b.local_addr();

    let mut wrong_cluster = client_hello(1);
    wrong_cluster.cluster_id = CLUSTER + 1;
    let err = Connection::<Msg>::connect(addr, wrong_cluster, &config())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Rejected(RejectReason::ClusterMismatch {
                server: CLUSTER,
                client: 43
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("cluster id 43"), "{err}");

    let mut wrong_version = client_hello(1);
    wrong_version.version.major = PROTOCOL_VERSION.major + 1;
    let err = Connection::<Msg>::connect(addr, wrong_version.clone(), &config())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Rejected(RejectReason::VersionMismatch { .. })
        ),
        "{err}"
    );

    // The server closes the connection right after the Reject.
    let (s, reply) = raw_handshake(addr, &wrong_version).await;
    assert!(matches!(
        reply,
        HelloReply::Reject(RejectReason::VersionMismatch { .. })
    ));
    assert_closed_by_server(s).await;
    b.shutdown().await;
}

#[tokio::test]
async fn handshake_times_out_when_the_client_says_nothing() {
    let mut c = config();
    c.handshake_timeout = Duration::from_millis(200);
    let (b, _rx) = Listener::<Msg>::bind(loopback(), 2, c).await.unwrap();
    let s = TcpStream::connect(b.local_addr()).await.unwrap();
    assert_closed_by_server(s).await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_reconnects_after_the_listener_restarts_on_the_same_port() {
    let (b, mut b_rx) = Listener::<Msg>::bind(loopback(), 2, config())
        .await
        .unwrap();
    let addr = b.local_addr();
    let mut peers = Peers::<Msg>::new(1, config()).unwrap();
    let to_b = peers.add(2, addr);
    to_b.send(&Msg::Seq(0)).unwrap();
    assert_eq!(next_peer(&mut b_rx).await, (1, Msg::Seq(0)));

    b.shutdown().await;
    let (b2, mut b2_rx) = Listener::<Msg>::bind(addr, 2, config()).await.unwrap();

    // A message written into the dying connection may be lost (Raft tolerates loss); keep
    // sending until one arrives, then everything after it arrives in order.
    let deadline = Instant::now() + WAIT;
    let mut n = 1;
    let first = loop {
        assert!(Instant::now() < deadline, "no message after the restart");
        to_b.send(&Msg::Seq(n)).unwrap();
        n += 1;
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(250), b2_rx.recv()).await {
            break m;
        }
    };
    let Inbound::Peer {
        from: 1,
        msg: Msg::Seq(mut last),
    } = first
    else {
        panic!("unexpected {first:?}")
    };
    for i in n..n + 100 {
        to_b.send(&Msg::Seq(i)).unwrap();
    }
    while last < n + 99 {
        let (_, Msg::Seq(s)) = next_peer(&mut b2_rx).await else {
            panic!()
        };
        assert!(s > last, "out of order: {s} after {last}");
        last = s;
    }
    assert!(to_b.stats().connects >= 2);
    peers.shutdown().await;
    b2.shutdown().await;
}

#[tokio::test]
async fn idle_peer_connection_is_kept_alive_by_keepalives() {
    let mut c = config();
    c.idle_timeout = Duration::from_millis(300);
    c.keepalive_interval = Duration::from_millis(50);
    let (b, mut b_rx) = Listener::<Msg>::bind(loopback(), 2, c.clone())
        .await
        .unwrap();
    let mut peers = Peers::<Msg>::new(1, c).unwrap();
    let to_b = peers.add(2, b.local_addr());
    to_b.send(&Msg::Seq(0)).unwrap();
    assert_eq!(next_peer(&mut b_rx).await, (1, Msg::Seq(0)));
    // Nothing arrives for three idle timeouts (keepalives are not delivered to the node)...
    assert!(
        tokio::time::timeout(Duration::from_millis(900), b_rx.recv())
            .await
            .is_err()
    );
    // ...and the original connection is still the one in use.
    to_b.send(&Msg::Seq(1)).unwrap();
    assert_eq!(next_peer(&mut b_rx).await, (1, Msg::Seq(1)));
    assert_eq!(to_b.stats().connects, 1);
    peers.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn silent_client_is_closed_after_the_client_idle_timeout() {
    let mut c = config();
    c.client_idle_timeout = Duration::from_millis(200);
    let (b, _rx) = Listener::<Msg>::bind(loopback(), 2, c).await.unwrap();
    let (s, reply) = raw_handshake(b.local_addr(), &client_hello(3)).await;
    assert!(matches!(reply, HelloReply::Welcome(_)));
    assert_closed_by_server(s).await;
    b.shutdown().await;
}

#[tokio::test]
async fn client_requests_get_replies_on_the_same_connection_in_order() {
    let (b, mut b_rx) = Listener::<Msg>::bind(loopback(), 2, config())
        .await
        .unwrap();
    let addr = b.local_addr();
    client_roundtrip(addr, &mut b_rx, 1).await;

    // This client accepts at most 4 messages a frame: the server's reply batches honour it.
    let mut small = config();
    small.max_batch_messages = 4;
    let hello = Hello::new(Role::Client { client_id: 2 }, &small);
    let mut conn = Connection::<Msg>::connect(addr, hello, &small)
        .await
        .unwrap();
    assert_eq!(conn.welcome().node_id, Some(2));
    let five: Vec<Msg> = (0..5).map(Msg::Seq).collect();
    assert!(matches!(
        conn.send_batch(&five).await,
        Err(NetError::BatchTooLarge { count: 5, max: 4 })
    ));
    let reqs: Vec<Msg> = (0..500)
        .map(|id| Msg::Req {
            id,
            body: format!("r{id}"),
        })
        .collect();
    for chunk in reqs.chunks(4) {
        conn.send_batch(chunk).await.unwrap();
    }
    for id in 0..500 {
        let Inbound::Client {
            conn: handle,
            msg: Msg::Req { id: got, body },
        } = next(&mut b_rx).await
        else {
            panic!("expected a client request")
        };
        assert_eq!(got, id);
        assert_eq!(handle.client_id(), 2);
        handle.send(&Msg::Resp { id, body }).unwrap();
    }
    for id in 0..500 {
        assert_eq!(
            conn.recv_timeout(WAIT).await.unwrap(),
            Msg::Resp {
                id,
                body: format!("r{id}")
            }
        );
    }

    // Replies to a closed connection report Closed once the server notices.
    conn.send(&Msg::Req {
        id: 9,
        body: String::new(),
    })
    .await
    .unwrap();
    let Inbound::Client { conn: handle, .. } = next(&mut b_rx).await else {
        panic!()
    };
    drop(conn);
    tokio::time::timeout(WAIT, handle.closed())
        .await
        .expect("server did not notice the close");
    assert!(matches!(handle.send(&Msg::Seq(0)), Err(NetError::Closed)));
    b.shutdown().await;
}

#[tokio::test]
async fn shutdown_releases_the_port_and_closes_connections() {
    let (b, _rx) = Listener::<Msg>::bind(loopback(), 2, config())
        .await
        .unwrap();
    let addr = b.local_addr();
    let (s, _) = raw_handshake(addr, &client_hello(1)).await;
    b.shutdown().await;
    assert_closed_by_server(s).await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_newer_connection_from_the_same_node_supersedes_the_old_one() {
    let (b, mut b_rx) = Listener::<Msg>::bind(loopback(), 2, config())
        .await
        .unwrap();
    let addr = b.local_addr();
    let peer1 = Hello::new(Role::Peer { node_id: 1 }, &config());
    let frame = |m: Msg| {
        let mut out = Vec::new();
        encode_messages_frame(&[m], 1 << 20, &mut out).unwrap();
        out
    };

    let (mut old, _) = raw_handshake(addr, &peer1).await;
    old.write_all(&frame(Msg::Seq(1))).await.unwrap();
    assert_eq!(next_peer(&mut b_rx).await, (1, Msg::Seq(1)));

    let (mut new, _) = raw_handshake(addr, &peer1).await;
    new.write_all(&frame(Msg::Seq(2))).await.unwrap();
    assert_eq!(next_peer(&mut b_rx).await, (1, Msg::Seq(2)));

    // The old connection may no longer deliver: it is closed instead, so messages of the two
    // connections never interleave.
    old.write_all(&frame(Msg::Seq(3))).await.unwrap();
    assert_closed_by_server(old).await;
    new.write_all(&frame(Msg::Seq(4))).await.unwrap();
    assert_eq!(next_peer(&mut b_rx).await, (1, Msg::Seq(4)));
    b.shutdown().await;
}

#[tokio::test]
async fn an_ended_client_connection_is_announced_after_its_messages_and_uncounted() {
    let (b, mut rx) = Listener::<Msg>::bind(loopback(), 2, config())
        .await
        .unwrap();
    let counts = b.counts();
    assert_eq!((counts.clients(), counts.peers()), (0, 0));
    let mut ids = Vec::new();
    for round in 0..3u64 {
        let mut conn = Connection::<Msg>::connect(b.local_addr(), client_hello(round), &config())
            .await
            .unwrap();
        let burst: Vec<Msg> = (0..5).map(Msg::Seq).collect();
        conn.send_batch(&burst).await.unwrap();
        // Gone without waiting for anything: the five messages still come first.
        drop(conn);
        let mut id = None;
        for expect in 0..5 {
            match next_any(&mut rx).await {
                Inbound::Client {
                    conn,
                    msg: Msg::Seq(n),
                } => {
                    assert_eq!(n, expect);
                    assert!(id.is_none_or(|i| i == conn.id()));
                    id = Some(conn.id());
                }
                other => panic!("expected Seq({expect}), got {other:?}"),
            }
        }
        match next_any(&mut rx).await {
            Inbound::ClientClosed { conn } => assert_eq!(Some(conn), id),
            other => panic!("expected the close notice, got {other:?}"),
        }
        ids.push(id);
        // Uncounted by the time (or just after) the notice is read.
        let deadline = Instant::now() + WAIT;
        while counts.clients() != 0 {
            assert!(
                Instant::now() < deadline,
                "{} clients open",
                counts.clients()
            );
            tokio::task::yield_now().await;
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "one notice per connection");
    // A connection refused in the handshake never delivered anything: no notice for it.
    let mut bad = client_hello(9);
    bad.cluster_id = CLUSTER + 1;
    let (s, reply) = raw_handshake(b.local_addr(), &bad).await;
    assert!(matches!(reply, HelloReply::Reject(_)));
    drop(s);
    let mut conn = Connection::<Msg>::connect(b.local_addr(), client_hello(10), &config())
        .await
        .unwrap();
    conn.send(&Msg::Seq(42)).await.unwrap();
    match next_any(&mut rx).await {
        Inbound::Client { conn: handle, .. } => assert_eq!(handle.client_id(), 10),
        other => panic!("expected the new client's message, got {other:?}"),
    }
    assert_eq!(counts.clients(), 1);
    b.shutdown().await;
}
