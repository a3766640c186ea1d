//! One node's simulated disk, driven like the host's storage writer thread
//! (`core/src/server/storage.rs`): it writes the `Ready`s in order, covers everything queued
//! with one fsync (group commit), then reports each `Ready` durable — but the report reaches
//! the core only later, as the writer's `WriteDone` reaches the driver through a channel. By
//! then the core may have handed out more `Ready`s: new appends, a truncation of the reported
//! entries, a snapshot. Reports keep their order (the writer sends them in order) but are late
//! by a random, per-seed bounded delay, so `on_persisted` arrives out of step with the log.
//!
//! A crash loses every write not yet fsynced, and every report not yet delivered (with the
//! messages that waited for it); fsynced data stays durable.

use std::collections::VecDeque;

use journalkeeper::raft::{Entry, HardState, Index, MemStorage, Message, Snapshot, Term};

use super::rng::Rng;

/// How often a report is held up much longer (when reports are late at all), and by how much.
const STALL_CHANCE: f64 = 0.01;
const STALL_MS: (u64, u64) = (50, 500);

/// A write not yet durable, with the messages that must wait for it.
pub struct Batch {
    pub hs: Option<HardState>,
    pub snap: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub msgs: Vec<Message>,
    pub point: Option<(Index, Term)>,
}

/// A durable `Ready` whose report has not reached the core yet.
pub struct Report {
    at: u64,
    pub point: Option<(Index, Term)>,
    pub msgs: Vec<Message>,
}

pub struct Disk {
    /// Handed to the writer, not yet fsynced (lost on a crash), in `Ready` order.
    queued: VecDeque<Batch>,
    fsync_at: Option<u64>,
    /// Durable, reports in flight to the core, in order.
    reports: VecDeque<Report>,
    /// Upper bound of a report's extra delay after its fsync, in ms (0: reported at once).
    max_report_delay: u64,
    /// Reports are held back (scripted schedules): they pile up, in order, until released.
    held: bool,
    /// Fsyncs are held back (scripted schedules): writes stay queued until released.
    fsync_held: bool,
}

impl Disk {
    pub fn new(max_report_delay: u64) -> Self {
        Self {
            queued: VecDeque::new(),
            fsync_at: None,
            reports: VecDeque::new(),
            max_report_delay,
            held: false,
            fsync_held: false,
        }
    }

    pub fn max_report_delay(&self) -> u64 {
        self.max_report_delay
    }

    /// Hands a `Ready`'s writes to the writer; an fsync completes 0–15 ms after the first
    /// queued write.
    pub fn write(&mut self, b: Batch, now: u64, rng: &mut Rng) {
        self.queued.push_back(b);
        if self.fsync_at.is_none() {
            self.fsync_at = Some(now + rng.range(0, 15));
        }
    }

    /// Completes a due fsync: every queued batch is written to `store` in order (`saw` sees each
    /// entry as it becomes durable) and its report is scheduled, no earlier than the previous
    /// one.
    pub fn sync(
        &mut self,
        now: u64,
        rng: &mut Rng,
        store: &mut MemStorage,
        mut saw: impl FnMut(&Entry) -> Result<(), String>,
    ) -> Result<(), String> {
        if self.fsync_held || self.fsync_at.is_none_or(|t| t > now) {
            return Ok(());
        }
        self.fsync_at = None;
        for b in self.queued.drain(..) {
            for e in &b.entries {
                saw(e)?;
            }
            if let Some(s) = b.snap {
                store.install_snapshot(s);
            }
            store.append(&b.entries);
            if let Some(hs) = b.hs {
                store.hard_state = hs;
            }
            let mut delay = rng.range(0, self.max_report_delay + 1);
            if self.max_report_delay > 0 && rng.chance(STALL_CHANCE) {
                // The driver is busy (a long pass, a slow apply): this report and every later
                // one wait.
                delay += rng.range(STALL_MS.0, STALL_MS.1);
            }
            let after = self.reports.back().map_or(now, |r| r.at);
            let at = (now + delay).max(after);
            self.reports.push_back(Report {
                at,
                point: b.point,
                msgs: b.msgs,
            });
        }
        Ok(())
    }

    /// Holds back (or releases) the reports; fsyncs go on.
    pub fn hold_reports(&mut self, held: bool) {
        self.held = held;
    }

    /// Holds back (or releases) the fsyncs; reports already due still arrive.
    pub fn hold_fsyncs(&mut self, held: bool) {
        self.fsync_held = held;
    }

    /// The reports due by `now`, in order.
    pub fn due_reports(&mut self, now: u64) -> Vec<Report> {
        if self.held {
            return Vec::new();
        }
        let n = self.reports.iter().take_while(|r| r.at <= now).count();
        self.reports.drain(..n).collect()
    }

    /// Crash: drops what was not fsynced and every undelivered report. Returns
    /// `(batches lost, reports lost)`.
    pub fn crash(&mut self) -> (usize, usize) {
        let lost = (self.queued.len(), self.reports.len());
        self.queued.clear();
        self.reports.clear();
        self.fsync_at = None;
        lost
    }
}
