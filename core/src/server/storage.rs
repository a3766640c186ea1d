//! The raft log over the durable journal: [`LogStore`] implements [`raft::Storage`] for the
//! core, and the storage writer thread ([`spawn_writer`]) persists what each `Ready` says —
//! snapshot install, suffix truncation, appends, hard state — with one group-commit
//! `fdatasync` for every batch of jobs it finds queued, then reports durability.
//!
//! Files under the data directory: `journal/` (segments), `partitions/` (partition index),
//! `snapshots/<index>/{meta,data}`, and `metadata` (term, vote, commit, membership).

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use serde::{Deserialize, Serialize};

use super::apply::ApplyJob;
use super::command::{entry_to_record, record_to_entry};
use super::metrics::LatencyHistogram;
use super::snapshot_receive::Incoming;
use crate::raft::{
    Entry, HardState, Index, Membership, Message, SnapshotChunk, SnapshotMeta, Storage, Term,
};
use crate::storage::{Journal, Metadata, MetadataStore, SnapshotStore, StorageError};

/// What the raft core knows about the latest snapshot, shared with the writer.
#[derive(Debug, Default)]
pub(crate) struct SnapshotState {
    pub meta: SnapshotMeta,
    pub dir: Option<PathBuf>,
}

/// Extra hard state kept in `Metadata::config`.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct MetaExtra {
    pub commit: Index,
    pub membership: Membership,
}

/// The core's read-only view of the log.
#[derive(Clone)]
pub(crate) struct LogStore {
    pub journal: Arc<Journal>,
    pub hard_state: HardState,
    pub snapshot: Arc<Mutex<SnapshotState>>,
}

impl LogStore {
    fn snap(&self) -> std::sync::MutexGuard<'_, SnapshotState> {
        self.snapshot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Storage for LogStore {
    fn hard_state(&self) -> HardState {
        self.hard_state.clone()
    }

    fn snapshot_meta(&self) -> SnapshotMeta {
        self.snap().meta.clone()
    }

    fn first_index(&self) -> Index {
        // Entries behind the snapshot are kept (a retained tail); the core may send them.
        self.journal.first_index()
    }

    fn last_index(&self) -> Index {
        self.journal.last_index()
    }

    fn term(&self, index: Index) -> Option<Term> {
        {
            let s = self.snap();
            if index == s.meta.index {
                return Some(s.meta.term);
            }
        }
        if index > self.journal.last_index() {
            return None;
        }
        self.journal.term_at(index).ok()
    }

    fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Vec<Entry> {
        if lo >= hi {
            return Vec::new();
        }
        let max = usize::try_from(hi - lo).unwrap_or(usize::MAX);
        let bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        match self.journal.read(lo, max, bytes) {
            Ok(records) => {
                let mut out = Vec::with_capacity(records.len());
                for r in records {
                    match record_to_entry(r) {
                        Ok(e) => out.push(e),
                        Err(e) => {
                            tracing::error!(reason = %e, "undecodable log record");
                            break;
                        }
                    }
                }
                out
            }
            Err(e) => {
                tracing::debug!(lo, hi, reason = %e, "log read failed");
                Vec::new()
            }
        }
    }

    fn snapshot_chunk(&self, offset: u64, max_bytes: usize) -> Option<(Vec<u8>, bool)> {
        let dir = self.snap().dir.clone()?;
        let file = std::fs::File::open(dir.join("data")).ok()?;
        let len = file.metadata().ok()?.len();
        if offset > len {
            return None;
        }
        let n = ((len - offset) as usize).min(max_bytes);
        let mut buf = vec![0; n];
        file.read_exact_at(&mut buf, offset).ok()?;
        Some((buf, offset + n as u64 == len))
    }
}

/// Writes a snapshot directory (`meta`, `data`); a no-op when it exists.
pub(crate) fn save_snapshot(
    store: &SnapshotStore,
    meta: &SnapshotMeta,
    data: SnapshotSource<'_>,
) -> Result<PathBuf, StorageError> {
    if let Ok(p) = store.open_snapshot(meta.index) {
        let SnapshotSource::Staged(staged) = data;
        let _ = std::fs::remove_file(staged);
        return Ok(p);
    }
    let meta_bytes = postcard::to_allocvec(meta)
        .map_err(|e| StorageError::InvalidArgument(format!("snapshot meta: {e}")))?;
    store.create(meta.index, |dir| {
        std::fs::write(dir.join("meta"), &meta_bytes)?;
        match data {
            SnapshotSource::Staged(staged) => std::fs::rename(staged, dir.join("data")),
        }
    })
}

/// Where a snapshot's data file comes from.
pub(crate) enum SnapshotSource<'a> {
    /// A staging file of the snapshot store: written by the apply thread, or assembled from a
    /// leader's chunks.
    Staged(&'a std::path::Path),
}

/// Loads the newest snapshot's metadata and directory, if any.
pub(crate) fn load_latest_snapshot(
    store: &SnapshotStore,
) -> Result<Option<(SnapshotMeta, PathBuf)>, StorageError> {
    let Some(index) = store.latest()? else {
        return Ok(None);
    };
    let dir = store.open_snapshot(index)?;
    let path = dir.join("meta");
    let bytes = std::fs::read(&path).map_err(|e| StorageError::io(&path, e))?;
    let meta: SnapshotMeta = postcard::from_bytes(&bytes)
        .map_err(|e| StorageError::corrupt_file(&path, format!("undecodable: {e}")))?;
    Ok(Some((meta, dir)))
}

/// Work for the storage writer, in `Ready` order.
pub(crate) enum WriteJob {
    Ready {
        /// Chunks of an incoming snapshot, appended to its staging file.
        chunks: Vec<SnapshotChunk>,
        /// Install the snapshot received for this meta.
        snapshot: Option<SnapshotMeta>,
        entries: Vec<Entry>,
        hard_state: Option<HardState>,
        point: Option<(Index, Term)>,
        /// Sent by the driver once this job is durable.
        msgs: Vec<Message>,
    },
    /// A snapshot the node took; then compact the log up to `compact_upto`.
    SaveSnapshot {
        meta: SnapshotMeta,
        /// The staging file the apply thread wrote.
        staged: PathBuf,
        compact_upto: Index,
    },
    /// Committed entries to hand to the apply thread once every entry queued before them is
    /// written to the journal (written, not necessarily durable): the apply thread indexes
    /// partitions from them, and a read must find every indexed entry in the journal.
    Apply(Vec<Entry>),
    /// Persist the commit index (shutdown) and stop.
    Stop { commit: Index },
}

/// What the writer reports.
pub(crate) enum WriteDone {
    Persisted {
        point: Option<(Index, Term)>,
        msgs: Vec<Message>,
        durable: Index,
    },
    SnapshotSaved {
        index: Index,
        compact_upto: Index,
    },
    Failed(String),
}

/// The driver's end of the writer's job queue. It counts what it sends and the writer counts
/// what it has consumed (written — not yet fsynced — or forwarded), so the driver knows when
/// nothing is queued: then committed entries can go to the apply thread directly instead of
/// waiting behind the writer's `fdatasync`.
pub(crate) struct WriteQueue {
    tx: mpsc::Sender<WriteJob>,
    sent: u64,
    consumed: Consumed,
}

/// The writer's count of consumed jobs.
#[derive(Clone, Default)]
pub(crate) struct Consumed(Arc<AtomicU64>);

impl Consumed {
    fn add_one(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

impl WriteQueue {
    pub fn new() -> (Self, mpsc::Receiver<WriteJob>, Consumed) {
        let (tx, rx) = mpsc::channel();
        let consumed = Consumed::default();
        let q = WriteQueue {
            tx,
            sent: 0,
            consumed: consumed.clone(),
        };
        (q, rx, consumed)
    }

    /// Queues a job; `Err` when the writer is gone.
    pub fn send(&mut self, job: WriteJob) -> Result<(), ()> {
        self.tx.send(job).map_err(|_| ())?;
        self.sent += 1;
        Ok(())
    }

    /// Whether the writer has written or forwarded every job sent so far (it may still be
    /// syncing them).
    pub fn is_drained(&self) -> bool {
        self.consumed.get() >= self.sent
    }
}

pub(crate) struct Writer {
    pub journal: Arc<Journal>,
    pub metadata: MetadataStore,
    pub snapshots: Arc<SnapshotStore>,
    pub snapshot: Arc<Mutex<SnapshotState>>,
    pub saved: Metadata,
    pub extra: MetaExtra,
    pub node: u64,
    /// Snapshots kept on disk.
    pub retained: usize,
    /// Compaction keeps the log back to the oldest snapshot kept (`retain_history`).
    pub retain_history: bool,
    /// Where each group commit's fdatasync time goes.
    pub fsync_latency: Arc<LatencyHistogram>,
    /// The snapshot being received from a leader.
    pub incoming: Incoming,
    /// Largest snapshot accepted from a leader.
    pub snapshot_max_bytes: u64,
}

impl Writer {
    fn save_meta(
        &mut self,
        term: Term,
        vote: Option<u64>,
        commit: Index,
    ) -> Result<(), StorageError> {
        self.extra.commit = commit;
        self.extra.membership = self
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .meta
            .membership
            .clone();
        let meta = Metadata {
            term,
            voted_for: vote,
            config: postcard::to_allocvec(&self.extra).unwrap_or_default(),
        };
        self.metadata.save(&meta)?;
        self.saved = meta;
        Ok(())
    }

    /// Installs the snapshot received for `meta`: its staging file, fsynced, becomes the
    /// snapshot's data; returns that file opened for the apply thread to restore from (an open
    /// file survives the deletion of an old snapshot).
    fn install(&mut self, meta: &SnapshotMeta) -> Result<std::fs::File, StorageError> {
        let staged = self.incoming.finish(meta)?;
        let dir = save_snapshot(&self.snapshots, meta, SnapshotSource::Staged(&staged))?;
        let data = dir.join("data");
        let file = std::fs::File::open(&data).map_err(|e| StorageError::io(&data, e))?;
        self.journal.reset_to_snapshot(meta.index, meta.term)?;
        let mut s = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        s.meta = meta.clone();
        s.dir = Some(dir);
        drop(s);
        self.drop_old_snapshots(meta.index);
        Ok(file)
    }

    /// Deletes all but the newest `retained` snapshots (never `keep`, the one just saved).
    fn drop_old_snapshots(&self, keep: Index) {
        if let Ok(list) = self.snapshots.list() {
            let n = list.len().saturating_sub(self.retained);
            for i in list.into_iter().take(n).filter(|&i| i < keep) {
                if let Err(e) = self.snapshots.delete(i) {
                    tracing::warn!(node = self.node, index = i, reason = %e, "cannot delete old snapshot");
                }
            }
        }
    }

    /// How far the log may be compacted, given the driver's `upto`: with `retain_history`,
    /// never past the oldest snapshot kept, so the entries after it stay for reads at an index.
    fn compaction_bound(&self, upto: Index) -> Index {
        if !self.retain_history {
            return upto;
        }
        match self.snapshots.list() {
            Ok(list) => list.first().map_or(0, |&oldest| upto.min(oldest)),
            Err(e) => {
                tracing::warn!(node = self.node, reason = %e, "cannot list snapshots: no compaction");
                0
            }
        }
    }

    /// Writes one `Ready`'s share; returns the installed snapshot to restore from, if any.
    fn write(
        &mut self,
        chunks: &[SnapshotChunk],
        snapshot: Option<&SnapshotMeta>,
        entries: &[Entry],
        hs: Option<HardState>,
    ) -> Result<Option<std::fs::File>, StorageError> {
        for c in chunks {
            self.incoming
                .write(&self.snapshots, c, self.snapshot_max_bytes)?;
        }
        let restore = match snapshot {
            Some(meta) => Some(self.install(meta)?),
            None => None,
        };
        if let Some(first) = entries.first() {
            if first.index <= self.journal.last_index() {
                self.journal.truncate_suffix(first.index)?;
            }
            let records: Vec<_> = entries.iter().map(entry_to_record).collect();
            self.journal.append(&records)?;
        }
        if let Some(hs) = hs {
            if hs.term != self.saved.term || hs.vote != self.saved.voted_for || snapshot.is_some() {
                self.save_meta(hs.term, hs.vote, hs.commit)?;
            } else {
                self.extra.commit = hs.commit;
            }
        }
        Ok(restore)
    }

    /// Runs until `Stop` or the channel closes.
    pub fn run(
        mut self,
        jobs: mpsc::Receiver<WriteJob>,
        consumed: Consumed,
        done: impl Fn(WriteDone) -> bool,
        to_apply: impl Fn(ApplyJob) -> bool,
    ) {
        let mut failed = false;
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            while let Ok(j) = jobs.try_recv() {
                batch.push(j);
            }
            let mut reports = Vec::new();
            let mut stop = None;
            let mut wrote = false;
            for job in batch {
                if failed {
                    if let WriteJob::Stop { .. } = job {
                        return;
                    }
                    continue;
                }
                match job {
                    WriteJob::Ready {
                        chunks,
                        snapshot,
                        entries,
                        hard_state,
                        point,
                        msgs,
                    } => {
                        wrote = true;
                        match self.write(&chunks, snapshot.as_ref(), &entries, hard_state) {
                            Ok(restore) => {
                                if let (Some(meta), Some(file)) = (snapshot, restore)
                                    && !to_apply(ApplyJob::Restore { meta, file })
                                {
                                    done(WriteDone::Failed("apply thread is gone".into()));
                                    return;
                                }
                            }
                            Err(e) => {
                                failed = true;
                                done(WriteDone::Failed(format!("storage write failed: {e}")));
                                break;
                            }
                        }
                        reports.push((point, msgs));
                    }
                    WriteJob::SaveSnapshot {
                        meta,
                        staged,
                        compact_upto,
                    } => {
                        match save_snapshot(&self.snapshots, &meta, SnapshotSource::Staged(&staged))
                        {
                            Ok(dir) => {
                                let mut s = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
                                if meta.index > s.meta.index {
                                    s.meta = meta.clone();
                                    s.dir = Some(dir);
                                }
                                drop(s);
                                self.drop_old_snapshots(meta.index);
                                let compact_upto = self.compaction_bound(compact_upto);
                                let _ = done(WriteDone::SnapshotSaved {
                                    index: meta.index,
                                    compact_upto,
                                });
                                let _ = to_apply(ApplyJob::Compact(compact_upto));
                            }
                            Err(e) => {
                                tracing::warn!(node = self.node, index = meta.index, reason = %e, "cannot save snapshot")
                            }
                        }
                    }
                    WriteJob::Apply(entries) => {
                        if !to_apply(ApplyJob::Entries(entries)) {
                            done(WriteDone::Failed("apply thread is gone".into()));
                            return;
                        }
                    }
                    WriteJob::Stop { commit } => stop = Some(commit),
                }
                consumed.add_one();
            }
            if failed {
                continue;
            }
            if wrote || stop.is_some() {
                let started = std::time::Instant::now();
                let synced = self.journal.sync();
                self.fsync_latency.observe(started.elapsed());
                match synced {
                    Ok(durable) => {
                        for (point, msgs) in reports {
                            if !done(WriteDone::Persisted {
                                point,
                                msgs,
                                durable,
                            }) {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        failed = true;
                        done(WriteDone::Failed(format!("fdatasync failed: {e}")));
                        continue;
                    }
                }
            }
            if let Some(commit) = stop {
                let (t, v) = (self.saved.term, self.saved.voted_for);
                if let Err(e) = self.save_meta(t, v, commit.max(self.extra.commit)) {
                    tracing::warn!(node = self.node, reason = %e, "cannot save metadata at shutdown");
                }
                return;
            }
        }
    }
}

/// Opens the metadata file: `(store, hard state, saved metadata, extra)`.
pub(crate) fn open_metadata(
    dir: &Path,
) -> Result<(MetadataStore, HardState, Metadata, MetaExtra), StorageError> {
    let (store, loaded) = MetadataStore::open(dir)?;
    let meta = loaded.unwrap_or_default();
    let extra: MetaExtra = if meta.config.is_empty() {
        MetaExtra::default()
    } else {
        postcard::from_bytes(&meta.config).map_err(|e| {
            StorageError::corrupt_file(store.path(), format!("undecodable hard state: {e}"))
        })?
    };
    let hs = HardState {
        term: meta.term,
        vote: meta.voted_for,
        commit: extra.commit,
    };
    Ok((store, hs, meta, extra))
}
