//! `Client` and its `journal` / `kv` / `admin` facades: each method converts its arguments,
//! calls the core client on the runtime and converts the reply. Defaults (acknowledgement
//! `REPLICATION`, reads `STRICT`) are the core's.

use std::collections::HashMap;
use std::time::Duration;

use journalkeeper::api::{self, JournalEntry as CoreEntry};
use journalkeeper::client::protocol::{
    ClusterConfiguration as CoreConfiguration, Member as CoreMember, NodeRole,
    NodeStatus as CoreNodeStatus,
};
use journalkeeper::client::{Client as CoreClient, ClientConfig};
use journalkeeper::state::watch::WatchFilter as CoreFilter;
use napi::Env;
use napi::bindgen_prelude::{Buffer, Function, PromiseRaw};
use napi_derive::napi;

use crate::watch::{KvEvent, Watch, WatchCallback};
use crate::{QueryConsistency, ResponseConfig, promise, to_bounded, to_number, to_u64};

/// How a client talks to the cluster; only `clusterId` is required.
#[napi(object)]
pub struct ClientOptions {
    /// Must match the servers' `clusterId`.
    pub cluster_id: f64,
    /// Overall deadline of one call, retries included (default 30 000).
    pub request_timeout_ms: Option<f64>,
    /// Deadline of one attempt (default 10 000, at most `requestTimeoutMs`).
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

/// Voters, observers and leader.
#[napi(object)]
pub struct ClusterConfiguration {
    pub voters: Vec<Member>,
    /// The old voters while a joint-consensus change is in progress.
    pub joint_old_voters: Option<Vec<Member>>,
    pub observers: Vec<Member>,
    pub leader: Option<Member>,
}

/// One node's view of itself, as reported to clients.
#[napi(object)]
pub struct NodeStatus {
    pub node_id: f64,
    /// `"LEADER"`, `"FOLLOWER"`, `"CANDIDATE"` or `"OBSERVER"`.
    pub role: String,
    pub term: f64,
    pub leader: Option<Member>,
    pub commit_index: f64,
    pub applied_index: f64,
    pub last_index: f64,
    pub configuration: ClusterConfiguration,
    /// What the node holds for its clients; absent from a node older than protocol 1.2.
    pub resources: Option<NodeResources>,
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

type R<T> = Result<T, api::Error>;

fn partition(v: f64) -> R<u16> {
    Ok(to_bounded("partition", v, u16::MAX as u64)? as u16)
}

fn consistency(o: Option<ReadOptions>) -> api::QueryConsistency {
    o.and_then(|o| o.consistency)
        .map(Into::into)
        .unwrap_or_default()
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

fn member(m: CoreMember) -> R<Member> {
    Ok(Member {
        node_id: to_number("nodeId", m.node_id)?,
        addr: m.addr,
    })
}

fn members(v: Vec<CoreMember>) -> R<Vec<Member>> {
    v.into_iter().map(member).collect()
}

fn configuration(c: CoreConfiguration) -> R<ClusterConfiguration> {
    Ok(ClusterConfiguration {
        voters: members(c.voters)?,
        joint_old_voters: c.joint_old_voters.map(members).transpose()?,
        observers: members(c.observers)?,
        leader: c.leader.map(member).transpose()?,
    })
}

fn node_status(s: CoreNodeStatus) -> R<NodeStatus> {
    let role = match s.role {
        NodeRole::Leader => "LEADER",
        NodeRole::Follower => "FOLLOWER",
        NodeRole::Candidate => "CANDIDATE",
        NodeRole::Observer => "OBSERVER",
    };
    Ok(NodeStatus {
        node_id: to_number("nodeId", s.node_id)?,
        role: role.to_string(),
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
    })
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
    #[napi(ts_return_type = "Promise<Client>")]
    pub fn connect<'env>(
        env: &'env Env,
        addrs: Vec<String>,
        options: ClientOptions,
    ) -> napi::Result<PromiseRaw<'env, Client>> {
        promise(env, async move {
            let mut cfg = ClientConfig::new(to_u64("clusterId", options.cluster_id)?);
            cfg.request_timeout = ms(
                "requestTimeoutMs",
                options.request_timeout_ms,
                cfg.request_timeout,
            )?;
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

    /// Cluster administration.
    #[napi(getter)]
    pub fn admin(&self) -> Admin {
        Admin {
            inner: self.inner.clone(),
        }
    }

    /// Raises the client's read floor to the leader's applied index, so later `SEQUENTIAL`
    /// reads see every write acknowledged before; returns that index.
    #[napi]
    pub fn sync<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, f64>> {
        let c = self.inner.clone();
        promise(env, async move { to_number("index", c.sync().await?) })
    }

    /// Closes every connection; calls in flight and later calls fail with `CLOSED`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        self.inner.close();
        promise(env, async move { Ok(()) })
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
    /// for `REPLICATION` / `ALL`, null for the other levels.
    #[napi]
    pub fn append<'env>(
        &self,
        env: &'env Env,
        partition_: f64,
        entries: Vec<Buffer>,
        options: Option<AppendOptions>,
    ) -> napi::Result<PromiseRaw<'env, Option<f64>>> {
        let c = self.inner.clone();
        let entries: Vec<Vec<u8>> = entries.iter().map(|b| b.to_vec()).collect();
        let response = options
            .and_then(|o| o.response)
            .map(Into::into)
            .unwrap_or_default();
        promise(env, async move {
            let p = partition(partition_)?;
            let first = c.journal().append(p, entries, response).await?;
            first.map(|i| to_number("index", i)).transpose()
        })
    }

    /// Up to `maxEntries` entries of `partition` from `index` on. `INDEX_OVERFLOW` at or past
    /// the end, `INDEX_UNDERFLOW` before the start.
    #[napi]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        partition_: f64,
        index: f64,
        max_entries: f64,
        options: Option<ReadOptions>,
    ) -> napi::Result<PromiseRaw<'env, Vec<JournalEntry>>> {
        let c = self.inner.clone();
        let level = consistency(options);
        promise(env, async move {
            let p = partition(partition_)?;
            let index = to_u64("index", index)?;
            let max = to_bounded("maxEntries", max_entries, u32::MAX as u64)? as u32;
            let entries = c.journal().get(p, index, max, level).await?;
            entries.into_iter().map(entry).collect::<R<Vec<_>>>()
        })
    }

    /// Per partition (keys are partition numbers), the smallest readable index.
    #[napi]
    pub fn min_indices<'env>(
        &self,
        env: &'env Env,
        options: Option<ReadOptions>,
    ) -> napi::Result<PromiseRaw<'env, HashMap<String, f64>>> {
        let c = self.inner.clone();
        let level = consistency(options);
        promise(env, async move {
            indices(c.journal().with_consistency(level).min_indices().await?)
        })
    }

    /// Per partition (keys are partition numbers), the index the next entry will get.
    #[napi]
    pub fn max_indices<'env>(
        &self,
        env: &'env Env,
        options: Option<ReadOptions>,
    ) -> napi::Result<PromiseRaw<'env, HashMap<String, f64>>> {
        let c = self.inner.clone();
        let level = consistency(options);
        promise(env, async move {
            indices(c.journal().with_consistency(level).max_indices().await?)
        })
    }

    /// The current partitions, ascending.
    #[napi]
    pub fn list_partitions<'env>(
        &self,
        env: &'env Env,
        options: Option<ReadOptions>,
    ) -> napi::Result<PromiseRaw<'env, Vec<u32>>> {
        let c = self.inner.clone();
        let level = consistency(options);
        promise(env, async move {
            let set = c
                .journal()
                .with_consistency(level)
                .list_partitions()
                .await?;
            Ok(set.into_iter().map(u32::from).collect::<Vec<_>>())
        })
    }

    /// The index of the last entry stored at or before `timestampMs`; null when empty.
    #[napi]
    pub fn query_index<'env>(
        &self,
        env: &'env Env,
        partition_: f64,
        timestamp_ms: f64,
        options: Option<ReadOptions>,
    ) -> napi::Result<PromiseRaw<'env, Option<f64>>> {
        let c = self.inner.clone();
        let level = consistency(options);
        promise(env, async move {
            let p = partition(partition_)?;
            let ts = to_u64("timestampMs", timestamp_ms)?;
            let i = c
                .journal()
                .with_consistency(level)
                .query_index(p, ts)
                .await?;
            i.map(|i| to_number("index", i)).transpose()
        })
    }

    /// Replaces the partition set.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn scale_partitions<'env>(
        &self,
        env: &'env Env,
        partitions: Vec<f64>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let c = self.inner.clone();
        promise(env, async move {
            let ps = partitions
                .into_iter()
                .map(partition)
                .collect::<R<Vec<_>>>()?;
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
    /// Sets `key` to `value`; resolves to the previous value (null: none).
    #[napi]
    pub fn set<'env>(
        &self,
        env: &'env Env,
        key: String,
        value: Buffer,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        let c = self.inner.clone();
        let value = value.to_vec();
        promise(env, async move {
            Ok(c.kv().set(&key, value).await?.map(Buffer::from))
        })
    }

    /// The value of `key` (null: absent).
    #[napi]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        key: String,
        options: Option<ReadOptions>,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        let c = self.inner.clone();
        let level = consistency(options);
        promise(env, async move {
            Ok(c.kv()
                .with_consistency(level)
                .get(&key)
                .await?
                .map(Buffer::from))
        })
    }

    /// Whether `key` exists.
    #[napi]
    pub fn exists<'env>(
        &self,
        env: &'env Env,
        key: String,
        options: Option<ReadOptions>,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let c = self.inner.clone();
        let level = consistency(options);
        promise(env, async move {
            c.kv().with_consistency(level).exists(&key).await
        })
    }

    /// Removes `key`; resolves to the value it had (null: none).
    #[napi]
    pub fn remove<'env>(
        &self,
        env: &'env Env,
        key: String,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        let c = self.inner.clone();
        promise(env, async move {
            Ok(c.kv().remove(&key).await?.map(Buffer::from))
        })
    }

    /// Every key starting with `prefix`, with its value, in key order.
    #[napi]
    pub fn list<'env>(
        &self,
        env: &'env Env,
        prefix: String,
        options: Option<ReadOptions>,
    ) -> napi::Result<PromiseRaw<'env, Vec<KvEntry>>> {
        let c = self.inner.clone();
        let level = consistency(options);
        promise(env, async move {
            let entries = c.kv().with_consistency(level).list(&prefix).await?;
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
    #[napi]
    pub fn compare_and_set<'env>(
        &self,
        env: &'env Env,
        key: String,
        expect: Option<Buffer>,
        value: Option<Buffer>,
    ) -> napi::Result<PromiseRaw<'env, CasResult>> {
        let c = self.inner.clone();
        let expect = expect.map(|b| b.to_vec());
        let value = value.map(|b| b.to_vec());
        promise(env, async move {
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
        filter: WatchFilter,
        from_index: f64,
        callback: Function<'env, KvEvent, ()>,
    ) -> napi::Result<PromiseRaw<'env, Watch>> {
        let c = self.inner.clone();
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
            let from = to_u64("fromIndex", from_index)?;
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

#[napi]
impl Admin {
    /// The status of the node at `node` (`"host:port"`).
    #[napi]
    pub fn status<'env>(
        &self,
        env: &'env Env,
        node: String,
    ) -> napi::Result<PromiseRaw<'env, NodeStatus>> {
        let c = self.inner.clone();
        promise(
            env,
            async move { node_status(c.admin().status(&node).await?) },
        )
    }

    /// Voters, observers and leader, as the leader knows them.
    #[napi]
    pub fn cluster_configuration<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, ClusterConfiguration>> {
        let c = self.inner.clone();
        promise(env, async move {
            configuration(c.admin().cluster_configuration().await?)
        })
    }
}
