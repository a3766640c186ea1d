//! Observers: read replicas that *pull* committed entries from a parent (a voter or another
//! observer), so replication fans out in levels without touching the voters' quorum or their
//! replication path. Sans-IO like the rest of the core.
//!
//! The parent side is [`RaftNode::serve_pull`] / [`RaftNode::serve_snapshot`] (answers built
//! from its log, never past its commit index); the child side is [`Puller`] (which parent, what
//! to ask next, when to back off) plus [`RaftNode::pulled`] / [`RaftNode::pulled_snapshot`],
//! which append what a parent sent through the same log-matching rules as AppendEntries.
//!
//! The seed's loop: fetch from the own next index; entries → append, apply, advance; "not yet" →
//! caught up, wait (the parent holds the request until it has more: a long poll); "compacted" →
//! fetch the parent's state in chunks and continue after it. A parent that fails is replaced by
//! the next in the list; a snapshot fetch restarts there from offset 0.
//!
//! [`RaftNode::serve_pull`]: super::RaftNode::serve_pull
//! [`RaftNode::serve_snapshot`]: super::RaftNode::serve_snapshot
//! [`RaftNode::pulled`]: super::RaftNode::pulled
//! [`RaftNode::pulled_snapshot`]: super::RaftNode::pulled_snapshot

use serde::{Deserialize, Serialize};

use super::message::{Entry, Index, NodeId, SnapshotMeta, Term};

/// A parent's answer to "entries from `from`".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullAnswer {
    /// Committed entries starting at the index asked for; `prev_term` is the term of the entry
    /// before them, `commit` the parent's commit index (every entry sent is at or below it).
    Entries {
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
    },
    /// Nothing committed at the index asked for yet.
    NotYet { commit: Index },
    /// The index asked for is behind the parent's log: fetch its state (`snapshot`) first.
    Compacted { snapshot: SnapshotMeta },
}

/// A chunk of a parent's latest snapshot. `meta` may name a newer snapshot than the one asked
/// for (the parent took another meanwhile): then `offset` is 0 and the fetch starts over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPiece {
    pub meta: SnapshotMeta,
    pub offset: u64,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    pub done: bool,
}

/// What the child asks its parent next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullRequest {
    Entries {
        parent: usize,
        from: Index,
    },
    /// A chunk of the snapshot at `index` (0: whichever is latest) from `offset`.
    Snapshot {
        parent: usize,
        index: Index,
        offset: u64,
    },
}

impl PullRequest {
    pub fn parent(&self) -> usize {
        match self {
            PullRequest::Entries { parent, .. } | PullRequest::Snapshot { parent, .. } => *parent,
        }
    }
}

/// What [`RaftNode::pulled`](super::RaftNode::pulled) did with an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullOutcome {
    /// Appended; the log now ends at `last`.
    Appended { last: Index },
    /// Nothing new: the parent had nothing committed after the local log (after its long poll).
    Nothing,
    /// The parent's log is behind the state to fetch.
    FetchState { index: Index },
    /// The answer does not fit this log (a gap, or a different history): ask again elsewhere.
    Mismatch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Entries,
    Snapshot { index: Index, offset: u64 },
}

/// The child's side of the pull loop: one request in flight at a time, parents in a ring.
#[derive(Clone, Debug)]
pub struct Puller {
    parents: usize,
    current: usize,
    want: Want,
    in_flight: bool,
    /// Consecutive failures; a whole ring of them backs off until `retry_at`.
    failures: usize,
    retry_at: u64,
    backoff: u64,
}

impl Puller {
    /// A puller over `parents` parents (at least one), starting at a parent picked from `seed`
    /// (so children spread over their parents); `backoff` is how long to wait, in the host's
    /// time unit, after every parent failed in a row.
    pub fn new(parents: usize, seed: NodeId, backoff: u64) -> Self {
        let parents = parents.max(1);
        Self {
            parents,
            current: (seed as usize) % parents,
            want: Want::Entries,
            in_flight: false,
            failures: 0,
            retry_at: 0,
            backoff,
        }
    }

    pub fn current_parent(&self) -> usize {
        self.current
    }

    pub fn is_fetching_state(&self) -> bool {
        matches!(self.want, Want::Snapshot { .. })
    }

    /// The next request, when none is in flight and no back-off holds at `now`; `last` is the
    /// last index of the local log.
    pub fn next_request(&mut self, now: u64, last: Index) -> Option<PullRequest> {
        if self.in_flight || now < self.retry_at {
            return None;
        }
        self.in_flight = true;
        let parent = self.current;
        Some(match self.want {
            Want::Entries => PullRequest::Entries {
                parent,
                from: last + 1,
            },
            Want::Snapshot { index, offset } => PullRequest::Snapshot {
                parent,
                index,
                offset,
            },
        })
    }

    /// The answer to the request in flight was handled by the core with `outcome`.
    pub fn on_entries(&mut self, outcome: PullOutcome) {
        self.in_flight = false;
        self.failures = 0;
        match outcome {
            PullOutcome::FetchState { index } => self.want = Want::Snapshot { index, offset: 0 },
            // "Not yet" after the parent's long poll: this parent may be the one behind (cut
            // off, or stuck); the next poll goes to the next parent, so a stale parent never
            // holds a child back.
            PullOutcome::Mismatch | PullOutcome::Nothing => self.rotate(),
            PullOutcome::Appended { .. } => {}
        }
    }

    /// A snapshot chunk was taken by the core: continue at `next_offset` of the snapshot at
    /// `index`, or pull entries again once it is `installed`.
    pub fn on_snapshot(&mut self, index: Index, next_offset: u64, installed: bool) {
        self.in_flight = false;
        self.failures = 0;
        self.want = if installed {
            Want::Entries
        } else {
            Want::Snapshot {
                index,
                offset: next_offset,
            }
        };
    }

    /// The request in flight failed (no answer, a refusal, a closed connection) at `now`: go on
    /// with the next parent, backing off once every parent failed in a row.
    pub fn on_failure(&mut self, now: u64) {
        self.in_flight = false;
        self.failures += 1;
        if self.failures >= self.parents {
            self.failures = 0;
            self.retry_at = now.saturating_add(self.backoff);
        }
        self.rotate();
    }

    fn rotate(&mut self) {
        self.current = (self.current + 1) % self.parents;
        if let Want::Snapshot { .. } = self.want {
            // Another parent holds another snapshot: start over with whichever it has.
            self.want = Want::Snapshot {
                index: 0,
                offset: 0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_at_a_time_from_the_next_index() {
        let mut p = Puller::new(2, 1, 100);
        assert_eq!(
            p.next_request(0, 7),
            Some(PullRequest::Entries { parent: 1, from: 8 })
        );
        assert_eq!(p.next_request(0, 7), None, "one in flight");
        p.on_entries(PullOutcome::Appended { last: 9 });
        assert_eq!(
            p.next_request(0, 9),
            Some(PullRequest::Entries {
                parent: 1,
                from: 10
            })
        );
    }

    #[test]
    fn failures_rotate_and_a_whole_ring_backs_off() {
        let mut p = Puller::new(3, 0, 50);
        p.next_request(10, 0);
        p.on_failure(10);
        assert_eq!(p.next_request(10, 0).map(|r| r.parent()), Some(1));
        p.on_failure(10);
        assert_eq!(p.next_request(10, 0).map(|r| r.parent()), Some(2));
        p.on_failure(10);
        assert_eq!(p.next_request(59, 0), None, "backing off until 60");
        assert_eq!(p.next_request(60, 0).map(|r| r.parent()), Some(0));
    }

    #[test]
    fn a_state_fetch_goes_chunk_by_chunk_and_restarts_at_another_parent() {
        let mut p = Puller::new(2, 0, 10);
        p.next_request(0, 0);
        p.on_entries(PullOutcome::FetchState { index: 40 });
        assert_eq!(
            p.next_request(0, 0),
            Some(PullRequest::Snapshot {
                parent: 0,
                index: 40,
                offset: 0
            })
        );
        p.on_snapshot(40, 1024, false);
        assert_eq!(
            p.next_request(0, 0),
            Some(PullRequest::Snapshot {
                parent: 0,
                index: 40,
                offset: 1024
            })
        );
        p.on_failure(0);
        assert_eq!(
            p.next_request(0, 0),
            Some(PullRequest::Snapshot {
                parent: 1,
                index: 0,
                offset: 0
            })
        );
        p.on_snapshot(41, 0, true);
        assert!(!p.is_fetching_state());
        assert_eq!(
            p.next_request(0, 41),
            Some(PullRequest::Entries {
                parent: 1,
                from: 42
            })
        );
    }
}
