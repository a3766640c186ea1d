//! Test-only helpers for in-process clusters: ephemeral ports, temp dirs, a minimal protocol
//! client (one connection, sequential calls) and condition polling with deadlines.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use journalkeeper::api::{Error, ErrorKind, QueryConsistency, ResponseConfig};
use journalkeeper::client::protocol::{
    ClientRequest, NoPeer, ReadAt, ReplyBody, RequestBody, ServerMessage, Wire,
};
use journalkeeper::net::{Connection, Hello, NetConfig, Role};
use journalkeeper::server::{Server, ServerConfig, ServerStatus};
use journalkeeper::state::StateMachine;
use journalkeeper::state::session::RequestId;

pub const CLUSTER_ID: u64 = 42;
pub const WAIT: Duration = Duration::from_secs(10);

/// Polls `check` every 10 ms until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A cluster client (`journalkeeper::client::Client`) of the nodes at `addrs`.
pub async fn client_of(addrs: &[SocketAddr]) -> journalkeeper::client::Client {
    journalkeeper::client::Client::connect(
        addrs.iter().map(|a| a.to_string()),
        journalkeeper::client::ClientConfig::new(CLUSTER_ID),
    )
    .await
    .unwrap()
}

/// A free loopback address.
pub fn free_addr() -> SocketAddr {
    free_ports(1)[0]
}

fn free_ports(n: usize) -> Vec<SocketAddr> {
    let ls: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap()).collect()
}

/// The user state machines node `i` hosts: `(name, machine)` pairs.
pub type Hosting = fn(usize) -> Vec<(String, Box<dyn StateMachine>)>;

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub addrs: Vec<SocketAddr>,
    pub servers: Vec<Option<Server>>,
    pub snapshot_interval: u64,
    /// Applied to every node's configuration.
    pub tweak: fn(&mut ServerConfig),
    /// Nodes `0..initial` formed the cluster; later ones joined it.
    pub initial: usize,
    /// The user state machines node `i` hosts (called at each start).
    pub machines: Hosting,
}

impl Cluster {
    pub async fn start(n: usize) -> Cluster {
        Self::start_with(n, 0).await
    }

    pub async fn start_with(n: usize, snapshot_interval: u64) -> Cluster {
        Self::start_tweaked(n, snapshot_interval, |_| {}).await
    }

    pub async fn start_tweaked(
        n: usize,
        snapshot_interval: u64,
        tweak: fn(&mut ServerConfig),
    ) -> Cluster {
        Self::start_hosting(n, snapshot_interval, tweak, |_| Vec::new()).await
    }

    /// A cluster whose node `i` hosts `machines(i)`.
    pub async fn start_hosting(
        n: usize,
        snapshot_interval: u64,
        tweak: fn(&mut ServerConfig),
        machines: Hosting,
    ) -> Cluster {
        let mut c = Cluster {
            machines,
            tweak,
            dir: tempfile::tempdir().unwrap(),
            addrs: free_ports(n),
            servers: (0..n).map(|_| None).collect(),
            snapshot_interval,
            initial: n,
        };
        for i in 0..n {
            c.start_node(i).await;
        }
        c
    }

    pub fn config(&self, i: usize) -> ServerConfig {
        // The founders name each other; a joiner names the founders and itself.
        let peers = self
            .addrs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j < self.initial || *j == i)
            .map(|(j, a)| (j as u64 + 1, *a));
        let mut cfg = ServerConfig::new(
            i as u64 + 1,
            self.addrs[i],
            CLUSTER_ID,
            self.dir.path().join(format!("n{}", i + 1)),
        )
        .with_peers(peers)
        .with_timeouts(300, 30)
        .with_snapshots(self.snapshot_interval, 20);
        cfg.tick_ms = 5;
        cfg.partitions = (0..16).collect();
        cfg.net.backoff_initial = Duration::from_millis(10);
        cfg.net.backoff_max = Duration::from_millis(100);
        cfg.join = i >= self.initial;
        (self.tweak)(&mut cfg);
        cfg
    }

    /// The configuration of observer `id` listening on `listen` and pulling from `parents`,
    /// with the cluster's timings and snapshot interval (not its `tweak`).
    pub fn observer_config(
        &self,
        id: u64,
        listen: SocketAddr,
        parents: Vec<SocketAddr>,
    ) -> ServerConfig {
        let mut cfg = ServerConfig::new(
            id,
            listen,
            CLUSTER_ID,
            self.dir.path().join(format!("obs{id}")),
        )
        .with_timeouts(300, 30)
        .with_snapshots(self.snapshot_interval, 20)
        .with_observer(parents);
        cfg.tick_ms = 5;
        cfg.partitions = (0..16).collect();
        cfg.net.backoff_initial = Duration::from_millis(10);
        cfg.net.backoff_max = Duration::from_millis(100);
        cfg
    }

    /// Starts a new, empty node that joins the running cluster (`join = true`); returns its
    /// index (its node id is index + 1). It is a member only once a leader adds it.
    pub async fn join_node(&mut self) -> usize {
        let i = self.addrs.len();
        self.addrs.push(free_ports(1)[0]);
        self.servers.push(None);
        self.start_node(i).await;
        i
    }

    pub async fn start_node(&mut self, i: usize) {
        let s = self.try_start_node(i).await.expect("server starts");
        self.servers[i] = Some(s);
    }

    /// Starts node `i` with its configuration and machines; `Err` when it refuses to start.
    pub async fn try_start_node(&self, i: usize) -> Result<Server, Error> {
        let mut b = Server::builder(self.config(i));
        for (name, machine) in (self.machines)(i) {
            b = b.state_machine_boxed(name, machine);
        }
        b.start().await
    }

    pub async fn stop_node(&mut self, i: usize) {
        if let Some(s) = self.servers[i].take() {
            s.shutdown().await;
        }
    }

    pub async fn shutdown(mut self) {
        for i in 0..self.servers.len() {
            self.stop_node(i).await;
        }
    }

    pub fn statuses(&self) -> Vec<ServerStatus> {
        self.servers.iter().flatten().map(|s| s.status()).collect()
    }

    /// Waits for exactly one leader among the running nodes whose term every running node
    /// agrees on; returns its index in `servers`.
    pub async fn leader(&self) -> usize {
        eventually("a leader", WAIT, || async {
            let st: Vec<(usize, ServerStatus)> = self
                .servers
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|s| (i, s.status())))
                .collect();
            let leaders: Vec<_> = st.iter().filter(|(_, s)| s.is_leader()).collect();
            if leaders.len() != 1 {
                return None;
            }
            let (i, l) = leaders[0];
            let agreed = st
                .iter()
                .all(|(_, s)| s.term == l.term && s.leader == Some(l.node_id));
            (agreed && l.applied_index >= l.commit_index && l.commit_index > 0).then_some(*i)
        })
        .await
    }

    pub async fn client(&self, i: usize) -> TestClient {
        TestClient::connect(self.addrs[i]).await
    }
}

/// A minimal client speaking the protocol on one connection.
pub struct TestClient {
    pub conn: Connection<Wire<NoPeer>>,
    pub next: u64,
    pub client_id: u64,
    pub seq: u64,
    pub pushes: Vec<ServerMessage>,
}

static NEXT_CLIENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);

impl TestClient {
    pub async fn connect(addr: SocketAddr) -> TestClient {
        let cfg = NetConfig::new(CLUSTER_ID);
        let client_id = NEXT_CLIENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hello = Hello::new(Role::Client { client_id }, &cfg);
        let conn = Connection::connect(addr, hello, &cfg)
            .await
            .expect("connect");
        TestClient {
            conn,
            next: 1,
            client_id,
            seq: 0,
            pushes: Vec::new(),
        }
    }

    /// Sends one request and waits for its reply: `(result, applied_index)`.
    pub async fn call(&mut self, body: RequestBody) -> (Result<ReplyBody, Error>, u64) {
        let id = self.next;
        self.next += 1;
        self.conn
            .send(&Wire::Request(ClientRequest { id, body }))
            .await
            .expect("send");
        loop {
            let msg = self.conn.recv_timeout(WAIT).await.expect("reply");
            match msg {
                Wire::Server(ServerMessage::Reply {
                    id: rid,
                    result,
                    applied_index,
                }) if rid == id => return (result, applied_index),
                Wire::Server(other) => self.pushes.push(other),
                _ => {}
            }
        }
    }

    pub fn session(&mut self) -> RequestId {
        self.seq += 1;
        RequestId {
            client_id: self.client_id,
            seq: self.seq,
            first_unacked: self.seq,
        }
    }

    pub async fn append(
        &mut self,
        partition: u16,
        entries: Vec<Vec<u8>>,
        response: ResponseConfig,
    ) -> Result<ReplyBody, Error> {
        let session = self.session();
        self.append_with(partition, entries, response, session)
            .await
    }

    pub async fn append_with(
        &mut self,
        partition: u16,
        entries: Vec<Vec<u8>>,
        response: ResponseConfig,
        session: RequestId,
    ) -> Result<ReplyBody, Error> {
        self.call(RequestBody::Append {
            partition,
            entries,
            response,
            session,
        })
        .await
        .0
    }

    pub async fn get(
        &mut self,
        partition: u16,
        index: u64,
        max: u32,
        consistency: QueryConsistency,
        min_applied: u64,
    ) -> (Result<ReplyBody, Error>, u64) {
        self.call(RequestBody::Get {
            partition,
            index,
            max_entries: max,
            read: ReadAt {
                consistency,
                min_applied,
            },
        })
        .await
    }

    /// Waits for the next push message.
    pub async fn next_push(&mut self) -> ServerMessage {
        if !self.pushes.is_empty() {
            return self.pushes.remove(0);
        }
        loop {
            match self.conn.recv_timeout(WAIT).await.expect("push") {
                Wire::Server(m @ ServerMessage::WatchEvents { .. })
                | Wire::Server(m @ ServerMessage::WatchEnded { .. }) => return m,
                _ => {}
            }
        }
    }
}

pub fn kind(r: &Result<ReplyBody, Error>) -> Option<ErrorKind> {
    r.as_ref().err().map(|e| e.kind)
}

/// Every test logs through `RUST_LOG` when set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Re-evaluates `$body` (an `Option`, may `.await`) every 10 ms until it is `Some`; panics
/// after [`WAIT`].
#[macro_export]
macro_rules! wait_until {
    ($what:expr, $body:expr) => {{
        let deadline = tokio::time::Instant::now() + $crate::server_support::WAIT;
        loop {
            if let Some(v) = $body {
                break v;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for: {}", $what);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }};
}
