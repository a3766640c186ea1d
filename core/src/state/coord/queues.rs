//! Named FIFO queues of leases: the holder of a lock (or the leader of an election) and the
//! leases waiting for it, served in the order they asked.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::{CoordOutcome, Holder};

/// What a queue serves. A lock and an election of the same name are different queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QueueKind {
    Lock,
    Election,
}

impl QueueKind {
    pub fn word(self) -> &'static str {
        match self {
            QueueKind::Lock => "lock",
            QueueKind::Election => "election",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Waiter {
    lease: u64,
    #[serde(with = "serde_bytes")]
    value: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Queue {
    holder: Option<Holder>,
    waiting: VecDeque<Waiter>,
}

/// Every non-empty queue (an empty one is removed: tokens are log indices, so nothing about a
/// free lock needs remembering).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Queues {
    queues: BTreeMap<(QueueKind, String), Queue>,
}

impl Queues {
    pub fn holder(&self, kind: QueueKind, name: &str) -> Option<&Holder> {
        self.queues
            .get(&(kind, name.to_string()))
            .and_then(|q| q.holder.as_ref())
    }

    pub fn waiters(&self, kind: QueueKind, name: &str) -> usize {
        self.queues
            .get(&(kind, name.to_string()))
            .map_or(0, |q| q.waiting.len())
    }

    /// The outcome for `lease` when it already holds or waits for `name` (asking twice is
    /// answered with where it stands).
    pub fn already_in(
        &self,
        kind: QueueKind,
        name: &str,
        lease: u64,
        index: u64,
    ) -> Option<CoordOutcome> {
        let q = self.queues.get(&(kind, name.to_string()))?;
        if let Some(h) = q.holder.as_ref().filter(|h| h.lease == lease) {
            return Some(CoordOutcome::Acquired { token: h.token });
        }
        let at = q.waiting.iter().position(|w| w.lease == lease)?;
        Some(CoordOutcome::Queued {
            ahead: at as u64 + 1,
            index,
        })
    }

    /// `lease` (not yet in it) joins queue `name` at `index`.
    pub fn join(
        &mut self,
        kind: QueueKind,
        name: &str,
        lease: u64,
        value: Vec<u8>,
        index: u64,
    ) -> CoordOutcome {
        let q = self.queues.entry((kind, name.to_string())).or_default();
        if q.holder.is_none() {
            q.holder = Some(Holder {
                lease,
                token: index,
                value,
            });
            return CoordOutcome::Acquired { token: index };
        }
        q.waiting.push_back(Waiter { lease, value });
        CoordOutcome::Queued {
            ahead: q.waiting.len() as u64,
            index,
        }
    }

    /// `lease` leaves queue `name` at `index`; when it held it, the first waiter holds it now
    /// (token `index`). Returns whether `lease` was the holder.
    pub fn leave(&mut self, kind: QueueKind, name: &str, lease: u64, index: u64) -> bool {
        let id = (kind, name.to_string());
        let Some(q) = self.queues.get_mut(&id) else {
            return false;
        };
        let held = q.holder.as_ref().is_some_and(|h| h.lease == lease);
        if held {
            q.holder = q.waiting.pop_front().map(|w| Holder {
                lease: w.lease,
                token: index,
                value: w.value,
            });
        } else {
            q.waiting.retain(|w| w.lease != lease);
        }
        if q.holder.is_none() && q.waiting.is_empty() {
            self.queues.remove(&id);
        }
        held
    }
}
