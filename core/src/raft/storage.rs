//! The core's read-only view of the durable log ([`Storage`], implemented by the host) and
//! [`MemStorage`], a small in-memory implementation for tests and embedding.
//!
//! The host writes to its storage only what a [`super::Ready`] tells it to, in order; the core
//! never writes. Entries not yet reported durable stay in the core's unstable buffer, so the
//! core reads from storage only below that buffer.

use super::message::{Entry, HardState, Index, Snapshot, SnapshotChunk, SnapshotMeta, Term};

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
    /// The data of the snapshot being received, assembled from its chunks.
    pub receiving: Vec<u8>,
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

    /// Adds a [`super::Ready::snapshot_chunks`] chunk to the snapshot being received.
    pub fn receive_chunk(&mut self, chunk: &SnapshotChunk) {
        chunk.assemble_into(&mut self.receiving);
    }

    /// Installs the snapshot received for `meta` ([`super::Ready::snapshot`]).
    pub fn install_received(&mut self, meta: SnapshotMeta) {
        let data = std::mem::take(&mut self.receiving);
        self.install_snapshot(Snapshot { meta, data });
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

#[cfg(test)]
#[allow(clippy::type_complexity)] // the tables spell out their row types inline
mod tests {
    use super::*;
    use crate::raft::Membership;
    use crate::raft::message::EntryKind;

    fn e(index: Index, term: Term) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Noop,
        }
    }

    fn meta(index: Index, term: Term) -> SnapshotMeta {
        SnapshotMeta {
            index,
            term,
            membership: Membership::new([1]),
        }
    }

    /// `(index, term)` of every entry in the log, and the bounds.
    fn shape(s: &MemStorage) -> (Index, Index, Vec<(Index, Term)>) {
        let log = s.log.iter().map(|e| (e.index, e.term)).collect();
        (s.first_index(), s.last_index(), log)
    }

    /// A store with a snapshot at `base` (term 1) and entries `base + 1 ..` of the given terms.
    fn store(base: Index, terms: &[Term]) -> MemStorage {
        let mut s = MemStorage::new(Membership::new([1]));
        s.snapshot = Snapshot {
            meta: meta(base, 1),
            data: vec![1, 2, 3, 4, 5],
        };
        let ents: Vec<Entry> = terms
            .iter()
            .enumerate()
            .map(|(k, t)| e(base + 1 + k as Index, *t))
            .collect();
        s.append(&ents);
        s
    }

    #[test]
    fn append_table() {
        // (name, base, terms, append (index, term)s, expected log)
        let rows: Vec<(&str, Index, &[Term], Vec<Entry>, Vec<(Index, Term)>)> = vec![
            (
                "extends",
                0,
                &[1, 1],
                vec![e(3, 2)],
                vec![(1, 1), (2, 1), (3, 2)],
            ),
            ("empty", 0, &[1, 1], vec![], vec![(1, 1), (2, 1)]),
            (
                "truncates from the first",
                0,
                &[1, 1, 1],
                vec![e(2, 2)],
                vec![(1, 1), (2, 2)],
            ),
            (
                "replaces the first",
                0,
                &[1, 1],
                vec![e(1, 3)],
                vec![(1, 3)],
            ),
            (
                "after a snapshot",
                5,
                &[1, 1],
                vec![e(7, 2)],
                vec![(6, 1), (7, 2)],
            ),
            (
                "at the snapshot index: ignored",
                5,
                &[1],
                vec![e(5, 2)],
                vec![(6, 1)],
            ),
            (
                "below the snapshot: ignored",
                5,
                &[1],
                vec![e(3, 2)],
                vec![(6, 1)],
            ),
        ];
        for (name, base, terms, ents, want) in rows {
            let mut s = store(base, terms);
            s.append(&ents);
            assert_eq!(
                s.log.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn terms_and_bounds() {
        let s = store(5, &[1, 2]);
        assert_eq!((s.first_index(), s.last_index()), (6, 7));
        assert_eq!(s.term(4), None);
        assert_eq!(s.term(5), Some(1), "the snapshot's term");
        assert_eq!(s.term(6), Some(1));
        assert_eq!(s.term(7), Some(2));
        assert_eq!(s.term(8), None);
        let empty = store(0, &[]);
        assert_eq!((empty.first_index(), empty.last_index()), (1, 0));
        assert_eq!(empty.term(0), Some(1));
        assert_eq!(empty.term(1), None);
    }

    #[test]
    fn getters_return_the_stored_state() {
        let mut s = store(3, &[2]);
        s.hard_state = HardState {
            term: 4,
            vote: Some(2),
            commit: 3,
        };
        assert_eq!(Storage::hard_state(&s), s.hard_state);
        assert_eq!(s.snapshot_meta(), meta(3, 1));
    }

    #[test]
    fn entries_table() {
        let s = store(2, &[1, 1, 2, 2]); // 3..=6
        let one = e(3, 1).size();
        let idx = |v: Vec<Entry>| v.iter().map(|e| e.index).collect::<Vec<_>>();
        assert_eq!(idx(s.entries(3, 7, u64::MAX)), vec![3, 4, 5, 6]);
        assert_eq!(idx(s.entries(4, 6, u64::MAX)), vec![4, 5]);
        assert_eq!(
            idx(s.entries(5, 99, u64::MAX)),
            vec![5, 6],
            "clipped at the last index"
        );
        assert_eq!(idx(s.entries(6, 6, u64::MAX)), Vec::<Index>::new());
        assert_eq!(
            idx(s.entries(2, 7, u64::MAX)),
            Vec::<Index>::new(),
            "compacted"
        );
        assert_eq!(
            idx(s.entries(1, 7, u64::MAX)),
            Vec::<Index>::new(),
            "compacted"
        );
        assert_eq!(idx(s.entries(3, 7, 0)), vec![3], "at least one");
        assert_eq!(idx(s.entries(3, 7, 2 * one)), vec![3, 4]);
        assert_eq!(idx(s.entries(3, 7, 2 * one + 1)), vec![3, 4]);
        assert_eq!(idx(s.entries(3, 7, 2 * one - 1)), vec![3]);
        assert_eq!(s.entries(5, 6, u64::MAX), vec![e(5, 2)]);
    }

    #[test]
    fn install_snapshot_keeps_a_matching_tail_only() {
        // (name, snapshot (index, term), log after, commit after)
        let rows: Vec<(&str, (Index, Term), (Index, Index, Vec<(Index, Term)>))> = vec![
            (
                "matching: entries after it stay",
                (4, 1),
                (5, vec![(5, 2), (6, 2)]),
            ),
            ("matching at the last entry", (6, 2), (7, vec![])),
            ("other term: the log goes", (5, 9), (6, vec![])),
            ("beyond the log: the log goes", (9, 3), (10, vec![])),
        ]
        .into_iter()
        .map(|(n, m, (f, l))| {
            let last = l.last().map_or(f - 1, |x: &(Index, Term)| x.0);
            (n, m, (f, last, l))
        })
        .collect();
        for (name, (i, t), want) in rows {
            let mut s = store(2, &[1, 1, 2, 2]); // 3..=6
            s.hard_state.commit = 3;
            s.install_snapshot(Snapshot {
                meta: meta(i, t),
                data: vec![7],
            });
            assert_eq!(shape(&s), want, "{name}");
            assert_eq!(s.snapshot.meta, meta(i, t), "{name}");
            assert_eq!(s.snapshot.data, vec![7], "{name}");
            assert_eq!(
                s.hard_state.commit, i,
                "{name}: commit raised to the snapshot"
            );
        }
        let mut s = store(2, &[1, 1]);
        s.hard_state.commit = 4;
        s.install_snapshot(Snapshot {
            meta: meta(3, 1),
            data: Vec::new(),
        });
        assert_eq!(s.hard_state.commit, 4, "commit never lowered");
    }

    #[test]
    fn compact_table() {
        // (name, compact at, log after)
        let rows: Vec<(&str, Index, (Index, Index, Vec<(Index, Term)>))> = vec![
            ("middle", 4, (5, 6, vec![(5, 2), (6, 2)])),
            ("first entry", 3, (4, 6, vec![(4, 1), (5, 2), (6, 2)])),
            ("last entry", 6, (7, 6, vec![])),
            (
                "at the snapshot: ignored",
                2,
                (3, 6, vec![(3, 1), (4, 1), (5, 2), (6, 2)]),
            ),
            (
                "below the snapshot: ignored",
                1,
                (3, 6, vec![(3, 1), (4, 1), (5, 2), (6, 2)]),
            ),
            (
                "beyond the log: ignored",
                7,
                (3, 6, vec![(3, 1), (4, 1), (5, 2), (6, 2)]),
            ),
        ];
        for (name, at, want) in rows {
            let mut s = store(2, &[1, 1, 2, 2]); // 3..=6
            let t = s.term(at).unwrap_or(1);
            s.compact(meta(at, t), vec![9]);
            assert_eq!(shape(&s), want, "{name}");
            let moved = !name.ends_with("ignored");
            assert_eq!(s.snapshot.meta.index, if moved { at } else { 2 }, "{name}");
            assert_eq!(
                s.snapshot.data,
                if moved { vec![9] } else { vec![1, 2, 3, 4, 5] }
            );
        }
    }

    #[test]
    fn snapshot_chunk_table() {
        let s = store(0, &[]); // data [1, 2, 3, 4, 5]
        assert_eq!(s.snapshot_chunk(0, 2), Some((vec![1, 2], false)));
        assert_eq!(s.snapshot_chunk(2, 2), Some((vec![3, 4], false)));
        assert_eq!(s.snapshot_chunk(3, 2), Some((vec![4, 5], true)));
        assert_eq!(s.snapshot_chunk(4, 2), Some((vec![5], true)));
        assert_eq!(s.snapshot_chunk(0, 9), Some((vec![1, 2, 3, 4, 5], true)));
        assert_eq!(s.snapshot_chunk(5, 2), Some((vec![], true)), "at the end");
        assert_eq!(s.snapshot_chunk(6, 2), None, "beyond the end");
        assert_eq!(s.snapshot_chunk(u64::MAX, 2), None);
    }
}
