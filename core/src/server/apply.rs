//! The apply thread: applies committed entries in log order to the state machines — the
//! journal store (partition index bookkeeping + append sessions) and the coordination KV —
//! reports each write's outcome and the KV events to the driver, takes snapshots every
//! `snapshot_interval` entries, restores snapshots received from the leader, and compacts the
//! log once a snapshot is saved. The state lives behind a mutex so reads can run elsewhere.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, mpsc};

use super::command::{self, Command, SYSTEM_PARTITION, SnapshotCommand, entry_to_record};
use super::compactor::Compactor;
use super::snapshot_data::SnapshotData;
use super::snapshot_file;
use super::user_machines::{CommandResult, RunEntry, UserCommand, UserMachines};
use crate::api::{self, ErrorKind};
use crate::raft::{Entry, EntryKind, Index, SnapshotMeta, Term};
use crate::state::cluster_meta::ClusterMeta;
use crate::state::coord::{CoordOutcome, CoordRequest, Coordination};
use crate::state::journal_store::JournalStore;
use crate::state::kv::{KvLimits, KvOutcome, KvRequest, KvStore};
use crate::state::txn::{Transactions, TxnOutcome};
use crate::state::watch::KvEvent;
use crate::state::{ApplyContext, StateError};
use crate::storage::{Journal, PartitionIndex, SnapshotStore};

/// The node's state machines.
pub(crate) struct Machines {
    pub kv: KvStore,
    pub journal_store: JournalStore,
    pub pidx: PartitionIndex,
    pub journal: Arc<Journal>,
    pub applied: Index,
    pub applied_term: Term,
    /// Member addresses and the preferred leader, as the applied log says.
    pub meta: ClusterMeta,
    /// Leases, locks, elections, ID sequences and liveness groups.
    pub coord: Coordination,
    /// Open journal transactions.
    pub txns: Transactions,
    /// This node's snapshots (read to roll the state back to one).
    pub snapshots: Arc<SnapshotStore>,
    /// The user state machines, by name.
    pub user: UserMachines,
}

/// The result of one write, as the driver hands it to the waiting client.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// First partition index of an append (reported at the batch's first entry).
    Appended(Result<u64, api::Error>),
    Kv(Result<KvOutcome, api::Error>),
    Scaled(Result<(), api::Error>),
    Meta(Result<(), api::Error>),
    /// Every node snapshots at this index.
    Snapshotted(Result<u64, api::Error>),
    Recovered(Result<(), api::Error>),
    Coord(Result<CoordOutcome, api::Error>),
    Txn(Result<TxnOutcome, api::Error>),
    /// Transaction `tx`'s publish record applied: its entries are visible (no client waits at
    /// this index; the committers of `tx` do).
    TxnPublished {
        tx: u64,
    },
    /// The results of a user state machine update, one per command.
    User(Result<Vec<CommandResult>, api::Error>),
}

/// Outcomes, KV events and (when it changed) the cluster metadata of one applied batch.
type Applied = (
    Vec<(Index, Term, Outcome)>,
    Vec<KvEvent>,
    Option<ClusterMeta>,
);

pub(crate) enum ApplyJob {
    Entries(Vec<Entry>),
    /// Restore from a snapshot the writer installed: `file` is its data file, read as a stream.
    Restore {
        meta: SnapshotMeta,
        file: std::fs::File,
    },
    Compact(Index),
    Stop,
}

pub(crate) enum ApplyDone {
    Applied {
        upto: Index,
        /// `(index, term, outcome)` for each entry that answers a client.
        results: Vec<(Index, Term, Outcome)>,
        events: Vec<KvEvent>,
        /// The cluster metadata, when this batch (or a restored snapshot) changed it.
        meta: Option<ClusterMeta>,
    },
    /// A snapshot of the state at `index`, written to the staging file `staged`, for the
    /// driver to register and save.
    Snapshot {
        index: Index,
        staged: std::path::PathBuf,
    },
    Failed(String),
}

pub(crate) fn state_error(e: StateError) -> api::Error {
    let kind = match &e {
        StateError::InvalidArgument(_) => ErrorKind::InvalidArgument,
        StateError::Codec { .. } => ErrorKind::Corruption,
        StateError::Rejected(_) => ErrorKind::InvalidArgument,
        StateError::EventsCompacted { .. } => ErrorKind::IndexUnderflow,
        StateError::LeaseExpired(_) => ErrorKind::LeaseExpired,
    };
    api::Error::new(kind, e.to_string())
}

/// A user state machine's error as a caller gets it: its refusal is `Rejected`.
pub(crate) fn user_error(e: StateError) -> api::Error {
    match e {
        StateError::Rejected(msg) => api::Error::new(ErrorKind::Rejected, msg),
        e => state_error(e),
    }
}

/// A user state machine's result as a reply carries it.
pub(crate) fn user_result(r: CommandResult) -> crate::client::protocol::SmResult {
    use crate::client::protocol::SmResult;
    match r {
        Ok(bytes) => SmResult::Ok(bytes),
        Err(e) => SmResult::Err(user_error(e)),
    }
}

impl Machines {
    pub fn new(
        journal: Arc<Journal>,
        pidx: PartitionIndex,
        limits: KvLimits,
        partitions: std::collections::BTreeSet<u16>,
        snapshots: Arc<SnapshotStore>,
        user: UserMachines,
    ) -> Self {
        let mut journal_store = JournalStore::new(limits.sessions);
        journal_store.declared = partitions;
        Self {
            kv: KvStore::new(limits),
            journal_store,
            pidx,
            journal,
            applied: 0,
            applied_term: 0,
            meta: ClusterMeta::default(),
            coord: Coordination::default(),
            txns: Transactions::default(),
            snapshots,
            user,
        }
    }

    /// Rolls the KV back to the state of this node's snapshot `snapshot` at log index `index`.
    /// The snapshot must be here: a node without it cannot apply the entry the way the others
    /// do, so that is an error that stops the node (the leader checked that a quorum has it).
    fn recover(&mut self, index: Index, snapshot: u64) -> Result<(), String> {
        let (has_user, mut input) = roll_back_kv(
            &mut self.kv,
            &mut self.coord,
            &self.snapshots,
            index,
            snapshot,
        )?;
        if has_user {
            // Sessions stay, as the journal store's do: a retry never applies twice.
            self.user.read_section(&mut input, true)?;
            self.user.replaced_at(index);
        }
        Ok(())
    }

    /// Serializes the built-in state at `applied` but the KV (streamed after it).
    fn builtin_snapshot(&self) -> Result<Vec<u8>, String> {
        let partitions = self
            .pidx
            .partitions()
            .into_iter()
            .filter_map(|p| self.pidx.bounds(p).map(|(_, next)| (p, next)))
            .collect();
        let data = SnapshotData {
            kv: Vec::new(),
            journal_store: self.journal_store.clone(),
            partitions,
            meta: self.meta.clone(),
            coord: self.coord.clone(),
            txns: self.txns.clone(),
            observers: self.meta.observers.clone(),
        };
        postcard::to_allocvec(&data).map_err(|e| e.to_string())
    }

    /// Writes the state at `applied` to the staging file of its index (durable when this
    /// returns `Ok`); returns its path.
    pub fn write_snapshot(&self) -> Result<std::path::PathBuf, String> {
        let path = self.snapshots.staging_file(self.applied);
        let io = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        let file = std::fs::File::create(&path).map_err(io)?;
        let mut out = std::io::BufWriter::new(file);
        let written =
            snapshot_file::write(&mut out, &self.builtin_snapshot()?, &self.kv, &self.user)
                .and_then(|()| {
                    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
                    file.sync_all().map_err(io)
                });
        if written.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        written.map(|()| path)
    }

    /// Restores the state machines (not the partition index) from a snapshot's data file.
    pub fn restore_state(
        &mut self,
        index: Index,
        term: Term,
        input: &mut dyn std::io::Read,
    ) -> Result<Vec<(u16, u64)>, String> {
        let state = SnapshotData::read(input, index)?;
        // The KV first: its stream comes before the user section.
        self.kv.install(state.kv);
        let snap = state.data;
        if state.has_user {
            self.user.read_section(input, false)?;
            self.user.replaced_at(index);
        } else if !self.user.names().is_empty() {
            tracing::warn!(
                index,
                "snapshot from before user state machines: they keep their current state"
            );
        }
        self.journal_store = snap.journal_store;
        self.meta = snap.meta;
        self.meta.observers = snap.observers;
        self.coord = snap.coord;
        self.txns = snap.txns;
        self.applied = index;
        self.applied_term = term;
        Ok(snap.partitions)
    }

    /// The KV events of the entry at `index`.
    fn kv_events_at(&self, index: Index) -> Vec<KvEvent> {
        self.kv.events_at(index)
    }

    /// Applies the user-machine updates gathered in `run` (one machine, consecutive entries)
    /// and pushes their results. On a fail-stop the applied index goes back to `base`, the
    /// entry before the run: none of it counts as applied.
    fn flush_user_run(
        &mut self,
        run: &mut Vec<(Index, Term, UserCommand)>,
        base: (Index, Term),
        results: &mut Vec<(Index, Term, Outcome)>,
    ) -> Result<(), String> {
        if run.is_empty() {
            return Ok(());
        }
        let entries: Vec<RunEntry<'_>> = run
            .iter()
            .map(|(index, term, cmd)| RunEntry {
                index: *index,
                term: *term,
                cmd,
            })
            .collect();
        let applied = self.user.apply_run(&entries);
        drop(entries);
        let applied = match applied {
            Ok(r) => r,
            Err(e) => {
                (self.applied, self.applied_term) = base;
                return Err(e);
            }
        };
        for ((index, term, _), r) in run.drain(..).zip(applied) {
            results.push((index, term, Outcome::User(r.map_err(state_error))));
        }
        Ok(())
    }

    /// Applies `entries` (contiguous, starting at `applied + 1`; earlier ones are skipped).
    fn apply(&mut self, entries: &[Entry]) -> Result<Applied, String> {
        let entries: Vec<&Entry> = entries.iter().filter(|e| e.index > self.applied).collect();
        let mut results = Vec::new();
        let mut events = Vec::new();
        let mut next: BTreeMap<u16, u64> = BTreeMap::new();
        let mut records = Vec::with_capacity(entries.len());
        let mut meta_changed = false;
        // Consecutive updates of one user machine, applied as one batch.
        let mut run: Vec<(Index, Term, UserCommand)> = Vec::new();
        let mut run_base = (self.applied, self.applied_term);
        for e in entries {
            if e.index != self.applied + 1 {
                return Err(format!(
                    "entry {} applied after {} (gap)",
                    e.index, self.applied
                ));
            }
            let record = entry_to_record(e);
            let p = record.partition;
            let pindex = *next
                .entry(p)
                .or_insert_with(|| self.pidx.bounds(p).map_or(0, |(_, n)| n));
            next.insert(p, pindex + 1);
            if e.index > self.pidx.indexed_upto() {
                records.push(record);
            }
            if let EntryKind::Normal(data) = &e.kind {
                let ctx = ApplyContext {
                    index: e.index,
                    term: e.term,
                    timestamp_ms: 0,
                };
                let decoded = command::decode(data);
                let joins_run = match &decoded {
                    Ok(Command::User(cmd)) => {
                        run.last().is_none_or(|(_, _, c)| c.machine == cmd.machine)
                    }
                    _ => false,
                };
                if !joins_run {
                    self.flush_user_run(&mut run, run_base, &mut results)?;
                }
                match decoded {
                    Ok(Command::Journal(h, _)) if p != SYSTEM_PARTITION => {
                        if h.offset == 0 {
                            let r = self
                                .journal_store
                                .apply_append(e.index, h.session.as_ref(), pindex)
                                .map_err(state_error);
                            results.push((e.index, e.term, Outcome::Appended(r)));
                        }
                    }
                    Ok(Command::Journal(..)) => {}
                    Ok(Command::Kv(req)) => {
                        let r = apply_kv(&mut self.kv, &mut self.coord, &ctx, &req);
                        events.extend(self.kv_events_at(e.index));
                        results.push((e.index, e.term, Outcome::Kv(r)));
                    }
                    Ok(Command::Coord(req)) => {
                        let r = apply_coord(&mut self.kv, &mut self.coord, &ctx, &req);
                        events.extend(self.kv_events_at(e.index));
                        results.push((e.index, e.term, Outcome::Coord(r)));
                    }
                    Ok(Command::Txn(req)) => {
                        let declared = &self.journal_store.declared;
                        let r = self
                            .txns
                            .apply_request(&ctx, &req, |p| declared.contains(&p))
                            .map_err(state_error);
                        results.push((e.index, e.term, Outcome::Txn(r)));
                    }
                    Ok(Command::TxnPublish { tx }) => {
                        if !self.txns.published(tx) {
                            tracing::error!(
                                index = e.index,
                                tx,
                                "publish record of a transaction that was not committing"
                            );
                        }
                        results.push((e.index, e.term, Outcome::TxnPublished { tx }));
                    }
                    Ok(Command::Snapshot(SnapshotCommand::Take)) => {
                        results.push((e.index, e.term, Outcome::Snapshotted(Ok(e.index))));
                    }
                    Ok(Command::Snapshot(SnapshotCommand::Recover { index })) => {
                        self.recover(e.index, index)?;
                        tracing::info!(
                            index = e.index,
                            snapshot = index,
                            "state rolled back to a snapshot"
                        );
                        events.extend(self.kv_events_at(e.index));
                        results.push((e.index, e.term, Outcome::Recovered(Ok(()))));
                    }
                    Ok(Command::Scale {
                        partitions,
                        session,
                    }) => {
                        let pidx = &self.pidx;
                        let r = self
                            .journal_store
                            .apply_scale(e.index, &session, partitions, |p| {
                                pidx.bounds(p).is_some_and(|(_, next)| next > 0)
                            })
                            .map_err(state_error);
                        results.push((e.index, e.term, Outcome::Scaled(r)));
                    }
                    Ok(Command::User(cmd)) => {
                        if run.is_empty() {
                            run_base = (self.applied, self.applied_term);
                        }
                        run.push((e.index, e.term, cmd));
                    }
                    Ok(Command::Meta(cmd)) => {
                        let r = self.meta.apply(&cmd).map_err(state_error);
                        meta_changed |= r.is_ok();
                        results.push((e.index, e.term, Outcome::Meta(r)));
                    }
                    Err(reason) => {
                        tracing::error!(index = e.index, %reason, "skipping undecodable command");
                    }
                }
            }
            self.applied = e.index;
            self.applied_term = e.term;
        }
        self.flush_user_run(&mut run, run_base, &mut results)?;
        if !records.is_empty() {
            self.pidx
                .index_records_deferred(&records)
                .map_err(|e| format!("partition index: {e}"))?;
        }
        Ok((results, events, meta_changed.then(|| self.meta.clone())))
    }
}

/// Applies a KV write: the KV's and the recipes' share of it (the apply thread and reads at an
/// index both apply KV writes through this).
pub(super) fn apply_kv(
    kv: &mut KvStore,
    coord: &mut Coordination,
    ctx: &ApplyContext,
    req: &KvRequest,
) -> Result<KvOutcome, api::Error> {
    let r = kv.apply_request(ctx, req).map_err(state_error);
    if r.as_ref().is_ok_and(KvOutcome::changed) {
        coord.key_written(req.command.key());
    }
    r
}

/// Applies a coordination recipe's command, which writes the KV keys that mirror it.
pub(super) fn apply_coord(
    kv: &mut KvStore,
    coord: &mut Coordination,
    ctx: &ApplyContext,
    req: &CoordRequest,
) -> Result<CoordOutcome, api::Error> {
    coord.apply_request(ctx, req, kv).map_err(state_error)
}

/// Rolls the KV and the recipes (which go back with the keys that mirror them) back to
/// snapshot `snapshot` at log index `index`; returns the data file left at the user machines'
/// section (`true`: there is one).
pub(super) fn roll_back_kv(
    kv: &mut KvStore,
    coord: &mut Coordination,
    snapshots: &SnapshotStore,
    index: Index,
    snapshot: u64,
) -> Result<(bool, std::io::BufReader<std::fs::File>), String> {
    let (state, input) = SnapshotData::open(snapshots, snapshot)
        .map_err(|e| format!("cannot recover snapshot {snapshot} at {index}: {e}"))?;
    kv.roll_back_to(index, state.kv);
    *coord = state.data.coord;
    Ok((state.has_user, input))
}

/// The apply thread's loop.
pub(crate) fn run(
    node: u64,
    machines: Arc<Mutex<Machines>>,
    jobs: mpsc::Receiver<ApplyJob>,
    done: impl Fn(ApplyDone) -> bool,
    snapshot_interval: u64,
) {
    let lock = || machines.lock().unwrap_or_else(|p| p.into_inner());
    let mut last_snapshot = lock().applied;
    let compactor = match Compactor::spawn(node, lock().journal.clone()) {
        Ok(c) => c,
        Err(e) => {
            let _ = done(ApplyDone::Failed(format!(
                "cannot spawn the compactor thread: {e}"
            )));
            return;
        }
    };
    while let Ok(job) = jobs.recv() {
        match job {
            ApplyJob::Entries(entries) => {
                tracing::trace!(
                    node,
                    first = entries.first().map(|e| e.index),
                    last = entries.last().map(|e| e.index),
                    "applying"
                );
                // A snapshot entry ends a chunk: every node snapshots exactly there.
                let mut rest: &[Entry] = &entries;
                while !rest.is_empty() {
                    let end = rest
                        .iter()
                        .position(command::is_take_snapshot)
                        .map_or(rest.len(), |p| p + 1);
                    let (chunk, after) = rest.split_at(end);
                    rest = after;
                    let forced = chunk.last().is_some_and(command::is_take_snapshot);
                    let mut m = lock();
                    let (results, events, meta) = match m.apply(chunk) {
                        Ok(applied) => applied,
                        Err(e) => {
                            let _ = done(ApplyDone::Failed(e));
                            return;
                        }
                    };
                    let upto = m.applied;
                    if m.pidx.checkpoint_due() {
                        match m.pidx.prepare_checkpoint() {
                            Ok(cp) => compactor.checkpoint(cp),
                            Err(e) => {
                                tracing::warn!(node, reason = %e, "partition index checkpoint failed")
                            }
                        }
                    }
                    let due = snapshot_interval > 0 && upto >= last_snapshot + snapshot_interval;
                    let snap = (forced || due).then(|| {
                        last_snapshot = upto;
                        m.write_snapshot()
                    });
                    drop(m);
                    if !done(ApplyDone::Applied {
                        upto,
                        results,
                        events,
                        meta,
                    }) {
                        return;
                    }
                    match snap {
                        Some(Ok(staged)) => {
                            let _ = done(ApplyDone::Snapshot {
                                index: upto,
                                staged,
                            });
                        }
                        Some(Err(e)) => tracing::warn!(node, reason = %e, "cannot snapshot"),
                        None => {}
                    }
                }
            }
            ApplyJob::Restore { meta: snap, file } => {
                // No checkpoint of the old index may land after the reset.
                compactor.wait_idle();
                let mut m = lock();
                let r = m
                    .restore_state(
                        snap.index,
                        snap.term,
                        &mut std::io::BufReader::with_capacity(1 << 16, file),
                    )
                    .and_then(|parts| {
                        m.pidx
                            .reset_to_snapshot(snap.index, snap.term, &parts)
                            .map_err(|e| format!("partition index reset: {e}"))
                    });
                last_snapshot = snap.index;
                let upto = m.applied;
                let meta = m.meta.clone();
                drop(m);
                match r {
                    Ok(()) => {
                        tracing::info!(node, index = snap.index, "installed snapshot");
                        let _ = done(ApplyDone::Applied {
                            upto,
                            results: Vec::new(),
                            events: Vec::new(),
                            meta: Some(meta),
                        });
                    }
                    Err(e) => {
                        let _ = done(ApplyDone::Failed(e));
                        return;
                    }
                }
            }
            ApplyJob::Compact(upto) => {
                let mut m = lock();
                let upto = upto.min(m.pidx.indexed_upto());
                // Compaction frees disk only segment by segment; until a segment can go, a
                // partition index checkpoint would be work for nothing.
                if !m.journal.compaction_frees_segment(upto) {
                    continue;
                }
                match m.pidx.compact_prefix_deferred(upto) {
                    Ok(cp) => compactor.compact(cp, upto),
                    Err(e) => tracing::warn!(node, upto, reason = %e, "log compaction failed"),
                }
            }
            ApplyJob::Stop => {
                compactor.stop();
                let mut m = lock();
                if let Err(e) = m.pidx.checkpoint() {
                    tracing::warn!(node, reason = %e, "partition index checkpoint failed");
                }
                return;
            }
        }
    }
    compactor.stop();
}
