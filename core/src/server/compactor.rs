//! The compactor thread: the slow file work of partition-index checkpoints and journal
//! compaction, off the apply thread.
//!
//! Why: a partition-index checkpoint is an fsync per partition file plus an atomic state-file
//! write, and compacting the journal unlinks whole segments (tens of milliseconds for a 64 MiB
//! file on a busy disk). On the apply thread, under the state-machine lock, each of them stalled
//! every acknowledgement and every read behind it. The apply thread now only captures a
//! checkpoint ([`PendingCheckpoint`]) under its lock and hands it here; segment files are
//! deleted at a pace ([`DELETE_PACE`]).
//!
//! Invariants: jobs run strictly in order (so a later checkpoint never precedes an earlier
//! one); the journal is compacted only after the checkpoint that covers the compaction is
//! durable, and not at all when writing it failed.

use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::raft::Index;
use crate::storage::{Journal, PendingCheckpoint};

/// Compacted segment files are shrunk 8 MiB at a time, 10 ms apart, before they are unlinked
/// (up to ~800 MB/s of deletion): unlinking a 64 MiB segment at once stalled the other writers'
/// fsyncs on the same disk for 30–50 ms and was the largest source of tail latency.
const DELETE_PACE: (u64, Duration) = (8 << 20, Duration::from_millis(10));

enum Job {
    Checkpoint(PendingCheckpoint),
    Compact {
        checkpoint: PendingCheckpoint,
        upto: Index,
    },
    Barrier(mpsc::Sender<()>),
}

pub(crate) struct Compactor {
    tx: mpsc::Sender<Job>,
    thread: JoinHandle<()>,
}

impl Compactor {
    pub fn spawn(node: u64, journal: Arc<Journal>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("jk-compact-{node}"))
            .spawn(move || run(node, &journal, rx))?;
        Ok(Compactor { tx, thread })
    }

    /// Makes `checkpoint` durable in the background.
    pub fn checkpoint(&self, checkpoint: PendingCheckpoint) {
        let _ = self.tx.send(Job::Checkpoint(checkpoint));
    }

    /// Makes `checkpoint` durable, then compacts the journal up to `upto`.
    pub fn compact(&self, checkpoint: PendingCheckpoint, upto: Index) {
        let _ = self.tx.send(Job::Compact { checkpoint, upto });
    }

    /// Returns once every job sent before has finished (e.g. before the index is reset).
    pub fn wait_idle(&self) {
        let (done_tx, done_rx) = mpsc::channel();
        if self.tx.send(Job::Barrier(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    /// Finishes the queued jobs and stops the thread.
    pub fn stop(self) {
        drop(self.tx);
        if self.thread.join().is_err() {
            tracing::warn!("compactor thread panicked");
        }
    }
}

fn run(node: u64, journal: &Journal, jobs: mpsc::Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Checkpoint(cp) => {
                if let Err(e) = cp.write() {
                    tracing::warn!(node, reason = %e, "partition index checkpoint failed");
                }
            }
            Job::Compact { checkpoint, upto } => {
                if let Err(e) = checkpoint.write() {
                    tracing::warn!(node, upto, reason = %e, "partition index checkpoint failed; the journal is not compacted");
                    continue;
                }
                let r = journal
                    .compact_prefix_detached(upto)
                    .and_then(|files| files.remove(Some(DELETE_PACE)));
                match r {
                    Ok(()) => tracing::debug!(node, upto, "compacted the log"),
                    Err(e) => tracing::warn!(node, upto, reason = %e, "log compaction failed"),
                }
            }
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}
