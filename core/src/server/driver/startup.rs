//! Starting a node: open (or create) its storage, recover the state machines from the latest
//! snapshot and the log, bind the port and spawn the driver with its writer and apply threads.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};

use super::errors::{raft_error, storage_error};
use super::status::ServerStatus;
use super::{Driver, Report, Standing};
use crate::api::{Error, ErrorKind};
use crate::net::Transport;
use crate::raft::{Index, Membership, RaftNode, SnapshotMeta};
use crate::server::PeerWire;
use crate::server::apply::{self, ApplyJob, Machines};
use crate::server::config::{MAX_RECORD_BYTES, ServerConfig};
use crate::server::events::{EventRegistry, EventState};
use crate::server::http::{HttpContext, HttpEndpoint, STATUS_QUERY_DEPTH};
use crate::server::metrics::{CommitTimer, LatencyHistogram, Metrics};
use crate::server::proposal_batch::ProposalBatch;
use crate::server::storage::{self, LogStore, SnapshotState, WriteQueue, Writer};
use crate::server::user_machines::UserMachines;
use crate::server::watches::WatchRegistry;
use crate::storage::{Journal, JournalOptions, PartitionIndex, SnapshotStore, StorageError};

/// A running node's handles, for [`crate::server::Server`].
pub(crate) struct Started {
    pub status: watch::Receiver<ServerStatus>,
    pub local_addr: SocketAddr,
    /// Where the HTTP monitoring endpoint listens, when `http_listen` is set.
    pub http_addr: Option<SocketAddr>,
    pub stop: oneshot::Sender<()>,
    pub task: tokio::task::JoinHandle<()>,
    pub events: Arc<watch::Sender<EventState>>,
}

/// Opens storage, recovers the state machines, binds the port and spawns the node.
pub(crate) async fn start(cfg: ServerConfig, user: UserMachines) -> Result<Started, Error> {
    let node = cfg.node_id;
    let data = cfg.data_dir.clone();
    let cfg2 = cfg.clone();
    let metrics = Arc::new(Metrics::new());
    let fsync_latency = metrics.fsync_latency.clone();
    let machine_names = user.names();
    // Opening and recovery do blocking file I/O.
    let opened =
        tokio::task::spawn_blocking(move || open_storage(&cfg2, &data, fsync_latency, user))
            .await
            .map_err(|e| Error::new(ErrorKind::Internal, format!("storage open task: {e}")))??;
    let Opened {
        journal,
        machines,
        store,
        writer,
        snapshot_applied,
        last_ts,
        snapshot_store,
    } = opened;

    if let Ok(text) = std::fs::read_to_string(super::membership::removed_marker(&cfg.data_dir)) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "node {node} was removed from the cluster ({}: {}); to return it, start it with \
                 an empty data_dir and join = true, then add it again",
                super::membership::removed_marker(&cfg.data_dir).display(),
                text.trim()
            ),
        ));
    }
    let mut net = cfg.net.clone();
    net.cluster_id = cfg.cluster_id;
    net.state_machines = machine_names.clone();
    let (mut transport, inbound) = Transport::<PeerWire>::start(node, cfg.listen, net)
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot listen on {}: {e}", cfg.listen),
            )
        })?;
    let local_addr = transport.local_addr();
    let conn_counts = transport.counts();
    let cfg_peers: BTreeMap<u64, SocketAddr> = cfg
        .peers
        .iter()
        .filter(|(id, _)| **id != node)
        .map(|(id, addr)| (*id, *addr))
        .collect();
    let mut addrs: BTreeMap<u64, String> =
        cfg.peers.iter().map(|(k, v)| (*k, v.to_string())).collect();
    if cfg.peers.get(&node).is_none_or(|a| a.port() == 0) {
        // Peers list this node with an ephemeral port: advertise the bound one.
        addrs.insert(node, local_addr.to_string());
    }

    let mut raft = RaftNode::new(cfg.raft_config(), store, snapshot_applied, 0)
        .map_err(|e| raft_error(e, None))?;
    let applied_meta = machines
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .meta
        .clone();
    raft.set_preferred_leader(applied_meta.preferred_leader);
    let standing = if raft.membership().contains(node) {
        Standing::Member
    } else if cfg.role == crate::server::ServerRole::Observer
        || applied_meta.observers.contains_key(&node)
    {
        Standing::Observer
    } else {
        Standing::Joining
    };

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
    if cfg.join {
        let members = cfg
            .peers
            .iter()
            .filter(|(id, _)| **id != node)
            .map(|(_, a)| *a)
            .collect();
        tokio::spawn(super::membership::ask_for_addresses(
            node,
            cfg.cluster_id,
            members,
            report_tx.clone(),
        ));
    }

    let (status_tx, status_rx) = watch::channel(ServerStatus {
        node_id: node,
        ..ServerStatus::default()
    });
    let (stop_tx, stop_rx) = oneshot::channel();
    let event_tx = Arc::new(watch::channel(EventState::default()).0);
    let (query_tx, query_rx) = mpsc::channel(STATUS_QUERY_DEPTH);
    let http = match cfg.http_listen {
        Some(addr) => {
            let ctx = HttpContext {
                status: status_rx.clone(),
                queries: query_tx,
                metrics: metrics.clone(),
            };
            match HttpEndpoint::start(addr, ctx).await {
                Ok(h) => Some(h),
                Err(e) => {
                    transport.shutdown().await;
                    return Err(e);
                }
            }
        }
        None => None,
    };
    let http_addr = http.as_ref().map(HttpEndpoint::local_addr);
    let durable = journal.durable_index();
    let lessor = super::leases::lessor_for(cfg.election_timeout_ms, cfg.tick_ms);
    let txns = super::txns::TxnDriver::new(
        super::leases::lessor_for(cfg.election_timeout_ms, cfg.tick_ms),
        cfg.publish_transactions,
    );
    let history = Arc::new(crate::server::at_index::History::new(
        journal.clone(),
        snapshot_store.clone(),
        cfg.kv_limits,
    ));
    let mut driver = Driver {
        cfg,
        raft,
        journal,
        machines,
        history,
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
        watches: WatchRegistry::default(),
        conn_counts,
        term_start: u64::MAX,
        last_ts,
        pending_snapshots: std::collections::VecDeque::new(),
        snapshot_saved: snapshot_applied,
        snapshot_store,
        failed: false,
        fail_reason: String::new(),
        machine_names,
        pending_count: 0,
        batch: ProposalBatch::default(),
        peer_addrs: cfg_peers,
        new_peers: Vec::new(),
        standing,
        voter_change: None,
        transfer: None,
        events: EventRegistry::default(),
        event_tx: event_tx.clone(),
        journal_bounds: (0, BTreeMap::new()),
        machine_changes: BTreeMap::new(),
        metrics,
        commit_timer: CommitTimer::default(),
        http,
        lessor,
        leases_changed: false,
        lessor_since: u64::MAX,
        txns,
        parked_pulls: Vec::new(),
        observing: None,
        observers: applied_meta.observers.clone(),
        report_tx,
    };
    // Addresses learned earlier, then the applied address book (a later one wins).
    driver.learn_addresses(&super::membership::load_addresses(&driver.cfg.data_dir));
    driver.learn_addresses(&applied_meta.addrs);
    driver.new_peers.clear();
    for (&id, &addr) in &driver.peer_addrs {
        transport.peers_mut().add(id, addr);
    }
    driver.publish();
    let task = tokio::spawn(async move {
        driver
            .run(
                transport,
                inbound,
                report_rx,
                stop_rx,
                query_rx,
                (writer_thread, apply_thread),
            )
            .await
    });
    if let Some(addr) = http_addr {
        tracing::info!(node, %addr, "http monitoring endpoint started");
    }
    Ok(Started {
        status: status_rx,
        local_addr,
        http_addr,
        stop: stop_tx,
        task,
        events: event_tx,
    })
}

struct Opened {
    journal: Arc<Journal>,
    machines: Arc<Mutex<Machines>>,
    store: LogStore,
    writer: Writer,
    snapshot_applied: Index,
    last_ts: u64,
    snapshot_store: Arc<SnapshotStore>,
}

fn open_storage(
    cfg: &ServerConfig,
    data: &std::path::Path,
    fsync_latency: Arc<LatencyHistogram>,
    user: UserMachines,
) -> Result<Opened, Error> {
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
    let pidx = PartitionIndex::open_with(
        data.join("partitions"),
        &journal,
        super::super::txn_record::placements,
    )
    .map_err(se)?;
    let mut machines = Machines::new(
        journal.clone(),
        pidx,
        cfg.kv_limits,
        cfg.partitions.clone(),
        snapshots.clone(),
        user,
    );
    let latest = storage::load_latest_snapshot(&snapshots).map_err(se)?;
    let mut snap_state = SnapshotState {
        meta: SnapshotMeta {
            index: 0,
            term: 0,
            // A joining node (or an observer) is in no configuration: the members it names
            // form the one it starts from, until the leader's log or snapshot replaces it.
            membership: Membership::new(cfg.peers.keys().copied().filter(|id| {
                let outside = cfg.join || cfg.role == crate::server::ServerRole::Observer;
                !outside || *id != cfg.node_id
            })),
        },
        dir: None,
    };
    if let Some((meta, dir)) = latest {
        let path = dir.join("data");
        let file = std::fs::File::open(&path).map_err(|e| se(StorageError::io(&path, e)))?;
        let parts = machines
            .restore_state(meta.index, meta.term, &mut std::io::BufReader::new(file))
            .map_err(|e| {
                let kind = if e.contains("must host the same") {
                    ErrorKind::InvalidArgument
                } else {
                    ErrorKind::Corruption
                };
                Error::new(kind, format!("{}: {e}", path.display()))
            })?;
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
        snapshots: snapshots.clone(),
        snapshot,
        saved,
        extra,
        node: cfg.node_id,
        retained: cfg.snapshots_retained,
        retain_history: cfg.retain_history,
        fsync_latency,
        incoming: Default::default(),
        snapshot_max_bytes: cfg.snapshot_max_bytes,
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
        snapshot_store: snapshots,
    })
}
