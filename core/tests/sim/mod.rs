//! Deterministic simulation of a JournalKeeper Raft cluster (test support; see `raft_sim.rs`).

pub mod checks;
pub mod disk;
pub mod observers;
pub mod rng;
pub mod world;

use crate::support::linearizability::{CheckResult, check_kv_history};
use world::{STEP_MS, World};

/// Simulated time with faults.
pub const CHAOS_MS: u64 = 12_000;
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
    w.heal()?;
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

/// Steps `w` (no faults) for up to `ms` of simulated time; whether `done` came true.
fn run_until(w: &mut World, ms: u64, done: &dyn Fn(&World) -> bool) -> Result<bool, String> {
    let end = w.now + ms;
    while w.now < end {
        w.step(false)?;
        if done(w) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Raft's "figure 8" schedule, scripted: an entry of an old term that a new leader has copied to a
/// majority, but not yet covered by an entry of its own term, must not count as committed — or a
/// node holding a later-term entry at that index can still win and overwrite it. Returns whether the
/// schedule was fully reached (the random timing may elect other nodes than the script needs).
pub fn figure8(w: &mut World) -> Result<bool, String> {
    let durable_leader = |w: &World, among: &[usize]| {
        among.iter().copied().find(|&i| {
            w.nodes[i].raft.as_ref().is_some_and(|r| {
                r.role() == journalkeeper::raft::Role::Leader
                    && r.storage().hard_state.term == r.term()
            })
        })
    };
    let all = [0usize, 1, 2, 3, 4];
    // 1. A stable leader L1 with every log caught up.
    if !run_until(w, 5000, &|w| {
        durable_leader(w, &all).is_some_and(|l| {
            let c = w.nodes[l].raft.as_ref().map_or(0, |r| r.status().commit);
            c > 0 && w.nodes.iter().all(|n| n.applied >= c)
        })
    })? {
        return Ok(false);
    }
    let Some(l1) = durable_leader(w, &all) else {
        return Ok(false);
    };
    let f = (l1 + 1) % 5;
    // 2. L1 copies X (index k) only to F.
    for j in all {
        if j != l1 && j != f {
            w.block_pair(l1, j, true);
        }
    }
    let Some(k) = w.propose_at(l1, 1) else {
        return Ok(false);
    };
    if !run_until(w, 1000, &|w| {
        w.nodes[f]
            .raft
            .as_ref()
            .is_some_and(|r| r.status().last_index >= k)
    })? {
        return Ok(false);
    }
    w.crash(l1);
    w.isolate(l1, true);
    w.isolate(f, true);
    // 3. One of the other three (L2) wins a later term, appends locally and is cut off at once.
    let rest: Vec<usize> = all.iter().copied().filter(|&j| j != l1 && j != f).collect();
    if !run_until(w, 5000, &|w| durable_leader(w, &rest).is_some())? {
        return Ok(false);
    }
    let Some(l2) = durable_leader(w, &rest) else {
        return Ok(false);
    };
    w.isolate(l2, true);
    run_until(w, 100, &|_| false)?;
    // 4. L1 restarts; L1 or F (the logs holding X) leads a later term (L3) and copies X around.
    w.restart(l1);
    w.isolate(l1, false);
    w.isolate(f, false);
    w.isolate(l2, true);
    let pair = [l1, f];
    let l2_term = w.nodes[l2].raft.as_ref().map_or(0, |r| r.term());
    if !run_until(w, 5000, &|w| {
        durable_leader(w, &pair).is_some_and(|l| {
            let r = w.nodes[l].raft.as_ref();
            r.is_some_and(|r| r.term() > l2_term && r.status().commit >= k)
        })
    })? {
        return Ok(false);
    }
    // 5. The moment L3 counts X committed, it dies; L2 comes back.
    for j in pair {
        w.crash(j);
        w.isolate(j, true);
    }
    w.isolate(l2, false);
    run_until(w, 3000, &|_| false)?;
    Ok(true)
}

/// A leader cut off from its followers must stop serving lease reads before the others can elect a
/// new leader: write v1, isolate the leader, let a new leader commit v2, then read (lease) at the old
/// leader. Linearizability forbids it to answer v1. Returns whether the schedule was reached.
pub fn stale_lease(w: &mut World) -> Result<bool, String> {
    use journalkeeper::raft::{ReadMode, Role};
    use world::OpKind;
    w.scripted_clients(2);
    let leader = |w: &World| {
        (0..w.nodes.len()).find(|&i| {
            w.nodes[i].raft.as_ref().is_some_and(|r| {
                r.role() == Role::Leader
                    && r.storage().hard_state.term == r.term()
                    && r.term_at(r.status().commit) == Some(r.term())
            })
        })
    };
    if !run_until(w, 5000, &|w| leader(w).is_some())? {
        return Ok(false);
    }
    let Some(old) = leader(w) else {
        return Ok(false);
    };
    let v1 = w.next_op_id();
    if !w.invoke(
        0,
        old,
        v1,
        OpKind::Put { key: 7, value: v1 },
        ReadMode::Lease,
    ) {
        return Ok(false);
    }
    if !run_until(w, 1000, &|w| w.client_idle(0))? {
        return Ok(false);
    }
    // Keep the old leader's lease fresh right up to the cut.
    let r0 = w.next_op_id();
    w.invoke(1, old, r0, OpKind::Get { key: 7 }, ReadMode::ReadIndex);
    run_until(w, 200, &|w| w.client_idle(1))?;
    w.isolate(old, true);
    let still_leads = |w: &World| {
        w.nodes[old]
            .raft
            .as_ref()
            .is_some_and(|r| r.role() == Role::Leader)
    };
    let new_leader = move |w: &World| {
        (0..w.nodes.len())
            .filter(|&i| i != old)
            .find(|&i| Some(i) == leader_of(w, i))
    };
    fn leader_of(w: &World, i: usize) -> Option<usize> {
        let r = w.nodes[i].raft.as_ref()?;
        (r.role() == Role::Leader
            && r.storage().hard_state.term == r.term()
            && r.term_at(r.status().commit) == Some(r.term()))
        .then_some(i)
    }
    if !run_until(w, 3000, &|w| new_leader(w).is_some() || !still_leads(w))? || !still_leads(w) {
        return Ok(false);
    }
    let Some(new) = new_leader(w) else {
        return Ok(false);
    };
    let v2 = w.next_op_id();
    if !w.invoke(
        0,
        new,
        v2,
        OpKind::Put { key: 7, value: v2 },
        ReadMode::Lease,
    ) {
        return Ok(false);
    }
    if !run_until(w, 1000, &|w| w.client_idle(0))? || !still_leads(w) {
        return Ok(false);
    }
    w.step(false)?; // strictly after the write returned
    let r1 = w.next_op_id();
    w.invoke(1, old, r1, OpKind::Get { key: 7 }, ReadMode::Lease);
    run_until(w, 500, &|w| w.client_idle(1))?;
    if w.verbose {
        println!("{:?}", w.history());
    }
    match check_kv_history(&w.history(), 1_000_000) {
        CheckResult::Illegal(e) => Err(format!("linearizability (stale lease read): {e}")),
        _ => Ok(true),
    }
}

/// A follower's durability report that arrives after the reported entries were truncated: a
/// leader copies X (index k) only to F and crashes before its own fsync; F's reports are held
/// back, so X is handed out at F but not reported durable when the other two elect a leader whose
/// entry at k replaces X. F's late report for X, delivered while the replacement is not yet
/// durable, must count for nothing; then F must report the replacement durable and converge on the
/// new leader's log. Returns whether the schedule was fully reached.
pub fn late_report(w: &mut World) -> Result<bool, String> {
    use journalkeeper::raft::Role;
    let leader_among = |w: &World, among: &[usize]| {
        among.iter().copied().find(|&i| {
            w.nodes[i].raft.as_ref().is_some_and(|r| {
                r.role() == Role::Leader
                    && r.storage().hard_state.term == r.term()
                    && r.term_at(r.status().commit) == Some(r.term())
            })
        })
    };
    let all = [0usize, 1, 2];
    // 1. A leader L with every log caught up.
    let caught_up = |w: &World| {
        leader_among(w, &all).is_some_and(|l| {
            let c = w.nodes[l].raft.as_ref().map_or(0, |r| r.status().commit);
            w.nodes.iter().all(|n| {
                n.raft
                    .as_ref()
                    .is_some_and(|r| r.status().persisted_index >= c && n.applied >= c)
            })
        })
    };
    if !run_until(w, 5000, &caught_up)? {
        return Ok(false);
    }
    let Some(l) = leader_among(w, &all) else {
        return Ok(false);
    };
    let (f, g) = ((l + 1) % 3, (l + 2) % 3);
    // 2. F's reports are held; L sends X to F only and crashes before its own fsync.
    w.hold_reports(f, true);
    w.block_pair(l, g, true);
    let Some(k) = w.propose_at(l, 1) else {
        return Ok(false);
    };
    let x_term = w.nodes[l].raft.as_ref().map_or(0, |r| r.term());
    w.step(false)?;
    w.crash(l);
    let has_x = |w: &World| {
        w.nodes[f]
            .raft
            .as_ref()
            .is_some_and(|r| r.term_at(k) == Some(x_term))
    };
    if !run_until(w, 100, &has_x)? {
        return Ok(false);
    }
    let f_persisted = w.nodes[f]
        .raft
        .as_ref()
        .map_or(0, |r| r.status().persisted_index);
    if f_persisted >= k {
        return Err(format!(
            "n{} reported X durable while its reports were held",
            f + 1
        ));
    }
    // 3. L restarts without X; L or G leads a later term and replaces X at F.
    w.block_pair(l, g, false);
    w.restart(l);
    let replaced = |w: &World| {
        w.nodes[f]
            .raft
            .as_ref()
            .is_some_and(|r| r.term_at(k).is_some_and(|t| t > x_term))
    };
    if !run_until(w, 5000, &replaced)? {
        return Ok(false);
    }
    // 4. The held reports (X's among them) arrive late, after the truncation, while the
    //    replacement is not durable yet: they must neither count it durable nor bring X back.
    let new_term = w.nodes[f].raft.as_ref().and_then(|r| r.term_at(k));
    w.hold_fsyncs(f, true);
    w.hold_reports(f, false);
    run_until(w, 50, &|_| false)?;
    let Some(fr) = w.nodes[f].raft.as_ref() else {
        return Ok(false);
    };
    if fr.status().persisted_index >= k || fr.term_at(k) != new_term {
        return Err(format!(
            "n{}: a late report for X (index {k}, term {x_term}) counted: persisted {}, term at {k} {:?} (want {new_term:?})",
            f + 1,
            fr.status().persisted_index,
            fr.term_at(k)
        ));
    }
    w.hold_fsyncs(f, false);
    let converged = |w: &World| {
        let Some(ld) = leader_among(w, &all) else {
            return false;
        };
        let lr = w.nodes[ld].raft.as_ref().map(|r| r.status());
        let fr = w.nodes[f].raft.as_ref();
        lr.zip(fr).is_some_and(|(ls, fr)| {
            let fs = fr.status();
            fs.persisted_index >= k
                && fs.persisted_index >= ls.commit
                && fr.term_at(k) == w.nodes[ld].raft.as_ref().and_then(|r| r.term_at(k))
        })
    };
    if !run_until(w, 3000, &converged)? {
        return Err(format!(
            "n{} did not report the entries that replaced X (index {k}) durable within 3s",
            f + 1
        ));
    }
    Ok(true)
}
