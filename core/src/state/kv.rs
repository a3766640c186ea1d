//! The coordination KV (the seed's JK-CS API): set, get, list by prefix, exists, remove,
//! compare-and-set, and watch events with catch-up from a log index.
//!
//! Writes arrive as [`KvRequest`]s (a command plus an optional [`RequestId`] for idempotence);
//! reads as [`KvQuery`]s. Both have typed entry points for the in-process server and a byte
//! (postcard) form through [`StateMachine`]. Keys are UTF-8 strings ordered bytewise.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::coord;
use super::session::{Admission, ClientSessions, RequestId, SessionLimits};
use super::watch::{EventLog, KvEvent, WatchFilter};
use super::{ApplyContext, StateError, StateMachine, decode, encode};

mod snapshot;
pub use snapshot::KvSnapshot;

/// Bounds of the KV. Every one is checked, with an error naming the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvLimits {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    /// Most entries one `List` returns.
    pub max_list_entries: usize,
    /// Watch events retained for catch-up.
    pub event_history: usize,
    /// Bytes of keys and values those events may hold (large values shorten the history;
    /// a watcher asking for more gets `EventsCompacted` and re-reads).
    pub event_history_bytes: usize,
    pub sessions: SessionLimits,
}

impl Default for KvLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: 4096,
            max_value_bytes: 1 << 20,
            max_list_entries: 10_000,
            event_history: 100_000,
            event_history_bytes: 64 << 20,
            sessions: SessionLimits::default(),
        }
    }
}

/// A change to the KV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    Set {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    Remove {
        key: String,
    },
    /// Sets `key` to `new` (or removes it when `new` is `None`) only if its current value equals
    /// `expect` (`None`: the key must be absent).
    CompareAndSet {
        key: String,
        #[serde(with = "serde_bytes")]
        expect: Option<Vec<u8>>,
        #[serde(with = "serde_bytes")]
        new: Option<Vec<u8>>,
    },
}

impl KvCommand {
    pub fn key(&self) -> &str {
        match self {
            KvCommand::Set { key, .. }
            | KvCommand::Remove { key }
            | KvCommand::CompareAndSet { key, .. } => key,
        }
    }
}

/// A write as it is proposed to the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRequest {
    /// Present for writes that must take effect once even when retried.
    pub id: Option<RequestId>,
    pub command: KvCommand,
}

/// The result of applying a [`KvCommand`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOutcome {
    Set {
        #[serde(with = "serde_bytes")]
        previous: Option<Vec<u8>>,
    },
    Removed {
        #[serde(with = "serde_bytes")]
        previous: Option<Vec<u8>>,
    },
    CompareAndSet {
        swapped: bool,
        #[serde(with = "serde_bytes")]
        current: Option<Vec<u8>>,
    },
}

impl KvOutcome {
    /// Whether the write changed the key (a CAS that did not swap changed nothing).
    pub fn changed(&self) -> bool {
        match self {
            KvOutcome::Set { .. } | KvOutcome::Removed { .. } => true,
            KvOutcome::CompareAndSet { swapped, .. } => *swapped,
        }
    }
}

/// A read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvQuery {
    Get {
        key: String,
    },
    Exists {
        key: String,
    },
    /// Keys starting with `prefix`, in key order, after `start_after` when given (paging).
    List {
        prefix: String,
        start_after: Option<String>,
        limit: usize,
    },
    /// Watch catch-up: events matching `filter` from `from_index` on.
    Events {
        filter: WatchFilter,
        from_index: u64,
        max: usize,
    },
}

/// The answer to a [`KvQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvQueryResult {
    Value(#[serde(with = "serde_bytes")] Option<Vec<u8>>),
    Exists(bool),
    Entries(Vec<(String, Vec<u8>)>),
    Events(Vec<KvEvent>),
}

/// The coordination KV state machine.
#[derive(Debug, Clone)]
pub struct KvStore {
    limits: KvLimits,
    data: BTreeMap<String, Vec<u8>>,
    sessions: ClientSessions,
    events: EventLog,
    applied_index: u64,
}

impl KvStore {
    pub fn new(limits: KvLimits) -> Self {
        Self {
            limits,
            data: BTreeMap::new(),
            sessions: ClientSessions::new(limits.sessions),
            events: EventLog::new(limits.event_history, limits.event_history_bytes, 1),
            applied_index: 0,
        }
    }

    /// Applies one request at `ctx.index`. A retried request returns its first result.
    pub fn apply_request(
        &mut self,
        ctx: &ApplyContext,
        request: &KvRequest,
    ) -> Result<KvOutcome, StateError> {
        debug_assert!(
            ctx.index > self.applied_index,
            "entries applied out of order"
        );
        self.applied_index = ctx.index;
        let Some(id) = &request.id else {
            return self.apply_command(ctx.index, &request.command);
        };
        match self.sessions.admit(id)? {
            Admission::Duplicate(result) => result.and_then(|bytes| decode("kv outcome", &bytes)),
            Admission::Apply => {
                let result = self.apply_command(ctx.index, &request.command);
                let stored = match &result {
                    Ok(outcome) => encode("kv outcome", outcome),
                    Err(e) => Err(e.clone()),
                };
                self.sessions.record(id, ctx.index, stored);
                result
            }
        }
    }

    fn apply_command(&mut self, index: u64, command: &KvCommand) -> Result<KvOutcome, StateError> {
        self.check_key(command.key())?;
        if coord::is_reserved(command.key()) {
            return Err(StateError::InvalidArgument(format!(
                "key {:?} is reserved for the coordination recipes",
                command.key()
            )));
        }
        match command {
            KvCommand::Set { key, value } => {
                self.check_value(value)?;
                let previous = self.change(index, key, Some(value.clone()));
                Ok(KvOutcome::Set { previous })
            }
            KvCommand::Remove { key } => {
                let previous = if self.data.contains_key(key) {
                    self.change(index, key, None)
                } else {
                    None
                };
                Ok(KvOutcome::Removed { previous })
            }
            KvCommand::CompareAndSet { key, expect, new } => {
                if let Some(v) = new {
                    self.check_value(v)?;
                }
                let current = self.data.get(key);
                if current != expect.as_ref() {
                    return Ok(KvOutcome::CompareAndSet {
                        swapped: false,
                        current: current.cloned(),
                    });
                }
                if current.is_some() || new.is_some() {
                    self.change(index, key, new.clone());
                }
                Ok(KvOutcome::CompareAndSet {
                    swapped: true,
                    current: new.clone(),
                })
            }
        }
    }

    /// Writes `new` (or removes) and records the event; returns the old value.
    fn change(&mut self, index: u64, key: &str, new: Option<Vec<u8>>) -> Option<Vec<u8>> {
        let old = match &new {
            Some(v) => self.data.insert(key.to_string(), v.clone()),
            None => self.data.remove(key),
        };
        self.events.push(KvEvent {
            index,
            key: key.to_string(),
            old_value: old.clone(),
            new_value: new,
        });
        old
    }

    /// Checks that the coordination state machine may write `key` = `value` (the client bounds).
    pub(crate) fn check_system_write(&self, key: &str, value: &[u8]) -> Result<(), StateError> {
        self.check_key(key)?;
        self.check_value(value)
    }

    /// A write by the coordination state machine at `index` (reserved keys, lease-attached
    /// keys); the caller checked the bounds.
    pub(crate) fn system_set(
        &mut self,
        index: u64,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), StateError> {
        self.check_system_write(key, &value)?;
        self.applied_index = self.applied_index.max(index);
        self.change(index, key, Some(value));
        Ok(())
    }

    /// Removes `key` at `index` for the coordination state machine (nothing when absent).
    pub(crate) fn system_remove(&mut self, index: u64, key: &str) {
        self.applied_index = self.applied_index.max(index);
        if self.data.contains_key(key) {
            self.change(index, key, None);
        }
    }

    /// Every event recorded at `index` (reserved keys included), for the node's watches.
    pub(crate) fn events_at(&self, index: u64) -> Vec<KvEvent> {
        self.events.at(index)
    }

    /// The seed's `recoverSnapshot` for the KV, applied at log index `index`: the keys and
    /// values become those of `snap` (read from a snapshot), each difference recorded as an
    /// event at `index` so watchers see it. The client sessions stay as they are: a retried
    /// write that was applied after the snapshot must still not apply twice.
    pub fn roll_back_to(&mut self, index: u64, snap: KvSnapshot) {
        self.applied_index = index;
        let removed: Vec<String> = self
            .data
            .keys()
            .filter(|k| !snap.data.contains_key(*k))
            .cloned()
            .collect();
        for key in removed {
            self.change(index, &key, None);
        }
        for (key, value) in snap.data {
            if self.data.get(&key) != Some(&value) {
                self.change(index, &key, Some(value));
            }
        }
    }

    fn check_key(&self, key: &str) -> Result<(), StateError> {
        if key.is_empty() || key.len() > self.limits.max_key_bytes {
            return Err(StateError::InvalidArgument(format!(
                "key length {} is outside 1..={} bytes",
                key.len(),
                self.limits.max_key_bytes
            )));
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), StateError> {
        if value.len() > self.limits.max_value_bytes {
            return Err(StateError::InvalidArgument(format!(
                "value of {} bytes exceeds the limit of {} bytes",
                value.len(),
                self.limits.max_value_bytes
            )));
        }
        Ok(())
    }

    /// Answers a read against the current state.
    pub fn read(&self, query: &KvQuery) -> Result<KvQueryResult, StateError> {
        match query {
            KvQuery::Get { key } => Ok(KvQueryResult::Value(self.data.get(key).cloned())),
            KvQuery::Exists { key } => Ok(KvQueryResult::Exists(self.data.contains_key(key))),
            KvQuery::List {
                prefix,
                start_after,
                limit,
            } => {
                if *limit == 0 || *limit > self.limits.max_list_entries {
                    return Err(StateError::InvalidArgument(format!(
                        "list limit {limit} is outside 1..={}",
                        self.limits.max_list_entries
                    )));
                }
                let start = match start_after {
                    Some(after) if after.as_str() >= prefix.as_str() => {
                        std::ops::Bound::Excluded(after.clone())
                    }
                    _ => std::ops::Bound::Included(prefix.clone()),
                };
                let entries = self
                    .data
                    .range((start, std::ops::Bound::Unbounded))
                    .take_while(|(k, _)| k.starts_with(prefix.as_str()))
                    .filter(|(k, _)| coord::is_reserved(prefix) || !coord::is_reserved(k))
                    .take(*limit)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Ok(KvQueryResult::Entries(entries))
            }
            KvQuery::Events {
                filter,
                from_index,
                max,
            } => Ok(KvQueryResult::Events(self.events.since(
                filter,
                *from_index,
                (*max).min(self.limits.max_list_entries),
            )?)),
        }
    }

    /// The lowest index a watch can resume from without missing events.
    pub fn watch_complete_from(&self) -> u64 {
        self.events.complete_from()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl KvStore {
    /// The index of the last applied entry (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }
}

impl StateMachine for KvStore {
    fn apply(&mut self, ctx: &ApplyContext, command: &[u8]) -> Result<Vec<u8>, StateError> {
        let request: KvRequest = decode("kv request", command)?;
        let outcome = self.apply_request(ctx, &request)?;
        encode("kv outcome", &outcome)
    }

    fn query(&self, query: &[u8]) -> Result<Vec<u8>, StateError> {
        let query: KvQuery = decode("kv query", query)?;
        encode("kv query result", &self.read(&query)?)
    }

    fn snapshot(&self, out: &mut dyn std::io::Write) -> Result<(), StateError> {
        self.write_snapshot(out)
    }

    fn restore(&mut self, input: &mut dyn std::io::Read) -> Result<(), StateError> {
        self.install(KvSnapshot::read(input)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(index: u64) -> ApplyContext {
        ApplyContext {
            index,
            term: 1,
            timestamp_ms: 0,
        }
    }

    fn set(key: &str, value: &[u8]) -> KvRequest {
        KvRequest {
            id: None,
            command: KvCommand::Set {
                key: key.into(),
                value: value.to_vec(),
            },
        }
    }

    fn cas(key: &str, expect: Option<&[u8]>, new: Option<&[u8]>) -> KvRequest {
        KvRequest {
            id: None,
            command: KvCommand::CompareAndSet {
                key: key.into(),
                expect: expect.map(<[u8]>::to_vec),
                new: new.map(<[u8]>::to_vec),
            },
        }
    }

    fn get(kv: &KvStore, key: &str) -> Option<Vec<u8>> {
        match kv.read(&KvQuery::Get { key: key.into() }).unwrap() {
            KvQueryResult::Value(v) => v,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn set_get_exists_remove() {
        let mut kv = KvStore::new(KvLimits::default());
        assert_eq!(
            kv.apply_request(&ctx(1), &set("a", b"1")).unwrap(),
            KvOutcome::Set { previous: None }
        );
        assert_eq!(get(&kv, "a"), Some(b"1".to_vec()));
        assert_eq!(
            kv.read(&KvQuery::Exists { key: "a".into() }).unwrap(),
            KvQueryResult::Exists(true)
        );
        let removed = KvRequest {
            id: None,
            command: KvCommand::Remove { key: "a".into() },
        };
        assert_eq!(
            kv.apply_request(&ctx(2), &removed).unwrap(),
            KvOutcome::Removed {
                previous: Some(b"1".to_vec())
            }
        );
        assert_eq!(get(&kv, "a"), None);
    }

    #[test]
    fn compare_and_set_swaps_only_on_match() {
        let mut kv = KvStore::new(KvLimits::default());
        let r = kv
            .apply_request(&ctx(1), &cas("c", None, Some(b"0")))
            .unwrap();
        assert_eq!(
            r,
            KvOutcome::CompareAndSet {
                swapped: true,
                current: Some(b"0".to_vec())
            }
        );
        let r = kv
            .apply_request(&ctx(2), &cas("c", None, Some(b"1")))
            .unwrap();
        assert_eq!(
            r,
            KvOutcome::CompareAndSet {
                swapped: false,
                current: Some(b"0".to_vec())
            }
        );
        let r = kv
            .apply_request(&ctx(3), &cas("c", Some(b"0"), None))
            .unwrap();
        assert_eq!(
            r,
            KvOutcome::CompareAndSet {
                swapped: true,
                current: None
            }
        );
        assert_eq!(get(&kv, "c"), None);
    }

    #[test]
    fn list_by_prefix_in_key_order_with_paging() {
        let mut kv = KvStore::new(KvLimits::default());
        for (i, k) in ["a/2", "b/1", "a/1", "a/3", "a"].iter().enumerate() {
            kv.apply_request(&ctx(i as u64 + 1), &set(k, b"v")).unwrap();
        }
        let list = |start_after: Option<&str>, limit| match kv
            .read(&KvQuery::List {
                prefix: "a/".into(),
                start_after: start_after.map(str::to_string),
                limit,
            })
            .unwrap()
        {
            KvQueryResult::Entries(e) => e.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(list(None, 10), vec!["a/1", "a/2", "a/3"]);
        assert_eq!(list(None, 2), vec!["a/1", "a/2"]);
        assert_eq!(list(Some("a/2"), 10), vec!["a/3"]);
    }

    #[test]
    fn a_retried_cas_is_applied_once() {
        let mut kv = KvStore::new(KvLimits::default());
        kv.apply_request(&ctx(1), &set("n", b"0")).unwrap();
        let mut req = cas("n", Some(b"0"), Some(b"1"));
        req.id = Some(RequestId {
            client_id: 9,
            seq: 1,
            first_unacked: 1,
        });
        let first = kv.apply_request(&ctx(2), &req).unwrap();
        let retry = kv.apply_request(&ctx(3), &req).unwrap();
        assert_eq!(first, retry);
        assert_eq!(
            first,
            KvOutcome::CompareAndSet {
                swapped: true,
                current: Some(b"1".to_vec())
            }
        );
        assert_eq!(
            kv.read(&KvQuery::Events {
                filter: WatchFilter::Key("n".into()),
                from_index: 1,
                max: 10
            })
            .unwrap(),
            KvQueryResult::Events(vec![
                KvEvent {
                    index: 1,
                    key: "n".into(),
                    old_value: None,
                    new_value: Some(b"0".to_vec())
                },
                KvEvent {
                    index: 2,
                    key: "n".into(),
                    old_value: Some(b"0".to_vec()),
                    new_value: Some(b"1".to_vec())
                },
            ])
        );
    }

    #[test]
    fn bounds_are_enforced_with_errors() {
        let limits = KvLimits {
            max_key_bytes: 4,
            max_value_bytes: 2,
            ..KvLimits::default()
        };
        let mut kv = KvStore::new(limits);
        assert!(matches!(
            kv.apply_request(&ctx(1), &set("toolong", b"v")),
            Err(StateError::InvalidArgument(_))
        ));
        assert!(matches!(
            kv.apply_request(&ctx(2), &set("k", b"big")),
            Err(StateError::InvalidArgument(_))
        ));
        assert!(matches!(
            kv.apply_request(&ctx(3), &set("", b"v")),
            Err(StateError::InvalidArgument(_))
        ));
        assert!(matches!(
            kv.read(&KvQuery::List {
                prefix: String::new(),
                start_after: None,
                limit: 0
            }),
            Err(StateError::InvalidArgument(_))
        ));
        assert!(kv.is_empty());
    }

    #[test]
    fn garbage_bytes_are_decode_errors_not_panics() {
        let mut kv = KvStore::new(KvLimits::default());
        for garbage in [&[][..], &[0xff; 7][..], &[3, 200, 1][..]] {
            assert!(kv.apply(&ctx(1), garbage).is_err());
            assert!(kv.query(garbage).is_err());
            assert!(kv.restore(&mut &garbage[..]).is_err());
        }
    }

    #[test]
    fn snapshot_restore_roundtrip_keeps_data_and_sessions() {
        let mut kv = KvStore::new(KvLimits::default());
        let mut req = set("k", b"v");
        req.id = Some(RequestId {
            client_id: 1,
            seq: 1,
            first_unacked: 1,
        });
        kv.apply(&ctx(1), &postcard::to_allocvec(&req).unwrap())
            .unwrap();
        let mut snap = Vec::new();
        kv.snapshot(&mut snap).unwrap();
        let mut restored = KvStore::new(KvLimits::default());
        restored.restore(&mut &snap[..]).unwrap();
        assert_eq!(restored.applied_index(), 1);
        assert_eq!(get(&restored, "k"), Some(b"v".to_vec()));
        // The session came along: the retry is still recognised after restore.
        let again = restored.apply_request(&ctx(2), &req).unwrap();
        assert_eq!(again, KvOutcome::Set { previous: None });
        assert_eq!(restored.watch_complete_from(), 2);
    }

    #[test]
    fn rolling_back_to_a_snapshot_restores_the_data_with_events_and_keeps_the_sessions() {
        let mut kv = KvStore::new(KvLimits::default());
        let set = |k: &str, v: &str| KvRequest {
            id: None,
            command: KvCommand::Set {
                key: k.into(),
                value: v.as_bytes().to_vec(),
            },
        };
        kv.apply_request(&ctx(1), &set("a", "1")).unwrap();
        kv.apply_request(&ctx(2), &set("b", "1")).unwrap();
        let mut snap = Vec::new();
        kv.write_snapshot(&mut snap).unwrap();
        let session = RequestId {
            client_id: 7,
            seq: 1,
            first_unacked: 1,
        };
        let retried = KvRequest {
            id: Some(session),
            ..set("a", "2")
        };
        kv.apply_request(&ctx(3), &retried).unwrap();
        kv.apply_request(&ctx(4), &set("c", "1")).unwrap();
        kv.roll_back_to(5, KvSnapshot::read(&mut &snap[..]).unwrap());
        assert_eq!(kv.data.get("a"), Some(&b"1".to_vec()));
        assert!(!kv.data.contains_key("c"));
        assert_eq!(kv.applied_index, 5);
        let events = kv
            .events
            .since(
                &crate::state::watch::WatchFilter::Prefix(String::new()),
                5,
                10,
            )
            .unwrap();
        let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["c", "a"],
            "one event per difference, at the recover index"
        );
        assert!(events.iter().all(|e| e.index == 5));
        // The retry of the write applied after the snapshot is still recognised.
        let again = kv.apply_request(&ctx(6), &retried).unwrap();
        assert_eq!(
            again,
            KvOutcome::Set {
                previous: Some(b"1".to_vec())
            }
        );
        assert_eq!(kv.data.get("a"), Some(&b"1".to_vec()), "not applied twice");
    }
}
