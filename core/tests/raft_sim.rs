//! Deterministic simulation of the Raft core under faults (issue #3).
//!
//! `cargo test -p journalkeeper --test raft_sim` runs `SIM_SEEDS` seeds (default 2000) on two
//! threads; `SIM_SEED=S` replays one seed and prints its full event trace. A failing seed is
//! reported with the violated property and the last events before it.

mod sim;
mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use sim::world::World;

const TRACE_TAIL: usize = 80;

fn run_one(seed: u64, verbose: bool) -> Result<sim::Outcome, String> {
    let mut w = World::new(seed);
    w.verbose = verbose;
    let desc = w.describe();
    let res = catch_unwind(AssertUnwindSafe(|| sim::run(&mut w)));
    let err = match res {
        Ok(Ok(o)) => return Ok(o),
        Ok(Err(e)) => e,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            format!("panic: {msg}")
        }
    };
    let tail: Vec<String> = w
        .trace
        .iter()
        .rev()
        .take(TRACE_TAIL)
        .rev()
        .cloned()
        .collect();
    Err(format!(
        "seed {seed} FAILED at {}ms ({desc}):\n  {err}\nlast {} events:\n{}\nreplay with SIM_SEED={seed}",
        w.now,
        tail.len(),
        tail.join("\n")
    ))
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn raft_simulation_preserves_safety_liveness_and_linearizability() {
    if let Some(seed) = env_u64("SIM_SEED") {
        match run_one(seed, true) {
            Ok(o) => println!("seed {seed} ok: {} ops, {} committed", o.ops, o.committed),
            Err(e) => panic!("{e}"),
        }
        return;
    }
    let seeds = env_u64("SIM_SEEDS").unwrap_or(2000);
    let base = env_u64("SIM_SEED_BASE").unwrap_or(0);
    let start = Instant::now();
    let next = AtomicU64::new(base);
    let failed = AtomicBool::new(false);
    let failure = Mutex::new(None::<String>);
    let (ops, unknown) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= base + seeds || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    match run_one(seed, false) {
                        Ok(o) => {
                            ops.fetch_add(o.ops, Ordering::Relaxed);
                            unknown.fetch_add(o.lin_unknown as u64, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failed.store(true, Ordering::SeqCst);
                            let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
                            if f.is_none() {
                                *f = Some(e);
                            }
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        panic!("{e}");
    }
    println!(
        "{seeds} seeds ok in {:.1}s: {} client ops, {} inconclusive linearizability checks",
        start.elapsed().as_secs_f64(),
        ops.load(Ordering::Relaxed),
        unknown.load(Ordering::Relaxed)
    );
}

#[test]
fn figure8_schedule_never_commits_an_old_term_entry_by_counting() {
    let mut reached = 0;
    for seed in 0..env_u64("SIM_FIG8_SEEDS").unwrap_or(40) {
        let mut w = World::scripted(seed, 5);
        let err = match catch_unwind(AssertUnwindSafe(|| sim::figure8(&mut w))) {
            Ok(Ok(full)) => {
                reached += full as u32;
                continue;
            }
            Ok(Err(e)) => e,
            Err(_) => "panic".to_string(),
        };
        let tail: Vec<String> = w
            .trace
            .iter()
            .rev()
            .take(TRACE_TAIL)
            .rev()
            .cloned()
            .collect();
        panic!(
            "figure-8 seed {seed} FAILED at {}ms:\n  {err}\nlast events:\n{}",
            w.now,
            tail.join("\n")
        );
    }
    println!("figure-8 schedule fully reached in {reached} seeds");
    assert!(reached > 0, "the scripted schedule was never reached");
}

#[test]
fn isolated_leader_never_serves_a_stale_lease_read() {
    let mut reached = 0;
    for seed in 0..env_u64("SIM_LEASE_SEEDS").unwrap_or(200) {
        let mut w = World::scripted(seed, 3);
        let err = match catch_unwind(AssertUnwindSafe(|| sim::stale_lease(&mut w))) {
            Ok(Ok(full)) => {
                reached += full as u32;
                continue;
            }
            Ok(Err(e)) => e,
            Err(_) => "panic".to_string(),
        };
        let tail: Vec<String> = w
            .trace
            .iter()
            .rev()
            .take(TRACE_TAIL)
            .rev()
            .cloned()
            .collect();
        panic!(
            "stale-lease seed {seed} FAILED at {}ms:\n  {err}\nlast events:\n{}",
            w.now,
            tail.join("\n")
        );
    }
    println!("stale-lease schedule fully reached in {reached} seeds");
    assert!(reached > 0, "the scripted schedule was never reached");
}
