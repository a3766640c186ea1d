//! Watch events of the coordination KV and the bounded history a watcher catches up from.
//!
//! Every change applied to the KV produces one [`KvEvent`] carrying the key, the old and new
//! value and the log index of the change. The [`EventLog`] keeps the most recent events so a
//! watcher that reconnects can ask for "everything from index N" and miss nothing; when N is
//! older than the retained history it gets [`StateError::EventsCompacted`] and must re-read the
//! state (and then watch from the index that read was served at).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::StateError;

/// One change of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEvent {
    /// Log index of the entry that made the change.
    pub index: u64,
    pub key: String,
    /// `None` when the key did not exist before.
    #[serde(with = "serde_bytes")]
    pub old_value: Option<Vec<u8>>,
    /// `None` when the change removed the key.
    #[serde(with = "serde_bytes")]
    pub new_value: Option<Vec<u8>>,
}

/// Which keys a watch is interested in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchFilter {
    /// Exactly this key.
    Key(String),
    /// Every key starting with this prefix (the empty prefix matches all keys).
    Prefix(String),
}

impl WatchFilter {
    pub fn matches(&self, key: &str) -> bool {
        match self {
            WatchFilter::Key(k) => k == key,
            // A prefix outside the reserved space never shows the recipes' keys.
            WatchFilter::Prefix(p) => {
                key.starts_with(p.as_str())
                    && (super::coord::is_reserved(p) || !super::coord::is_reserved(key))
            }
        }
    }
}

/// Memory one event takes beside its key and values (the struct, the deque slot, allocations).
const EVENT_OVERHEAD_BYTES: usize = 96;

fn event_bytes(e: &KvEvent) -> usize {
    EVENT_OVERHEAD_BYTES
        + e.key.len()
        + e.old_value.as_ref().map_or(0, Vec::len)
        + e.new_value.as_ref().map_or(0, Vec::len)
}

/// The most recent KV events, oldest first, bounded by count and by the bytes they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    events: VecDeque<KvEvent>,
    capacity: usize,
    max_bytes: usize,
    /// What `events` holds, by [`event_bytes`].
    bytes: usize,
    /// Every event with `index >= complete_from` is still in `events`.
    complete_from: u64,
}

impl EventLog {
    /// An empty history that holds at most `capacity` events and about `max_bytes` of keys
    /// and values, and knows every event from `complete_from` on (use `applied_index + 1`
    /// after restoring a snapshot). The events of the newest index are kept whatever their
    /// size: the node's live watches read them right after the entry applies.
    pub fn new(capacity: usize, max_bytes: usize, complete_from: u64) -> Self {
        Self {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            max_bytes,
            bytes: 0,
            complete_from,
        }
    }

    fn pop_front(&mut self) -> Option<KvEvent> {
        let e = self.events.pop_front()?;
        self.bytes -= event_bytes(&e);
        Some(e)
    }

    /// Appends an event; indices must not decrease.
    pub fn push(&mut self, event: KvEvent) {
        debug_assert!(
            self.events
                .back()
                .is_none_or(|last| last.index <= event.index)
        );
        let newest = event.index;
        self.bytes += event_bytes(&event);
        self.events.push_back(event);
        while self.events.len() > self.capacity
            || (self.bytes > self.max_bytes
                && self.events.front().is_some_and(|e| e.index < newest))
        {
            if let Some(evicted) = self.pop_front() {
                self.complete_from = evicted.index + 1;
            }
        }
        // Never keep part of an index's events: a reader could not tell what is missing.
        while self
            .events
            .front()
            .is_some_and(|e| e.index < self.complete_from)
        {
            self.pop_front();
        }
    }

    /// Every retained event at exactly `index`.
    pub fn at(&self, index: u64) -> Vec<KvEvent> {
        let start = self.events.partition_point(|e| e.index < index);
        self.events
            .range(start..)
            .take_while(|e| e.index == index)
            .cloned()
            .collect()
    }

    /// The lowest index a watch can start from without missing events.
    pub fn complete_from(&self) -> u64 {
        self.complete_from
    }

    /// Up to `max` events matching `filter` with `index >= from_index`, oldest first.
    pub fn since(
        &self,
        filter: &WatchFilter,
        from_index: u64,
        max: usize,
    ) -> Result<Vec<KvEvent>, StateError> {
        if from_index < self.complete_from {
            return Err(StateError::EventsCompacted {
                requested: from_index,
                oldest: self.complete_from,
            });
        }
        let start = self.events.partition_point(|e| e.index < from_index);
        Ok(self
            .events
            .range(start..)
            .filter(|e| filter.matches(&e.key))
            .take(max)
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(index: u64, key: &str) -> KvEvent {
        KvEvent {
            index,
            key: key.to_string(),
            old_value: None,
            new_value: Some(vec![index as u8]),
        }
    }

    #[test]
    fn since_returns_matching_events_from_the_index_in_order() {
        let mut log = EventLog::new(100, usize::MAX, 1);
        for (i, k) in [(1, "a/x"), (2, "b"), (3, "a/y"), (4, "a/x")] {
            log.push(ev(i, k));
        }
        let got = log.since(&WatchFilter::Prefix("a/".into()), 2, 10).unwrap();
        assert_eq!(got, vec![ev(3, "a/y"), ev(4, "a/x")]);
        let got = log.since(&WatchFilter::Key("a/x".into()), 1, 10).unwrap();
        assert_eq!(got, vec![ev(1, "a/x"), ev(4, "a/x")]);
        assert_eq!(
            log.since(&WatchFilter::Prefix(String::new()), 1, 2)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn asking_for_evicted_history_is_an_error_not_a_silent_gap() {
        let mut log = EventLog::new(2, usize::MAX, 1);
        for i in 1..=5 {
            log.push(ev(i, "k"));
        }
        assert_eq!(log.complete_from(), 4);
        assert_eq!(
            log.since(&WatchFilter::Key("k".into()), 3, 10),
            Err(StateError::EventsCompacted {
                requested: 3,
                oldest: 4
            })
        );
        assert_eq!(
            log.since(&WatchFilter::Key("k".into()), 4, 10)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn eviction_never_keeps_part_of_one_index() {
        let mut log = EventLog::new(2, usize::MAX, 1);
        log.push(ev(1, "a"));
        log.push(ev(2, "a"));
        log.push(ev(2, "b"));
        // Capacity 2: event 1 evicted; index 2 is whole.
        assert_eq!(log.complete_from(), 2);
        log.push(ev(3, "c"));
        // Evicting the first event of index 2 drops its sibling too.
        assert_eq!(log.complete_from(), 3);
        assert_eq!(
            log.since(&WatchFilter::Prefix(String::new()), 3, 10)
                .unwrap(),
            vec![ev(3, "c")]
        );
    }

    #[test]
    fn the_byte_bound_evicts_old_indices_but_never_the_newest() {
        let big = |index: u64| KvEvent {
            new_value: Some(vec![0; 1000]),
            ..ev(index, "k")
        };
        let one = event_bytes(&big(1));
        let mut log = EventLog::new(100, 2 * one, 1);
        for i in 1..=5 {
            log.push(big(i));
        }
        assert_eq!(log.complete_from(), 4, "two events fit");
        assert_eq!(log.bytes, 2 * one);
        // An index larger than the bound alone is kept whole until a newer one arrives.
        let mut tiny = EventLog::new(100, 10, 1);
        tiny.push(big(1));
        tiny.push(big(1));
        assert_eq!(tiny.at(1).len(), 2);
        tiny.push(ev(2, "k"));
        assert_eq!((tiny.complete_from(), tiny.at(2).len()), (2, 1));
        assert!(tiny.at(1).is_empty());
    }
}
