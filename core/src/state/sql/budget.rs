//! The work one execute or query may do, counted in SQLite virtual-machine instructions.
//!
//! A runaway statement (an endless recursive CTE, a cross join of large tables) would otherwise
//! hold the apply thread forever and stall every replica. SQLite calls a progress handler every
//! [`PROGRESS_PERIOD`] instructions; the handler interrupts the statement once the budget is
//! spent. The count depends only on the statements and the database, so every replica refuses
//! the same command at the same point — a deterministic result, like any other refusal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most SQLite virtual-machine instructions one execute (all its statements) or one query runs.
pub const MAX_VM_INSTRUCTIONS: u64 = 1 << 28;
/// How often, in instructions, SQLite calls the progress handler.
const PROGRESS_PERIOD: u64 = 1000;

/// The ticks (of [`PROGRESS_PERIOD`] instructions) left, shared with the progress handler.
#[derive(Debug, Clone)]
pub(super) struct Budget {
    ticks_left: Arc<AtomicU64>,
    limit: u64,
}

impl Budget {
    pub fn new(limit: u64) -> Self {
        Budget {
            ticks_left: Arc::new(AtomicU64::new(limit / PROGRESS_PERIOD)),
            limit,
        }
    }

    /// Starts a new execute or query with the whole budget.
    pub fn refill(&self) {
        self.ticks_left
            .store(self.limit / PROGRESS_PERIOD, Ordering::Relaxed);
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn exhausted(&self) -> bool {
        self.ticks_left.load(Ordering::Relaxed) == 0
    }

    /// Why a statement stopped when the budget ran out.
    pub fn refusal(&self) -> String {
        format!(
            "the statement ran past the budget of {} SQLite instructions (MAX_VM_INSTRUCTIONS); \
             split the work into smaller executes or bound it with LIMIT",
            self.limit
        )
    }

    /// Runs the machine's own statements (savepoints, checks) outside the budget, so a spent
    /// budget never interrupts the rollback that follows it.
    pub fn outside<T>(&self, f: impl FnOnce() -> T) -> T {
        let saved = self.ticks_left.swap(u64::MAX, Ordering::Relaxed);
        let r = f();
        self.ticks_left.store(saved, Ordering::Relaxed);
        r
    }

    /// Installs the progress handler on `conn`.
    pub fn install(&self, conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
        let left = self.ticks_left.clone();
        conn.progress_handler(
            PROGRESS_PERIOD as std::os::raw::c_int,
            Some(move || {
                left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_err()
            }),
        )
    }
}
