//! The driver task: owns the [`RaftNode`] and everything that waits on it. One tokio task
//! takes ticks, peer messages, client requests and the reports of the writer and apply threads,
//! feeds them to the core, and handles every `Ready` in the order `raft::Ready` prescribes.
//!
//! This module holds the driver's state and its pass loop; each concern has its own child:
//! [`startup`] (open storage, recover, spawn), [`ready`] (effects of a `Ready` and the threads'
//! reports), [`requests`] (dispatch of client requests), [`write_path`] (writes: staging,
//! proposing, acknowledging), [`read_path`] (the read levels), [`watch_requests`] (opening a
//! watch with its replay), [`status`] (status and configuration views), [`status_detail`]
//! (the detailed status for clients and the HTTP endpoint), [`errors`] (mapping storage and
//! raft errors to the API's).

mod errors;
mod event_feed;
mod leadership;
mod leases;
mod membership;
mod observing;
mod read_path;
mod ready;
mod requests;
mod snapshots;
mod startup;
mod status;
mod status_detail;
mod txns;
mod watch_requests;
mod write_path;

pub(crate) use errors::storage_error;
pub use membership::Standing;
pub(crate) use startup::start;
pub use status::ServerStatus;
pub(crate) use status_detail::StatusQuery;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use crate::api::{Error, ErrorKind, ResponseConfig};
use crate::client::protocol::{ClientRequest, ReplyBody, ServerMessage, Wire};
use crate::net::{ConnCounts, ConnHandle, Inbound, Transport};
use crate::raft::{Index, RaftNode, Term};
use crate::server::PeerWire;
use crate::server::apply::{ApplyDone, ApplyJob, Machines, Outcome};
use crate::server::config::ServerConfig;
use crate::server::http::HttpEndpoint;
use crate::server::metrics::{CommitTimer, Metrics};
use crate::server::proposal_batch::{ProposalBatch, WriteKind};
use crate::server::storage::{LogStore, WriteDone, WriteJob, WriteQueue};
use crate::server::watches::WatchRegistry;
use crate::storage::Journal;

type Conn = ConnHandle<PeerWire>;

/// Most queued inputs of each kind (peer/client messages, thread reports) one pass of the
/// driver loop takes after the one that woke it, so ticks and `Ready` are never starved.
const MAX_DRAIN: usize = 512;

/// Messages from the writer and apply threads.
enum Report {
    Write(WriteDone),
    Apply(ApplyDone),
    /// Members' addresses a joining node asked the cluster for.
    Addresses(BTreeMap<u64, std::net::SocketAddr>),
    /// An observer's pull came back (or failed).
    Pulled(observing::Pulled),
    /// An observer's registration with the leader ended.
    Registered(Result<(), Error>),
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

struct Driver {
    cfg: ServerConfig,
    raft: RaftNode<LogStore>,
    journal: Arc<Journal>,
    machines: Arc<Mutex<Machines>>,
    /// Reads at an index: states rebuilt from snapshots and the log.
    history: Arc<crate::server::at_index::History>,
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
    watches: WatchRegistry,
    /// The listener's open connections (for `StatusWithResources`).
    conn_counts: ConnCounts,
    /// Index of this leader's term-start entry (`u64::MAX` when not leader).
    term_start: Index,
    /// Last store time assigned to a journal entry.
    last_ts: u64,
    /// Snapshot data from the apply thread, oldest first, waiting until durable to be saved.
    pending_snapshots: std::collections::VecDeque<(Index, std::path::PathBuf)>,
    /// Index of the newest snapshot saved on this node.
    snapshot_saved: Index,
    snapshot_store: Arc<crate::storage::SnapshotStore>,
    failed: bool,
    /// Why the node stopped serving (when `failed`).
    fail_reason: String,
    /// The state machines this node hosts (fixed at start), checked before an update is
    /// proposed without taking the state mutex.
    machine_names: Vec<String>,
    pending_count: usize,
    /// Writes accepted in this pass, proposed together before `Ready` is handled.
    batch: ProposalBatch,
    /// Every other node's address as this node knows it (configuration, address book, log).
    peer_addrs: BTreeMap<u64, std::net::SocketAddr>,
    /// Peers learned (or moved) since the last pass, to connect.
    new_peers: Vec<(u64, std::net::SocketAddr)>,
    standing: membership::Standing,
    voter_change: Option<membership::VoterChange>,
    transfer: Option<leadership::Transfer>,
    /// Client event subscriptions.
    events: crate::server::events::EventRegistry,
    /// The latest event state, for the embedded `Server::events` streams.
    event_tx: std::sync::Arc<watch::Sender<crate::server::events::EventState>>,
    /// Journal bounds for the event state, and the applied index they were read at.
    journal_bounds: (Index, BTreeMap<u16, (u64, u64)>),
    /// Per user machine, the index its state last changed at, read with `journal_bounds`.
    machine_changes: BTreeMap<String, u64>,
    metrics: Arc<Metrics>,
    /// The leader's proposals not yet applied, for the commit latency.
    commit_timer: CommitTimer,
    /// The HTTP monitoring endpoint, stopped with the node.
    http: Option<HttpEndpoint>,
    /// Lease deadlines while this node leads.
    lessor: crate::server::lessor::Lessor,
    /// A coordination write (or a snapshot recovery) was applied since the lessor last looked.
    leases_changed: bool,
    /// `term_start` of the leadership the lessor was promoted in.
    lessor_since: Index,
    /// Journal transactions while this node leads: expiry, publishing, waiting committers.
    txns: txns::TxnDriver,
    /// Children's pulls waiting for an entry to commit (any node can be a parent).
    parked_pulls: Vec<observing::ParkedPull>,
    /// The pulling, while this node is an observer.
    observing: Option<observing::Observing>,
    /// The registered observers, from the applied cluster metadata.
    observers: BTreeMap<u64, std::net::SocketAddr>,
    /// For tasks that report back (the observer's link and registration).
    report_tx: mpsc::UnboundedSender<Report>,
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
        self.raft
            .leader()
            .and_then(|l| self.addrs.get(&l).cloned())
            .or_else(|| self.observing.as_ref()?.leader_hint.clone())
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
            standing: self.standing,
            preferred_leader: self.raft.preferred_leader(),
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
        mut transport: Transport<PeerWire>,
        mut inbound: mpsc::Receiver<Inbound<PeerWire>>,
        mut reports: mpsc::UnboundedReceiver<Report>,
        mut stop: oneshot::Receiver<()>,
        mut queries: mpsc::Receiver<StatusQuery>,
        (writer_thread, apply_thread): (std::thread::JoinHandle<()>, std::thread::JoinHandle<()>),
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
                // No sender (HTTP off): the branch is disabled.
                Some(q) = queries.recv() => self.detailed_status(status_detail::StatusTo::Local(q)),
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
            self.drive_voter_change();
            self.drive_transfer();
            self.drive_leases();
            self.drive_txns();
            self.check_standing();
            self.drive_observer();
            self.drive_parked_pulls();
            for (id, addr) in std::mem::take(&mut self.new_peers) {
                transport.peers_mut().add(id, addr);
            }
            if !self.failed {
                // What the admin steps proposed, sent in this pass.
                self.process_ready(&transport);
            }
            self.publish();
            self.publish_events();
        }
        tracing::info!(node, "server stopping");
        // Fail everything still waiting.
        // Waiting requests may have taken effect or not: `Unavailable` tells the client to retry
        // elsewhere (writes carry sessions, so a retry is applied once).
        self.fail_waiting(Error::new(
            ErrorKind::Unavailable,
            "the server is shutting down",
        ));
        self.watches
            .end_all(|| Error::new(ErrorKind::Closed, "the server is shutting down"));
        self.events
            .end_all(|| Error::new(ErrorKind::Closed, "the server is shutting down"));
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
        if let Some(http) = self.http.take() {
            http.shutdown().await;
        }
        if let Err(e) = self.journal.close() {
            tracing::warn!(node, reason = %e, "journal close failed");
        }
        let mut s = self.status_tx.borrow().clone();
        s.role = None;
        let _ = self.status_tx.send(s);
        tracing::info!(node, "server stopped");
    }

    /// Answers every request still waiting with `e`.
    fn fail_waiting(&mut self, e: Error) {
        for (_, ws) in std::mem::take(&mut self.waiters) {
            for w in ws {
                reply(&w.conn, w.req, Err(e.clone()), 0);
            }
        }
        for (_, r) in std::mem::take(&mut self.reads) {
            reply(&r.conn, r.req.id, Err(e.clone()), 0);
        }
        for (conn, req) in std::mem::take(&mut self.deferred) {
            reply(&conn, req.id, Err(e.clone()), 0);
        }
        for w in self.batch.take().1 {
            reply(&w.conn, w.req, Err(e.clone()), 0);
        }
        if let Some(c) = self.voter_change.take() {
            c.fail(&e);
        }
        if let Some(t) = self.transfer.take() {
            t.fail(&e);
        }
        self.pending_count = 0;
    }

    fn on_inbound(&mut self, msg: Inbound<PeerWire>) {
        let node = self.cfg.node_id;
        match msg {
            // A removed node takes no part in the cluster any more.
            Inbound::Peer { .. } if self.standing == membership::Standing::Removed => {}
            Inbound::Peer {
                msg: Wire::Peer(m), ..
            } => self.raft.step(m, self.now()),
            Inbound::Peer { from, .. } => {
                tracing::debug!(node, from, "ignoring a non-raft message from a peer");
            }
            Inbound::Client {
                conn,
                msg: Wire::Request(req),
            } => {
                self.metrics.count_request(&req.body);
                self.handle_request(conn, req)
            }
            Inbound::Client { conn, .. } => {
                tracing::debug!(
                    node,
                    conn = conn.id(),
                    "ignoring a non-request from a client"
                );
            }
            // Whatever else waits on that connection (a write, a read) ends with its reply.
            Inbound::ClientClosed { conn } => {
                self.watches.connection_closed(conn);
                self.events.connection_closed(conn);
            }
        }
    }

    fn on_report(&mut self, rep: Report, transport: &Transport<PeerWire>) {
        match rep {
            Report::Write(w) => self.on_write(w, transport),
            Report::Apply(a) => self.on_apply(a),
            Report::Addresses(addrs) => self.learn_addresses(&addrs),
            Report::Pulled(p) => self.on_pulled(p),
            Report::Registered(r) => self.on_registered(r),
        }
    }

    fn fail(&mut self, reason: String) {
        tracing::error!(node = self.cfg.node_id, %reason, "node stops serving");
        self.failed = true;
        self.fail_reason = reason;
    }
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
