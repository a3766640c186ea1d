//! The log as the core sees it: the durable part (read through [`Storage`]) plus the unstable
//! tail (appended but not yet reported durable) and a snapshot received but not yet installed.
//! Tracks the commit, applied and persisted indexes. No I/O: reads go through the trait.

use super::message::{Entry, Index, SnapshotMeta, Term};
use super::storage::Storage;

pub(crate) struct RaftLog<S> {
    pub(crate) store: S,
    /// Entries `offset..`, not yet reported durable.
    unstable: Vec<Entry>,
    offset: Index,
    /// Highest unstable index already handed to the host in a `Ready`.
    sent_upto: Index,
    /// A snapshot received from the leader that the host has not yet reported installed.
    pending_snap: Option<SnapshotMeta>,
    pending_snap_sent: bool,
    pub(crate) commit: Index,
    /// Highest index the host reported applied.
    pub(crate) applied: Index,
    /// Highest committed index handed to the host to apply.
    pub(crate) apply_sent: Index,
    /// Highest index known durable locally and consistent with this log.
    pub(crate) persisted: Index,
}

impl<S: Storage> RaftLog<S> {
    pub(crate) fn new(store: S, applied: Index) -> Self {
        let last = store.last_index();
        let snap = store.snapshot_meta().index;
        let commit = store.hard_state().commit.clamp(snap, last.max(snap));
        let applied = applied.clamp(snap, commit);
        Self {
            store,
            unstable: Vec::new(),
            offset: last + 1,
            sent_upto: last,
            pending_snap: None,
            pending_snap_sent: false,
            commit,
            applied,
            apply_sent: applied,
            persisted: last,
        }
    }

    pub(crate) fn snapshot_index(&self) -> Index {
        match &self.pending_snap {
            Some(s) => s.index,
            None => self.store.first_index() - 1,
        }
    }

    pub(crate) fn first_index(&self) -> Index {
        self.snapshot_index() + 1
    }

    pub(crate) fn last_index(&self) -> Index {
        self.offset + self.unstable.len() as Index - 1
    }

    pub(crate) fn term(&self, i: Index) -> Option<Term> {
        if i >= self.offset {
            return self
                .unstable
                .get((i - self.offset) as usize)
                .map(|e| e.term);
        }
        match &self.pending_snap {
            Some(s) => (i == s.index).then_some(s.term),
            None => self.store.term(i),
        }
    }

    pub(crate) fn last_term(&self) -> Term {
        self.term(self.last_index()).unwrap_or(0)
    }

    pub(crate) fn match_term(&self, i: Index, t: Term) -> bool {
        self.term(i) == Some(t)
    }

    /// Raft's "at least as up to date" comparison.
    pub(crate) fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        let t = self.last_term();
        last_term > t || (last_term == t && last_index >= self.last_index())
    }

    /// Entries `[lo, hi)` up to `max_bytes` (at least one); `None` if `lo` is compacted.
    pub(crate) fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Option<Vec<Entry>> {
        if lo < self.first_index() {
            return None;
        }
        let hi = hi.min(self.last_index() + 1);
        let mut out = Vec::new();
        if lo >= hi {
            return Some(out);
        }
        let mut bytes = 0;
        if lo < self.offset {
            out = self.store.entries(lo, hi.min(self.offset), max_bytes);
            bytes = out.iter().map(Entry::size).sum();
            let want = hi.min(self.offset) - lo;
            if (out.len() as Index) < want {
                return if out.is_empty() { None } else { Some(out) };
            }
        }
        let start = lo.max(self.offset);
        for i in start..hi {
            let e = &self.unstable[(i - self.offset) as usize];
            bytes += e.size();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        Some(out)
    }

    /// Appends `ents` (contiguous), truncating any conflicting suffix. Returns the index of the
    /// first truncated entry, if any. Never truncates committed entries.
    pub(crate) fn append(&mut self, ents: Vec<Entry>) -> Option<Index> {
        let first = ents.first()?.index;
        let mut truncated = None;
        if first <= self.last_index() {
            debug_assert!(
                first > self.commit,
                "truncating committed entry {first} (commit {})",
                self.commit
            );
            if first <= self.commit {
                return None;
            }
            truncated = Some(first);
            if first >= self.offset {
                self.unstable.truncate((first - self.offset) as usize);
            } else {
                self.unstable.clear();
                self.offset = first;
            }
            self.sent_upto = self.sent_upto.min(first - 1);
            self.persisted = self.persisted.min(first - 1);
        }
        debug_assert_eq!(first, self.last_index() + 1);
        self.unstable.extend(ents);
        truncated
    }

    /// First index in `ents` whose term differs from ours (or that we lack), or `None`.
    fn find_conflict(&self, ents: &[Entry]) -> Option<Index> {
        ents.iter()
            .find(|e| !self.match_term(e.index, e.term))
            .map(|e| e.index)
    }

    /// Raft's AppendEntries rule. On success returns (last new index, first truncated index).
    pub(crate) fn maybe_append(
        &mut self,
        prev_index: Index,
        prev_term: Term,
        ents: Vec<Entry>,
    ) -> Option<(Index, Option<Index>)> {
        if !self.match_term(prev_index, prev_term) {
            return None;
        }
        let last_new = prev_index + ents.len() as Index;
        let mut truncated = None;
        if let Some(c) = self.find_conflict(&ents) {
            if c <= self.commit {
                // A leader never conflicts with committed entries; refuse rather than lose them.
                return None;
            }
            let skip = (c - prev_index - 1) as usize;
            truncated = self.append(ents.into_iter().skip(skip).collect());
        }
        Some((last_new, truncated))
    }

    pub(crate) fn commit_to(&mut self, i: Index) -> bool {
        let i = i.min(self.last_index());
        if i > self.commit {
            self.commit = i;
            true
        } else {
            false
        }
    }

    /// The host reports everything up to `(index, term)` durable.
    pub(crate) fn stable_to(&mut self, index: Index, term: Term) {
        if let Some(s) = &self.pending_snap {
            if !self.pending_snap_sent || index < s.index || self.term(index) != Some(term) {
                return;
            }
            self.pending_snap = None;
        }
        if self.term(index) != Some(term) || index > self.sent_upto {
            return;
        }
        if index >= self.offset {
            let n = (index + 1 - self.offset) as usize;
            self.unstable.drain(..n);
            self.offset = index + 1;
        }
        self.persisted = self.persisted.max(index);
    }

    /// Replaces the log with a snapshot received from the leader.
    pub(crate) fn restore(&mut self, meta: SnapshotMeta) {
        self.unstable.clear();
        self.offset = meta.index + 1;
        self.sent_upto = meta.index;
        self.commit = self.commit.max(meta.index);
        self.applied = self.applied.max(meta.index);
        self.apply_sent = self.apply_sent.max(meta.index);
        self.persisted = 0;
        self.pending_snap = Some(meta);
        self.pending_snap_sent = false;
    }

    /// Unsent snapshot (to install) and unstable entries (to persist), marked sent.
    pub(crate) fn take_unsent(&mut self) -> (bool, Vec<Entry>) {
        let snap = self.pending_snap.is_some() && !self.pending_snap_sent;
        self.pending_snap_sent = true;
        let from = (self.sent_upto + 1).max(self.offset);
        let ents = self.unstable[(from - self.offset) as usize..].to_vec();
        self.sent_upto = self.last_index();
        (snap, ents)
    }

    pub(crate) fn has_unsent(&self) -> bool {
        (self.pending_snap.is_some() && !self.pending_snap_sent)
            || self.sent_upto < self.last_index()
    }

    /// Committed entries not yet handed out, up to `max_bytes`; marks them handed out.
    pub(crate) fn take_committed(&mut self, max_bytes: u64) -> Vec<Entry> {
        if self.apply_sent >= self.commit {
            return Vec::new();
        }
        let ents = self
            .entries(self.apply_sent + 1, self.commit + 1, max_bytes)
            .unwrap_or_default();
        if let Some(e) = ents.last() {
            self.apply_sent = e.index;
        }
        ents
    }
}

#[cfg(test)]
mod tests;
