//! Client sessions: the state that makes a retried write take effect once.
//!
//! Every client has an id and numbers its writes `1, 2, 3, …`. With each write it also sends
//! `first_unacked`: the lowest sequence number it has not yet seen a reply for. The session keeps
//! the result of every applied write at or above that mark, so a retry of any in-flight write
//! (pipelined clients have several) returns the original result instead of applying again.
//!
//! Everything is deterministic (eviction is by the log index of a session's last write, never by
//! wall time), and the whole table is part of the snapshot.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::StateError;

/// Identifies one write of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestId {
    pub client_id: u64,
    /// 1-based, increasing by one per write of this client.
    pub seq: u64,
    /// The lowest sequence number whose reply the client has not received yet (≤ `seq`).
    pub first_unacked: u64,
}

/// Bounds of the session table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLimits {
    /// Sessions kept; the one whose last write is oldest in the log is evicted first.
    pub max_sessions: usize,
    /// Results kept per session (in-flight writes of a pipelining client).
    pub max_results_per_session: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max_sessions: 65_536,
            max_results_per_session: 4096,
        }
    }
}

/// What to do with an incoming write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Not seen before: apply it, then [`ClientSessions::record`] the result.
    Apply,
    /// Already applied: return this result without applying again.
    Duplicate(Result<Vec<u8>, StateError>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    /// The highest `first_unacked` the client reported: it will not retry anything below.
    acked_below: u64,
    /// The highest seq whose result was dropped by `max_results_per_session` (0: none).
    evicted_upto: u64,
    /// Results of *every* applied write with seq ≥ `acked_below` (pipelined writes may be
    /// applied out of seq order, e.g. after a reconnect, so "seq ≤ highest applied" does not
    /// mean "applied").
    results: BTreeMap<u64, Result<Vec<u8>, StateError>>,
    /// Log index of the last write applied for this client (eviction order).
    last_index: u64,
}

/// The session table of one state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSessions {
    limits: SessionLimits,
    sessions: BTreeMap<u64, Session>,
    /// (last_index, client_id), to evict the least recently written session deterministically.
    by_last_index: BTreeSet<(u64, u64)>,
}

impl ClientSessions {
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            limits,
            sessions: BTreeMap::new(),
            by_last_index: BTreeSet::new(),
        }
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Decides whether `id` must be applied or is a retry of an applied write.
    pub fn admit(&self, id: &RequestId) -> Result<Admission, StateError> {
        if id.seq == 0 || id.first_unacked == 0 || id.first_unacked > id.seq {
            return Err(StateError::InvalidArgument(format!(
                "request id of client {} is malformed: seq {}, first_unacked {}",
                id.client_id, id.seq, id.first_unacked
            )));
        }
        let Some(session) = self.sessions.get(&id.client_id) else {
            return Ok(Admission::Apply);
        };
        if let Some(result) = session.results.get(&id.seq) {
            return Ok(Admission::Duplicate(result.clone()));
        }
        if id.seq < session.acked_below || id.seq <= session.evicted_upto {
            return Ok(Admission::Duplicate(Err(StateError::Rejected(format!(
                "write {} of client {} is older than the retained results (acknowledged below \
                 {}, evicted up to {}); not applied again",
                id.seq, id.client_id, session.acked_below, session.evicted_upto
            )))));
        }
        Ok(Admission::Apply)
    }

    /// Records the result of applying `id` at log `index`, and forgets what the client has
    /// acknowledged.
    pub fn record(&mut self, id: &RequestId, index: u64, result: Result<Vec<u8>, StateError>) {
        let session = self.sessions.entry(id.client_id).or_default();
        self.by_last_index
            .remove(&(session.last_index, id.client_id));
        session.last_index = index;
        session.acked_below = session.acked_below.max(id.first_unacked);
        session.results.insert(id.seq, result);
        session.results = session.results.split_off(&session.acked_below);
        while session.results.len() > self.limits.max_results_per_session {
            if let Some((seq, _)) = session.results.pop_first() {
                session.evicted_upto = session.evicted_upto.max(seq);
            }
        }
        self.by_last_index.insert((index, id.client_id));
        while self.sessions.len() > self.limits.max_sessions {
            let Some((_, victim)) = self.by_last_index.pop_first() else {
                break;
            };
            self.sessions.remove(&victim);
        }
    }

    /// Replaces the result recorded for `id`, if it is still retained: a batch of entries
    /// records each in log order first (so admission sees what sequential application would)
    /// and fills in the results once the batch ran.
    pub fn set_result(&mut self, id: &RequestId, result: Result<Vec<u8>, StateError>) {
        if let Some(r) = self
            .sessions
            .get_mut(&id.client_id)
            .and_then(|s| s.results.get_mut(&id.seq))
        {
            *r = result;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(client_id: u64, seq: u64, first_unacked: u64) -> RequestId {
        RequestId {
            client_id,
            seq,
            first_unacked,
        }
    }

    #[test]
    fn a_retried_write_returns_the_original_result() {
        let mut s = ClientSessions::new(SessionLimits::default());
        assert_eq!(s.admit(&id(7, 1, 1)).unwrap(), Admission::Apply);
        s.record(&id(7, 1, 1), 10, Ok(b"first".to_vec()));
        assert_eq!(
            s.admit(&id(7, 1, 1)).unwrap(),
            Admission::Duplicate(Ok(b"first".to_vec()))
        );
        assert_eq!(s.admit(&id(7, 2, 1)).unwrap(), Admission::Apply);
    }

    #[test]
    fn pipelined_writes_keep_every_unacked_result() {
        let mut s = ClientSessions::new(SessionLimits::default());
        for seq in 1..=3 {
            s.record(&id(1, seq, 1), 10 + seq, Ok(vec![seq as u8]));
        }
        for seq in 1..=3 {
            assert_eq!(
                s.admit(&id(1, seq, 1)).unwrap(),
                Admission::Duplicate(Ok(vec![seq as u8]))
            );
        }
    }

    #[test]
    fn acknowledged_results_are_dropped_and_a_late_retry_is_rejected_not_reapplied() {
        let mut s = ClientSessions::new(SessionLimits::default());
        s.record(&id(1, 1, 1), 1, Ok(vec![1]));
        s.record(&id(1, 2, 2), 2, Ok(vec![2]));
        match s.admit(&id(1, 1, 1)).unwrap() {
            Admission::Duplicate(Err(StateError::Rejected(_))) => {}
            other => panic!("expected a rejected duplicate, got {other:?}"),
        }
    }

    #[test]
    fn pipelined_writes_applied_out_of_order_are_each_applied_once() {
        let mut s = ClientSessions::new(SessionLimits::default());
        // Writes 1 and 2 in flight; 2 reaches the log first (e.g. 1 was resent after a
        // reconnect): 1 is still new, and both retries return their own results.
        s.record(&id(1, 2, 1), 10, Ok(vec![2]));
        assert_eq!(s.admit(&id(1, 1, 1)).unwrap(), Admission::Apply);
        s.record(&id(1, 1, 1), 11, Ok(vec![1]));
        assert_eq!(
            s.admit(&id(1, 1, 1)).unwrap(),
            Admission::Duplicate(Ok(vec![1]))
        );
        assert_eq!(
            s.admit(&id(1, 2, 1)).unwrap(),
            Admission::Duplicate(Ok(vec![2]))
        );
    }

    #[test]
    fn a_write_whose_result_was_evicted_is_rejected_not_reapplied() {
        let mut s = ClientSessions::new(SessionLimits {
            max_sessions: 8,
            max_results_per_session: 2,
        });
        for seq in 1..=3 {
            s.record(&id(1, seq, 1), seq, Ok(vec![]));
        }
        assert!(matches!(
            s.admit(&id(1, 1, 1)).unwrap(),
            Admission::Duplicate(Err(StateError::Rejected(_)))
        ));
        assert_eq!(s.admit(&id(1, 4, 1)).unwrap(), Admission::Apply);
    }

    #[test]
    fn eviction_removes_the_session_written_longest_ago() {
        let mut s = ClientSessions::new(SessionLimits {
            max_sessions: 2,
            max_results_per_session: 8,
        });
        s.record(&id(1, 1, 1), 1, Ok(vec![]));
        s.record(&id(2, 1, 1), 2, Ok(vec![]));
        s.record(&id(1, 2, 1), 3, Ok(vec![]));
        s.record(&id(3, 1, 1), 4, Ok(vec![]));
        assert_eq!(s.len(), 2);
        // Client 2 was evicted: its write 1 looks new again (documented bound), client 1 is kept.
        assert_eq!(s.admit(&id(2, 1, 1)).unwrap(), Admission::Apply);
        assert!(matches!(
            s.admit(&id(1, 2, 1)).unwrap(),
            Admission::Duplicate(Ok(_))
        ));
    }

    #[test]
    fn malformed_request_ids_are_invalid_arguments() {
        let s = ClientSessions::new(SessionLimits::default());
        for bad in [id(1, 0, 0), id(1, 3, 4), id(1, 1, 0)] {
            assert!(matches!(s.admit(&bad), Err(StateError::InvalidArgument(_))));
        }
    }
}
