//! Group commit: coordinates `fdatasync` calls so that one sync covers every write that completed
//! before it started, and concurrent callers share syncs instead of queueing their own.
//!
//! Protocol: a caller that needs index `target` durable takes the coordinator lock. If `durable`
//! already covers it, it returns. If a sync is running, it waits for it and re-checks (the
//! running sync may not cover it, then it leads or joins the next one). Otherwise it becomes the
//! leader: it marks a sync in progress, releases the lock, captures (under the journal's own
//! lock) the active file and the last written index, runs `fdatasync` holding no lock, then
//! publishes the new durable index and wakes every waiter. A truncation bumps `epoch`, so a sync
//! that started before it cannot publish an index that the truncation removed.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::error::{Result, StorageError};

/// What a sync leader must flush: the file, its path (for errors), the last index written to it
/// (all earlier segments are already durable) and the epoch observed with that index.
pub(crate) struct SyncTarget {
    pub file: Arc<File>,
    pub path: PathBuf,
    pub written: u64,
    pub epoch: u64,
}

#[derive(Debug)]
struct State {
    durable: u64,
    in_progress: bool,
    epoch: u64,
    failed: Option<String>,
}

/// The coordinator. See the module documentation.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
    syncs: AtomicU64,
}

impl GroupCommit {
    pub fn new(durable: u64) -> Self {
        GroupCommit {
            state: Mutex::new(State {
                durable,
                in_progress: false,
                epoch: 0,
                failed: None,
            }),
            done: Condvar::new(),
            syncs: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave State inconsistent (plain field writes).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Highest index known durable.
    pub fn durable(&self) -> u64 {
        self.lock().durable
    }

    /// Current truncation epoch.
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Number of `fdatasync` calls performed by the journal.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Counts a sync performed outside [`GroupCommit::sync_to`] (segment roll, truncation).
    pub fn count_sync(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }

    /// Publishes `index` as durable if no truncation happened since `epoch`.
    pub fn mark_durable(&self, index: u64, epoch: u64) {
        let mut s = self.lock();
        if s.epoch == epoch && index > s.durable {
            s.durable = index;
            self.done.notify_all();
        }
    }

    /// After a truncation (caller holds the journal's write lock): a new epoch, `durable` set.
    pub fn reset(&self, durable: u64) {
        let mut s = self.lock();
        s.epoch += 1;
        s.durable = durable;
        self.done.notify_all();
    }

    /// Blocks until `target` is durable (or a truncation intervenes) and returns the durable
    /// index. `capture` is called by the sync leader to learn what to flush.
    pub fn sync_to(&self, target: u64, capture: impl Fn() -> Result<SyncTarget>) -> Result<u64> {
        let mut s = self.lock();
        let start_epoch = s.epoch;
        loop {
            if let Some(why) = &s.failed {
                return Err(StorageError::Poisoned(why.clone()));
            }
            if s.durable >= target || s.epoch != start_epoch {
                return Ok(s.durable);
            }
            if s.in_progress {
                s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            s.in_progress = true;
            drop(s);
            let outcome = capture().and_then(|t| {
                self.syncs.fetch_add(1, Ordering::Relaxed);
                t.file
                    .sync_data()
                    .map_err(|e| StorageError::io(&t.path, e))
                    .map(|()| t)
            });
            s = self.lock();
            s.in_progress = false;
            match outcome {
                Ok(t) => {
                    if t.epoch == s.epoch && t.written > s.durable {
                        s.durable = t.written;
                    }
                }
                Err(e) => {
                    if matches!(e, StorageError::Io { .. }) {
                        // After a failed fsync the page cache state is unknown: never retry.
                        s.failed = Some(e.to_string());
                    }
                    self.done.notify_all();
                    return Err(e);
                }
            }
            self.done.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(file: &Arc<File>, written: u64, epoch: u64) -> Result<SyncTarget> {
        Ok(SyncTarget {
            file: Arc::clone(file),
            path: PathBuf::from("t"),
            written,
            epoch,
        })
    }

    #[test]
    fn a_sync_publishes_what_it_captured_and_callers_already_covered_do_not_sync() {
        let f = Arc::new(tempfile::tempfile().unwrap());
        let gc = GroupCommit::new(0);
        assert_eq!(gc.sync_to(5, || target(&f, 7, 0)).unwrap(), 7);
        assert_eq!(
            gc.sync_to(6, || panic!("covered: no sync needed")).unwrap(),
            7
        );
        assert_eq!(gc.syncs(), 1);
    }

    #[test]
    fn a_sync_started_before_a_truncation_does_not_publish_removed_indices() {
        let f = Arc::new(tempfile::tempfile().unwrap());
        let gc = GroupCommit::new(0);
        // The leader captured index 10 in epoch 0, then a truncation to 4 happened.
        let got = gc.sync_to(10, || {
            gc.reset(4);
            target(&f, 10, 0)
        });
        assert_eq!(got.unwrap(), 4);
        assert_eq!(gc.durable(), 4);
    }

    #[test]
    fn a_failed_sync_poisons_later_syncs() {
        let gc = GroupCommit::new(0);
        let err = gc.sync_to(1, || {
            Err(StorageError::io(
                std::path::Path::new("x"),
                std::io::Error::other("EIO"),
            ))
        });
        assert!(err.is_err());
        assert!(matches!(
            gc.sync_to(1, || panic!("must not sync")),
            Err(StorageError::Poisoned(_))
        ));
    }
}
