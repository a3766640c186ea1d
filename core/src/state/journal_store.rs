//! The partitioned journal store (the seed's JK-PS API): the parts that are pure rules, kept
//! apart from storage so they are tested as rules.
//!
//! Owns: the seed's `queryIndex` semantics over a partition's store times, and the journal
//! store's replicated bookkeeping ([`JournalStore`]): the declared partition set and the client
//! sessions that make a retried append take effect once. The entries themselves live in the
//! journal and its partition index (storage), not here.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::StateError;
use super::session::{Admission, ClientSessions, RequestId, SessionLimits};

/// The journal store's replicated state besides the entries: declared partitions and append
/// sessions. Deterministic; part of every snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalStore {
    /// Partitions declared by `scalePartitions` (appends may also create partitions).
    pub declared: BTreeSet<u16>,
    sessions: ClientSessions,
}

impl JournalStore {
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            declared: BTreeSet::new(),
            sessions: ClientSessions::new(limits),
        }
    }

    /// Whether `id` was applied already: `Some(first partition index)` of that append.
    pub fn duplicate(&self, id: &RequestId) -> Result<Option<Result<u64, StateError>>, StateError> {
        Ok(match self.sessions.admit(id)? {
            Admission::Apply => None,
            Admission::Duplicate(r) => Some(r.and_then(|b| super::decode("append result", &b))),
        })
    }

    /// Applies the session bookkeeping of an append whose first entry is at log `index` and
    /// got partition index `first`; returns the append's result (the original one for a
    /// retry).
    pub fn apply_append(
        &mut self,
        index: u64,
        id: Option<&RequestId>,
        first: u64,
    ) -> Result<u64, StateError> {
        let Some(id) = id else { return Ok(first) };
        if let Some(previous) = self.duplicate(id)? {
            return previous;
        }
        self.sessions
            .record(id, index, super::encode("append result", &first));
        Ok(first)
    }

    /// Replaces the declared partition set (idempotent by value and by session).
    ///
    /// A removed partition's entries stay in the shared log (they cannot be cut out of it), so
    /// declaring such a partition again would bring them back under new appends. That is
    /// refused: a set that adds an undeclared partition which already holds entries
    /// (`has_entries`) is `Rejected`, naming it, and nothing changes (a retry of the same
    /// session gets the same answer). Removed partition ids with entries are retired; pick
    /// new ids. Deterministic: `has_entries` is a function of the applied log.
    pub fn apply_scale(
        &mut self,
        index: u64,
        id: &RequestId,
        partitions: BTreeSet<u16>,
        has_entries: impl Fn(u16) -> bool,
    ) -> Result<(), StateError> {
        match self.sessions.admit(id)? {
            Admission::Duplicate(r) => r.map(|_| ()),
            Admission::Apply => {
                let revived: Vec<String> = partitions
                    .difference(&self.declared)
                    .filter(|&&p| has_entries(p))
                    .map(u16::to_string)
                    .collect();
                if !revived.is_empty() {
                    let e = StateError::Rejected(format!(
                        "partition(s) {} were removed and still hold entries; a removed \
                         partition cannot be added back (its old entries would reappear): \
                         use new partition ids",
                        revived.join(", ")
                    ));
                    self.sessions.record(id, index, Err(e.clone()));
                    return Err(e);
                }
                self.sessions.record(id, index, Ok(Vec::new()));
                self.declared = partitions;
                Ok(())
            }
        }
    }
}

/// The index in a partition whose entry matches `timestamp_ms` by the seed's rule:
/// the last entry whose store time is ≤ `timestamp_ms`, and among several entries with that same
/// time the first of them; when `timestamp_ms` is before the first entry, the first entry;
/// when it is at or past the last entry's time, the last entry (the first of those sharing its
/// time), never `max_index`. `None` when the partition holds no entries
/// (`min_index == max_index`).
///
/// `time_at(i)` is the store time of the entry at partition index `i` for
/// `min_index <= i < max_index`; store times never decrease along a partition (the leader
/// assigns `max(now, last)`), which lets this search in O(log n) reads.
pub fn query_index<E>(
    min_index: u64,
    max_index: u64,
    timestamp_ms: u64,
    mut time_at: impl FnMut(u64) -> Result<u64, E>,
) -> Result<Option<u64>, E> {
    if min_index >= max_index {
        return Ok(None);
    }
    // First index whose time is > timestamp (upper bound).
    let upper = partition_point(min_index, max_index, |i| Ok(time_at(i)? <= timestamp_ms))?;
    if upper == min_index {
        return Ok(Some(min_index));
    }
    let matched_time = time_at(upper - 1)?;
    // First index whose time equals the matched time (lower bound).
    let first = partition_point(min_index, upper, |i| Ok(time_at(i)? < matched_time))?;
    Ok(Some(first))
}

/// The first index in `lo..hi` where `pred` is false, given `pred` is true then false.
fn partition_point<E>(
    mut lo: u64,
    mut hi: u64,
    mut pred: impl FnMut(u64) -> Result<bool, E>,
) -> Result<u64, E> {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid)? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn query(times: &[u64], min_index: u64, ts: u64) -> Option<u64> {
        let max = min_index + times.len() as u64;
        query_index::<()>(min_index, max, ts, |i| Ok(times[(i - min_index) as usize])).unwrap()
    }

    fn req(seq: u64) -> RequestId {
        RequestId {
            client_id: 9,
            seq,
            first_unacked: seq,
        }
    }

    #[test]
    fn a_removed_partition_with_entries_cannot_be_added_back() {
        let mut s = JournalStore::new(SessionLimits::default());
        s.declared = BTreeSet::from([0, 1]);
        let holds = |p: u16| p == 1; // partition 1 has entries, 0 and 2 have none
        s.apply_scale(10, &req(1), BTreeSet::from([0]), holds)
            .unwrap();
        assert_eq!(s.declared, BTreeSet::from([0]));
        let e = s
            .apply_scale(11, &req(2), BTreeSet::from([0, 1, 2]), holds)
            .unwrap_err();
        assert!(
            matches!(&e, StateError::Rejected(m) if m.contains("partition(s) 1 ")),
            "{e}"
        );
        assert_eq!(s.declared, BTreeSet::from([0]), "nothing changed");
        // A retry of that session gets the same answer, also after the partition was emptied.
        assert!(
            s.apply_scale(12, &req(2), BTreeSet::from([0, 1]), |_| false)
                .is_err()
        );
        // Never-written ids may come and go.
        s.apply_scale(13, &req(3), BTreeSet::from([0, 2]), holds)
            .unwrap();
        s.apply_scale(14, &req(4), BTreeSet::from([2]), holds)
            .unwrap();
        s.apply_scale(15, &req(5), BTreeSet::from([0, 2]), holds)
            .unwrap();
        assert_eq!(s.declared, BTreeSet::from([0, 2]));
    }

    #[test]
    fn past_the_last_entry_is_the_last_entry_never_the_end() {
        assert_eq!(query(&[10, 20, 30], 0, 31), Some(2));
        assert_eq!(query(&[10, 20, 30], 0, u64::MAX), Some(2));
        assert_eq!(
            query(&[10, 30, 30, 30], 5, 99),
            Some(6),
            "the first of the last time"
        );
        assert_eq!(query(&[], 3, 99), None, "empty");
    }

    #[test]
    fn the_seeds_examples() {
        let times = [10, 20, 20, 20, 30];
        assert_eq!(
            query(&times, 0, 5),
            Some(0),
            "before the first entry: the first"
        );
        assert_eq!(query(&times, 0, 10), Some(0));
        assert_eq!(query(&times, 0, 15), Some(0), "last entry at or before");
        assert_eq!(
            query(&times, 0, 20),
            Some(1),
            "equal times: the first of them"
        );
        assert_eq!(query(&times, 0, 25), Some(1));
        assert_eq!(query(&times, 0, 30), Some(4));
        assert_eq!(query(&times, 0, 99), Some(4));
        assert_eq!(
            query(&times, 100, 20),
            Some(101),
            "indices start at min_index"
        );
        assert_eq!(query(&[], 7, 20), None, "empty partition");
    }

    proptest! {
        #[test]
        fn matches_a_linear_scan(mut times in proptest::collection::vec(0u64..50, 1..40), ts in 0u64..60, min in 0u64..1000) {
            times.sort_unstable();
            let expected = match times.iter().rposition(|&t| t <= ts) {
                None => 0,
                Some(last) => times.iter().position(|&t| t == times[last]).unwrap(),
            } as u64 + min;
            prop_assert_eq!(query(&times, min, ts), Some(expected));
        }
    }
}
