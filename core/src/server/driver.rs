//! The driver task: owns the [`RaftNode`] and everything that waits on it. One tokio task
//! takes ticks, peer messages, client requests and the reports of the writer and apply threads,
//! feeds them to the core, and handles every `Ready` in the order `raft::Ready` prescribes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use super::PeerWire;
use super::apply::{self, ApplyDone, ApplyJob, Machines, Outcome};
use super::command::{
    JournalHeader, RESERVED_PARTITION_START, encode_kv, encode_scale, journal_datas,
};
use super::config::{MAX_RECORD_BYTES, ServerConfig};
use super::proposal_batch::{ProposalBatch, StagedWrite, WriteKind};
use super::read::read_machines;
use super::storage::{self, LogStore, SnapshotState, WriteDone, WriteJob, WriteQueue, Writer};
use crate::api::{Error, ErrorKind, QueryConsistency, ResponseConfig};
use crate::client::protocol::{
    self, ClientRequest, ClusterConfiguration, Member, NodeRole, NodeStatus, ReadAt, ReplyBody,
    RequestBody, ServerMessage, Wire,
};
use crate::net::{ConnHandle, ConnId, Inbound, Transport};
use crate::raft::{
    Event, Index, Membership, RaftError, RaftNode, ReadMode, Role, SnapshotMeta, Term,
};
use crate::state::kv::{KvQuery, KvQueryResult};
use crate::state::session::RequestId;
use crate::state::watch::{KvEvent, WatchFilter};
use crate::storage::{Journal, JournalOptions, PartitionIndex, SnapshotStore, StorageError};

/// A node's externally visible state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerStatus {
    pub node_id: u64,
    /// `None` until the node has started.
    pub role: Option<Role>,
    pub leader: Option<u64>,
    pub term: Term,
    pub commit_index: Index,
    pub applied_index: Index,
    /// Highest log index durable on this node's disk.
    pub durable_index: Index,
    pub first_index: Index,
    pub last_index: Index,
    pub membership: Membership,
    /// The node stopped serving after a storage failure (the reason is logged).
    pub failed: bool,
}

impl ServerStatus {
    pub fn is_leader(&self) -> bool {
        self.role == Some(Role::Leader)
    }

    /// The role in the shared vocabulary (`None` until the node has started): a follower
    /// that is not a voter is an `Observer`.
    pub fn node_role(&self) -> Option<NodeRole> {
        self.role.map(|r| match r {
            Role::Leader => NodeRole::Leader,
            Role::PreCandidate => NodeRole::PreCandidate,
            Role::Candidate => NodeRole::Candidate,
            Role::Follower if !self.membership.is_voter(self.node_id) => NodeRole::Observer,
            Role::Follower => NodeRole::Follower,
        })
    }
}

type Conn = ConnHandle<PeerWire>;

/// Most queued inputs of each kind (peer/client messages, thread reports) one pass of the
/// driver loop takes after the one that woke it, so ticks and `Ready` are never starved.
const MAX_DRAIN: usize = 512;

/// Messages from the writer and apply threads.
enum Report {
    Write(WriteDone),
    Apply(ApplyDone),
}

struct Waiter {
    conn: Conn,
    req: u64,
    response: ResponseConfig,
    kind: WriteKind,
    term: Term,
    last: Index,
}

struct PendingRead {
    conn: Conn,
    req: ClientRequest,
}

struct WatchReg {
    conn: Conn,
    filter: WatchFilter,
    /// Events with index ≤ cursor were already delivered (replayed).
    cursor: Index,
}

pub(crate) fn storage_error(e: StorageError) -> Error {
    let kind = match &e {
        StorageError::Io { .. } => ErrorKind::Io,
        StorageError::CorruptRecord { .. } | StorageError::CorruptFile { .. } => {
            ErrorKind::Corruption
        }
        StorageError::Compacted { .. } => ErrorKind::IndexUnderflow,
        StorageError::OutOfRange { .. } => ErrorKind::IndexOverflow,
        StorageError::InvalidArgument(_) | StorageError::RecordTooLarge { .. } => {
            ErrorKind::InvalidArgument
        }
        StorageError::Closed => ErrorKind::Closed,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, e.to_string())
}

fn raft_error(e: RaftError, hint: Option<String>) -> Error {
    match e {
        RaftError::NotLeader { .. } => Error::not_leader(hint),
        RaftError::TransferInProgress(_) | RaftError::ConfChangeInProgress => {
            Error::new(ErrorKind::Unavailable, e.to_string())
        }
        RaftError::TooManyPendingReads => Error::new(ErrorKind::Unavailable, e.to_string()),
        RaftError::InvalidArgument(_) | RaftError::InvalidConfig(_) => {
            Error::new(ErrorKind::InvalidArgument, e.to_string())
        }
        RaftError::SnapshotUnavailable { .. } => Error::new(ErrorKind::Internal, e.to_string()),
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

type Started = (
    watch::Receiver<ServerStatus>,
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// Opens storage, recovers the state machines, binds the port and spawns the node.
pub(crate) async fn start(cfg: ServerConfig) -> Result<Started, Error> {
    let node = cfg.node_id;
    let data = cfg.data_dir.clone();
    let cfg2 = cfg.clone();
    // Opening and recovery do blocking file I/O.
    let opened = tokio::task::spawn_blocking(move || open_storage(&cfg2, &data))
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("storage open task: {e}")))??;
    let Opened {
        journal,
        machines,
        store,
        writer,
        snapshot_applied,
        last_ts,
    } = opened;

    let mut net = cfg.net.clone();
    net.cluster_id = cfg.cluster_id;
    let (mut transport, inbound) = Transport::<PeerWire>::start(node, cfg.listen, net)
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot listen on {}: {e}", cfg.listen),
            )
        })?;
    let local_addr = transport.local_addr();
    for (&id, &addr) in &cfg.peers {
        if id != node {
            transport.peers_mut().add(id, addr);
        }
    }
    let mut addrs: BTreeMap<u64, String> =
        cfg.peers.iter().map(|(k, v)| (*k, v.to_string())).collect();
    if cfg.peers.get(&node).is_none_or(|a| a.port() == 0) {
        // Peers list this node with an ephemeral port: advertise the bound one.
        addrs.insert(node, local_addr.to_string());
    }

    let raft = RaftNode::new(cfg.raft_config(), store, snapshot_applied, 0)
        .map_err(|e| raft_error(e, None))?;

    let (report_tx, report_rx) = mpsc::unbounded_channel::<Report>();
    let (write_tx, write_rx, consumed) = WriteQueue::new();
    let (apply_tx, apply_rx) = std::sync::mpsc::channel::<ApplyJob>();

    let wtx = report_tx.clone();
    let writer_apply_tx = apply_tx.clone();
    let writer_thread = std::thread::Builder::new()
        .name(format!("jk-writer-{node}"))
        .spawn(move || {
            writer.run(
                write_rx,
                consumed,
                |d| wtx.send(Report::Write(d)).is_ok(),
                |job| writer_apply_tx.send(job).is_ok(),
            )
        })
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot spawn writer thread: {e}")))?;
    let atx = report_tx.clone();
    let m2 = machines.clone();
    let interval = cfg.snapshot_interval;
    let apply_thread = std::thread::Builder::new()
        .name(format!("jk-apply-{node}"))
        .spawn(move || {
            apply::run(
                node,
                m2,
                apply_rx,
                |d| atx.send(Report::Apply(d)).is_ok(),
                interval,
            )
        })
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot spawn apply thread: {e}")))?;
    drop(report_tx);

    let (status_tx, status_rx) = watch::channel(ServerStatus {
        node_id: node,
        ..ServerStatus::default()
    });
    let (stop_tx, stop_rx) = oneshot::channel();
    let durable = journal.durable_index();
    let driver = Driver {
        cfg,
        raft,
        journal,
        machines,
        addrs,
        write_tx,
        apply_tx,
        status_tx,
        start: Instant::now(),
        durable,
        waiters: BTreeMap::new(),
        outcomes: HashMap::new(),
        sessions: HashMap::new(),
        reads: HashMap::new(),
        next_read: 1,
        deferred: Vec::new(),
        watches: HashMap::new(),
        term_start: u64::MAX,
        last_ts,
        pending_snapshot: None,
        failed: false,
        pending_count: 0,
        batch: ProposalBatch::default(),
    };
    driver.publish();
    let task = tokio::spawn(async move {
        driver
            .run(
                transport,
                inbound,
                report_rx,
                stop_rx,
                writer_thread,
                apply_thread,
            )
            .await
    });
    Ok((status_rx, local_addr, stop_tx, task))
}

struct Opened {
    journal: Arc<Journal>,
    machines: Arc<Mutex<Machines>>,
    store: LogStore,
    writer: Writer,
    snapshot_applied: Index,
    last_ts: u64,
}

fn open_storage(cfg: &ServerConfig, data: &std::path::Path) -> Result<Opened, Error> {
    let se = storage_error;
    std::fs::create_dir_all(data).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot create data dir {}: {e}", data.display()),
        )
    })?;
    let journal = Arc::new(
        Journal::open(
            data.join("journal"),
            JournalOptions {
                max_segment_bytes: cfg.max_segment_bytes,
                max_record_bytes: MAX_RECORD_BYTES,
            },
        )
        .map_err(se)?,
    );
    let snapshots = Arc::new(SnapshotStore::open(data.join("snapshots")).map_err(se)?);
    let (metadata, hard_state, saved, extra) = storage::open_metadata(data).map_err(se)?;
    let pidx = PartitionIndex::open(data.join("partitions"), &journal).map_err(se)?;
    let mut machines = Machines::new(journal.clone(), pidx, cfg.kv_limits, cfg.partitions.clone());
    let latest = storage::load_latest_snapshot(&snapshots).map_err(se)?;
    let mut snap_state = SnapshotState {
        meta: SnapshotMeta {
            index: 0,
            term: 0,
            membership: Membership::new(cfg.peers.keys().copied()),
        },
        dir: None,
    };
    if let Some((meta, dir)) = latest {
        let path = dir.join("data");
        let bytes = std::fs::read(&path).map_err(|e| se(StorageError::io(&path, e)))?;
        let parts = machines
            .restore_state(meta.index, meta.term, &bytes)
            .map_err(|e| Error::new(ErrorKind::Corruption, e))?;
        if journal.term_at(meta.index).ok() != Some(meta.term) {
            // Crashed between saving an installed snapshot and resetting the log.
            journal
                .reset_to_snapshot(meta.index, meta.term)
                .map_err(se)?;
            machines
                .pidx
                .reset_to_snapshot(meta.index, meta.term, &parts)
                .map_err(se)?;
        }
        snap_state = SnapshotState {
            meta,
            dir: Some(dir),
        };
    }
    let snap_index = snap_state.meta.index;
    // The partition index follows the applied state: replay re-indexes after the snapshot.
    if machines.pidx.indexed_upto() > snap_index {
        machines
            .pidx
            .truncate_suffix(&journal, snap_index + 1)
            .map_err(se)?;
    }
    let last_ts = match journal.last_index() {
        last if last >= journal.first_index() => journal
            .read(last, 1, usize::MAX)
            .ok()
            .and_then(|r| r.first().map(|r| r.timestamp_ms))
            .unwrap_or(0),
        _ => 0,
    };
    let snapshot = Arc::new(Mutex::new(snap_state));
    let store = LogStore {
        journal: journal.clone(),
        hard_state,
        snapshot: snapshot.clone(),
    };
    let writer = Writer {
        journal: journal.clone(),
        metadata,
        snapshots,
        snapshot,
        saved,
        extra,
        node: cfg.node_id,
    };
    tracing::info!(
        node = cfg.node_id,
        first = journal.first_index(),
        last = journal.last_index(),
        snapshot = snap_index,
        "storage opened"
    );
    Ok(Opened {
        journal,
        machines: Arc::new(Mutex::new(machines)),
        store,
        writer,
        snapshot_applied: snap_index,
        last_ts,
    })
}

struct Driver {
    cfg: ServerConfig,
    raft: RaftNode<LogStore>,
    journal: Arc<Journal>,
    machines: Arc<Mutex<Machines>>,
    /// Client address of every node, for leader hints.
    addrs: BTreeMap<u64, String>,
    write_tx: WriteQueue,
    apply_tx: std::sync::mpsc::Sender<ApplyJob>,
    status_tx: watch::Sender<ServerStatus>,
    start: Instant,
    durable: Index,
    /// Writes waiting for their acknowledgement, by the log index of their first entry.
    waiters: BTreeMap<Index, Vec<Waiter>>,
    /// Outcomes of applied writes whose waiters are not complete yet (e.g. ALL, not durable).
    outcomes: HashMap<Index, (Term, Outcome)>,
    /// Proposed, not yet applied appends by session `(client, seq)` → `(first, last, term)`:
    /// a retry joins the original instead of appending again.
    sessions: HashMap<(u64, u64), (Index, Index, Term)>,
    reads: HashMap<u64, PendingRead>,
    next_read: u64,
    /// Writes that arrived before this leader applied its term's first entry.
    deferred: Vec<(Conn, ClientRequest)>,
    watches: HashMap<(ConnId, u64), WatchReg>,
    /// Index of this leader's term-start entry (`u64::MAX` when not leader).
    term_start: Index,
    /// Last store time assigned to a journal entry.
    last_ts: u64,
    pending_snapshot: Option<(Index, Vec<u8>)>,
    failed: bool,
    pending_count: usize,
    /// Writes accepted in this pass, proposed together before `Ready` is handled.
    batch: ProposalBatch,
}

impl Driver {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Machines> {
        self.machines.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn applied(&self) -> Index {
        self.raft.status().applied
    }

    fn leader_hint(&self) -> Option<String> {
        self.raft.leader().and_then(|l| self.addrs.get(&l).cloned())
    }

    fn not_leader(&self) -> Error {
        Error::not_leader(self.leader_hint())
    }

    fn publish(&self) {
        let s = self.raft.status();
        let status = ServerStatus {
            node_id: self.cfg.node_id,
            role: Some(s.role),
            leader: s.leader,
            term: s.term,
            commit_index: s.commit,
            applied_index: s.applied,
            durable_index: self.durable,
            first_index: s.first_index,
            last_index: s.last_index,
            membership: s.membership,
            failed: self.failed,
        };
        self.status_tx.send_if_modified(|old| {
            if *old != status {
                *old = status;
                true
            } else {
                false
            }
        });
    }

    async fn run(
        mut self,
        transport: Transport<PeerWire>,
        mut inbound: mpsc::Receiver<Inbound<PeerWire>>,
        mut reports: mpsc::UnboundedReceiver<Report>,
        mut stop: oneshot::Receiver<()>,
        writer_thread: std::thread::JoinHandle<()>,
        apply_thread: std::thread::JoinHandle<()>,
    ) {
        let node = self.cfg.node_id;
        let mut ticker = tokio::time::interval(Duration::from_millis(self.cfg.tick_ms));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tracing::info!(node, addr = %transport.local_addr(), "server started");
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = ticker.tick() => {
                    let now = self.now();
                    self.raft.tick(now);
                }
                msg = inbound.recv() => match msg {
                    Some(msg) => self.on_inbound(msg),
                    None => break,
                },
                rep = reports.recv() => match rep {
                    Some(rep) => self.on_report(rep, &transport),
                    None => break,
                },
            }
            // Everything else that is already waiting joins this pass: its writes become one
            // proposal and its raft effects one `Ready`.
            for _ in 0..MAX_DRAIN {
                match inbound.try_recv() {
                    Ok(msg) => self.on_inbound(msg),
                    Err(_) => break,
                }
            }
            for _ in 0..MAX_DRAIN {
                match reports.try_recv() {
                    Ok(rep) => self.on_report(rep, &transport),
                    Err(_) => break,
                }
            }
            self.propose_batch();
            if !self.failed {
                self.process_ready(&transport);
            }
            self.publish();
        }
        tracing::info!(node, "server stopping");
        // Fail everything still waiting.
        // Waiting requests may have taken effect or not: `Unavailable` tells the client to retry
        // elsewhere (writes carry sessions, so a retry is applied once).
        let stopping = || Error::new(ErrorKind::Unavailable, "the server is shutting down");
        for (_, ws) in std::mem::take(&mut self.waiters) {
            for w in ws {
                reply(&w.conn, w.req, Err(stopping()), 0);
            }
        }
        for (_, r) in std::mem::take(&mut self.reads) {
            reply(&r.conn, r.req.id, Err(stopping()), 0);
        }
        for (conn, req) in std::mem::take(&mut self.deferred) {
            reply(&conn, req.id, Err(stopping()), 0);
        }
        for w in self.batch.take().1 {
            reply(&w.conn, w.req, Err(stopping()), 0);
        }
        let closed = || Error::new(ErrorKind::Closed, "the server is shutting down");
        for ((_, id), w) in std::mem::take(&mut self.watches) {
            let _ = w.conn.send(&Wire::Server(ServerMessage::WatchEnded {
                watch_id: id,
                error: closed(),
            }));
        }
        let commit = self.raft.status().commit;
        let _ = self.write_tx.send(WriteJob::Stop { commit });
        let _ = self.apply_tx.send(ApplyJob::Stop);
        let joined = tokio::task::spawn_blocking(move || {
            let _ = writer_thread.join();
            let _ = apply_thread.join();
        })
        .await;
        if joined.is_err() {
            tracing::warn!(node, "writer or apply thread panicked");
        }
        transport.shutdown().await;
        if let Err(e) = self.journal.close() {
            tracing::warn!(node, reason = %e, "journal close failed");
        }
        let mut s = self.status_tx.borrow().clone();
        s.role = None;
        let _ = self.status_tx.send(s);
        tracing::info!(node, "server stopped");
    }

    fn on_inbound(&mut self, msg: Inbound<PeerWire>) {
        let node = self.cfg.node_id;
        match msg {
            Inbound::Peer {
                msg: Wire::Peer(m), ..
            } => self.raft.step(m, self.now()),
            Inbound::Peer { from, .. } => {
                tracing::debug!(node, from, "ignoring a non-raft message from a peer");
            }
            Inbound::Client {
                conn,
                msg: Wire::Request(req),
            } => self.handle_request(conn, req),
            Inbound::Client { conn, .. } => {
                tracing::debug!(
                    node,
                    conn = conn.id(),
                    "ignoring a non-request from a client"
                );
            }
        }
    }

    fn on_report(&mut self, rep: Report, transport: &Transport<PeerWire>) {
        match rep {
            Report::Write(w) => self.on_write(w, transport),
            Report::Apply(a) => self.on_apply(a),
        }
    }

    fn fail(&mut self, reason: String) {
        tracing::error!(node = self.cfg.node_id, %reason, "node stops serving");
        self.failed = true;
    }

    // ----- Ready -----

    fn process_ready(&mut self, transport: &Transport<PeerWire>) {
        let mut rounds = 0;
        while self.raft.has_ready() && rounds < 64 {
            rounds += 1;
            let rd = self.raft.ready();
            tracing::trace!(
                node = self.cfg.node_id,
                snapshot = rd.snapshot.as_ref().map(|s| s.meta.index),
                entries = ?rd.entries.first().map(|e| (e.index, rd.entries.len())),
                committed = ?rd.committed_entries.first().map(|e| (e.index, rd.committed_entries.len())),
                "ready"
            );
            for ev in &rd.events {
                self.on_event(ev);
            }
            if let Some(snap) = &rd.snapshot {
                let _ = self.apply_tx.send(ApplyJob::Restore(snap.clone()));
            }
            let point = rd.persist_point();
            if rd.snapshot.is_some()
                || !rd.entries.is_empty()
                || rd.hard_state.is_some()
                || !rd.persisted_messages.is_empty()
            {
                for e in &rd.entries {
                    if let crate::raft::EntryKind::Normal(d) = &e.kind
                        && let Some((h, _)) = JournalHeader::decode(d)
                    {
                        self.last_ts = self.last_ts.max(h.timestamp_ms);
                    }
                }
                let job = WriteJob::Ready {
                    snapshot: rd.snapshot,
                    entries: rd.entries,
                    hard_state: rd.hard_state,
                    point,
                    msgs: rd.persisted_messages,
                };
                if self.write_tx.send(job).is_err() {
                    self.fail("storage writer is gone".into());
                    return;
                }
            }
            send_all(transport, rd.messages);
            // Entries reach the apply thread only once written: directly when the writer has
            // written everything queued, else through the writer, behind the writes.
            if !rd.committed_entries.is_empty() {
                let sent = if self.write_tx.is_drained() {
                    self.apply_tx
                        .send(ApplyJob::Entries(rd.committed_entries))
                        .is_ok()
                } else {
                    self.write_tx
                        .send(WriteJob::Apply(rd.committed_entries))
                        .is_ok()
                };
                if !sent {
                    self.fail("storage writer or apply thread is gone".into());
                    return;
                }
            }
            for rs in rd.read_states {
                let id = u64::from_le_bytes(rs.ctx.as_slice().try_into().unwrap_or([0; 8]));
                if let Some(r) = self.reads.remove(&id) {
                    self.pending_count = self.pending_count.saturating_sub(1);
                    self.serve_read(r.conn, r.req);
                }
            }
        }
    }

    fn on_event(&mut self, ev: &Event) {
        let node = self.cfg.node_id;
        match ev {
            Event::RoleChanged { role, term } => {
                tracing::info!(node, ?role, term, "role changed");
                if *role == Role::Leader {
                    self.term_start = self.raft.status().last_index;
                } else {
                    self.term_start = u64::MAX;
                    self.sessions.clear();
                    let hint = self.not_leader();
                    for (conn, req) in std::mem::take(&mut self.deferred) {
                        reply(&conn, req.id, Err(hint.clone()), 0);
                    }
                }
            }
            Event::LeaderChanged { leader, term } => {
                tracing::info!(node, ?leader, term, "leader changed");
            }
            Event::MembershipChanged { index, membership } => {
                tracing::info!(node, index, ?membership, "membership changed");
            }
            Event::Applied { .. } => {}
            Event::ReadDropped { ctx } => {
                let id = u64::from_le_bytes(ctx.as_slice().try_into().unwrap_or([0; 8]));
                if let Some(r) = self.reads.remove(&id) {
                    self.pending_count = self.pending_count.saturating_sub(1);
                    reply(&r.conn, r.req.id, Err(self.not_leader()), self.applied());
                }
            }
        }
    }

    fn on_write(&mut self, w: WriteDone, transport: &Transport<PeerWire>) {
        match w {
            WriteDone::Persisted {
                point,
                msgs,
                durable,
            } => {
                if let Some((index, term)) = point {
                    self.raft.on_persisted(index, term);
                }
                // The journal's durable index (it drops when a conflicting suffix is truncated).
                self.durable = durable.min(self.raft.status().last_index);
                send_all(transport, msgs);
                self.complete_waiters();
                self.try_snapshot();
            }
            WriteDone::SnapshotSaved {
                index,
                compact_upto,
            } => {
                tracing::info!(
                    node = self.cfg.node_id,
                    index,
                    compact_upto,
                    "snapshot saved"
                );
            }
            WriteDone::Failed(reason) => self.fail(reason),
        }
    }

    fn on_apply(&mut self, a: ApplyDone) {
        match a {
            ApplyDone::Applied {
                upto,
                results,
                events,
            } => {
                self.raft.on_applied(upto);
                self.sessions.retain(|_, (_, last, _)| *last > upto);
                for (index, term, outcome) in results {
                    if self.waiters.contains_key(&index) {
                        self.outcomes.insert(index, (term, outcome));
                    }
                }
                self.push_events(&events);
                self.complete_waiters();
                if self.raft.role() == Role::Leader && upto >= self.term_start {
                    for (conn, req) in std::mem::take(&mut self.deferred) {
                        self.handle_request(conn, req);
                    }
                }
            }
            ApplyDone::Snapshot { index, data } => {
                self.pending_snapshot = Some((index, data));
                self.try_snapshot();
            }
            ApplyDone::Failed(reason) => self.fail(reason),
        }
    }

    fn try_snapshot(&mut self) {
        let Some((index, _)) = &self.pending_snapshot else {
            return;
        };
        let index = *index;
        if self.raft.status().persisted_index < index {
            return;
        }
        let Some((_, data)) = self.pending_snapshot.take() else {
            return;
        };
        match self.raft.on_snapshot_taken(index) {
            Ok(meta) => {
                let compact_upto = index.saturating_sub(self.cfg.snapshot_retained_entries);
                let _ = self.write_tx.send(WriteJob::SaveSnapshot {
                    meta,
                    data,
                    compact_upto,
                });
            }
            Err(e) => tracing::debug!(node = self.cfg.node_id, reason = %e, "snapshot skipped"),
        }
    }

    /// Answers every write whose acknowledgement condition now holds.
    fn complete_waiters(&mut self) {
        // Status first, so whoever sees an acknowledgement sees indices that cover it.
        self.publish();
        let applied = self.applied();
        let durable = self.durable;
        let upto = applied.max(durable);
        if self
            .waiters
            .first_key_value()
            .is_none_or(|(k, _)| *k > upto)
        {
            return;
        }
        let later = self.waiters.split_off(&upto.saturating_add(1));
        let due = std::mem::replace(&mut self.waiters, later);
        for (first, ws) in due {
            let mut keep = Vec::new();
            for w in ws {
                let lost = applied >= w.last
                    && !matches!(self.outcomes.get(&first), Some((t, _)) if *t == w.term);
                let done = match w.response {
                    ResponseConfig::Persistence => durable >= w.last || lost,
                    ResponseConfig::All => (applied >= w.last && durable >= w.last) || lost,
                    _ => applied >= w.last,
                };
                if !done {
                    keep.push(w);
                    continue;
                }
                self.pending_count = self.pending_count.saturating_sub(1);
                let persisted_ok =
                    || durable >= w.last && self.raft.term_at(w.last) == Some(w.term);
                let result =
                    if lost || (w.response == ResponseConfig::Persistence && !persisted_ok()) {
                        Err(Error::new(
                            ErrorKind::Unavailable,
                            "the write was overwritten by a new leader; retry",
                        ))
                    } else if w.response == ResponseConfig::Persistence {
                        Ok(w.kind.reply_without_result())
                    } else {
                        match self.outcomes.get(&first).map(|(_, o)| o.clone()) {
                            Some(Outcome::Appended(r)) => r.map(|i| ReplyBody::Appended {
                                first_index: Some(i),
                            }),
                            Some(Outcome::Kv(r)) => r.map(|o| ReplyBody::KvWritten(Some(o))),
                            Some(Outcome::Scaled(r)) => r.map(|()| ReplyBody::Done),
                            None => Err(Error::new(ErrorKind::Internal, "no outcome recorded")),
                        }
                    };
                reply(&w.conn, w.req, result, applied);
            }
            if keep.is_empty() {
                if applied >= first {
                    self.outcomes.remove(&first);
                }
            } else {
                self.waiters.insert(first, keep);
            }
        }
    }

    fn push_events(&mut self, events: &[KvEvent]) {
        self.watches.retain(|_, w| !w.conn.is_closed());
        if events.is_empty() || self.watches.is_empty() {
            return;
        }
        let mut closed = Vec::new();
        for (key, w) in self.watches.iter_mut() {
            let matching: Vec<KvEvent> = events
                .iter()
                .filter(|e| e.index > w.cursor && w.filter.matches(&e.key))
                .cloned()
                .collect();
            if let Some(last) = events.last() {
                w.cursor = w.cursor.max(last.index);
            }
            if matching.is_empty() {
                continue;
            }
            let msg = Wire::Server(ServerMessage::WatchEvents {
                watch_id: key.1,
                events: matching,
            });
            if w.conn.send(&msg).is_err() {
                closed.push(*key);
            }
        }
        for k in closed {
            self.watches.remove(&k);
        }
    }

    // ----- requests -----

    fn handle_request(&mut self, conn: Conn, req: ClientRequest) {
        if self.failed {
            let e = Error::new(ErrorKind::Io, "this node stopped after a storage failure");
            reply(&conn, req.id, Err(e), self.applied());
            return;
        }
        if self.pending_count >= self.cfg.max_pending_requests {
            let e = Error::new(ErrorKind::Unavailable, "too many pending requests");
            reply(&conn, req.id, Err(e), self.applied());
            return;
        }
        match &req.body {
            RequestBody::Append { .. }
            | RequestBody::AppendBatches { .. }
            | RequestBody::KvWrite { .. }
            | RequestBody::ScalePartitions { .. } => self.handle_write(conn, req),
            RequestBody::Watch {
                watch_id,
                filter,
                from_index,
            } => {
                let (watch_id, filter, from_index) = (*watch_id, filter.clone(), *from_index);
                self.open_watch(conn, req.id, watch_id, filter, from_index);
            }
            RequestBody::Unwatch { watch_id } => {
                self.watches.remove(&(conn.id(), *watch_id));
                reply(&conn, req.id, Ok(ReplyBody::Done), self.applied());
            }
            RequestBody::AppliedIndex => self.strict_read(conn, req),
            RequestBody::Status => {
                let s = self.node_status();
                reply(&conn, req.id, Ok(ReplyBody::Status(s)), self.applied());
            }
            RequestBody::ClusterConfiguration => {
                let c = self.configuration();
                reply(
                    &conn,
                    req.id,
                    Ok(ReplyBody::Configuration(c)),
                    self.applied(),
                );
            }
            body => {
                let read = body.read_at().unwrap_or_default();
                match read.consistency {
                    QueryConsistency::Strict => self.strict_read(conn, req),
                    _ => self.local_read(conn, req, read),
                }
            }
        }
    }

    fn member(&self, id: u64) -> Member {
        Member {
            node_id: id,
            addr: self.addrs.get(&id).cloned().unwrap_or_default(),
        }
    }

    fn configuration(&self) -> ClusterConfiguration {
        let m = self.raft.membership();
        ClusterConfiguration {
            voters: m.voters.iter().map(|&i| self.member(i)).collect(),
            joint_old_voters: m
                .is_joint()
                .then(|| m.outgoing.iter().map(|&i| self.member(i)).collect()),
            observers: m.learners.iter().map(|&i| self.member(i)).collect(),
            leader: self.raft.leader().map(|l| self.member(l)),
        }
    }

    fn node_status(&self) -> NodeStatus {
        let s = self.raft.status();
        let role = match s.role {
            Role::Leader => NodeRole::Leader,
            // The wire's 1.x clients know no PreCandidate; the local status has it.
            Role::Candidate | Role::PreCandidate => NodeRole::Candidate,
            Role::Follower if !s.membership.is_voter(s.id) => NodeRole::Observer,
            Role::Follower => NodeRole::Follower,
        };
        NodeStatus {
            node_id: s.id,
            role,
            term: s.term,
            leader: s.leader.map(|l| self.member(l)),
            commit_index: s.commit,
            applied_index: s.applied,
            last_index: s.last_index,
            configuration: self.configuration(),
        }
    }

    fn open_watch(&mut self, conn: Conn, req: u64, watch_id: u64, filter: WatchFilter, from: u64) {
        let m = self.lock();
        let applied = m.applied;
        let start = if from == 0 { applied + 1 } else { from };
        let mut replay = Vec::new();
        let mut next = start;
        let page = 1000usize;
        let result = loop {
            if next > applied {
                break Ok(());
            }
            match m.kv.read(&KvQuery::Events {
                filter: filter.clone(),
                from_index: next,
                max: page,
            }) {
                Ok(KvQueryResult::Events(evs)) => {
                    let full = evs.len() >= page;
                    next = evs.last().map_or(applied + 1, |e| e.index + 1);
                    replay.extend(evs.into_iter().filter(|e| e.index <= applied));
                    if !full {
                        break Ok(());
                    }
                }
                Ok(_) => break Ok(()),
                Err(e) => break Err(apply::state_error(e)),
            }
        };
        drop(m);
        if let Err(e) = result {
            reply(&conn, req, Err(e), applied);
            return;
        }
        reply(
            &conn,
            req,
            Ok(ReplyBody::Watching { from_index: start }),
            applied,
        );
        for chunk in replay.chunks(page) {
            let _ = conn.send(&Wire::Server(ServerMessage::WatchEvents {
                watch_id,
                events: chunk.to_vec(),
            }));
        }
        self.watches.insert(
            (conn.id(), watch_id),
            WatchReg {
                conn,
                filter,
                cursor: applied.max(start - 1),
            },
        );
    }

    fn strict_read(&mut self, conn: Conn, req: ClientRequest) {
        if self.raft.role() != Role::Leader {
            reply(&conn, req.id, Err(self.not_leader()), self.applied());
            return;
        }
        let id = self.next_read;
        self.next_read += 1;
        let mode = if self.cfg.lease_reads {
            ReadMode::Lease
        } else {
            ReadMode::ReadIndex
        };
        match self.raft.read(id.to_le_bytes().to_vec(), mode, self.now()) {
            Ok(()) => {
                self.pending_count += 1;
                self.reads.insert(id, PendingRead { conn, req });
            }
            Err(e) => {
                let e = raft_error(e, self.leader_hint());
                reply(&conn, req.id, Err(e), self.applied());
            }
        }
    }

    fn local_read(&mut self, conn: Conn, req: ClientRequest, read: ReadAt) {
        let applied = self.applied();
        if read.consistency == QueryConsistency::Sequential && applied < read.min_applied {
            let e = Error::new(
                ErrorKind::IndexOverflow,
                format!(
                    "not yet: this node applied {applied} < {} requested",
                    read.min_applied
                ),
            );
            reply(&conn, req.id, Err(e), applied);
            return;
        }
        self.serve_read(conn, req);
    }

    /// Runs a read against the state machines on a blocking thread and replies.
    fn serve_read(&self, conn: Conn, req: ClientRequest) {
        let machines = self.machines.clone();
        let max_bytes = (self.cfg.net.max_frame_size as usize / 2).max(1024);
        tokio::task::spawn_blocking(move || {
            let m = machines.lock().unwrap_or_else(|p| p.into_inner());
            let applied = m.applied;
            let result = match &req.body {
                RequestBody::AppliedIndex => Ok(ReplyBody::AppliedIndex(m.applied)),
                body => read_machines(&m, body, max_bytes),
            };
            drop(m);
            reply(&conn, req.id, result, applied);
        });
    }

    fn handle_write(&mut self, conn: Conn, req: ClientRequest) {
        // A `OneWay` write gets no reply once it is accepted, but a refused one (here: not the
        // leader; below: invalid, or not proposed) is answered with its error like any write,
        // so its client can tell and retry: dropping it silently lost it on a healthy cluster.
        if self.raft.role() != Role::Leader {
            reply(&conn, req.id, Err(self.not_leader()), self.applied());
            return;
        }
        if self.applied() < self.term_start {
            if self.deferred.len() >= self.cfg.max_pending_requests {
                let e = Error::new(
                    ErrorKind::Unavailable,
                    "the new leader is still catching up",
                );
                reply(&conn, req.id, Err(e), self.applied());
                return;
            }
            // Wait until every entry of earlier terms is applied: then the session tables are
            // complete and a retried write is recognised.
            self.deferred.push((conn, req));
            return;
        }
        let one_way = req.body.expects_no_reply();
        let fail = |conn: &Conn, e: Error, applied| reply(conn, req.id, Err(e), applied);
        let applied = self.applied();
        let (datas, response, kind, session) = match &req.body {
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
                if let Err(e) = check_append(*partition, &batches) {
                    fail(&conn, e, applied);
                    return;
                }
                let key = (session.client_id, session.seq);
                if self.batch.has_session(&key) {
                    // A retry of a write staged in this pass: propose the original, then join it.
                    self.propose_batch();
                }
                if let Some(&(first, last, term)) = self.sessions.get(&key) {
                    // A retry of an append in flight: answer it with the original.
                    match response {
                        ResponseConfig::OneWay => {}
                        ResponseConfig::Receive => {
                            let body = WriteKind::Append.reply_without_result();
                            reply(&conn, req.id, Ok(body), applied);
                        }
                        _ => {
                            self.pending_count += 1;
                            self.waiters.entry(first).or_default().push(Waiter {
                                conn,
                                req: req.id,
                                response: *response,
                                kind: WriteKind::Append,
                                term,
                                last,
                            });
                        }
                    }
                    return;
                }
                if !self.lock().journal_store.declared.contains(partition) {
                    let e = invalid(format!("no such partition: {partition}"));
                    fail(&conn, e, applied);
                    return;
                }
                match self.lock().journal_store.duplicate(session) {
                    Err(e) => {
                        fail(&conn, apply::state_error(e), applied);
                        return;
                    }
                    Ok(Some(r)) => {
                        if !one_way {
                            let r = r.map_err(apply::state_error).map(|i| ReplyBody::Appended {
                                first_index: response.returns_result().then_some(i),
                            });
                            reply(&conn, req.id, r, applied);
                        }
                        return;
                    }
                    Ok(None) => {}
                }
                let ts = wall_ms().max(self.last_ts);
                self.last_ts = ts;
                let datas = journal_datas(*partition, &batches, *session, ts);
                (datas, *response, WriteKind::Append, Some(key))
            }
            RequestBody::KvWrite { request, response } => {
                (vec![encode_kv(request)], *response, WriteKind::Kv, None)
            }
            RequestBody::ScalePartitions {
                partitions,
                session,
            } => {
                if let Err(e) = check_scale(partitions, session) {
                    fail(&conn, e, applied);
                    return;
                }
                (
                    vec![encode_scale(partitions, *session)],
                    ResponseConfig::Replication,
                    WriteKind::Scale,
                    None,
                )
            }
            _ => return,
        };
        let term = self.raft.term();
        if !self.batch.is_empty() && self.batch.term() != term {
            self.propose_batch();
        }
        self.pending_count += 1;
        let write = StagedWrite {
            conn,
            req: req.id,
            entries: datas.len(),
            response,
            kind,
            session,
        };
        self.batch.stage(term, datas, write);
        if self.batch.is_full() {
            self.propose_batch();
        }
    }

    /// Proposes the writes staged in this pass as one batch and registers what each waits for.
    fn propose_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let term = self.batch.term();
        let (datas, writes) = self.batch.take();
        let applied = self.applied();
        let total = datas.len() as u64;
        let proposed = if self.raft.term() != term {
            Err(self.not_leader())
        } else {
            self.raft
                .propose_batch(datas)
                .map_err(|e| raft_error(e, self.leader_hint()))
        };
        let last = match proposed {
            Ok(last) => last,
            Err(e) => {
                for w in writes {
                    self.pending_count = self.pending_count.saturating_sub(1);
                    reply(&w.conn, w.req, Err(e.clone()), applied);
                }
                return;
            }
        };
        let mut first = last + 1 - total;
        for w in writes {
            let last = first + w.entries as u64 - 1;
            if let Some(key) = w.session {
                self.sessions.insert(key, (first, last, term));
            }
            match w.response {
                ResponseConfig::OneWay => {
                    self.pending_count = self.pending_count.saturating_sub(1);
                }
                ResponseConfig::Receive => {
                    self.pending_count = self.pending_count.saturating_sub(1);
                    reply(&w.conn, w.req, Ok(w.kind.reply_without_result()), applied);
                }
                response => self.waiters.entry(first).or_default().push(Waiter {
                    conn: w.conn,
                    req: w.req,
                    response,
                    kind: w.kind,
                    term,
                    last,
                }),
            }
            first = last + 1;
        }
    }
}

fn check_append(partition: u16, batches: &[&[Vec<u8>]]) -> Result<(), Error> {
    if partition >= RESERVED_PARTITION_START {
        return Err(invalid(format!(
            "partition {partition} is reserved (client partitions are 0..{RESERVED_PARTITION_START})"
        )));
    }
    protocol::check_append_batches(batches)
}

fn check_scale(partitions: &BTreeSet<u16>, session: &RequestId) -> Result<(), Error> {
    if partitions.len() > protocol::MAX_PARTITIONS {
        return Err(invalid(format!(
            "at most {} partitions",
            protocol::MAX_PARTITIONS
        )));
    }
    if let Some(p) = partitions.iter().find(|p| **p >= RESERVED_PARTITION_START) {
        return Err(invalid(format!("partition {p} is reserved")));
    }
    if session.seq == 0 || session.first_unacked == 0 || session.first_unacked > session.seq {
        return Err(invalid("malformed session"));
    }
    Ok(())
}

fn send_all(transport: &Transport<PeerWire>, msgs: Vec<crate::raft::Message>) {
    for m in msgs {
        let to = m.to;
        if let Err(e) = transport.peers().send(to, &Wire::Peer(m)) {
            tracing::trace!(to, reason = %e, "peer message not queued");
        }
    }
}

fn reply(conn: &Conn, id: u64, result: Result<ReplyBody, Error>, applied_index: Index) {
    let msg = Wire::Server(ServerMessage::Reply {
        id,
        result,
        applied_index,
    });
    if let Err(e) = conn.send(&msg) {
        tracing::debug!(conn = conn.id(), reason = %e, "reply not sent");
    }
}
