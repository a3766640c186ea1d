//! A fake cluster for client tests: nodes built on `net::Listener` that speak the client
//! protocol over an in-memory journal and KV (shared by all nodes, as if every node applied the
//! same log instantly). Each node has a scripted [`Behaviour`] (follower with a hint, behind,
//! silent, dropping the connection after an append) and records every request it receives.
//! Test scaffolding only.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use journalkeeper::api::{Error, ErrorKind, JournalEntry, QueryConsistency};
use journalkeeper::client::protocol::{
    ClientRequest, ClusterConfiguration, Member, NodeRole, NodeStatus, ReplyBody, RequestBody,
    ServerMessage, Wire,
};
use journalkeeper::net::{ConnHandle, ConnId, Inbound, Listener, NetConfig};
use journalkeeper::state::ApplyContext;
use journalkeeper::state::kv::{KvLimits, KvQuery, KvQueryResult, KvStore};
use journalkeeper::state::watch::WatchFilter;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub const CLUSTER: u64 = 77;
/// Safety net for waits; tests normally finish far sooner.
pub const WAIT: Duration = Duration::from_secs(5);

/// The server's peer message type stands in for raft traffic: clients use `Wire<NoPeer>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FakePeer {
    Ping,
}

pub type Msg = Wire<FakePeer>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What every node "has applied": the fake's replicated state.
pub struct Store {
    pub applied: u64,
    pub journal: BTreeMap<u16, Vec<JournalEntry>>,
    pub kv: KvStore,
    /// Append results by (client id, seq): a retry gets the first result.
    pub appends: HashMap<(u64, u64), Option<u64>>,
    watchers: Vec<(ConnHandle<Msg>, u64, WatchFilter)>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            applied: 0,
            journal: BTreeMap::from([(0, Vec::new()), (1, Vec::new())]),
            kv: KvStore::new(KvLimits::default()),
            appends: HashMap::new(),
            watchers: Vec::new(),
        }
    }
}

/// A node's script.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    pub leader: bool,
    /// For a follower: the hint in `NotLeader`.
    pub leader_hint: Option<String>,
    /// Report this applied index instead of the store's (a node that is behind).
    pub applied_override: Option<u64>,
    /// Record requests but never answer.
    pub silent: bool,
    /// Apply this many appends, then drop the connection instead of replying.
    pub drop_after_append: usize,
}

/// One fake node.
pub struct FakeNode {
    pub addr: SocketAddr,
    pub behaviour: Arc<Mutex<Behaviour>>,
    log: Arc<Mutex<Vec<(ConnId, RequestBody)>>>,
    seen: watch::Receiver<u64>,
    restart: mpsc::Sender<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeNode {
    pub async fn start(store: Arc<Mutex<Store>>, behaviour: Behaviour) -> FakeNode {
        Self::start_with(store, behaviour, NetConfig::new(CLUSTER)).await
    }

    /// As [`start`](Self::start), with the listener's network settings.
    pub async fn start_with(
        store: Arc<Mutex<Store>>,
        behaviour: Behaviour,
        net: NetConfig,
    ) -> FakeNode {
        let (listener, inbound) =
            Listener::<Msg>::bind("127.0.0.1:0".parse().unwrap(), 1, net.clone())
                .await
                .expect("bind");
        let addr = listener.local_addr();
        let behaviour = Arc::new(Mutex::new(behaviour));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (seen_tx, seen) = watch::channel(0);
        let (restart, restart_rx) = mpsc::channel(4);
        let node = Node {
            addr,
            net,
            store,
            behaviour: behaviour.clone(),
            log: log.clone(),
            seen: seen_tx,
        };
        let task = tokio::spawn(node.run(listener, inbound, restart_rx));
        FakeNode {
            addr,
            behaviour,
            log,
            seen,
            restart,
            task,
        }
    }

    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut lock(&self.behaviour));
    }

    /// Every request received so far, with the connection it came on.
    pub fn requests(&self) -> Vec<(ConnId, RequestBody)> {
        lock(&self.log).clone()
    }

    pub fn bodies(&self) -> Vec<RequestBody> {
        self.requests().into_iter().map(|(_, b)| b).collect()
    }

    /// Waits (bounded by [`WAIT`]) until `pred` holds for the request log.
    pub async fn wait_until(&self, mut pred: impl FnMut(&[RequestBody]) -> bool) {
        let mut seen = self.seen.clone();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if pred(&self.bodies()) {
                return;
            }
            tokio::time::timeout_at(deadline, seen.changed())
                .await
                .expect("fake node: condition not reached in time")
                .expect("fake node stopped");
        }
    }

    /// Drops every client connection (stops and rebinds the listener on the same port).
    pub async fn restart(&self) {
        let (tx, rx) = oneshot::channel();
        self.restart.send(tx).await.expect("fake node running");
        rx.await.expect("restarted");
    }
}

struct Node {
    addr: SocketAddr,
    net: NetConfig,
    store: Arc<Mutex<Store>>,
    behaviour: Arc<Mutex<Behaviour>>,
    log: Arc<Mutex<Vec<(ConnId, RequestBody)>>>,
    seen: watch::Sender<u64>,
}

enum Action {
    Continue,
    DropConnections,
}

impl Node {
    async fn run(
        self,
        mut listener: Listener<Msg>,
        mut inbound: mpsc::Receiver<Inbound<Msg>>,
        mut restart: mpsc::Receiver<oneshot::Sender<()>>,
    ) {
        loop {
            let mut done = None;
            tokio::select! {
                r = restart.recv() => match r {
                    Some(tx) => done = Some(tx),
                    None => return,
                },
                m = inbound.recv() => {
                    let Some(Inbound::Client { conn, msg: Wire::Request(req) }) = m else { continue };
                    if let Action::DropConnections = self.handle(&conn, req) {
                        done = Some(oneshot::channel().0);
                    }
                }
            }
            if let Some(tx) = done {
                listener.shutdown().await;
                let (l, i) = Listener::<Msg>::bind(self.addr, 1, self.net.clone())
                    .await
                    .expect("rebind the same port");
                listener = l;
                inbound = i;
                let _ = tx.send(());
            }
        }
    }

    fn handle(&self, conn: &ConnHandle<Msg>, req: ClientRequest) -> Action {
        lock(&self.log).push((conn.id(), req.body.clone()));
        self.seen.send_modify(|n| *n += 1);
        let mut behaviour = lock(&self.behaviour);
        if behaviour.silent {
            return Action::Continue;
        }
        let mut store = lock(&self.store);
        let applied = behaviour.applied_override.unwrap_or(store.applied);
        let reply = |result: Result<ReplyBody, Error>, applied_index: u64| {
            let _ = conn.send(&Wire::Server(ServerMessage::Reply {
                id: req.id,
                result,
                applied_index,
            }));
        };
        let leader_only = match &req.body {
            RequestBody::Append { .. }
            | RequestBody::AppendBatches { .. }
            | RequestBody::ScalePartitions { .. }
            | RequestBody::KvWrite { .. }
            | RequestBody::AppliedIndex => true,
            other => other
                .read_at()
                .is_some_and(|r| r.consistency == QueryConsistency::Strict),
        };
        if leader_only && !behaviour.leader {
            reply(
                Err(Error::not_leader(behaviour.leader_hint.clone())),
                applied,
            );
            return Action::Continue;
        }
        if let Some(read) = req.body.read_at()
            && read.min_applied > applied
        {
            let e = Error::new(
                ErrorKind::IndexOverflow,
                format!("not yet: applied {applied} < {}", read.min_applied),
            );
            reply(Err(e), applied);
            return Action::Continue;
        }
        let result = match req.body.clone() {
            RequestBody::Append {
                partition,
                response,
                session,
                ..
            }
            | RequestBody::AppendBatches {
                partition,
                response,
                session,
                ..
            } => {
                let batches = req.body.append_batches().unwrap_or_default();
                let key = (session.client_id, session.seq);
                let first = match store.appends.get(&key) {
                    Some(first) => *first,
                    None => {
                        let Some(part) = store.journal.get(&partition) else {
                            reply(
                                Err(Error::new(ErrorKind::InvalidArgument, "no such partition")),
                                applied,
                            );
                            return Action::Continue;
                        };
                        let first = part.len() as u64;
                        store.applied += 1;
                        let term = store.applied;
                        let part = store.journal.get_mut(&partition).unwrap();
                        for entries in batches {
                            let n = entries.len() as u16;
                            for (i, payload) in entries.iter().enumerate() {
                                let index = part.len() as u64;
                                part.push(JournalEntry {
                                    partition,
                                    index,
                                    batch_size: n,
                                    offset: i as u16,
                                    term,
                                    timestamp_ms: 1000 * index,
                                    payload: payload.clone(),
                                });
                            }
                        }
                        store.appends.insert(key, Some(first));
                        Some(first)
                    }
                };
                if behaviour.drop_after_append > 0 {
                    behaviour.drop_after_append -= 1;
                    return Action::DropConnections;
                }
                if req.body.expects_no_reply() {
                    return Action::Continue;
                }
                Ok(ReplyBody::Appended {
                    first_index: first.filter(|_| response.returns_result()),
                })
            }
            RequestBody::Get {
                partition,
                index,
                max_entries,
                ..
            } => match store.journal.get(&partition) {
                None => Err(Error::new(ErrorKind::InvalidArgument, "no such partition")),
                Some(part) if index >= part.len() as u64 => {
                    Err(Error::new(ErrorKind::IndexOverflow, "past the end"))
                }
                Some(part) => Ok(ReplyBody::Entries(
                    part[index as usize..]
                        .iter()
                        .take(max_entries as usize)
                        .cloned()
                        .collect(),
                )),
            },
            RequestBody::MinIndices { .. } => Ok(ReplyBody::Indices(
                store.journal.keys().map(|p| (*p, 0)).collect(),
            )),
            RequestBody::MaxIndices { .. } => Ok(ReplyBody::Indices(
                store
                    .journal
                    .iter()
                    .map(|(p, v)| (*p, v.len() as u64))
                    .collect(),
            )),
            RequestBody::ListPartitions { .. } => Ok(ReplyBody::Partitions(
                store.journal.keys().copied().collect(),
            )),
            RequestBody::QueryIndex {
                partition,
                timestamp_ms,
                ..
            } => {
                let part = store.journal.get(&partition).cloned().unwrap_or_default();
                let r = journalkeeper::state::journal_store::query_index::<()>(
                    0,
                    part.len() as u64,
                    timestamp_ms,
                    |i| Ok(part[i as usize].timestamp_ms),
                );
                Ok(ReplyBody::Index(r.unwrap()))
            }
            RequestBody::ScalePartitions { partitions, .. } => {
                store.journal.retain(|p, _| partitions.contains(p));
                for p in partitions {
                    store.journal.entry(p).or_default();
                }
                store.applied += 1;
                Ok(ReplyBody::Done)
            }
            RequestBody::KvWrite { request, response } => {
                store.applied += 1;
                let ctx = ApplyContext {
                    index: store.applied,
                    term: 1,
                    timestamp_ms: 0,
                };
                let outcome = store.kv.apply_request(&ctx, &request);
                store.push_events(ctx.index);
                match outcome {
                    Ok(o) => Ok(ReplyBody::KvWritten(response.returns_result().then_some(o))),
                    Err(e) => Err(Error::new(ErrorKind::InvalidArgument, e.to_string())),
                }
            }
            RequestBody::KvRead { query, .. } => store
                .kv
                .read(&query)
                .map(ReplyBody::KvRead)
                .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string())),
            RequestBody::Watch {
                watch_id,
                filter,
                from_index,
            } => {
                let start = if from_index == 0 {
                    store.applied + 1
                } else {
                    from_index
                };
                let past = store.kv.read(&KvQuery::Events {
                    filter: filter.clone(),
                    from_index: start,
                    max: 10_000,
                });
                match past {
                    Ok(KvQueryResult::Events(events)) => {
                        reply(Ok(ReplyBody::Watching { from_index: start }), applied);
                        if !events.is_empty() {
                            let _ = conn.send(&Wire::Server(ServerMessage::WatchEvents {
                                watch_id,
                                events,
                            }));
                        }
                        store.watchers.push((conn.clone(), watch_id, filter));
                        return Action::Continue;
                    }
                    Ok(_) => unreachable!(),
                    Err(e) => Err(Error::new(ErrorKind::IndexUnderflow, e.to_string())),
                }
            }
            RequestBody::Unwatch { watch_id } => {
                store
                    .watchers
                    .retain(|(c, w, _)| !(c.id() == conn.id() && *w == watch_id));
                Ok(ReplyBody::Done)
            }
            RequestBody::AppliedIndex => Ok(ReplyBody::AppliedIndex(store.applied)),
            // As a 1.1 node would: no resource counts, no detail.
            RequestBody::Status | RequestBody::StatusWithResources | RequestBody::StatusDetail => {
                Ok(ReplyBody::Status(NodeStatus {
                    node_id: self.addr.port() as u64,
                    role: if behaviour.leader {
                        NodeRole::Leader
                    } else {
                        NodeRole::Follower
                    },
                    term: 1,
                    leader: behaviour
                        .leader_hint
                        .clone()
                        .map(|addr| Member { node_id: 0, addr }),
                    commit_index: store.applied,
                    applied_index: applied,
                    last_index: store.applied,
                    configuration: ClusterConfiguration::default(),
                    resources: None,
                    detail: None,
                }))
            }
            RequestBody::ClusterConfiguration => {
                Ok(ReplyBody::Configuration(ClusterConfiguration::default()))
            }
            RequestBody::UpdateVoters { .. }
            | RequestBody::TransferLeader { .. }
            | RequestBody::SetPreferredLeader { .. }
            | RequestBody::SubscribeEvents { .. }
            | RequestBody::SubscribeEventsWith { .. }
            | RequestBody::Pull { .. }
            | RequestBody::PullSnapshot { .. }
            | RequestBody::RegisterObserver { .. }
            | RequestBody::KvReadAt { .. }
            | RequestBody::TakeSnapshot
            | RequestBody::ListSnapshots
            | RequestBody::RecoverSnapshot { .. }
            | RequestBody::CoordWrite { .. }
            | RequestBody::LeaseKeepAlive { .. }
            | RequestBody::LeaseTimeToLive { .. }
            | RequestBody::TxnWrite { .. }
            | RequestBody::OpenTransactions { .. }
            | RequestBody::SmUpdate { .. }
            | RequestBody::SmQuery { .. } => Err(Error::new(
                ErrorKind::InvalidArgument,
                "the fake server does no administration, coordination, transactions, events or \
                 user state machines",
            )),
        };
        let applied = behaviour.applied_override.unwrap_or(store.applied);
        reply(result, applied);
        Action::Continue
    }
}

impl Store {
    /// Pushes the events of log index `index` to every live watcher whose filter matches.
    fn push_events(&mut self, index: u64) {
        self.watchers.retain(|(c, _, _)| !c.is_closed());
        for (conn, watch_id, filter) in &self.watchers {
            if let Ok(KvQueryResult::Events(events)) = self.kv.read(&KvQuery::Events {
                filter: filter.clone(),
                from_index: index,
                max: 10_000,
            }) && !events.is_empty()
            {
                let _ = conn.send(&Wire::Server(ServerMessage::WatchEvents {
                    watch_id: *watch_id,
                    events,
                }));
            }
        }
    }
}
