//! The core's read-only view of the durable log ([`Storage`], implemented by the host) and
//! [`MemStorage`], a small in-memory implementation for tests and embedding.
//!
//! The host writes to its storage only what a [`super::Ready`] tells it to, in order; the core
//! never writes. Entries not yet reported durable stay in the core's unstable buffer, so the
//! core reads from storage only below that buffer.

use super::message::{Entry, HardState, Index, Snapshot, SnapshotMeta, Term};

/// Durable state as the host keeps it.
pub trait Storage {
    /// Term, vote and commit index last persisted.
    fn hard_state(&self) -> HardState;
    /// The latest snapshot's metadata. A fresh node reports index 0, term 0 and the bootstrap
    /// membership (empty for a node that will join an existing cluster).
    fn snapshot_meta(&self) -> SnapshotMeta;
    /// First index present in the log (snapshot index + 1).
    fn first_index(&self) -> Index;
    /// Last durable index (the snapshot index when the log is empty).
    fn last_index(&self) -> Index;
    /// Term of `index` for `snapshot index <= index <= last_index`, else `None`.
    fn term(&self, index: Index) -> Option<Term>;
    /// Entries `[lo, hi)`, stopping after `max_bytes` (at least one entry when `lo < hi`).
    /// Returning fewer (e.g. after an I/O error) is allowed; the core retries later.
    fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Vec<Entry>;
    /// A chunk of the latest snapshot's data at `offset`; `(bytes, is_last)`.
    fn snapshot_chunk(&self, offset: u64, max_bytes: usize) -> Option<(Vec<u8>, bool)>;
}

/// An in-memory [`Storage`]: a snapshot (metadata and data), a log after it, and a hard state.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    pub hard_state: HardState,
    pub snapshot: Snapshot,
    /// Entries `snapshot.meta.index + 1 ..`.
    pub log: Vec<Entry>,
}

impl MemStorage {
    /// A fresh node whose bootstrap configuration is `membership`.
    pub fn new(membership: super::Membership) -> Self {
        let mut s = Self::default();
        s.snapshot.meta.membership = membership;
        s
    }

    /// Appends, first truncating every entry at or after `entries[0].index`.
    pub fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        let base = self.snapshot.meta.index;
        if first.index <= base {
            return;
        }
        let keep = ((first.index - base - 1) as usize).min(self.log.len());
        self.log.truncate(keep);
        self.log.extend_from_slice(entries);
    }

    /// Replaces everything with `snap`, keeping entries after it whose term matches.
    pub fn install_snapshot(&mut self, snap: Snapshot) {
        let keep: Vec<Entry> = if self.term(snap.meta.index) == Some(snap.meta.term) {
            self.log
                .iter()
                .filter(|e| e.index > snap.meta.index)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        self.hard_state.commit = self.hard_state.commit.max(snap.meta.index);
        self.snapshot = snap;
        self.log = keep;
    }

    /// Records a snapshot taken locally and drops the log up to it.
    pub fn compact(&mut self, meta: SnapshotMeta, data: Vec<u8>) {
        if meta.index <= self.snapshot.meta.index || meta.index > self.last_index() {
            return;
        }
        let drop = (meta.index - self.snapshot.meta.index) as usize;
        self.log.drain(..drop);
        self.snapshot = Snapshot { meta, data };
    }
}

impl Storage for MemStorage {
    fn hard_state(&self) -> HardState {
        self.hard_state.clone()
    }
    fn snapshot_meta(&self) -> SnapshotMeta {
        self.snapshot.meta.clone()
    }
    fn first_index(&self) -> Index {
        self.snapshot.meta.index + 1
    }
    fn last_index(&self) -> Index {
        self.snapshot.meta.index + self.log.len() as Index
    }
    fn term(&self, index: Index) -> Option<Term> {
        let base = self.snapshot.meta.index;
        if index == base {
            return Some(self.snapshot.meta.term);
        }
        if index < base {
            return None;
        }
        self.log.get((index - base - 1) as usize).map(|e| e.term)
    }
    fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Vec<Entry> {
        let base = self.snapshot.meta.index;
        let mut out = Vec::new();
        if lo <= base {
            return out;
        }
        let mut bytes = 0;
        for i in lo..hi.min(self.last_index() + 1) {
            let e = &self.log[(i - base - 1) as usize];
            bytes += e.size();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        out
    }
    fn snapshot_chunk(&self, offset: u64, max_bytes: usize) -> Option<(Vec<u8>, bool)> {
        let data = &self.snapshot.data;
        let start = usize::try_from(offset).ok()?;
        if start > data.len() {
            return None;
        }
        let end = (start + max_bytes).min(data.len());
        Some((data[start..end].to_vec(), end == data.len()))
    }
}
