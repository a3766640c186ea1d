//! Reads at an index (the seed's two-step read, step 2): the KV exactly as it was at log index
//! `i`, rebuilt on a copy — from the nearest state at or below `i` this node can start from (a
//! retained snapshot, a state rebuilt earlier, or the empty state while the log still starts at
//! 1), with the entries up to `i` replayed through the apply thread's own KV calls
//! (`apply::apply_kv`, `apply_coord`, `roll_back_kv`).
//!
//! The live state machines are only looked at (under their lock, briefly) for their applied
//! index, and answer directly when `i` is that index. Rebuilds run on blocking threads, at most
//! [`MAX_REBUILDS`] at once; the last [`CACHED_STATES`] rebuilt states are kept, because a state
//! at an index never changes and readers come back to it (the pages of a list, many keys at one
//! index). How far back reads reach is set by `snapshot_interval`, `snapshots_retained` and
//! `retain_history` (`server/config.rs`).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

use super::apply::{self, Machines};
use super::command::{self, Command, SnapshotCommand, record_to_entry};
use super::snapshot_data::SnapshotData;
use crate::api::{Error, ErrorKind};
use crate::raft::{EntryKind, Index};
use crate::state::ApplyContext;
use crate::state::coord::Coordination;
use crate::state::kv::{KvLimits, KvQuery, KvQueryResult, KvStore};
use crate::storage::{Journal, SnapshotStore, StorageError};

/// Rebuilds running at once; more wait.
pub(crate) const MAX_REBUILDS: usize = 2;
/// Reads waiting for a rebuild slot before more are refused (`Unavailable`).
const MAX_WAITING: usize = 64;
/// Rebuilt states kept for later reads at the same index.
pub(crate) const CACHED_STATES: usize = 2;
/// Log entries read from the journal per step of a replay.
const REPLAY_BATCH: usize = 1024;
const REPLAY_BATCH_BYTES: usize = 4 << 20;

/// A rebuilt state: the KV and the recipes that write into it.
#[derive(Clone)]
struct KvAt {
    kv: KvStore,
    coord: Coordination,
}

/// Where a rebuild starts.
enum Base {
    Empty,
    Snapshot(Index),
    Cached(Index, Arc<KvAt>),
}

/// A node's reads at an index (one per node, shared by the read tasks).
pub(crate) struct History {
    journal: Arc<Journal>,
    snapshots: Arc<SnapshotStore>,
    limits: KvLimits,
    cache: Mutex<VecDeque<(Index, Arc<KvAt>)>>,
    /// `(running, waiting)` rebuilds.
    slots: Mutex<(usize, usize)>,
    freed: Condvar,
}

impl History {
    pub fn new(journal: Arc<Journal>, snapshots: Arc<SnapshotStore>, limits: KvLimits) -> Self {
        History {
            journal,
            snapshots,
            limits,
            cache: Mutex::new(VecDeque::new()),
            slots: Mutex::new((0, 0)),
            freed: Condvar::new(),
        }
    }

    /// Answers `query` against the KV as it was at `index`; blocks (run it on a blocking
    /// thread). Returns the node's applied index with the result.
    pub fn read(
        &self,
        machines: &Mutex<Machines>,
        index: Index,
        query: &KvQuery,
    ) -> (Result<KvQueryResult, Error>, Index) {
        let m = machines.lock().unwrap_or_else(|p| p.into_inner());
        let applied = m.applied;
        if index > applied {
            let e = Error::new(
                ErrorKind::IndexOverflow,
                format!("index {index} is not applied on this node yet (applied {applied})"),
            );
            return (Err(e), applied);
        }
        if index == applied {
            return (m.kv.read(query).map_err(apply::state_error), applied);
        }
        drop(m);
        let result = self
            .state_at(index)
            .and_then(|s| s.kv.read(query).map_err(apply::state_error));
        (result, applied)
    }

    /// The state at `index` (≤ applied), from the cache or rebuilt.
    fn state_at(&self, index: Index) -> Result<Arc<KvAt>, Error> {
        if let Some(s) = self.cached(index) {
            return Ok(s);
        }
        let _slot = self.slot()?;
        // Another reader may have rebuilt it while this one waited.
        if let Some(s) = self.cached(index) {
            return Ok(s);
        }
        let state = Arc::new(self.rebuild(index)?);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.push_back((index, state.clone()));
        while cache.len() > CACHED_STATES {
            cache.pop_front();
        }
        Ok(state)
    }

    fn cached(&self, index: Index) -> Option<Arc<KvAt>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, s)| s.clone())
    }

    /// Waits for a rebuild slot; `Unavailable` when too many reads already wait.
    fn slot(&self) -> Result<Slot<'_>, Error> {
        let mut s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 >= MAX_REBUILDS && s.1 >= MAX_WAITING {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("{MAX_WAITING} reads at an index are already waiting on this node"),
            ));
        }
        s.1 += 1;
        while s.0 >= MAX_REBUILDS {
            s = self.freed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.1 -= 1;
        s.0 += 1;
        Ok(Slot(self))
    }

    /// The nearest state at or below `index` a replay can start from: the entries after it
    /// must still be in the log (or it must be `index` itself).
    fn base(&self, index: Index) -> Result<Base, Error> {
        let first = self.journal.first_index();
        let reachable = |b: Index| b == index || first <= b + 1;
        let snapshots = self
            .snapshots
            .list()
            .map_err(super::driver::storage_error)?;
        let snapshot = snapshots
            .iter()
            .rev()
            .copied()
            .find(|&s| s <= index && reachable(s));
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .iter()
                .filter(|(i, _)| *i <= index && reachable(*i))
                .max_by_key(|(i, _)| *i)
                .map(|(i, s)| (*i, s.clone()))
        };
        Ok(match (snapshot, cached) {
            (_, Some((c, s))) if snapshot.is_none_or(|s| c >= s) => Base::Cached(c, s),
            (Some(s), _) => Base::Snapshot(s),
            (None, _) if first <= 1 => Base::Empty,
            (None, _) => {
                return Err(Error::new(
                    ErrorKind::IndexUnderflow,
                    format!(
                        "index {index} is before the oldest state this node can rebuild \
                         (snapshots {snapshots:?}, log from {first}; `retain_history` keeps \
                         the log back to the oldest snapshot)"
                    ),
                ));
            }
        })
    }

    fn rebuild(&self, index: Index) -> Result<KvAt, Error> {
        let (mut state, from) = match self.base(index)? {
            Base::Empty => (
                KvAt {
                    kv: KvStore::new(self.limits),
                    coord: Coordination::default(),
                },
                0,
            ),
            Base::Cached(at, s) => ((*s).clone(), at),
            Base::Snapshot(at) => {
                let (state, _) = SnapshotData::open(&self.snapshots, at)
                    .map_err(|e| Error::new(ErrorKind::IndexUnderflow, e))?;
                let mut kv = KvStore::new(self.limits);
                kv.install(state.kv);
                (
                    KvAt {
                        kv,
                        coord: state.data.coord,
                    },
                    at,
                )
            }
        };
        self.replay(&mut state, from, index)?;
        Ok(state)
    }

    /// Applies the entries `(from, to]` to `state`.
    fn replay(&self, state: &mut KvAt, from: Index, to: Index) -> Result<(), Error> {
        let mut next = from + 1;
        while next <= to {
            let want = usize::try_from(to - next + 1)
                .unwrap_or(usize::MAX)
                .min(REPLAY_BATCH);
            let records = self
                .journal
                .read(next, want, REPLAY_BATCH_BYTES)
                .map_err(|e| gone(next, e))?;
            if records.is_empty() {
                return Err(Error::new(
                    ErrorKind::IndexUnderflow,
                    format!("log entry {next} is no longer on this node"),
                ));
            }
            for r in records {
                let e = record_to_entry(r).map_err(|e| Error::new(ErrorKind::Corruption, e))?;
                if e.index != next {
                    return Err(Error::new(
                        ErrorKind::Corruption,
                        format!("log entry {} read where {next} was expected", e.index),
                    ));
                }
                if let EntryKind::Normal(data) = &e.kind {
                    let ctx = ApplyContext {
                        index: e.index,
                        term: e.term,
                        timestamp_ms: 0,
                    };
                    self.apply(state, &ctx, data)?;
                }
                next += 1;
            }
        }
        Ok(())
    }

    /// The KV's share of one command, as the apply thread applies it.
    fn apply(&self, state: &mut KvAt, ctx: &ApplyContext, data: &[u8]) -> Result<(), Error> {
        match command::decode(data) {
            Ok(Command::Kv(req)) => {
                let _ = apply::apply_kv(&mut state.kv, &mut state.coord, ctx, &req);
            }
            Ok(Command::Coord(req)) => {
                let _ = apply::apply_coord(&mut state.kv, &mut state.coord, ctx, &req);
            }
            Ok(Command::Snapshot(SnapshotCommand::Recover { index })) => {
                apply::roll_back_kv(
                    &mut state.kv,
                    &mut state.coord,
                    &self.snapshots,
                    ctx.index,
                    index,
                )
                .map_err(|e| Error::new(ErrorKind::IndexUnderflow, e))?;
            }
            // Every other command leaves the KV alone; an undecodable one is skipped, as the
            // apply thread skips it.
            _ => {}
        }
        Ok(())
    }
}

/// A rebuild slot, given back on drop.
struct Slot<'a>(&'a History);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut s = self.0.slots.lock().unwrap_or_else(|p| p.into_inner());
        s.0 -= 1;
        self.0.freed.notify_one();
    }
}

fn gone(index: Index, e: StorageError) -> Error {
    match e {
        StorageError::Compacted { .. } => Error::new(
            ErrorKind::IndexUnderflow,
            format!("log entry {index} was compacted away on this node"),
        ),
        e => super::driver::storage_error(e),
    }
}
