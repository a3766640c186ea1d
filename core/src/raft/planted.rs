//! Deliberately planted bugs for the simulator's self-test. A simulator is only worth what it
//! catches: with the `planted-bugs` feature, a test switches one of these on (per thread) and
//! requires the random schedule to find it. Without the feature [`active`] is `false` and the
//! checks compile away.

/// A known-wrong behaviour the core can be switched into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// Inputs other than `tick` do not advance the clock: a node resuming from a stall judges
    /// its lease by the time of its last tick.
    StaleClock,
    /// The leader lease lasts a full election timeout, without the clock-drift margin.
    NoDriftMargin,
    /// Voters grant (pre-)votes while they still promise a leader its lease.
    VoteIgnoresLease,
}

#[cfg(feature = "planted-bugs")]
thread_local! {
    static ACTIVE: std::cell::Cell<Option<PlantedBug>> = const { std::cell::Cell::new(None) };
}

/// Switches `bug` on (or every bug off) for the calling thread.
#[cfg(feature = "planted-bugs")]
pub fn plant(bug: Option<PlantedBug>) {
    ACTIVE.with(|a| a.set(bug));
}

/// Whether `bug` is switched on for the calling thread.
#[inline(always)]
pub(crate) fn active(bug: PlantedBug) -> bool {
    #[cfg(feature = "planted-bugs")]
    {
        ACTIVE.with(|a| a.get()) == Some(bug)
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = bug;
        false
    }
}
