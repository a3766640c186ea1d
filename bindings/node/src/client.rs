//! `Client` and its `journal` / `kv` / `admin` facades: each method converts its arguments,
//! calls the core client on the runtime and converts the reply. Defaults (acknowledgement
//! `REPLICATION`, reads `STRICT`) are the core's.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use journalkeeper::api::{self, JournalEntry as CoreEntry};
use journalkeeper::client::protocol::{
    ClusterConfiguration as CoreConfiguration, MAX_ADMIN_TIMEOUT_MS, Member as CoreMember,
    NodeStatus as CoreNodeStatus,
};
use journalkeeper::client::{
    Client as CoreClient, ClientConfig, DEFAULT_ADMIN_TIMEOUT, DEFAULT_CLUSTER_ID, MemberRole,
    NodeSnapshots as CoreNodeSnapshots,
};
use journalkeeper::state::watch::WatchFilter as CoreFilter;
use napi::bindgen_prelude::{Buffer, PromiseRaw, ToNapiValue};
use napi::{Env, Unknown};
use napi_derive::napi;

use crate::args;
use crate::events::{ClusterEvent, ClusterEvents, EventsCallback, Source};
use crate::kv_read::kv_read;
use crate::watch::{KvEvent, Watch, WatchCallback};
use crate::{QueryConsistency, ResponseConfig, js_error, promise, to_bounded, to_number, to_u64};

/// How a client talks to the cluster; every option has a default.
#[napi(object)]
#[derive(Default)]
pub struct ClientOptions {
    /// Must match the servers' `clusterId` (default 42, as the CLI's `--cluster-id`).
    pub cluster_id: Option<f64>,
    /// Overall deadline of one call, retries included (default 30 000).
    pub request_timeout_ms: Option<f64>,
    /// Deadline of one attempt (default 10 000, lowered to `requestTimeoutMs` when that is
    /// smaller; an explicit value must not exceed `requestTimeoutMs`).
    pub attempt_timeout_ms: Option<f64>,
    /// Most attempts per call (default 100).
    pub max_attempts: Option<f64>,
}

/// Options of a write.
#[napi(object)]
pub struct AppendOptions {
    /// When the write is acknowledged (default `REPLICATION`).
    pub response: Option<ResponseConfig>,
}

/// Options of a read.
#[napi(object)]
pub struct ReadOptions {
    /// How fresh the read must be (default `STRICT`).
    pub consistency: Option<QueryConsistency>,
}

/// One journal entry.
#[napi(object)]
pub struct JournalEntry {
    pub partition: u32,
    pub index: f64,
    /// Entries appended together share a batch of this size.
    pub batch_size: u32,
    /// Position of the entry within its batch (0-based).
    pub offset: u32,
    pub term: f64,
    /// Store time chosen by the leader (ms since the Unix epoch).
    pub timestamp_ms: f64,
    pub payload: Buffer,
}

/// One key of a `kv.list()` result.
#[napi(object)]
pub struct KvEntry {
    pub key: String,
    pub value: Buffer,
}

/// The result of `kv.compareAndSet()`.
#[napi(object)]
pub struct CasResult {
    /// Whether the value was replaced.
    pub swapped: bool,
    /// The key's value after the operation (null: absent).
    pub current: Option<Buffer>,
}

/// Which keys a watch follows: exactly one of `key` or `prefix`.
#[napi(object)]
pub struct WatchFilter {
    pub key: Option<String>,
    pub prefix: Option<String>,
}

/// A cluster member.
#[napi(object)]
pub struct Member {
    pub node_id: f64,
    /// The member's client address (`"host:port"`).
    pub addr: String,
}

/// A member of the new voter set of `admin.updateVoters()`.
#[napi(object)]
pub struct Voter {
    pub node_id: f64,
    /// `"host:port"`; needed only for a node the cluster does not know yet (omitted or `""`:
    /// already known), so the `voters` of `clusterConfiguration()` can be passed as is.
    pub addr: Option<String>,
}

/// Options of a membership change or leader transfer.
#[napi(object)]
pub struct AdminOptions {
    /// How long the change may take (default 60 000; at most `limits().maxAdminTimeoutMs`,
    /// 600 000). A new member that did not catch up by then: `TIMEOUT`, the change is
    /// cancelled and the voters stay as they were.
    pub timeout_ms: Option<f64>,
}

/// Voters, observers and leader.
#[napi(object)]
pub struct ClusterConfiguration {
    pub voters: Vec<Member>,
    /// The old voters while a joint-consensus change is in progress.
    pub joint_old_voters: Option<Vec<Member>>,
    /// Non-voting members, the learners of a change in progress (catching up) included.
    pub observers: Vec<Member>,
    pub leader: Option<Member>,
}

/// One node's view of itself, as reported to clients.
#[napi(object)]
pub struct NodeStatus {
    pub node_id: f64,
    /// `"LEADER"`, `"FOLLOWER"`, `"CANDIDATE"` or `"OBSERVER"` (`vocabulary().roles`; over
    /// the network a pre-candidate reports `"CANDIDATE"`).
    pub role: String,
    pub term: f64,
    pub leader: Option<Member>,
    pub commit_index: f64,
    pub applied_index: f64,
    pub last_index: f64,
    pub configuration: ClusterConfiguration,
    /// What the node holds for its clients; absent from a node older than protocol 1.2.
    pub resources: Option<NodeResources>,
    /// The monitoring detail; absent from a node older than protocol 1.4.
    pub detail: Option<crate::status_detail::NodeDetail>,
}

/// What a node holds for its clients right now.
#[napi(object)]
pub struct NodeResources {
    pub client_connections: f64,
    pub peer_connections: f64,
    pub watches: f64,
    /// Client connections holding at least one watch.
    pub watching_connections: f64,
    /// Writes not yet acknowledged and STRICT reads.
    pub pending_requests: f64,
    /// Appends proposed and not yet applied, by client session.
    pub sessions_in_flight: f64,
}

/// One snapshot a node retains.
#[napi(object, object_from_js = false)]
pub struct SnapshotInfo {
    /// The log index (and its term) of the last entry the snapshot holds.
    pub index: f64,
    pub term: f64,
    /// When the node saved it (ms since the Unix epoch).
    pub time_ms: f64,
    /// Bytes on disk.
    pub size_bytes: f64,
}

/// Why a node of `admin.snapshots()` could not be asked.
#[napi(object, object_from_js = false)]
pub struct NodeError {
    #[napi(ts_type = "ErrorCode")]
    pub code: String,
    pub message: String,
}

/// One member of `admin.snapshots()`: the snapshots it retains, oldest first, or the error
/// that kept it from answering (its `snapshots` are then empty).
#[napi(object, object_from_js = false)]
pub struct NodeSnapshots {
    pub node_id: f64,
    /// The member's client address (`"host:port"`).
    pub addr: String,
    pub snapshots: Vec<SnapshotInfo>,
    /// Absent when the node answered.
    pub error: Option<NodeError>,
}

type R<T> = Result<T, api::Error>;

fn node_snapshots(n: CoreNodeSnapshots) -> R<NodeSnapshots> {
    Ok(NodeSnapshots {
        node_id: to_number("nodeId", n.node.node_id)?,
        addr: n.node.addr,
        snapshots: n
            .snapshots
            .into_iter()
            .map(|s| {
                Ok(SnapshotInfo {
                    index: to_number("index", s.index)?,
                    term: to_number("term", s.term)?,
                    time_ms: to_number("timeMs", s.time_ms)?,
                    size_bytes: to_number("sizeBytes", s.size_bytes)?,
                })
            })
            .collect::<R<_>>()?,
        error: n.error.map(|e| NodeError {
            code: e.kind.code().to_string(),
            message: e.message,
        }),
    })
}

/// `fut`, failing with `TIMEOUT` after `timeout` (for a core call the core does not bound by
/// its admin timeout itself).
async fn within<T>(timeout: Duration, what: &'static str, fut: impl Future<Output = R<T>>) -> R<T> {
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| {
            Err(api::Error::new(
                api::ErrorKind::Timeout,
                format!("{what} did not complete within {} ms", timeout.as_millis()),
            ))
        })
}

/// A JS callback argument as the weak thread-safe function of an event subscription.
pub(crate) fn events_callback(callback: Unknown) -> napi::Result<R<EventsCallback>> {
    let callback = match args::function::<ClusterEvent, ()>("callback", callback) {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    let tsfn: EventsCallback = callback
        .build_threadsafe_function::<ClusterEvent>()
        .callee_handled::<true>()
        .weak::<true>()
        .error_status::<crate::watch::Code>()
        .build()?;
    Ok(Ok(tsfn))
}

/// The read level of an optional `options` argument (`ReadOptions`).
pub(crate) fn consistency(options: Unknown) -> R<api::QueryConsistency> {
    Ok(args::options::<ReadOptions>("options", options)?
        .and_then(|o| o.consistency)
        .map(Into::into)
        .unwrap_or_default())
}

fn entry(e: CoreEntry) -> R<JournalEntry> {
    Ok(JournalEntry {
        partition: e.partition.into(),
        index: to_number("index", e.index)?,
        batch_size: e.batch_size.into(),
        offset: e.offset.into(),
        term: to_number("term", e.term)?,
        timestamp_ms: to_number("timestampMs", e.timestamp_ms)?,
        payload: e.payload.into(),
    })
}

fn indices(m: std::collections::BTreeMap<u16, u64>) -> R<HashMap<String, f64>> {
    m.into_iter()
        .map(|(p, i)| Ok((p.to_string(), to_number("index", i)?)))
        .collect()
}

pub(crate) fn member(m: CoreMember) -> R<Member> {
    Ok(Member {
        node_id: to_number("nodeId", m.node_id)?,
        addr: m.addr,
    })
}

fn members(v: Vec<CoreMember>) -> R<Vec<Member>> {
    v.into_iter().map(member).collect()
}

pub(crate) fn configuration(c: CoreConfiguration) -> R<ClusterConfiguration> {
    Ok(ClusterConfiguration {
        voters: members(c.voters)?,
        joint_old_voters: c.joint_old_voters.map(members).transpose()?,
        observers: members(c.observers)?,
        leader: c.leader.map(member).transpose()?,
    })
}

fn node_status(s: CoreNodeStatus) -> R<NodeStatus> {
    Ok(NodeStatus {
        node_id: to_number("nodeId", s.node_id)?,
        role: s.role.name().to_string(),
        term: to_number("term", s.term)?,
        leader: s.leader.map(member).transpose()?,
        commit_index: to_number("commitIndex", s.commit_index)?,
        applied_index: to_number("appliedIndex", s.applied_index)?,
        last_index: to_number("lastIndex", s.last_index)?,
        configuration: configuration(s.configuration)?,
        resources: s
            .resources
            .map(|r| {
                Ok::<_, api::Error>(NodeResources {
                    client_connections: to_number("clientConnections", r.client_connections)?,
                    peer_connections: to_number("peerConnections", r.peer_connections)?,
                    watches: to_number("watches", r.watches)?,
                    watching_connections: to_number("watchingConnections", r.watching_connections)?,
                    pending_requests: to_number("pendingRequests", r.pending_requests)?,
                    sessions_in_flight: to_number("sessionsInFlight", r.sessions_in_flight)?,
                })
            })
            .transpose()?,
        detail: s
            .detail
            .map(|d| crate::status_detail::node_detail(*d))
            .transpose()?,
    })
}

/// The bound of one admin change from an optional `AdminOptions` argument: the core's default
/// (60 s) when omitted; more than `MAX_ADMIN_TIMEOUT_MS` is `INVALID_ARGUMENT`, checked here
/// because the core's `Admin::with_timeout` does not check its bound.
fn admin_timeout(options: Unknown) -> R<Duration> {
    let t = args::options::<AdminOptions>("options", options)?.and_then(|o| o.timeout_ms);
    let Some(t) = t else {
        return Ok(DEFAULT_ADMIN_TIMEOUT);
    };
    let ms = to_u64("options.timeoutMs", t)?;
    if ms > MAX_ADMIN_TIMEOUT_MS {
        return Err(api::Error::new(
            api::ErrorKind::InvalidArgument,
            format!("options.timeoutMs {ms} exceeds {MAX_ADMIN_TIMEOUT_MS}"),
        ));
    }
    Ok(Duration::from_millis(ms))
}

fn ms(what: &str, v: Option<f64>, default: Duration) -> R<Duration> {
    v.map_or(Ok(default), |v| Ok(Duration::from_millis(to_u64(what, v)?)))
}

/// A connection to a cluster. Calls may run concurrently.
#[napi]
pub struct Client {
    inner: CoreClient,
}

#[napi]
impl Client {
    /// Connects to the first reachable of `addrs` (`"host:port"`); the leader is found on the
    /// first call that needs it.
    #[napi(
        ts_args_type = "addrs: Array<string>, options?: ClientOptions | undefined | null",
        ts_return_type = "Promise<Client>"
    )]
    pub fn connect<'env>(
        env: &'env Env,
        addrs: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Client>> {
        let addrs = args::strings("addrs", addrs);
        let options = args::options::<ClientOptions>("options", options);
        promise(env, async move {
            let (addrs, options) = (addrs?, options?);
            let options = options.unwrap_or_default();
            let cluster_id = options
                .cluster_id
                .map_or(Ok(DEFAULT_CLUSTER_ID), |v| to_u64("clusterId", v))?;
            let mut cfg = ClientConfig::new(cluster_id);
            if let Some(t) = options.request_timeout_ms {
                cfg.set_request_timeout(Duration::from_millis(to_u64("requestTimeoutMs", t)?));
            }
            cfg.attempt_timeout = ms(
                "attemptTimeoutMs",
                options.attempt_timeout_ms,
                cfg.attempt_timeout,
            )?;
            if let Some(n) = options.max_attempts {
                cfg.max_attempts = to_bounded("maxAttempts", n, u32::MAX as u64)? as u32;
            }
            let inner = CoreClient::connect(addrs, cfg).await?;
            Ok(Client { inner })
        })
    }

    /// The journal store.
    #[napi(getter)]
    pub fn journal(&self) -> Journal {
        Journal {
            inner: self.inner.clone(),
        }
    }

    /// The coordination KV.
    #[napi(getter)]
    pub fn kv(&self) -> Kv {
        Kv {
            inner: self.inner.clone(),
        }
    }

    /// The coordination recipes (leases, locks, elections, IDs, liveness groups).
    #[napi(getter)]
    pub fn coord(&self) -> crate::coord::Coord {
        crate::coord::Coord::new(self.inner.clone())
    }

    /// Journal transactions: entries to any partitions, visible together or never.
    #[napi(getter)]
    pub fn transactions(&self) -> crate::transactions::Transactions {
        crate::transactions::Transactions::new(self.inner.clone())
    }

    /// The cluster's built-in SQL database (SQLite, replicated through the log).
    #[napi]
    pub fn sql(&self) -> crate::sql_client::Sql {
        crate::sql_client::Sql::new(self.inner.clone())
    }

    /// The user state machine the servers host as `name` (`Server.start(config,
    /// { stateMachines: { [name]: machine } })`). Checks nothing yet: a bad or unhosted name
    /// fails the first call (`INVALID_ARGUMENT`).
    #[napi(ts_args_type = "name: string")]
    pub fn state_machine(
        &self,
        env: &Env,
        name: Unknown,
    ) -> napi::Result<crate::state_machine_client::StateMachineClient> {
        let name = args::string("name", name).map_err(|e| js_error(env, &e))?;
        Ok(crate::state_machine_client::StateMachineClient::new(
            self.inner.clone(),
            name,
        ))
    }

    /// Cluster administration.
    #[napi(getter)]
    pub fn admin(&self) -> Admin {
        Admin {
            inner: self.inner.clone(),
        }
    }

    /// The callback form of `client.events(callback)` (defined in `journalkeeper.js`, which
    /// also gives the async-iterator form): subscribes on any node and calls
    /// `callback(null, event)` for each cluster event, starting with the node's current state,
    /// until `close()`; the core resubscribes elsewhere after a lost connection. The callback
    /// never keeps the process alive. An error is passed as `callback(err, null)`; after any
    /// but `TIMEOUT` / `UNAVAILABLE` (retried) the subscription has ended (`CLOSED`: the
    /// client was closed).
    #[napi(
        ts_args_type = "callback: (err: Error | null, event: ClusterEvent | null) => void, options?: EventOptions | undefined | null",
        ts_return_type = "Promise<ClusterEvents>"
    )]
    pub fn subscribe_events<'env>(
        &self,
        env: &'env Env,
        callback: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ClusterEvents>> {
        let c = self.inner.clone();
        let tsfn = events_callback(callback)?;
        let options = crate::events::event_options(options);
        promise(env, async move {
            let tsfn = tsfn?;
            let stream = c.events_with(options?).await?;
            Ok(ClusterEvents::spawn(Source::Client(stream), tsfn))
        })
    }

    /// Raises the client's read floor to the leader's applied index, so later `SEQUENTIAL`
    /// reads see every write acknowledged before; returns that index.
    #[napi]
    pub fn sync<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, f64>> {
        let c = self.inner.clone();
        promise(env, async move { to_number("index", c.sync().await?) })
    }

    /// Resolves once every `ONE_WAY` append accepted so far is stored (committed), waiting at
    /// most `timeoutMs` (default 5000); rejects with `TIMEOUT` (saying how many are left)
    /// when that passes, or with the error of the appends given up since the previous flush.
    #[napi(
        ts_args_type = "timeoutMs?: number | undefined | null",
        ts_return_type = "Promise<void>"
    )]
    pub fn flush<'env>(
        &self,
        env: &'env Env,
        timeout_ms: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let c = self.inner.clone();
        let timeout_ms = args::optional_uint("timeoutMs", timeout_ms);
        promise(env, async move {
            let timeout = match timeout_ms? {
                Some(ms) => Duration::from_millis(ms),
                None => ClientConfig::new(1).one_way_flush_timeout,
            };
            c.flush(timeout).await
        })
    }

    /// Flushes the accepted `ONE_WAY` appends (at most 5 s; never rejects for them: those it
    /// could not store are logged and given up), then closes every connection; calls in
    /// flight and later calls fail with `CLOSED`. Idempotent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let c = self.inner.clone();
        promise(env, async move {
            let _ = c.shutdown().await;
            Ok(())
        })
    }
}

/// The journal store (partitioned, append-only).
#[napi]
pub struct Journal {
    inner: CoreClient,
}

#[napi]
impl Journal {
    /// Appends `entries` as one batch to `partition`; resolves to the index of the first entry
    /// for `REPLICATION` / `ALL`, null for the other levels. Bounds (`limits()`):
    /// 1..=`maxAppendEntries` entries, each at most `maxEntryBytes`, together at most
    /// `maxAppendBytes`.
    #[napi(
        ts_args_type = "partition: number, entries: Array<Buffer>, options?: AppendOptions | undefined | null"
    )]
    pub fn append<'env>(
        &self,
        env: &'env Env,
        partition: Unknown<'env>,
        entries: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Option<f64>>> {
        let c = self.inner.clone();
        let args = args::checked(|| {
            let p = args::partition("partition", partition)?;
            let entries = args::buffers("entries", entries)?;
            let response: api::ResponseConfig = args::options::<AppendOptions>("options", options)?
                .and_then(|o| o.response)
                .map(Into::into)
                .unwrap_or_default();
            Ok((p, entries, response))
        });
        promise(env, async move {
            let (p, entries, response) = args?;
            let first = c.journal().append(p, entries, response).await?;
            first.map(|i| to_number("index", i)).transpose()
        })
    }

    /// Up to `maxEntries` (1..=`limits().maxGetEntries`) entries of `partition` from `index` on. `INDEX_OVERFLOW` at or past
    /// the end, `INDEX_UNDERFLOW` before the start.
    #[napi(
        ts_args_type = "partition: number, index: number, maxEntries: number, options?: ReadOptions | undefined | null"
    )]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        partition: Unknown<'env>,
        index: Unknown<'env>,
        max_entries: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Vec<JournalEntry>>> {
        let c = self.inner.clone();
        let args = args::checked(|| {
            Ok((
                args::partition("partition", partition)?,
                args::uint("index", index)?,
                args::bounded("maxEntries", max_entries, u32::MAX as u64)? as u32,
                consistency(options)?,
            ))
        });
        promise(env, async move {
            let (p, index, max, level) = args?;
            let entries = c.journal().get(p, index, max, level).await?;
            entries.into_iter().map(entry).collect::<R<Vec<_>>>()
        })
    }

    /// Per partition (keys are partition numbers), the smallest readable index.
    #[napi(ts_args_type = "options?: ReadOptions | undefined | null")]
    pub fn min_indices<'env>(
        &self,
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, HashMap<String, f64>>> {
        let c = self.inner.clone();
        let level = consistency(options);
        promise(env, async move {
            let level = level?;
            indices(c.journal().with_consistency(level).min_indices().await?)
        })
    }

    /// Per partition (keys are partition numbers), the index the next entry will get.
    #[napi(ts_args_type = "options?: ReadOptions | undefined | null")]
    pub fn max_indices<'env>(
        &self,
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, HashMap<String, f64>>> {
        let c = self.inner.clone();
        let level = consistency(options);
        promise(env, async move {
            let level = level?;
            indices(c.journal().with_consistency(level).max_indices().await?)
        })
    }

    /// The current partitions, ascending.
    #[napi(ts_args_type = "options?: ReadOptions | undefined | null")]
    pub fn list_partitions<'env>(
        &self,
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Vec<u32>>> {
        let c = self.inner.clone();
        let level = consistency(options);
        promise(env, async move {
            let level = level?;
            let set = c
                .journal()
                .with_consistency(level)
                .list_partitions()
                .await?;
            Ok(set.into_iter().map(u32::from).collect::<Vec<_>>())
        })
    }

    /// The index matching `timestampMs`: the last entry stored at or before it, and among
    /// entries sharing that store time the first of them. Before every entry: the first entry.
    /// At or after the last entry's time: the last entry (the first of those sharing its time),
    /// never the end index. null only when the partition is empty.
    #[napi(
        ts_args_type = "partition: number, timestampMs: number, options?: ReadOptions | undefined | null"
    )]
    pub fn query_index<'env>(
        &self,
        env: &'env Env,
        partition: Unknown<'env>,
        timestamp_ms: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Option<f64>>> {
        let c = self.inner.clone();
        let args = args::checked(|| {
            Ok((
                args::partition("partition", partition)?,
                args::uint("timestampMs", timestamp_ms)?,
                consistency(options)?,
            ))
        });
        promise(env, async move {
            let (p, ts, level) = args?;
            let i = c
                .journal()
                .with_consistency(level)
                .query_index(p, ts)
                .await?;
            i.map(|i| to_number("index", i)).transpose()
        })
    }

    /// Replaces the partition set (1..=`limits().maxPartitions` partitions). A removed
    /// partition that holds entries cannot be added back (its old entries would reappear):
    /// `INVALID_ARGUMENT` naming it, nothing changes; use new ids.
    #[napi(
        ts_args_type = "partitions: Array<number>",
        ts_return_type = "Promise<void>"
    )]
    pub fn scale_partitions<'env>(
        &self,
        env: &'env Env,
        partitions: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let c = self.inner.clone();
        let ps = args::partitions("partitions", partitions);
        promise(env, async move {
            let ps = ps?;
            c.journal().scale_partitions(&ps).await
        })
    }
}

/// The coordination KV. Writes are acknowledged at `REPLICATION`.
#[napi]
pub struct Kv {
    inner: CoreClient,
}

#[napi]
impl Kv {
    /// Sets `key` (non-empty, at most `limits().maxKeyBytes`) to `value` (at most
    /// `limits().maxValueBytes`); resolves to the previous value (null: none).
    #[napi(ts_args_type = "key: string, value: Buffer")]
    pub fn set<'env>(
        &self,
        env: &'env Env,
        key: Unknown<'env>,
        value: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        let c = self.inner.clone();
        let args = args::checked(|| Ok((args::string("key", key)?, args::buffer("value", value)?)));
        promise(env, async move {
            let (key, value) = args?;
            Ok(c.kv().set(&key, value).await?.map(Buffer::from))
        })
    }

    /// The value of `key` (null: absent); with `{ atIndex }`, the value it had at that log
    /// index.
    #[napi(ts_args_type = "key: string, options?: KvReadOptions | undefined | null")]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        key: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        let c = self.inner.clone();
        let args = args::checked(|| Ok((args::string("key", key)?, kv_read(options)?)));
        promise(env, async move {
            let (key, read) = args?;
            Ok(read.get(c.kv(), &key).await?.map(Buffer::from))
        })
    }

    /// Whether `key` exists.
    #[napi(ts_args_type = "key: string, options?: ReadOptions | undefined | null")]
    pub fn exists<'env>(
        &self,
        env: &'env Env,
        key: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let c = self.inner.clone();
        let args = args::checked(|| Ok((args::string("key", key)?, consistency(options)?)));
        promise(env, async move {
            let (key, level) = args?;
            c.kv().with_consistency(level).exists(&key).await
        })
    }

    /// Removes `key`; resolves to the value it had (null: none).
    #[napi(ts_args_type = "key: string")]
    pub fn remove<'env>(
        &self,
        env: &'env Env,
        key: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        let c = self.inner.clone();
        let key = args::string("key", key);
        promise(env, async move {
            let key = key?;
            Ok(c.kv().remove(&key).await?.map(Buffer::from))
        })
    }

    /// Every key starting with `prefix`, with its value, in key order (read in pages; no bound
    /// on the number returned); with `{ atIndex }`, as they were at that log index (one
    /// consistent state).
    #[napi(ts_args_type = "prefix: string, options?: KvReadOptions | undefined | null")]
    pub fn list<'env>(
        &self,
        env: &'env Env,
        prefix: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Vec<KvEntry>>> {
        let c = self.inner.clone();
        let args = args::checked(|| Ok((args::string("prefix", prefix)?, kv_read(options)?)));
        promise(env, async move {
            let (prefix, read) = args?;
            let entries = read.list(c.kv(), &prefix).await?;
            Ok(entries
                .into_iter()
                .map(|(key, value)| KvEntry {
                    key,
                    value: value.into(),
                })
                .collect::<Vec<_>>())
        })
    }

    /// Sets `key` to `value` (removes it for null) only if its value equals `expect` (null:
    /// the key must be absent).
    #[napi(
        ts_args_type = "key: string, expect?: Buffer | undefined | null, value?: Buffer | undefined | null"
    )]
    pub fn compare_and_set<'env>(
        &self,
        env: &'env Env,
        key: Unknown<'env>,
        expect: Unknown<'env>,
        value: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, CasResult>> {
        let c = self.inner.clone();
        let args = args::checked(|| {
            Ok((
                args::string("key", key)?,
                args::nullable_buffer("expect", expect)?,
                args::nullable_buffer("value", value)?,
            ))
        });
        promise(env, async move {
            let (key, expect, value) = args?;
            let r = c.kv().compare_and_set(&key, expect, value).await?;
            Ok(CasResult {
                swapped: r.swapped,
                current: r.current.map(Buffer::from),
            })
        })
    }

    /// Calls `callback(null, event)` for every change of the keys matching `filter` from log
    /// index `fromIndex` on (0: from the next change), in log order, until `close()`. The
    /// callback never keeps the process alive. An error is passed as `callback(err, null)`;
    /// after any error but `TIMEOUT` / `UNAVAILABLE` (which are retried) the watch has ended.
    #[napi(
        ts_args_type = "filter: WatchFilter, fromIndex: number, callback: (err: Error | null, event: KvEvent | null) => void",
        ts_return_type = "Promise<Watch>"
    )]
    pub fn watch<'env>(
        &self,
        env: &'env Env,
        filter: Unknown<'env>,
        from_index: Unknown<'env>,
        callback: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Watch>> {
        let c = self.inner.clone();
        let args = args::checked(|| {
            let filter = args::object::<WatchFilter>("filter", filter)?;
            let from = args::uint("fromIndex", from_index)?;
            let callback = args::function::<KvEvent, ()>("callback", callback)?;
            Ok((filter, from, callback))
        });
        let (filter, from, callback) = match args {
            Ok(a) => a,
            Err(e) => return promise(env, async move { Err::<Watch, _>(e) }),
        };
        let tsfn: WatchCallback = callback
            .build_threadsafe_function::<KvEvent>()
            .callee_handled::<true>()
            .weak::<true>()
            .error_status::<crate::watch::Code>()
            .build()?;
        promise(env, async move {
            let filter = match (filter.key, filter.prefix) {
                (Some(k), None) => CoreFilter::Key(k),
                (None, Some(p)) => CoreFilter::Prefix(p),
                _ => {
                    return Err(api::Error::new(
                        api::ErrorKind::InvalidArgument,
                        "a watch filter has exactly one of `key` or `prefix`",
                    ));
                }
            };
            let stream = c.kv().watch(filter, from).await?;
            Ok(Watch::spawn(stream, tsfn))
        })
    }
}

/// Cluster administration.
#[napi]
pub struct Admin {
    inner: CoreClient,
}

impl Admin {
    /// The one shape of every admin call: the arguments (converted on the JS thread, `args`)
    /// and the core client move into the Promise, which rejects with an argument error or
    /// resolves to what `call` returns.
    fn run<'env, A, T, V, Fut>(
        &self,
        env: &'env Env,
        args: R<A>,
        call: impl FnOnce(CoreClient, A) -> Fut + Send + 'static,
    ) -> napi::Result<PromiseRaw<'env, V>>
    where
        A: Send + 'static,
        Fut: Future<Output = R<T>> + Send + 'static,
        T: Send + 'static + Into<V>,
        V: ToNapiValue,
    {
        let c = self.inner.clone();
        promise(env, async move { call(c, args?).await })
    }
}

#[napi]
impl Admin {
    /// The status of the node at `node` (`"host:port"`).
    #[napi(ts_args_type = "node: string")]
    pub fn status<'env>(
        &self,
        env: &'env Env,
        node: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, NodeStatus>> {
        self.run(env, args::string("node", node), |c, node| async move {
            node_status(c.admin().status(&node).await?)
        })
    }

    /// Voters, observers and leader, as the leader knows them.
    #[napi]
    pub fn cluster_configuration<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, ClusterConfiguration>> {
        self.run(env, Ok(()), |c, ()| async move {
            configuration(c.admin().cluster_configuration().await?)
        })
    }

    /// Moves the voters from `oldVoters` (exactly the current voter ids; `INVALID_ARGUMENT`
    /// otherwise, or while another change is in progress) to `voters`. New members join as
    /// learners, catch up and are then promoted through joint consensus; resolves once the
    /// final configuration is committed. Rejects with `INVALID_ARGUMENT` (a new member
    /// without a known address, bad ids), `TIMEOUT` (a new member did not catch up within
    /// `options.timeoutMs`: the change is cancelled, the voters stay) or `UNAVAILABLE` /
    /// `NOT_LEADER` (no leader in time).
    #[napi(
        ts_args_type = "oldVoters: Array<number>, voters: Array<Voter>, options?: AdminOptions | undefined | null",
        ts_return_type = "Promise<void>"
    )]
    pub fn update_voters<'env>(
        &self,
        env: &'env Env,
        old_voters: Unknown<'env>,
        voters: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let args = args::checked(|| {
            let old = args::uints("oldVoters", old_voters)?;
            let voters: Vec<Voter> =
                args::objects("voters", "an array of { nodeId, addr? } objects", voters)?;
            let new = voters
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    Ok(CoreMember {
                        node_id: to_u64(&format!("voters[{i}].nodeId"), v.node_id)?,
                        addr: v.addr.unwrap_or_default(),
                    })
                })
                .collect::<R<Vec<_>>>()?;
            Ok((old, new, admin_timeout(options)?))
        });
        self.run(env, args, |c, (old, new, t)| async move {
            c.admin().with_timeout(t).update_voters(&old, &new).await
        })
    }

    /// Adds the running node `nodeId` (started with `join: true`), reachable at `addr`
    /// (`"host:port"`), as a voter: it joins as a learner, catches up, then is promoted.
    /// Rejects as `updateVoters()`.
    #[napi(
        ts_args_type = "nodeId: number, addr: string, options?: AdminOptions | undefined | null",
        ts_return_type = "Promise<void>"
    )]
    pub fn add_voter<'env>(
        &self,
        env: &'env Env,
        node_id: Unknown<'env>,
        addr: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let args = args::checked(|| {
            Ok((
                args::uint("nodeId", node_id)?,
                args::string("addr", addr)?,
                admin_timeout(options)?,
            ))
        });
        self.run(env, args, |c, (id, addr, t)| async move {
            c.admin().with_timeout(t).add_voter(id, &addr).await
        })
    }

    /// Removes voter `nodeId` (the leader too: leadership moves to a remaining voter). It
    /// stops serving once the configuration without it is committed (`server.waitRemoved()`).
    /// Rejects as `updateVoters()`.
    #[napi(
        ts_args_type = "nodeId: number, options?: AdminOptions | undefined | null",
        ts_return_type = "Promise<void>"
    )]
    pub fn remove_voter<'env>(
        &self,
        env: &'env Env,
        node_id: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let args = args::checked(|| Ok((args::uint("nodeId", node_id)?, admin_timeout(options)?)));
        self.run(env, args, |c, (id, t)| async move {
            c.admin().with_timeout(t).remove_voter(id).await
        })
    }

    /// Converts `nodeId` to `role` (`'VOTER'` or `'OBSERVER'`, any case) and resolves once the
    /// final configuration is committed. To `'OBSERVER'`: the node must be a voter and not the
    /// last one; it keeps its data and goes on as a read replica pulling from its `parents`
    /// (or the voters). To `'VOTER'`: the node must be a registered observer (started with
    /// `role: 'observer'`); it is caught up and promoted. Converting a node to the role it has
    /// resolves at once. `INVALID_ARGUMENT` for another role or a node that is neither a voter
    /// nor a registered observer; otherwise rejects as `updateVoters()`.
    #[napi(
        ts_args_type = "nodeId: number, role: 'VOTER' | 'OBSERVER', options?: AdminOptions | undefined | null",
        ts_return_type = "Promise<void>"
    )]
    pub fn convert_role<'env>(
        &self,
        env: &'env Env,
        node_id: Unknown<'env>,
        role: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let args = args::checked(|| {
            Ok((
                args::uint("nodeId", node_id)?,
                args::string("role", role)?.parse::<MemberRole>()?,
                admin_timeout(options)?,
            ))
        });
        self.run(env, args, |c, (id, role, t)| async move {
            c.admin().with_timeout(t).convert_role(id, role).await
        })
    }

    /// Hands leadership to voter `nodeId` (writes wait meanwhile; none is lost); resolves once
    /// it leads. `INVALID_ARGUMENT` when it is not a voter of a settled configuration,
    /// `TIMEOUT` when it did not take over within `options.timeoutMs`.
    #[napi(
        ts_args_type = "nodeId: number, options?: AdminOptions | undefined | null",
        ts_return_type = "Promise<void>"
    )]
    pub fn transfer_leader<'env>(
        &self,
        env: &'env Env,
        node_id: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let args = args::checked(|| Ok((args::uint("nodeId", node_id)?, admin_timeout(options)?)));
        self.run(env, args, |c, (id, t)| async move {
            c.admin().with_timeout(t).transfer_leader(id).await
        })
    }

    /// Records voter `nodeId` as the preferred leader (leadership moves to it whenever it is
    /// alive and caught up, also after a restart), or clears it with `null`. Every node
    /// reports it as `server.status().preferredLeader`. `INVALID_ARGUMENT` for a non-voter.
    #[napi(
        ts_args_type = "nodeId: number | null",
        ts_return_type = "Promise<void>"
    )]
    pub fn set_preferred_leader<'env>(
        &self,
        env: &'env Env,
        node_id: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let id = args::nullable_uint("nodeId", node_id);
        self.run(env, id, |c, id| async move {
            c.admin().set_preferred_leader(id).await
        })
    }

    /// Makes every node snapshot at one log index; resolves to that index once a majority of
    /// the voters saved it (the others do as they apply it), so `recoverSnapshot()` can use it
    /// at once. `TIMEOUT` when that takes longer than `options.timeoutMs`.
    #[napi(
        ts_args_type = "options?: AdminOptions | undefined | null",
        ts_return_type = "Promise<number>"
    )]
    pub fn take_snapshot<'env>(
        &self,
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        self.run(env, admin_timeout(options), |c, t| async move {
            to_number("index", c.admin().with_timeout(t).take_snapshot().await?)
        })
    }

    /// The snapshots every member (voters and learners) retains, by node id; a node that
    /// cannot be asked is listed with its `error`.
    #[napi]
    pub fn snapshots<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Vec<NodeSnapshots>>> {
        self.run(env, Ok(()), |c, ()| async move {
            let nodes = c.admin().snapshots().await?;
            nodes.into_iter().map(node_snapshots).collect::<R<Vec<_>>>()
        })
    }

    /// Rolls the cluster's state back to the snapshot at `index` through a log entry, so every
    /// node does it at the same point: the KV returns to the snapshot's keys and values
    /// (watchers see each difference); journal entries and write sessions stay.
    /// `INVALID_ARGUMENT` unless a majority of the voters retain that snapshot (see
    /// `snapshots()`) or while a membership change is in progress; `TIMEOUT` after
    /// `options.timeoutMs`.
    #[napi(
        ts_args_type = "index: number, options?: AdminOptions | undefined | null",
        ts_return_type = "Promise<void>"
    )]
    pub fn recover_snapshot<'env>(
        &self,
        env: &'env Env,
        index: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let args = args::checked(|| Ok((args::uint("index", index)?, admin_timeout(options)?)));
        self.run(env, args, |c, (index, t)| async move {
            let admin = c.admin().with_timeout(t);
            within(t, "recoverSnapshot", admin.recover_snapshot(index)).await
        })
    }
}
