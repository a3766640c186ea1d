//! The leader's lessor: when each lease runs out, by the leader's own monotonic clock.
//!
//! Owns: a deadline per lease (`now + ttl` at its grant or last keep-alive), which expiries are
//! proposed and not yet applied. Never does: end a lease itself — it names the leases whose
//! deadline passed and the driver proposes an `Expire` entry for each, so every replica ends
//! the lease at the same log index.
//!
//! The rules that keep a lease from ending early:
//! - Keep-alives reach only the leader and are not logged. So a node that becomes leader knows
//!   no deadlines: it gives every lease its full TTL plus `extension_ms` (at least an election
//!   timeout) from the moment it starts leading (etcd's rule), before it may expire any.
//! - Time is an input: every call takes `now`. A gap between two calls longer than `stall_ms`
//!   means this node did not run (GC pause, SIGSTOP, a starved VM) — nobody could reach it to
//!   keep a lease alive meanwhile — so every deadline moves out by the gap before any is judged.

use std::collections::{BTreeMap, BTreeSet};

/// A lease as the lessor tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tracked {
    ttl_ms: u64,
    deadline_ms: u64,
}

/// What [`Lessor::keep_alive`] and [`Lessor::time_to_live`] report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Remaining {
    pub ttl_ms: u64,
    pub remaining_ms: u64,
}

#[derive(Debug)]
pub(crate) struct Lessor {
    extension_ms: u64,
    stall_ms: u64,
    /// `None` while not leading (nothing is tracked then).
    leases: Option<BTreeMap<u64, Tracked>>,
    /// Expiries proposed, not yet applied.
    expiring: BTreeSet<u64>,
    last_now: Option<u64>,
}

impl Lessor {
    pub fn new(extension_ms: u64, stall_ms: u64) -> Self {
        Self {
            extension_ms,
            stall_ms: stall_ms.max(1),
            leases: None,
            expiring: BTreeSet::new(),
            last_now: None,
        }
    }

    pub fn is_leading(&self) -> bool {
        self.leases.is_some()
    }

    /// This node leads from `now` on with the applied lease table `leases` (`(id, ttl)`).
    pub fn promote(&mut self, now: u64, leases: impl IntoIterator<Item = (u64, u64)>) {
        let extension = self.extension_ms;
        self.leases = Some(
            leases
                .into_iter()
                .map(|(id, ttl_ms)| {
                    let deadline_ms = now.saturating_add(ttl_ms).saturating_add(extension);
                    (
                        id,
                        Tracked {
                            ttl_ms,
                            deadline_ms,
                        },
                    )
                })
                .collect(),
        );
        self.expiring.clear();
        self.last_now = Some(now);
    }

    /// This node no longer leads: it forgets every deadline (the next leader starts afresh).
    pub fn demote(&mut self) {
        self.leases = None;
        self.expiring.clear();
        self.last_now = None;
    }

    /// The applied lease table changed: a new lease runs from `now`, an ended one is dropped.
    pub fn sync(&mut self, now: u64, leases: impl IntoIterator<Item = (u64, u64)>) {
        let Some(tracked) = self.leases.as_mut() else {
            return;
        };
        let current: BTreeMap<u64, u64> = leases.into_iter().collect();
        tracked.retain(|id, _| current.contains_key(id));
        self.expiring.retain(|id| current.contains_key(id));
        for (id, ttl_ms) in current {
            tracked.entry(id).or_insert(Tracked {
                ttl_ms,
                deadline_ms: now.saturating_add(ttl_ms),
            });
        }
    }

    /// Renews `lease` for its TTL from `now`. `None`: not tracked (gone, or being expired).
    pub fn keep_alive(&mut self, lease: u64, now: u64) -> Option<Remaining> {
        self.observe(now);
        if self.expiring.contains(&lease) {
            return None;
        }
        let t = self.leases.as_mut()?.get_mut(&lease)?;
        t.deadline_ms = t.deadline_ms.max(now.saturating_add(t.ttl_ms));
        Some(Remaining {
            ttl_ms: t.ttl_ms,
            remaining_ms: t.deadline_ms - now,
        })
    }

    /// What `lease` has left at `now`. `None`: not tracked (gone, or being expired).
    pub fn time_to_live(&mut self, lease: u64, now: u64) -> Option<Remaining> {
        self.observe(now);
        if self.expiring.contains(&lease) {
            return None;
        }
        let t = self.leases.as_ref()?.get(&lease)?;
        Some(Remaining {
            ttl_ms: t.ttl_ms,
            remaining_ms: t.deadline_ms.saturating_sub(now),
        })
    }

    /// Leases whose deadline passed by `now` and whose expiry is not proposed yet (they count as
    /// proposed from here on; [`Lessor::retry`] one whose proposal failed).
    pub fn due(&mut self, now: u64, max: usize) -> Vec<u64> {
        self.observe(now);
        let Some(tracked) = self.leases.as_ref() else {
            return Vec::new();
        };
        let due: Vec<u64> = tracked
            .iter()
            .filter(|(id, t)| t.deadline_ms <= now && !self.expiring.contains(id))
            .map(|(id, _)| *id)
            .take(max)
            .collect();
        self.expiring.extend(due.iter().copied());
        due
    }

    /// The expiry of `lease` was not proposed after all: judge it again on the next call.
    pub fn retry(&mut self, lease: u64) {
        self.expiring.remove(&lease);
    }

    /// Moves every deadline out by the time this node did not run, when that was a stall.
    fn observe(&mut self, now: u64) {
        let last = self.last_now.replace(now.max(self.last_now.unwrap_or(0)));
        let Some(last) = last else { return };
        let gap = now.saturating_sub(last);
        if gap <= self.stall_ms {
            return;
        }
        tracing::info!(
            gap_ms = gap,
            "lessor resumed after a stall: leases extended by it"
        );
        if let Some(tracked) = self.leases.as_mut() {
            for t in tracked.values_mut() {
                t.deadline_ms = t.deadline_ms.saturating_add(gap);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leading(now: u64, leases: &[(u64, u64)]) -> Lessor {
        let mut l = Lessor::new(500, 200);
        l.promote(now, leases.iter().copied());
        l
    }

    /// Calls `due` every 10 ms from `from` to `to`, as the driver's passes do.
    fn run(l: &mut Lessor, from: u64, to: u64) -> Vec<(u64, u64)> {
        let mut expired = Vec::new();
        let mut now = from;
        while now <= to {
            expired.extend(l.due(now, 100).into_iter().map(|id| (id, now)));
            now += 10;
        }
        expired
    }

    #[test]
    fn a_new_leader_gives_every_lease_its_ttl_plus_the_extension() {
        let mut l = leading(1_000, &[(7, 1_000)]);
        assert_eq!(run(&mut l, 1_000, 2_490), vec![]);
        assert_eq!(run(&mut l, 2_500, 2_600), vec![(7, 2_500)]);
        assert_eq!(run(&mut l, 2_610, 3_000), vec![], "proposed once");
    }

    #[test]
    fn keep_alive_renews_from_now_and_a_granted_lease_runs_from_its_sync() {
        let mut l = leading(0, &[]);
        l.sync(100, [(9, 1_000)]);
        assert_eq!(run(&mut l, 100, 1_000), vec![]);
        let r = l.keep_alive(9, 1_000).unwrap();
        assert_eq!((r.ttl_ms, r.remaining_ms), (1_000, 1_000));
        assert_eq!(run(&mut l, 1_010, 1_990), vec![]);
        assert_eq!(run(&mut l, 2_000, 2_000), vec![(9, 2_000)]);
        assert!(l.keep_alive(9, 2_010).is_none(), "its expiry is proposed");
        assert!(l.time_to_live(9, 2_010).is_none());
    }

    #[test]
    fn a_stall_moves_every_deadline_out_by_its_length() {
        let mut l = leading(0, &[(1, 1_000)]);
        assert_eq!(run(&mut l, 0, 900), vec![]);
        // The node did not run from 900 to 10_900: nobody could keep the lease alive.
        assert_eq!(l.due(10_900, 100), Vec::<u64>::new());
        let left = l.time_to_live(1, 10_900).unwrap().remaining_ms;
        assert_eq!(left, 1_500 - 900);
        assert_eq!(run(&mut l, 10_910, 11_490), vec![]);
        assert_eq!(run(&mut l, 11_500, 11_500), vec![(1, 11_500)]);
    }

    #[test]
    fn a_follower_tracks_nothing_and_a_failed_proposal_is_judged_again() {
        let mut l = Lessor::new(500, 200);
        l.sync(0, [(1, 100)]);
        assert!(!l.is_leading());
        assert!(l.due(10_000, 10).is_empty());
        assert!(l.keep_alive(1, 10).is_none());
        let mut l = leading(0, &[(1, 100)]);
        assert_eq!(run(&mut l, 0, 600), vec![(1, 600)]);
        l.retry(1);
        assert_eq!(l.due(610, 10), vec![1]);
        l.sync(620, []);
        assert!(l.due(630, 10).is_empty(), "an ended lease is forgotten");
        l.demote();
        assert!(!l.is_leading());
    }
}
