//! Deterministic simulation of a JournalKeeper Raft cluster (test support; see `raft_sim.rs`).

pub mod checks;
pub mod rng;
pub mod world;

use crate::support::linearizability::{CheckResult, check_kv_history};
use world::{STEP_MS, World};

/// Simulated time with faults.
pub const CHAOS_MS: u64 = 5_000;
/// After healing, a leader must be elected and a proposal committed within this time.
pub const LIVENESS_MS: u64 = 10_000;

pub struct Outcome {
    pub ops: u64,
    pub committed: u64,
    pub lin_unknown: bool,
}

/// Runs one seed to completion; `Err` carries the violated property.
pub fn run(w: &mut World) -> Result<Outcome, String> {
    for _ in 0..CHAOS_MS / STEP_MS {
        w.step(true)?;
    }
    w.heal();
    let deadline = w.now + LIVENESS_MS;
    loop {
        w.step(false)?;
        w.probe_lost();
        w.propose_probe();
        if matches!(w.liveness_probe, Some((_, _, t)) if t > 0) {
            break;
        }
        if w.now > deadline {
            return Err(format!(
                "liveness: no proposal committed within {LIVENESS_MS}ms after healing (probe {:?})",
                w.liveness_probe
            ));
        }
    }
    let drain_until = w.now + 4_000;
    while !w.clients_idle() && w.now < drain_until {
        w.step(false)?;
    }
    w.steps = 19; // force a deep check on the next step
    w.step(false)?;
    let history = w.history();
    let res = check_kv_history(&history, 2_000_000);
    let stats = w.stats();
    match res {
        CheckResult::Illegal(e) => Err(format!("linearizability: {e}")),
        other => Ok(Outcome {
            ops: stats["ops"],
            committed: stats["committed"],
            lin_unknown: other.is_unknown(),
        }),
    }
}
