//! The cluster client: leader discovery, redirects, retries, idempotent writes, and the
//! journal / KV / admin / watch APIs. See `ARCHITECTURE-client.md` at the repository root.
//!
//! Files:
//! - [`protocol`]: the request / reply / push types on client connections (pure).
//! - [`config`]: [`ClientConfig`] and its validation.
//! - `conn`: one multiplexed connection per node (a task, correlation ids, watch routing).
//! - `cluster`: addresses, leader tracking, the applied-index floor, write sessions and the
//!   retry loop.
//! - `batcher`: coalesces concurrent appends to one partition into one request (natural
//!   batching, no linger).
//! - `one_way`: the bounded queue and per-partition senders of `OneWay` appends (routed to
//!   the leader and retried like any write; flushed by [`Client::flush`] / [`Client::shutdown`]).
//! - [`journal`], [`kv`], [`admin`], [`watch`], [`state_machine`], [`sql`]: thin typed facades; they validate arguments
//!   (bounds → `InvalidArgument`, before any network traffic) and interpret replies.
//!
//! Never does: server logic, blocking calls, or FFI concerns (bindings wrap this API).
//!
//! # Example
//! ```no_run
//! use journalkeeper::api::{QueryConsistency, ResponseConfig};
//! use journalkeeper::client::{Client, ClientConfig};
//!
//! # async fn demo() -> Result<(), journalkeeper::api::Error> {
//! let client = Client::connect(["127.0.0.1:7001", "127.0.0.1:7002"], ClientConfig::new(42)).await?;
//! let first = client
//!     .journal()
//!     .append(0, vec![b"hello".to_vec()], ResponseConfig::Replication)
//!     .await?;
//! let entries = client
//!     .journal()
//!     .get(0, first.unwrap_or(0), 10, QueryConsistency::Sequential)
//!     .await?;
//! client.kv().set("config/a", b"1".to_vec()).await?;
//! client.shutdown().await?; // flushes accepted OneWay appends (bounded), then closes
//! # let _ = entries;
//! # Ok(())
//! # }
//! ```

pub mod admin;
pub mod admin_roles;
mod batcher;
mod cluster;
pub mod config;
pub(crate) mod conn;
pub mod coord;
mod coord_wait;
pub mod events;
pub mod journal;
mod keep_alive;
pub mod kv;
mod one_way;
pub mod protocol;
pub mod sql;
pub mod state_machine;
pub mod status_detail;
pub mod transactions;
pub mod watch;

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

pub use admin::{Admin, DEFAULT_ADMIN_TIMEOUT, NodeSnapshots};
pub use admin_roles::MemberRole;
pub use config::{ClientConfig, DEFAULT_CLUSTER_ID};
pub use coord::{Coord, GroupMember, Registration};
pub use coord_wait::{ElectionLeader, ElectionObserver, MemberEvent, MembersWatch};
pub use events::EventStream;
pub use journal::Journal;
pub use keep_alive::{KeepAlive, KeepAliveState};
pub use kv::{CasResult, Kv};
pub use protocol::Member;
pub use protocol::{ClusterEvent, EventOptions};
pub use transactions::{DEFAULT_TRANSACTION_TIMEOUT, Transactions};
pub use watch::WatchStream;

use crate::api::{Error, ErrorKind};
use batcher::Batcher;
use cluster::{Cluster, Target};
use one_way::OneWay;
use protocol::{ReplyBody, RequestBody};

/// A connection to a cluster. Cheap to clone; clones share connections, leader knowledge,
/// the applied-index floor, the write session and append coalescing. `Send + Sync`; calls may
/// run concurrently.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Cluster>,
    batcher: Arc<Batcher>,
    one_way: Arc<OneWay>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.inner.client_id)
            .field("addrs", &self.inner.addrs())
            .field("leader", &self.inner.leader())
            .field("closed", &self.inner.is_closed())
            .field("one_way_pending", &self.one_way.pending())
            .finish()
    }
}

impl Client {
    /// Validates `config` and the addresses (`"host:port"`), then connects to all of them at
    /// once and returns when the first handshake completes (each attempt under
    /// `net.connect_timeout` + `net.handshake_timeout`). Fails with
    /// `InvalidArgument` for a bad config or address and `Unavailable` when none is reachable.
    /// The leader is found on the first call that needs it. Coalesced appends are sent by
    /// tasks on the tokio runtime this is called on, which must outlive the client's use.
    pub async fn connect<I>(addrs: I, config: ClientConfig) -> Result<Client, Error>
    where
        I: IntoIterator,
        I::Item: ToString,
    {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("Client::connect must run on a tokio runtime: {e}"),
            )
        })?;
        let batcher = Arc::new(Batcher::new(
            config.append_max_in_flight_per_partition,
            config.net.max_frame_size,
            runtime.clone(),
        ));
        let one_way = Arc::new(OneWay::new(
            config.one_way_queue_bytes,
            config.net.max_frame_size,
            config.append_coalescing,
            runtime,
        ));
        let mut list: Vec<String> = Vec::new();
        for a in addrs {
            let a = a.to_string();
            check_addr(&a)?;
            if !list.contains(&a) {
                list.push(a);
            }
        }
        if list.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "at least one server address is needed",
            ));
        }
        let cluster = Arc::new(Cluster::new(list.clone(), config, random_client_id()));
        // Every address at once; the first handshake wins and rotation starts there. The
        // others finish in the background (a node that accepts but never handshakes, e.g. a
        // stopped process, is then suspect and skipped instead of costing a timeout).
        let (tx, mut rx) = tokio::sync::mpsc::channel(list.len());
        for addr in list {
            let (cluster, tx) = (cluster.clone(), tx.clone());
            tokio::spawn(async move {
                let result = cluster.conn(&addr).await.map(|_| ());
                let _ = tx.send((addr, result)).await;
            });
        }
        drop(tx);
        let mut reasons = Vec::new();
        while let Some((addr, result)) = rx.recv().await {
            match result {
                Ok(()) => {
                    cluster.prefer(&addr);
                    return Ok(Client {
                        inner: cluster,
                        batcher,
                        one_way,
                    });
                }
                // Talking to another cluster is a configuration error: say so at once.
                Err(e) if e.kind == ErrorKind::WrongCluster => return Err(e),
                Err(e) => reasons.push(e.message),
            }
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            format!("no server reachable: {}", reasons.join("; ")),
        ))
    }

    /// The journal store (JK-PS) API.
    pub fn journal(&self) -> Journal<'_> {
        Journal::new(self)
    }

    /// The coordination KV (JK-CS) API.
    pub fn kv(&self) -> Kv<'_> {
        Kv::new(self)
    }

    /// The coordination recipes: leases, locks with fencing tokens, elections, IDs, liveness.
    pub fn coord(&self) -> Coord<'_> {
        Coord::new(self)
    }

    /// Journal transactions: entries to any partitions, visible together or never.
    pub fn transactions(&self) -> Transactions<'_> {
        Transactions::new(self)
    }

    /// The cluster's built-in SQL database (`execute`, `query`).
    pub fn sql(&self) -> sql::Sql<'_> {
        sql::Sql::new(self)
    }

    /// The user state machine the servers host as `name` (`update`, `query`).
    pub fn state_machine<'a>(&'a self, name: &'a str) -> state_machine::StateMachineClient<'a> {
        state_machine::StateMachineClient::new(self, name)
    }

    /// Cluster administration.
    pub fn admin(&self) -> Admin<'_> {
        Admin::new(self)
    }

    /// The cluster's events (leader changed, voters changed, the node's role, journal bounds)
    /// as a node sees them, starting with its current state; see [`EventStream`].
    pub async fn events(&self) -> Result<EventStream, Error> {
        EventStream::open(self.inner.clone(), EventOptions::default()).await
    }

    /// [`events`](Self::events) with `options`: with `state_machines`, also
    /// [`ClusterEvent::StateChanged`](protocol::ClusterEvent::StateChanged) for each user state
    /// machine as the node applies to it (needs nodes of protocol 1.8).
    pub async fn events_with(&self, options: EventOptions) -> Result<EventStream, Error> {
        EventStream::open(self.inner.clone(), options).await
    }

    /// This client's session id (random per `Client`, shared by its clones).
    pub fn client_id(&self) -> u64 {
        self.inner.client_id
    }

    /// The highest applied index seen in any reply. SEQUENTIAL reads are served only by nodes
    /// that have applied at least this much, so this client's reads never go backwards.
    pub fn applied_floor(&self) -> u64 {
        self.inner.applied_floor()
    }

    /// Journal append requests this client (and its clones) has sent: one per coalesced
    /// request, one per uncoalesced `append` call; retries of a request are not counted.
    /// Fewer than the `append` calls made means appends were coalesced.
    pub fn append_requests_sent(&self) -> u64 {
        self.batcher.requests_sent() + self.one_way.requests_sent()
    }

    /// `OneWay` append calls accepted and not yet stored (or given up): what
    /// [`flush`](Self::flush) waits for.
    pub fn one_way_pending(&self) -> u64 {
        self.one_way.pending()
    }

    /// `OneWay` append calls given up so far (retries exhausted within `request_timeout`,
    /// the client closed before they were stored, or refused by the leader). Each is also
    /// logged (`warn`) and reported once by the next [`flush`](Self::flush).
    pub fn one_way_dropped(&self) -> u64 {
        self.one_way.dropped()
    }

    /// Waits until every `OneWay` append accepted so far is stored — committed on a majority,
    /// acknowledged by the leader — or given up, for at most `timeout`. `Timeout` (naming how
    /// many are left) when it passes; otherwise, if appends were given up since the previous
    /// `flush`, an error saying how many and why; else `Ok`.
    pub async fn flush(&self, timeout: std::time::Duration) -> Result<(), Error> {
        self.one_way.flush(timeout).await
    }

    /// Closes the client after flushing: later `OneWay` appends fail with `Closed`, the
    /// accepted ones are waited for (as [`flush`](Self::flush), at most
    /// `ClientConfig::one_way_flush_timeout`), then [`close`](Self::close). Returns the
    /// flush's outcome; the client is closed either way. Idempotent. This is what the C, Python
    /// and Node bindings' close / free do.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.one_way.stop_accepting();
        let flushed = if self.is_closed() {
            Ok(())
        } else {
            self.one_way
                .flush(self.inner.config.one_way_flush_timeout)
                .await
        };
        self.close();
        flushed
    }

    /// The server addresses this client knows: the ones it was given, then any leader hints
    /// it learned.
    pub fn servers(&self) -> Vec<String> {
        self.inner.addrs()
    }

    /// The leader address this client currently believes in, if any.
    pub fn leader(&self) -> Option<String> {
        self.inner.leader()
    }

    /// Step 1 of a two-step read: asks the leader for its applied index (after it confirmed
    /// leadership) and raises [`applied_floor`](Self::applied_floor) to it, so that following
    /// SEQUENTIAL reads on any node see every write acknowledged before this call. Returns it.
    pub async fn sync(&self) -> Result<u64, Error> {
        let index = self.leader_applied_index().await?;
        self.inner.raise_floor(index);
        Ok(index)
    }

    /// The leader's applied index (a leader-only read: it follows NOT_LEADER hints), without
    /// touching the read floor.
    pub(crate) async fn leader_applied_index(&self) -> Result<u64, Error> {
        match self
            .inner
            .call(Target::Leader, RequestBody::AppliedIndex)
            .await?
        {
            ReplyBody::AppliedIndex(index) => Ok(index),
            other => Err(unexpected("AppliedIndex", &other)),
        }
    }

    /// Closes every connection at once. Calls in flight and every later call (and watch) fail
    /// with `Closed`; `OneWay` appends not yet stored are given up (counted in
    /// [`one_way_dropped`](Self::one_way_dropped)) — use [`shutdown`](Self::shutdown) to
    /// flush them first. Idempotent. Dropping every handle without closing does not lose
    /// them: the senders keep what they need until their queue is empty (each request within
    /// `request_timeout`), as long as the runtime runs.
    pub fn close(&self) {
        self.inner.close();
    }

    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// `host:port` with a numeric port; the host is resolved at connect time.
fn check_addr(addr: &str) -> Result<(), Error> {
    let ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("server address {addr:?} is not host:port"),
        ))
    }
}

/// A random non-zero id: the std hasher's per-process random keys, mixed with time and a
/// counter (no RNG dependency; uniqueness, not secrecy, is what matters).
fn random_client_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish().max(1)
}

pub(crate) fn unexpected(request: &str, reply: &ReplyBody) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("the server answered {request} with an unexpected reply: {reply:?}"),
    )
}

pub(crate) fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_must_be_host_and_port() {
        for good in ["127.0.0.1:7001", "localhost:1", "[::1]:80"] {
            assert!(check_addr(good).is_ok(), "{good}");
        }
        for bad in ["127.0.0.1", ":80", "host:port", "host:70000", ""] {
            assert_eq!(
                check_addr(bad).unwrap_err().kind,
                ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn client_ids_differ_and_are_never_zero() {
        let a = random_client_id();
        let b = random_client_id();
        assert_ne!(a, b);
        assert_ne!(a, 0);
    }

    #[test]
    fn client_is_send_sync_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<Client>();
        fn assert_send<T: Send>() {}
        assert_send::<WatchStream>();
    }
}
