//! The journal: the append-only, segmented Raft log. Owns the segment list, index contiguity,
//! appends (buffered `write`), group-committed durability, range reads, suffix truncation,
//! prefix compaction and recovery on open. It never interprets payloads.

use std::fs::{self};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::error::{IoContext, Result, StorageError};
use super::fsutil;
use super::group_commit::{GroupCommit, SyncTarget};
use super::record::{self, HEADER_LEN, Record};
use super::segment::{self, Segment, Step, WalkEnd};

const COMPACTION_FILE: &str = "compaction";
const COMPACTION_MAGIC: &[u8; 4] = b"JKCP";

/// Bounds and tuning of a journal. Every bound is validated by [`Journal::open`].
#[derive(Clone, Debug)]
pub struct JournalOptions {
    /// Maximum size of a segment file in bytes (a segment holds at least one record).
    pub max_segment_bytes: u64,
    /// Maximum payload size of one record in bytes.
    pub max_record_bytes: usize,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            max_segment_bytes: 64 * 1024 * 1024,
            max_record_bytes: 4 * 1024 * 1024,
        }
    }
}

impl JournalOptions {
    fn validate(&self) -> Result<()> {
        if self.max_record_bytes == 0 || self.max_record_bytes > u32::MAX as usize - HEADER_LEN {
            return Err(StorageError::InvalidArgument(format!(
                "max_record_bytes must be in 1..={}, got {}",
                u32::MAX as usize - HEADER_LEN,
                self.max_record_bytes
            )));
        }
        let min_segment = (HEADER_LEN + self.max_record_bytes) as u64;
        if self.max_segment_bytes < min_segment || self.max_segment_bytes > (1 << 48) {
            return Err(StorageError::InvalidArgument(format!(
                "max_segment_bytes must be in {min_segment}..={} (one maximal record), got {}",
                1u64 << 48,
                self.max_segment_bytes
            )));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct State {
    /// Sorted by first index; never empty; the last one is the active (written) segment.
    segments: Vec<Segment>,
    /// Last index removed by compaction (0 when none) and its term.
    compacted_index: u64,
    compacted_term: u64,
    encode_buf: Vec<u8>,
    poisoned: Option<String>,
    closed: bool,
}

impl State {
    fn active(&self) -> &Segment {
        &self.segments[self.segments.len() - 1]
    }

    fn active_mut(&mut self) -> &mut Segment {
        let n = self.segments.len() - 1;
        &mut self.segments[n]
    }

    fn first_index(&self) -> u64 {
        self.compacted_index + 1
    }

    fn last_index(&self) -> u64 {
        self.active().last_index
    }

    fn last_term(&self) -> u64 {
        self.segments
            .iter()
            .rev()
            .find_map(|s| s.last_term())
            .unwrap_or(self.compacted_term)
    }

    fn check_usable(&self) -> Result<()> {
        if self.closed {
            return Err(StorageError::Closed);
        }
        if let Some(why) = &self.poisoned {
            return Err(StorageError::Poisoned(why.clone()));
        }
        Ok(())
    }

    /// Whether compacting up to `upto` would drop the oldest segment (the active segment, the
    /// last one, always stays).
    fn oldest_segment_compactable(&self, upto: u64) -> bool {
        self.segments.len() > 1 && self.segments[0].last_index <= upto
    }

    /// Position of the segment holding `index` (which must be physically present).
    fn segment_of(&self, index: u64) -> usize {
        self.segments
            .partition_point(|s| s.first_index <= index)
            .saturating_sub(1)
    }

    fn check_readable(&self, index: u64) -> Result<()> {
        if index < self.first_index() {
            return Err(StorageError::Compacted {
                index,
                first_index: self.first_index(),
            });
        }
        if index > self.last_index() {
            return Err(StorageError::OutOfRange {
                index,
                last_index: self.last_index(),
            });
        }
        Ok(())
    }
}

/// The segmented journal. `Send + Sync`: appends, reads and syncs may come from any thread;
/// `fdatasync` runs without blocking appenders or readers.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    opts: JournalOptions,
    state: RwLock<State>,
    commit: GroupCommit,
    written: AtomicU64,
    /// Held by whoever writes the compaction marker (compaction, snapshot reset).
    compaction: Mutex<()>,
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir`, recovering from a crash: the last
    /// segment is scanned and a torn tail cut off; sealed segments are trusted through their
    /// checksummed `.idx` files (or rescanned strictly when those are missing or stale).
    pub fn open(dir: impl AsRef<Path>, opts: JournalOptions) -> Result<Journal> {
        opts.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fsutil::ensure_dir(&dir)?;
        let max = record::SCAN_MAX_PAYLOAD;
        let comp_path = dir.join(COMPACTION_FILE);
        let (compacted_index, compacted_term) = match fsutil::read_optional(&comp_path)? {
            None => (0, 0),
            Some(bytes) => {
                let body = fsutil::unframe(&comp_path, COMPACTION_MAGIC, &bytes)?;
                let word = |i: usize| {
                    body.get(i * 8..i * 8 + 8)
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_le_bytes)
                };
                match (word(0), word(1), body.len()) {
                    (Some(i), Some(t), 16) => (i, t),
                    _ => {
                        return Err(StorageError::corrupt_file(
                            &comp_path,
                            "compaction record is not 16 bytes",
                        ));
                    }
                }
            }
        };
        let mut firsts = Vec::new();
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(first) = segment::parse_segment_name(name) {
                if first == 0 {
                    return Err(StorageError::corrupt_file(
                        &entry.path(),
                        "segment named with index 0",
                    ));
                }
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        // Finish an interrupted compaction or reset: drop segments wholly at or below the
        // compaction point, newest-last so that a crash here leaves a valid prefix.
        while firsts.len() >= 2 && firsts[1] <= compacted_index + 1 {
            let first = firsts.remove(0);
            remove_segment_files(&dir, first)?;
        }
        let mut segments: Vec<Segment> = Vec::with_capacity(firsts.len());
        let n = firsts.len();
        let mut prev_term = 0;
        for (i, &first) in firsts.iter().enumerate() {
            let mut seg = Segment::open(&dir, first)?;
            if let Some(prev) = segments.last()
                && prev.last_index + 1 != first
            {
                return Err(StorageError::corrupt_file(
                    &seg.path,
                    format!(
                        "gap: previous segment ends at index {}, this one starts at {first}",
                        prev.last_index
                    ),
                ));
            }
            if i + 1 == n {
                seg.scan(max, true, prev_term)?;
            } else if !seg.load_idx(&dir, prev_term)? {
                seg.scan(max, false, prev_term)?;
                seg.write_idx(&dir)?;
            }
            prev_term = seg.last_term().unwrap_or(prev_term);
            segments.push(seg);
        }
        if let Some(first) = segments.first()
            && first.first_index > compacted_index + 1
        {
            return Err(StorageError::corrupt_file(
                &first.path,
                format!(
                    "journal starts at index {} but compaction point is {compacted_index}",
                    first.first_index
                ),
            ));
        }
        let behind = segments
            .last()
            .is_some_and(|s| s.last_index < compacted_index);
        if behind {
            tracing::warn!(dir = %dir.display(), compacted_index, "log ends below its compaction point; resetting it");
            for seg in segments.drain(..).rev() {
                remove_segment_files(&dir, seg.first_index)?;
            }
        }
        if segments.is_empty() {
            segments.push(Segment::create(&dir, compacted_index + 1)?);
        }
        fsutil::sync_dir(&dir)?;
        let mut state = State {
            segments,
            compacted_index,
            compacted_term,
            encode_buf: Vec::new(),
            poisoned: None,
            closed: false,
        };
        // What we recovered may sit only in the page cache (process crash): make it durable.
        let active = state.active_mut();
        active.file.sync_data().at(&active.path)?;
        let last = state.last_index();
        tracing::debug!(dir = %dir.display(), first = state.first_index(), last, segments = state.segments.len(), "journal opened");
        Ok(Journal {
            dir,
            opts,
            state: RwLock::new(state),
            commit: GroupCommit::new(last),
            written: AtomicU64::new(last),
            compaction: Mutex::new(()),
        })
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory holding the segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the journal was opened with.
    pub fn options(&self) -> &JournalOptions {
        &self.opts
    }

    /// First readable index (`last compacted index + 1`; 1 for a new journal).
    pub fn first_index(&self) -> u64 {
        self.read_state().first_index()
    }

    /// Last written index (`first_index() - 1` when empty). May not be durable yet.
    pub fn last_index(&self) -> u64 {
        self.read_state().last_index()
    }

    /// Highest index known durable.
    pub fn durable_index(&self) -> u64 {
        self.commit.durable()
    }

    /// Number of `fdatasync` calls performed since open.
    pub fn syncs_performed(&self) -> u64 {
        self.commit.syncs()
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.read_state().segments.len()
    }

    /// Approximate heap bytes of the in-memory sparse index and term runs.
    pub fn index_memory_bytes(&self) -> usize {
        self.read_state()
            .segments
            .iter()
            .map(Segment::index_memory)
            .sum()
    }

    /// The last compacted index and its term (`(0, 0)` when nothing was compacted): Raft's
    /// "previous entry" for the first retained record.
    pub fn compacted(&self) -> (u64, u64) {
        let s = self.read_state();
        (s.compacted_index, s.compacted_term)
    }

    /// Term of the record at `index`; also answers for the last compacted index.
    pub fn term_at(&self, index: u64) -> Result<u64> {
        let s = self.read_state();
        if index == s.compacted_index {
            return Ok(s.compacted_term);
        }
        s.check_readable(index)?;
        let seg = &s.segments[s.segment_of(index)];
        seg.term_at(index).ok_or_else(|| {
            StorageError::corrupt_file(&seg.path, format!("no term known for index {index}"))
        })
    }

    /// Writes `records` (buffered, not yet durable) and returns the last written index.
    /// Records must continue the log (`index == last_index + 1`, terms non-decreasing) and
    /// respect the maximum record size; otherwise nothing is written and a typed error returned.
    pub fn append(&self, records: &[Record]) -> Result<u64> {
        let mut guard = self.write_state();
        let s = &mut *guard;
        s.check_usable()?;
        let first = s.last_index() + 1;
        let mut prev_term = s.last_term();
        for (expected, r) in (first..).zip(records) {
            if r.index != expected {
                return Err(StorageError::NonContiguous {
                    expected,
                    got: r.index,
                });
            }
            if r.term < prev_term {
                return Err(StorageError::TermRegression {
                    index: r.index,
                    term: r.term,
                    previous: prev_term,
                });
            }
            if r.payload.len() > self.opts.max_record_bytes {
                return Err(StorageError::RecordTooLarge {
                    index: r.index,
                    size: r.payload.len(),
                    max: self.opts.max_record_bytes,
                });
            }
            prev_term = r.term;
        }
        let mut buf = std::mem::take(&mut s.encode_buf);
        let result = self.write_records(s, records, &mut buf);
        buf.clear();
        if buf.capacity() > 8 * 1024 * 1024 {
            buf.shrink_to(1024 * 1024);
        }
        s.encode_buf = buf;
        let last = s.last_index();
        self.written.store(last, Ordering::Release);
        result.map(|()| last)
    }

    fn write_records(&self, s: &mut State, records: &[Record], buf: &mut Vec<u8>) -> Result<()> {
        let mut placed: Vec<(u64, u64, u64, u64)> = Vec::with_capacity(records.len());
        for r in records {
            let size = r.encoded_len() as u64;
            let active = s.active();
            let used = active.len + buf.len() as u64;
            if used > 0 && used + size > self.opts.max_segment_bytes {
                self.flush(s, buf, &mut placed)?;
                self.roll(s)?;
            }
            let offset = s.active().len + buf.len() as u64;
            r.encode_into(buf);
            placed.push((r.index, r.term, offset, size));
        }
        self.flush(s, buf, &mut placed)
    }

    /// Writes `buf` at the end of the active segment; on failure cuts the file back.
    fn flush(
        &self,
        s: &mut State,
        buf: &mut Vec<u8>,
        placed: &mut Vec<(u64, u64, u64, u64)>,
    ) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let active = s.active_mut();
        if let Err(e) = active.file.write_all_at(buf, active.len) {
            let err = StorageError::io(&active.path, e);
            if let Err(e2) = active.file.set_len(active.len) {
                s.poisoned = Some(format!("{err}; rollback failed: {e2}"));
            }
            return Err(err);
        }
        for &(index, term, offset, size) in placed.iter() {
            active.note(index, term, offset, size);
        }
        buf.clear();
        placed.clear();
        Ok(())
    }

    /// Seals the active segment (durable, `.idx` written) and starts a new one.
    fn roll(&self, s: &mut State) -> Result<()> {
        let epoch = self.commit.epoch();
        let active = s.active();
        self.commit.count_sync();
        if let Err(e) = active.file.sync_data() {
            let err = StorageError::io(&active.path, e);
            s.poisoned = Some(err.to_string());
            return Err(err);
        }
        self.commit.mark_durable(active.last_index, epoch);
        active.write_idx(&self.dir)?;
        let next = Segment::create(&self.dir, active.last_index + 1)?;
        fsutil::sync_dir(&self.dir)?;
        tracing::debug!(segment = %next.path.display(), "rolled to a new segment");
        s.segments.push(next);
        Ok(())
    }

    /// Group commit: makes everything written so far durable and returns the durable index.
    /// Concurrent callers share one `fdatasync`; a caller arriving while a sync runs waits for
    /// it, then joins or leads the next one if its data is not yet covered.
    pub fn sync(&self) -> Result<u64> {
        let target = self.written.load(Ordering::Acquire);
        self.commit.sync_to(target, || {
            let s = self.read_state();
            s.check_usable()?;
            let a = s.active();
            Ok(SyncTarget {
                file: a.file.clone(),
                path: a.path.clone(),
                written: a.last_index,
                epoch: self.commit.epoch(),
            })
        })
    }

    /// [`Journal::append`] then [`Journal::sync`]: returns the durable index, ≥ the last
    /// appended index unless a concurrent truncation removed it.
    pub fn append_durable(&self, records: &[Record]) -> Result<u64> {
        self.append(records)?;
        self.sync()
    }

    /// Reads records from `from`, at most `max_records` of them and at most `max_bytes` encoded
    /// bytes — but always at least one when `from ≤ last_index` and `max_records > 0`, so a
    /// reader always progresses. Reading at `last_index + 1` returns nothing.
    pub fn read(&self, from: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        let s = self.read_state();
        s.check_usable()?;
        if from == s.last_index() + 1 && from >= s.first_index() {
            return Ok(Vec::new());
        }
        s.check_readable(from)?;
        let mut out: Vec<Record> = Vec::new();
        let mut bytes = 0usize;
        let mut next = from;
        let max_payload = record::SCAN_MAX_PAYLOAD;
        for seg in &s.segments[s.segment_of(from)..] {
            if out.len() >= max_records || seg.is_empty() {
                break;
            }
            let (mut expected, start) = seg.seek_point(next);
            let mut full = false;
            let end = segment::walk(&seg.file, &seg.path, start, seg.len, max_payload, |_, v| {
                if v.index != expected {
                    return Step::Reject("record index out of sequence");
                }
                expected += 1;
                if v.index < next {
                    return Step::Continue;
                }
                let size = v.encoded_len();
                if out.len() >= max_records || (!out.is_empty() && bytes + size > max_bytes) {
                    full = true;
                    return Step::Stop;
                }
                bytes += size;
                out.push(v.to_record());
                next = v.index + 1;
                Step::Continue
            })?;
            if let WalkEnd::Bad { offset, reason, .. } = end {
                return Err(StorageError::CorruptRecord {
                    path: seg.path.clone(),
                    offset,
                    reason: reason.into(),
                });
            }
            if full {
                break;
            }
        }
        Ok(out)
    }

    /// Removes every record with index ≥ `from` (a Raft conflict). Durable on return.
    /// `from` must lie in `first_index()..=last_index() + 1`.
    pub fn truncate_suffix(&self, from: u64) -> Result<()> {
        let mut guard = self.write_state();
        let s = &mut *guard;
        s.check_usable()?;
        if from < s.first_index() {
            return Err(StorageError::Compacted {
                index: from,
                first_index: s.first_index(),
            });
        }
        if from > s.last_index() + 1 {
            return Err(StorageError::OutOfRange {
                index: from,
                last_index: s.last_index(),
            });
        }
        if from == s.last_index() + 1 {
            return Ok(());
        }
        let mut removed = false;
        while s.segments.len() > 1 && s.active().first_index > from {
            if let Some(seg) = s.segments.pop() {
                remove_segment_files(&self.dir, seg.first_index)?;
                removed = true;
            }
        }
        if removed {
            fsutil::sync_dir(&self.dir)?;
        }
        let max = record::SCAN_MAX_PAYLOAD;
        let dir = self.dir.clone();
        let active = s.active_mut();
        remove_if_exists(&segment::idx_path(&dir, active.first_index))?;
        self.commit.count_sync();
        active.truncate_from(from, max)?;
        let last = s.last_index();
        self.written.store(last, Ordering::Release);
        self.commit.reset(last);
        Ok(())
    }

    /// Compacts the log up to and including `upto`: `first_index()` becomes `upto + 1` and the
    /// term of `upto` stays available through [`Journal::compacted`] / [`Journal::term_at`].
    /// Whole segments below the new first index are deleted. A no-op when `upto` is already
    /// compacted; `upto > last_index()` is an error (see [`Journal::reset_to_snapshot`]).
    pub fn compact_prefix(&self, upto: u64) -> Result<()> {
        self.compact_prefix_detached(upto)?.remove(None)
    }

    /// [`compact_prefix`](Self::compact_prefix) that leaves the files of the segments it drops
    /// for the caller to delete ([`DetachedSegments::remove`], e.g. paced). Open finishes the
    /// deletion after a crash.
    pub fn compact_prefix_detached(&self, upto: u64) -> Result<DetachedSegments> {
        let detached = |firsts| DetachedSegments {
            dir: self.dir.clone(),
            firsts,
        };
        // Appenders are blocked only while the state changes: the marker's fsyncs and the file
        // removals run outside the state lock (`compaction` orders the marker writers).
        let _marker = self.compaction.lock().unwrap_or_else(|p| p.into_inner());
        let term = {
            let s = self.read_state();
            s.check_usable()?;
            if upto <= s.compacted_index {
                return Ok(detached(Vec::new()));
            }
            if upto > s.last_index() {
                return Err(StorageError::OutOfRange {
                    index: upto,
                    last_index: s.last_index(),
                });
            }
            let seg = &s.segments[s.segment_of(upto)];
            seg.term_at(upto).ok_or_else(|| {
                StorageError::corrupt_file(&seg.path, format!("no term for index {upto}"))
            })?
        };
        // Durable before any segment goes: after a crash in between, open treats the records
        // up to the marker as compacted.
        self.write_compaction(upto, term)?;
        let removed = {
            let mut guard = self.write_state();
            let s = &mut *guard;
            if upto > s.last_index() || s.segments[s.segment_of(upto)].term_at(upto) != Some(term) {
                return Err(StorageError::InvalidArgument(format!(
                    "index {upto} was truncated while it was being compacted"
                )));
            }
            s.compacted_index = upto;
            s.compacted_term = term;
            let mut removed = Vec::new();
            while s.oldest_segment_compactable(upto) {
                removed.push(s.segments.remove(0).first_index);
            }
            removed
        };
        Ok(detached(removed))
    }

    /// Whether [`compact_prefix`](Self::compact_prefix)`(upto)` would delete a segment (the
    /// active segment is never deleted). Compacting without deleting only moves the marker.
    pub fn compaction_frees_segment(&self, upto: u64) -> bool {
        self.read_state().oldest_segment_compactable(upto)
    }

    /// Discards the whole log and restarts it after a snapshot: afterwards the log is empty,
    /// `first_index() == index + 1` and `term_at(index) == term`. Durable on return.
    pub fn reset_to_snapshot(&self, index: u64, term: u64) -> Result<()> {
        let _marker = self.compaction.lock().unwrap_or_else(|p| p.into_inner());
        let mut guard = self.write_state();
        let s = &mut *guard;
        s.check_usable()?;
        if index > u64::MAX / 2 {
            return Err(StorageError::InvalidArgument(format!(
                "snapshot index {index} is above the maximum log index {}",
                u64::MAX / 2
            )));
        }
        if index < s.compacted_index {
            return Err(StorageError::Compacted {
                index,
                first_index: s.first_index(),
            });
        }
        for seg in s.segments.drain(..).rev() {
            remove_segment_files(&self.dir, seg.first_index)?;
        }
        fsutil::sync_dir(&self.dir)?;
        self.write_compaction(index, term)?;
        s.compacted_index = index;
        s.compacted_term = term;
        s.segments.push(Segment::create(&self.dir, index + 1)?);
        fsutil::sync_dir(&self.dir)?;
        self.written.store(index, Ordering::Release);
        self.commit.reset(index);
        Ok(())
    }

    fn write_compaction(&self, index: u64, term: u64) -> Result<()> {
        let mut body = [0u8; 16];
        body[..8].copy_from_slice(&index.to_le_bytes());
        body[8..].copy_from_slice(&term.to_le_bytes());
        fsutil::atomic_write(
            &self.dir.join(COMPACTION_FILE),
            &fsutil::frame(COMPACTION_MAGIC, &body),
        )
    }

    /// Makes everything durable and closes the journal; later calls return [`StorageError::Closed`].
    pub fn close(&self) -> Result<()> {
        let synced = self.sync();
        let mut s = self.write_state();
        s.closed = true;
        synced.map(|_| ())
    }
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// Segments dropped from a journal by compaction whose files are still on disk.
#[must_use = "the segment files stay on disk until removed"]
#[derive(Debug)]
pub struct DetachedSegments {
    dir: PathBuf,
    /// First indices, oldest first.
    firsts: Vec<u64>,
}

impl DetachedSegments {
    pub fn is_empty(&self) -> bool {
        self.firsts.is_empty()
    }

    /// Deletes the files, oldest first. With `pace = Some((step, pause))` each segment file is
    /// first shrunk `step` bytes at a time with `pause` between steps: freeing a large file at
    /// once makes the file system stall every other writer's fsync for tens of milliseconds.
    pub fn remove(self, pace: Option<(u64, std::time::Duration)>) -> Result<()> {
        for &first in &self.firsts {
            if let Some((step, pause)) = pace {
                shrink_gradually(&segment::segment_path(&self.dir, first), step.max(1), pause)?;
            }
            remove_segment_files(&self.dir, first)?;
        }
        if !self.firsts.is_empty() {
            fsutil::sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

fn shrink_gradually(path: &Path, step: u64, pause: std::time::Duration) -> Result<()> {
    let file = match fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::io(path, e)),
    };
    let mut len = file
        .metadata()
        .map_err(|e| StorageError::io(path, e))?
        .len();
    while len > step {
        len -= step;
        file.set_len(len).map_err(|e| StorageError::io(path, e))?;
        std::thread::sleep(pause);
    }
    Ok(())
}

/// Deletes a segment and its `.idx` file (the caller fsyncs the directory).
fn remove_segment_files(dir: &Path, first: u64) -> Result<()> {
    remove_if_exists(&segment::segment_path(dir, first))?;
    remove_if_exists(&segment::idx_path(dir, first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(index: u64, term: u64, len: usize) -> Record {
        Record {
            term,
            index,
            partition: (index % 3) as u16,
            batch_size: 1,
            timestamp_ms: index * 10,
            payload: vec![index as u8; len],
        }
    }

    fn small() -> JournalOptions {
        JournalOptions {
            max_segment_bytes: 1024,
            max_record_bytes: 200,
        }
    }

    #[test]
    fn append_read_roll_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), small()).unwrap();
        let recs: Vec<_> = (1..=50).map(|i| rec(i, 1 + i / 20, 40)).collect();
        assert_eq!(j.append_durable(&recs).unwrap(), 50);
        assert!(j.segment_count() > 1);
        assert_eq!(j.read(1, 100, usize::MAX).unwrap(), recs);
        assert_eq!(j.read(17, 5, usize::MAX).unwrap(), recs[16..21].to_vec());
        assert_eq!(j.read(17, 100, 1).unwrap().len(), 1);
        assert_eq!(j.term_at(45).unwrap(), 3);
        j.close().unwrap();
        assert!(matches!(
            j.append(&[rec(51, 3, 1)]),
            Err(StorageError::Closed)
        ));
        let j = Journal::open(dir.path(), small()).unwrap();
        assert_eq!(j.last_index(), 50);
        assert_eq!(j.read(1, 100, usize::MAX).unwrap(), recs);
    }

    #[test]
    fn options_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let bad = JournalOptions {
            max_segment_bytes: 100,
            max_record_bytes: 200,
        };
        assert!(matches!(
            Journal::open(dir.path(), bad),
            Err(StorageError::InvalidArgument(_))
        ));
    }
}
