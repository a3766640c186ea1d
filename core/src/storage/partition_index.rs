//! Partition index: for each partition, partition index → global log index.
//!
//! One file per partition, `p<partition:05>.pidx`, a flat array of u64 LE global indices (entry
//! `k` is partition index `file_start + k`), plus a checksummed `state` file written atomically at
//! checkpoints. Partition files are written without fsync; a checkpoint fsyncs them and records
//! how far they are valid (`upto` and its term), the compaction base and per-partition bounds.
//! On open the files are cut back to the checkpoint and the journal is replayed after it; when a
//! file is missing or short, or the journal no longer holds the checkpointed entry (a suffix
//! truncation), the index is rebuilt from the compaction base by replaying the journal.
//! Not internally synchronized: one owner drives it (`&mut self`).
//!
//! Which partitions a record's entries belong to is the [`Placer`]'s answer (by default: one
//! entry of the record's own partition). The index never reads payloads itself; a placer that
//! does (a server's transaction publish record holds entries of several partitions) must be a
//! function of the record's bytes alone, so replaying the journal always rebuilds the same
//! index. Entries one record places in a partition are consecutive there and share its global
//! index.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{IoContext, Result, StorageError};
use super::fsutil;
use super::journal::Journal;
use super::record::Record;

const STATE_FILE: &str = "state";
const STATE_MAGIC: &[u8; 4] = b"JKPI";
/// Records indexed between two automatic checkpoints.
const CHECKPOINT_EVERY: u64 = 1 << 16;
/// Records read from the journal per step while catching up.
const CATCH_UP_BATCH: usize = 4096;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct PartState {
    partition: u16,
    file_start: u64,
    min: u64,
    next: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
struct Checkpoint {
    /// Compaction point: entries with global index ≤ base are compacted; `min` counts them.
    base: u64,
    /// Every entry with global index ≤ `upto` is in the files, fsynced.
    upto: u64,
    upto_term: u64,
    parts: Vec<PartState>,
}

#[derive(Debug)]
struct Part {
    path: PathBuf,
    file: File,
    /// Partition index of the first entry in the file.
    file_start: u64,
    /// Smallest partition index not compacted.
    min: u64,
    /// Next partition index to assign (entries in file = next - file_start).
    next: u64,
}

impl Part {
    fn entry(&self, k: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        self.file
            .read_exact_at(&mut b, (k - self.file_start) * 8)
            .at(&self.path)?;
        Ok(u64::from_le_bytes(b))
    }

    /// First partition index whose global index is ≥ `global` (binary search on the file).
    fn lower_bound(&self, global: u64) -> Result<u64> {
        let (mut lo, mut hi) = (self.file_start, self.next);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid)? < global {
                lo = mid + 1
            } else {
                hi = mid
            }
        }
        Ok(lo)
    }

    fn cut(&mut self, next: u64) -> Result<()> {
        self.file
            .set_len((next - self.file_start) * 8)
            .at(&self.path)?;
        self.next = next;
        Ok(())
    }
}

/// Pushes the partition of each entry `record` holds, in order, onto `out`.
pub type Placer = fn(record: &Record, out: &mut Vec<u16>);

/// The default [`Placer`]: a record is one entry of its own partition.
pub fn own_partition(record: &Record, out: &mut Vec<u16>) {
    out.push(record.partition);
}

/// The partition index over one journal. See the module documentation.
#[derive(Debug)]
pub struct PartitionIndex {
    placer: Placer,
    dir: PathBuf,
    base: u64,
    upto: u64,
    upto_term: u64,
    checkpointed: u64,
    parts: BTreeMap<u16, Part>,
}

fn part_path(dir: &Path, p: u16) -> PathBuf {
    dir.join(format!("p{p:05}.pidx"))
}

fn open_part(
    dir: &Path,
    partition: u16,
    file_start: u64,
    min: u64,
    next: u64,
    create: bool,
) -> Result<Part> {
    let path = part_path(dir, partition);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(create)
        .open(&path)
        .at(&path)?;
    Ok(Part {
        path,
        file,
        file_start,
        min,
        next,
    })
}

impl PartitionIndex {
    /// Opens the index in `dir`, repairs it against `journal` and indexes every record the
    /// journal holds beyond the last checkpoint.
    pub fn open(dir: impl AsRef<Path>, journal: &Journal) -> Result<PartitionIndex> {
        Self::open_with(dir, journal, own_partition)
    }

    /// [`open`](Self::open) with the owner's `placer`.
    pub fn open_with(
        dir: impl AsRef<Path>,
        journal: &Journal,
        placer: Placer,
    ) -> Result<PartitionIndex> {
        let dir = dir.as_ref().to_path_buf();
        fsutil::ensure_dir(&dir)?;
        let state_path = dir.join(STATE_FILE);
        let mut cp = match fsutil::read_optional(&state_path)? {
            Some(bytes) => {
                let body = fsutil::unframe(&state_path, STATE_MAGIC, &bytes)?;
                postcard::from_bytes::<Checkpoint>(body).map_err(|e| {
                    StorageError::corrupt_file(&state_path, format!("undecodable: {e}"))
                })?
            }
            None => {
                let (compacted, _) = journal.compacted();
                if compacted > 0 {
                    return Err(StorageError::corrupt_file(
                        &state_path,
                        format!(
                            "missing, and the journal is compacted up to {compacted}: partition numbering is lost"
                        ),
                    ));
                }
                Checkpoint::default()
            }
        };
        if cp.base > journal.last_index() && journal.compacted().0 == 0 {
            // An installed snapshot reset the index (the apply thread) but the log reset (the
            // writer) did not happen before the node stopped: the journal still starts at 1,
            // so index it again from there. Startup then resets both to the saved snapshot, or
            // the leader sends it again.
            tracing::warn!(dir = %dir.display(), base = cp.base, last = journal.last_index(),
                "partition index ahead of the journal; rebuilding from its start");
            cp = Checkpoint::default();
        }
        let mut idx = PartitionIndex {
            placer,
            dir,
            base: cp.base,
            upto: cp.upto,
            upto_term: cp.upto_term,
            checkpointed: cp.upto,
            parts: BTreeMap::new(),
        };
        if !idx.restore(&cp, journal)? {
            tracing::warn!(dir = %idx.dir.display(), base = cp.base, "partition index behind or damaged; rebuilding from the journal");
            idx.rebuild_from_base(&cp, journal)?;
        }
        idx.catch_up(journal)?;
        Ok(idx)
    }

    /// Tries to reuse the files as the checkpoint describes them; false when a rebuild is needed.
    fn restore(&mut self, cp: &Checkpoint, journal: &Journal) -> Result<bool> {
        let journal_matches =
            cp.upto <= journal.last_index() && journal.term_at(cp.upto).ok() == Some(cp.upto_term);
        if !journal_matches {
            return Ok(false);
        }
        let mut parts = BTreeMap::new();
        for ps in &cp.parts {
            let path = part_path(&self.dir, ps.partition);
            let Ok(meta) = fs::metadata(&path) else {
                return Ok(false);
            };
            if ps.file_start > ps.min
                || ps.min > ps.next
                || meta.len() < (ps.next - ps.file_start) * 8
            {
                return Ok(false);
            }
            let mut part = open_part(
                &self.dir,
                ps.partition,
                ps.file_start,
                ps.min,
                ps.next,
                false,
            )?;
            part.cut(ps.next)?;
            parts.insert(ps.partition, part);
        }
        self.remove_stray_files(&parts)?;
        self.parts = parts;
        Ok(true)
    }

    fn remove_stray_files(&self, keep: &BTreeMap<u16, Part>) -> Result<()> {
        for entry in fs::read_dir(&self.dir).at(&self.dir)? {
            let entry = entry.at(&self.dir)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(p) = name
                .strip_prefix('p')
                .and_then(|n| n.strip_suffix(".pidx"))
                .and_then(|n| n.parse::<u16>().ok())
            else {
                continue;
            };
            if !keep.contains_key(&p) {
                fs::remove_file(entry.path()).at(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Recreates every partition file empty at the compaction base; `catch_up` replays the rest.
    fn rebuild_from_base(&mut self, cp: &Checkpoint, journal: &Journal) -> Result<()> {
        let (compacted, _) = journal.compacted();
        if compacted > cp.base {
            return Err(StorageError::corrupt_file(
                &self.dir.join(STATE_FILE),
                format!(
                    "journal compacted to {compacted} beyond the partition index base {}; compact the index first",
                    cp.base
                ),
            ));
        }
        self.parts.clear();
        for ps in &cp.parts {
            self.parts.insert(
                ps.partition,
                open_part(&self.dir, ps.partition, ps.min, ps.min, ps.min, true)?,
            );
        }
        self.remove_stray_files(&self.parts)?;
        self.base = cp.base;
        self.upto = cp.base;
        self.upto_term = if cp.base == 0 {
            0
        } else {
            journal.term_at(cp.base)?
        };
        self.checkpointed = 0;
        self.checkpoint()
    }

    /// Highest global index indexed.
    pub fn indexed_upto(&self) -> u64 {
        self.upto
    }

    /// Partitions that have (or had) entries.
    pub fn partitions(&self) -> Vec<u16> {
        self.parts.keys().copied().collect()
    }

    /// `(min, next)`: the smallest live partition index and the next one to be assigned.
    pub fn bounds(&self, partition: u16) -> Option<(u64, u64)> {
        self.parts.get(&partition).map(|p| (p.min, p.next))
    }

    /// Global log index of `partition`'s entry `pindex`.
    pub fn get(&self, partition: u16, pindex: u64) -> Result<u64> {
        let part = self
            .parts
            .get(&partition)
            .ok_or_else(|| StorageError::NotFound(format!("partition {partition}")))?;
        if pindex < part.min {
            return Err(StorageError::Compacted {
                index: pindex,
                first_index: part.min,
            });
        }
        if pindex >= part.next {
            return Err(StorageError::OutOfRange {
                index: pindex,
                last_index: part.next.saturating_sub(1),
            });
        }
        part.entry(pindex)
    }

    /// Reads up to `max_records` records of `partition` starting at partition index `from`.
    pub fn read(
        &self,
        journal: &Journal,
        partition: u16,
        from: u64,
        max_records: usize,
    ) -> Result<Vec<Record>> {
        let Some(&Part { next, .. }) = self.parts.get(&partition) else {
            return Err(StorageError::NotFound(format!("partition {partition}")));
        };
        let end = next.min(from.saturating_add(max_records as u64));
        let mut out = Vec::new();
        for k in from..end {
            let g = self.get(partition, k)?;
            let mut r = journal.read(g, 1, usize::MAX)?;
            out.append(&mut r);
        }
        Ok(out)
    }

    /// Indexes the records the journal holds beyond `indexed_upto()`. Returns the new value.
    pub fn catch_up(&mut self, journal: &Journal) -> Result<u64> {
        while self.upto < journal.last_index() {
            let batch = journal.read(self.upto + 1, CATCH_UP_BATCH, 16 * 1024 * 1024)?;
            if batch.is_empty() {
                break;
            }
            self.index_records(&batch)?;
        }
        Ok(self.upto)
    }

    /// Indexes `records`, which must start at `indexed_upto() + 1` and be contiguous.
    pub fn index_records(&mut self, records: &[Record]) -> Result<()> {
        self.index_records_deferred(records)?;
        if self.checkpoint_due() {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// [`index_records`](Self::index_records) without its automatic checkpoint: the owner
    /// checks [`checkpoint_due`](Self::checkpoint_due) and writes one when it suits it.
    pub fn index_records_deferred(&mut self, records: &[Record]) -> Result<()> {
        let mut added: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
        let mut places = Vec::new();
        for (expected, r) in (self.upto + 1..).zip(records) {
            if r.index != expected {
                return Err(StorageError::NonContiguous {
                    expected,
                    got: r.index,
                });
            }
            places.clear();
            (self.placer)(r, &mut places);
            for &p in &places {
                added
                    .entry(p)
                    .or_default()
                    .extend_from_slice(&r.index.to_le_bytes());
            }
        }
        for (p, bytes) in added {
            let part = match self.parts.entry(p) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(open_part(&self.dir, p, 0, 0, 0, true)?)
                }
            };
            part.file
                .write_all_at(&bytes, (part.next - part.file_start) * 8)
                .at(&part.path)?;
            part.next += bytes.len() as u64 / 8;
        }
        if let Some(last) = records.last() {
            self.upto = last.index;
            self.upto_term = last.term;
        }
        Ok(())
    }

    /// Forgets entries with global index ≥ `from` (after the journal's `truncate_suffix`).
    pub fn truncate_suffix(&mut self, journal: &Journal, from: u64) -> Result<()> {
        if from > self.upto {
            return Ok(());
        }
        if from <= self.base {
            return Err(StorageError::Compacted {
                index: from,
                first_index: self.base + 1,
            });
        }
        for part in self.parts.values_mut() {
            let k = part.lower_bound(from)?.max(part.min);
            part.cut(k)?;
        }
        self.upto = from - 1;
        self.upto_term = journal.term_at(from - 1)?;
        self.checkpoint()
    }

    /// Marks entries with global index ≤ `upto` compacted: each partition's minimum rises.
    /// Call before the journal's `compact_prefix(upto)`; `upto` must be indexed already.
    pub fn compact_prefix(&mut self, upto: u64) -> Result<()> {
        if upto <= self.base {
            return Ok(());
        }
        self.compact_prefix_deferred(upto)?.write()
    }

    /// [`compact_prefix`](Self::compact_prefix) whose checkpoint the caller writes: the
    /// journal may be compacted to `upto` only after it is durable.
    pub fn compact_prefix_deferred(&mut self, upto: u64) -> Result<PendingCheckpoint> {
        if upto > self.upto {
            return Err(StorageError::OutOfRange {
                index: upto,
                last_index: self.upto,
            });
        }
        if upto > self.base {
            for part in self.parts.values_mut() {
                part.min = part.lower_bound(upto + 1)?.max(part.min);
            }
            self.base = upto;
        }
        self.prepare_checkpoint()
    }

    /// Restarts the index after a snapshot installed at `base` (term `base_term`; the journal was
    /// reset there): every entry up to `base` counts as compacted, and partition `p` continues
    /// at `next` for each `(p, next)` of `bounds` (the numbering the snapshot carries).
    pub fn reset_to_snapshot(
        &mut self,
        base: u64,
        base_term: u64,
        bounds: &[(u16, u64)],
    ) -> Result<()> {
        let mut parts = BTreeMap::new();
        for &(p, next) in bounds {
            parts.insert(p, open_part(&self.dir, p, next, next, next, true)?);
        }
        self.remove_stray_files(&parts)?;
        self.parts = parts;
        self.base = base;
        self.upto = base;
        self.upto_term = base_term;
        self.checkpointed = 0;
        self.checkpoint()
    }

    /// Fsyncs every partition file and records the checkpoint atomically.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.prepare_checkpoint()?.write()
    }

    /// Captures a checkpoint of the current state, to be made durable later with
    /// [`PendingCheckpoint::write`] — by another thread, without this index borrowed, while
    /// indexing goes on. Pending checkpoints must be written in the order they were prepared,
    /// and all of them before the index is reset ([`reset_to_snapshot`](Self::reset_to_snapshot))
    /// or the journal is compacted beyond what the last written one covers.
    pub fn prepare_checkpoint(&mut self) -> Result<PendingCheckpoint> {
        let mut parts = Vec::with_capacity(self.parts.len());
        let mut files = Vec::with_capacity(self.parts.len());
        for (&partition, part) in &self.parts {
            files.push((part.file.try_clone().at(&part.path)?, part.path.clone()));
            parts.push(PartState {
                partition,
                file_start: part.file_start,
                min: part.min,
                next: part.next,
            });
        }
        let cp = Checkpoint {
            base: self.base,
            upto: self.upto,
            upto_term: self.upto_term,
            parts,
        };
        let body = postcard::to_allocvec(&cp)
            .map_err(|e| StorageError::InvalidArgument(format!("checkpoint not encodable: {e}")))?;
        self.checkpointed = self.upto;
        Ok(PendingCheckpoint {
            files,
            state_path: self.dir.join(STATE_FILE),
            state: fsutil::frame(STATE_MAGIC, &body),
        })
    }

    /// Whether enough was indexed since the last checkpoint that the next one is due (the
    /// owner of an index fed by [`index_records_deferred`](Self::index_records_deferred)).
    pub fn checkpoint_due(&self) -> bool {
        self.upto - self.checkpointed.min(self.upto) >= CHECKPOINT_EVERY
    }

    /// Checkpoints and closes.
    pub fn close(mut self) -> Result<()> {
        self.checkpoint()
    }
}

/// A checkpoint captured by [`PartitionIndex::prepare_checkpoint`], not yet durable.
#[derive(Debug)]
pub struct PendingCheckpoint {
    /// Second handles of the partition files, to fsync.
    files: Vec<(File, PathBuf)>,
    state_path: PathBuf,
    state: Vec<u8>,
}

impl PendingCheckpoint {
    /// Makes the captured checkpoint durable: fsyncs the partition files, then replaces the
    /// state file atomically.
    pub fn write(self) -> Result<()> {
        for (file, path) in &self.files {
            file.sync_data().at(path)?;
        }
        fsutil::atomic_write(&self.state_path, &self.state)
    }
}
