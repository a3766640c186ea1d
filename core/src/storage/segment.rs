//! One segment file of the journal: its name, its in-memory sparse index and term runs, the
//! sequential walk over its records, its persisted sparse-index file (`.idx`, written when the
//! segment is sealed) and the torn-tail rule. It knows nothing about other segments.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{IoContext, Result, StorageError};
use super::fsutil;
use super::record::{self, Decoded, HEADER_LEN, RecordView};

/// Distance in bytes between two sparse-index entries.
pub(crate) const SPARSE_INTERVAL: u64 = 32 * 1024;
/// Read size used when walking a segment.
const WALK_CHUNK: usize = 256 * 1024;
const IDX_MAGIC: &[u8; 4] = b"JKSX";

/// Path of the segment whose first record has index `first`.
pub(crate) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

/// Path of the sealed sparse-index file of segment `first`.
pub(crate) fn idx_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.idx"))
}

/// Parses `<20 digits>.seg` into the first index.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What the walk callback wants next.
pub(crate) enum Step {
    Continue,
    Stop,
    /// The record decoded but is wrong in context (e.g. unexpected index): always corruption.
    Reject(&'static str),
}

/// How a walk ended.
#[derive(Debug)]
pub(crate) enum WalkEnd {
    /// Reached `end`.
    Done,
    /// The callback stopped.
    Stopped,
    /// The bytes at `offset` are not a valid record. `torn_candidate` is false when the record
    /// decoded but was rejected in context, which can never be a torn write.
    Bad {
        offset: u64,
        reason: &'static str,
        torn_candidate: bool,
    },
}

/// Walks records in `file` from byte `start` to `end`, calling `f(offset, record)` for each.
pub(crate) fn walk(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    max_payload: usize,
    mut f: impl FnMut(u64, RecordView<'_>) -> Step,
) -> Result<WalkEnd> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_off = start;
    let mut pos = 0usize;
    loop {
        let off = buf_off + pos as u64;
        if off >= end {
            return Ok(WalkEnd::Done);
        }
        match record::decode(&buf[pos..], max_payload) {
            Decoded::Record(view, n) => {
                match f(off, view) {
                    Step::Continue => {}
                    Step::Stop => return Ok(WalkEnd::Stopped),
                    Step::Reject(reason) => {
                        return Ok(WalkEnd::Bad {
                            offset: off,
                            reason,
                            torn_candidate: false,
                        });
                    }
                }
                pos += n;
            }
            Decoded::Incomplete { needed } => {
                let avail = end - off;
                let want = needed.unwrap_or(HEADER_LEN).max(WALK_CHUNK) as u64;
                let target = want.min(avail) as usize;
                let have = buf.len() - pos;
                if target <= have {
                    return Ok(WalkEnd::Bad {
                        offset: off,
                        reason: "record extends past the end of the segment",
                        torn_candidate: true,
                    });
                }
                buf.drain(..pos);
                buf_off = off;
                pos = 0;
                buf.resize(target, 0);
                file.read_exact_at(&mut buf[have..], buf_off + have as u64)
                    .at(path)?;
            }
            Decoded::Invalid(reason) => {
                return Ok(WalkEnd::Bad {
                    offset: off,
                    reason,
                    torn_candidate: true,
                });
            }
        }
    }
}

/// One open segment file plus what memory keeps about it.
#[derive(Debug)]
pub(crate) struct Segment {
    pub path: PathBuf,
    pub first_index: u64,
    /// `first_index - 1` while empty.
    pub last_index: u64,
    /// Bytes of valid records.
    pub len: u64,
    pub file: Arc<File>,
    /// `(index, offset)` of every record that starts a new `SPARSE_INTERVAL`; the first record
    /// is always present.
    pub sparse: Vec<(u64, u64)>,
    /// `(first index, term)` of each run of equal terms.
    pub terms: Vec<(u64, u64)>,
    /// Offset of the last record (valid only when non-empty).
    pub last_offset: u64,
}

impl Segment {
    /// Creates a new empty segment file (the caller fsyncs the directory).
    pub fn create(dir: &Path, first_index: u64) -> Result<Segment> {
        let path = segment_path(dir, first_index);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .at(&path)?;
        Ok(Segment::empty(path, first_index, file))
    }

    /// Opens an existing segment file without reading it.
    pub fn open(dir: &Path, first_index: u64) -> Result<Segment> {
        let path = segment_path(dir, first_index);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        Ok(Segment::empty(path, first_index, file))
    }

    fn empty(path: PathBuf, first_index: u64, file: File) -> Segment {
        Segment {
            path,
            first_index,
            last_index: first_index - 1,
            len: 0,
            file: Arc::new(file),
            sparse: Vec::new(),
            terms: Vec::new(),
            last_offset: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.last_index < self.first_index
    }

    /// Size of the file on disk.
    pub fn file_len(&self) -> Result<u64> {
        Ok(self.file.metadata().at(&self.path)?.len())
    }

    /// Records that record `index` with `term` was placed at `offset` with `size` bytes.
    pub fn note(&mut self, index: u64, term: u64, offset: u64, size: u64) {
        debug_assert_eq!(index, self.last_index + 1);
        if self
            .sparse
            .last()
            .is_none_or(|&(_, o)| offset - o >= SPARSE_INTERVAL)
        {
            self.sparse.push((index, offset));
        }
        if self.terms.last().is_none_or(|&(_, t)| t != term) {
            self.terms.push((index, term));
        }
        self.last_index = index;
        self.last_offset = offset;
        self.len = offset + size;
    }

    /// Term of the last record, if any.
    pub fn last_term(&self) -> Option<u64> {
        self.terms.last().map(|&(_, t)| t)
    }

    /// Term of `index`, which must lie in this segment.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index < self.first_index || index > self.last_index {
            return None;
        }
        let i = self.terms.partition_point(|&(start, _)| start <= index);
        i.checked_sub(1).map(|i| self.terms[i].1)
    }

    /// The sparse entry at or before `index`.
    pub fn seek_point(&self, index: u64) -> (u64, u64) {
        let i = self.sparse.partition_point(|&(ix, _)| ix <= index);
        match i.checked_sub(1) {
            Some(i) => self.sparse[i],
            None => (self.first_index, 0),
        }
    }

    /// Reads every record of the file into memory state. With `allow_torn_tail`, an invalid
    /// final record is cut off (and logged); otherwise, and for any invalid record followed by a
    /// valid one, the error names the file and offset. `prev_term` is the term before this segment.
    pub fn scan(
        &mut self,
        max_payload: usize,
        allow_torn_tail: bool,
        prev_term: u64,
    ) -> Result<()> {
        let file_len = self.file_len()?;
        self.last_index = self.first_index - 1;
        self.len = 0;
        self.sparse.clear();
        self.terms.clear();
        let file = Arc::clone(&self.file);
        let path = self.path.clone();
        let mut expected = self.first_index;
        let mut last_term = prev_term;
        let end = walk(&file, &path, 0, file_len, max_payload, |off, v| {
            if v.index != expected {
                return Step::Reject("record index out of sequence");
            }
            if v.term < last_term {
                return Step::Reject("record term below the previous record's term");
            }
            self.note(v.index, v.term, off, v.encoded_len() as u64);
            expected += 1;
            last_term = v.term;
            Step::Continue
        })?;
        match end {
            WalkEnd::Done | WalkEnd::Stopped => Ok(()),
            WalkEnd::Bad {
                offset,
                reason,
                torn_candidate,
            } => {
                let corrupt = || StorageError::CorruptRecord {
                    path: path.clone(),
                    offset,
                    reason: reason.to_string(),
                };
                if !torn_candidate || !allow_torn_tail {
                    return Err(corrupt());
                }
                if self.valid_record_after(offset, file_len, expected, max_payload)? {
                    return Err(corrupt());
                }
                tracing::warn!(
                    file = %path.display(), offset, reason, dropped_bytes = file_len - offset,
                    "truncating torn tail of the journal"
                );
                self.file.set_len(offset).at(&path)?;
                self.file.sync_all().at(&path)?;
                Ok(())
            }
        }
    }

    /// Whether any valid record with index ≥ `expected` starts after `bad_offset`: if so, the bad
    /// record is not a torn tail but corruption in the middle.
    fn valid_record_after(
        &self,
        bad_offset: u64,
        file_len: u64,
        expected: u64,
        max_payload: usize,
    ) -> Result<bool> {
        let start = bad_offset + 1;
        if start >= file_len {
            return Ok(false);
        }
        let mut rest = vec![0u8; (file_len - start) as usize];
        self.file.read_exact_at(&mut rest, start).at(&self.path)?;
        let max_records = (rest.len() / HEADER_LEN) as u64 + 1;
        for p in 0..rest.len() {
            let Some(ix) = rest.get(p + 16..p + 24) else {
                break;
            };
            let mut a = [0u8; 8];
            a.copy_from_slice(ix);
            let ix = u64::from_le_bytes(a);
            if ix < expected || ix - expected > max_records {
                continue;
            }
            if let Decoded::Record(v, _) = record::decode(&rest[p..], max_payload)
                && v.index >= expected
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Cuts this segment so that `from` and later records are gone; durable on return.
    pub fn truncate_from(&mut self, from: u64, max_payload: usize) -> Result<()> {
        if from > self.last_index {
            return Ok(());
        }
        let cut = if from <= self.first_index {
            0
        } else {
            let (_, start) = self.seek_point(from);
            let mut found = None;
            let end = walk(
                &self.file,
                &self.path,
                start,
                self.len,
                max_payload,
                |off, v| {
                    if v.index == from {
                        found = Some(off);
                        Step::Stop
                    } else {
                        Step::Continue
                    }
                },
            )?;
            match (found, end) {
                (Some(off), _) => off,
                (None, WalkEnd::Bad { offset, reason, .. }) => {
                    return Err(StorageError::CorruptRecord {
                        path: self.path.clone(),
                        offset,
                        reason: reason.into(),
                    });
                }
                (None, _) => {
                    return Err(StorageError::corrupt_file(
                        &self.path,
                        format!("record {from} not found"),
                    ));
                }
            }
        };
        self.file.set_len(cut).at(&self.path)?;
        self.file.sync_all().at(&self.path)?;
        self.len = cut;
        self.last_index = from - 1;
        self.sparse.retain(|&(ix, _)| ix < from);
        self.terms.retain(|&(ix, _)| ix < from);
        if !self.is_empty() {
            // Find the offset of the new last record.
            let (_, start) = self.seek_point(self.last_index);
            let mut last = start;
            walk(
                &self.file,
                &self.path,
                start,
                self.len,
                max_payload,
                |off, _| {
                    last = off;
                    Step::Continue
                },
            )?;
            self.last_offset = last;
        }
        Ok(())
    }

    /// Writes the sealed-segment index file (sparse index, term runs, length). Not fsynced: it
    /// is validated on load and rebuilt by scanning when missing or stale.
    pub fn write_idx(&self, dir: &Path) -> Result<()> {
        let mut body = Vec::with_capacity(40 + 16 * (self.sparse.len() + self.terms.len()));
        for v in [
            self.first_index,
            self.last_index,
            self.len,
            self.last_offset,
        ] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        for list in [&self.sparse, &self.terms] {
            body.extend_from_slice(&(list.len() as u64).to_le_bytes());
            for &(a, b) in list.iter() {
                body.extend_from_slice(&a.to_le_bytes());
                body.extend_from_slice(&b.to_le_bytes());
            }
        }
        let path = idx_path(dir, self.first_index);
        fs::write(&path, fsutil::frame(IDX_MAGIC, &body)).at(&path)
    }

    /// Loads the sealed-segment index file if present and consistent with the segment file;
    /// returns false (and leaves state untouched) otherwise.
    pub fn load_idx(&mut self, dir: &Path, prev_term: u64) -> Result<bool> {
        let path = idx_path(dir, self.first_index);
        let Some(bytes) = fsutil::read_optional(&path)? else {
            return Ok(false);
        };
        let Ok(body) = fsutil::unframe(&path, IDX_MAGIC, &bytes) else {
            tracing::warn!(file = %path.display(), "ignoring damaged segment index file");
            return Ok(false);
        };
        let file_len = self.file_len()?;
        let mut words = body.chunks_exact(8).map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            u64::from_le_bytes(a)
        });
        let mut next = || words.next();
        let (Some(first), Some(last), Some(len), Some(last_offset)) =
            (next(), next(), next(), next())
        else {
            return Ok(false);
        };
        let read_pairs = |next: &mut dyn FnMut() -> Option<u64>| -> Option<Vec<(u64, u64)>> {
            let n = next()?;
            if n > body.len() as u64 / 16 {
                return None;
            }
            (0..n).map(|_| Some((next()?, next()?))).collect()
        };
        let (Some(sparse), Some(terms)) = (read_pairs(&mut next), read_pairs(&mut next)) else {
            return Ok(false);
        };
        let sorted = |v: &[(u64, u64)]| v.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
        let consistent = first == self.first_index
            && len == file_len
            && last >= first
            && last_offset < len
            && sparse.first() == Some(&(first, 0))
            && sparse.iter().all(|&(ix, off)| ix <= last && off < len)
            && sorted(&sparse)
            && terms
                .first()
                .is_some_and(|&(ix, t)| ix == first && t >= prev_term)
            && terms.iter().all(|&(ix, _)| ix <= last)
            && sorted(&terms);
        if !consistent {
            tracing::warn!(file = %path.display(), "segment index file does not match its segment; rescanning");
            return Ok(false);
        }
        self.last_index = last;
        self.len = len;
        self.last_offset = last_offset;
        self.sparse = sparse;
        self.terms = terms;
        Ok(true)
    }

    /// Approximate heap bytes used by the in-memory index of this segment.
    pub fn index_memory(&self) -> usize {
        16 * (self.sparse.capacity() + self.terms.capacity()) + std::mem::size_of::<Segment>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        let p = segment_path(Path::new("/d"), 42);
        assert_eq!(
            p.file_name().unwrap().to_str().unwrap(),
            "00000000000000000042.seg"
        );
        assert_eq!(parse_segment_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_segment_name("42.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.seg"), None);
        assert_eq!(parse_segment_name("00000000000000000042.idx"), None);
    }
}
