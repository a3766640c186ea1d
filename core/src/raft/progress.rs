//! The leader's view of one follower's replication: match/next indexes, the probe / replicate /
//! snapshot state machine, and the bounded in-flight window of pipelined AppendEntries.

use std::collections::VecDeque;

use super::message::Index;

/// Replication mode of one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Where the follower's log matches is unknown: one AppendEntries at a time.
    Probe,
    /// Logs match up to `matched`: AppendEntries are pipelined within the window.
    Replicate,
    /// The follower needs a snapshot; chunks are sent one at a time.
    Snapshot,
}

/// Per-follower replication state kept by the leader.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Highest index known durable on the follower and matching the leader's log.
    pub matched: Index,
    /// Next index to send.
    pub next: Index,
    pub state: ProgressState,
    /// Probe: an AppendEntries is outstanding (paused until an answer or a retry timer).
    pub probe_sent: bool,
    /// Last index and byte size of each AppendEntries in flight (Replicate).
    inflight: VecDeque<(Index, u64)>,
    inflight_bytes: u64,
    /// When the leader last heard from this follower (leader's clock). Check-quorum and the
    /// catch-up tests ask whether that was within an election timeout *of now*: a flag set before
    /// a stall would vouch for a follower the leader has not heard from for seconds.
    pub last_heard: u64,
    /// Time of the last message sent that expects an answer, or of the last progress.
    pub last_send: u64,
    /// Last heartbeat round the follower acknowledged.
    pub acked_round: u64,
    /// Snapshot state: the snapshot being sent and the offset the follower acknowledged.
    pub snap_index: Index,
    pub snap_offset: u64,
}

impl Progress {
    pub fn new(next: Index, now: u64) -> Self {
        Self {
            matched: 0,
            next,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            last_heard: now,
            last_send: now,
            acked_round: 0,
            snap_index: 0,
            snap_offset: 0,
        }
    }

    /// Heard from within `window` before `now`.
    pub fn heard_within(&self, now: u64, window: u64) -> bool {
        now < self.last_heard.saturating_add(window)
    }

    fn reset(&mut self, state: ProgressState) {
        self.state = state;
        self.probe_sent = false;
        self.inflight.clear();
        self.inflight_bytes = 0;
    }

    /// Probes from just past what the follower is known to hold: after a snapshot, past the
    /// snapshot (or where it already got to); otherwise right after its match.
    pub fn become_probe(&mut self) {
        let past_match = self.matched + 1;
        let next = if self.state == ProgressState::Snapshot {
            self.next.max(self.snap_index + 1)
        } else {
            past_match
        };
        self.reset(ProgressState::Probe);
        self.next = next.max(past_match);
    }

    pub fn become_replicate(&mut self) {
        self.reset(ProgressState::Replicate);
        self.next = self.matched + 1;
    }

    pub fn become_snapshot(&mut self, snap_index: Index) {
        self.reset(ProgressState::Snapshot);
        self.snap_index = snap_index;
        self.snap_offset = 0;
    }

    /// Whether another AppendEntries may be sent now.
    pub fn can_send(&self, max_msgs: usize, max_bytes: u64) -> bool {
        match self.state {
            ProgressState::Probe => !self.probe_sent,
            ProgressState::Replicate => {
                self.inflight.len() < max_msgs && self.inflight_bytes < max_bytes
            }
            ProgressState::Snapshot => false,
        }
    }

    /// Records an AppendEntries carrying entries up to `last` (`bytes` long) as sent.
    pub fn on_sent(&mut self, last: Index, bytes: u64, has_entries: bool, now: u64) {
        match self.state {
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Replicate if has_entries => {
                self.next = last + 1;
                self.inflight.push_back((last, bytes));
                self.inflight_bytes += bytes;
            }
            _ => {}
        }
        self.last_send = now;
    }

    /// A successful response: the follower durably matches up to `index`. Returns whether
    /// `matched` advanced. Out-of-order and duplicate responses only ever move it forward.
    pub fn on_success(&mut self, index: Index, now: u64) -> bool {
        let advanced = index > self.matched;
        if advanced {
            self.matched = index;
            self.last_send = now;
        }
        self.next = self.next.max(index + 1);
        while let Some(&(last, bytes)) = self.inflight.front() {
            if last > self.matched {
                break;
            }
            self.inflight.pop_front();
            self.inflight_bytes -= bytes;
        }
        self.probe_sent = false;
        debug_assert!(
            self.matched < self.next,
            "match {} >= next {}",
            self.matched,
            self.next
        );
        advanced
    }

    /// A rejection of `rejected` (the `prev_index` sent); `hint` is the leader-side index the
    /// follower's log may match up to. Returns false for a stale rejection.
    pub fn on_reject(&mut self, rejected: Index, hint: Index) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.matched {
                return false;
            }
            let old_next = self.next;
            self.become_probe();
            self.next = (hint + 1).min(rejected).min(old_next).max(self.matched + 1);
            return true;
        }
        if self.next == 0 || rejected != self.next - 1 {
            return false;
        }
        self.next = (hint + 1).min(rejected).max(self.matched + 1);
        self.probe_sent = false;
        true
    }

    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds_pipelined_sends_by_count_and_bytes() {
        let mut p = Progress::new(1, 0);
        p.become_replicate();
        for i in 1..=3 {
            assert!(p.can_send(3, 1000));
            p.on_sent(i, 10, true, 0);
        }
        assert!(!p.can_send(3, 1000));
        assert!(p.on_success(2, 1));
        assert!(p.can_send(3, 1000));
        assert_eq!(p.inflight_len(), 1);
        let mut q = Progress::new(1, 0);
        q.become_replicate();
        q.on_sent(1, 600, true, 0);
        q.on_sent(2, 600, true, 0);
        assert!(!q.can_send(10, 1000));
    }

    #[test]
    fn become_probe_table() {
        // (state, matched, next, snap_index) → next when probing
        let rows = [
            (ProgressState::Replicate, 5, 9, 0, 6),
            (ProgressState::Probe, 0, 4, 0, 1),
            (ProgressState::Snapshot, 2, 3, 10, 11),
            (ProgressState::Snapshot, 4, 8, 1, 8),
            (ProgressState::Snapshot, 4, 2, 1, 5),
        ];
        for (state, matched, next, snap_index, want) in rows {
            let mut p = Progress::new(next, 0);
            p.state = state;
            p.matched = matched;
            p.snap_index = snap_index;
            p.probe_sent = true;
            p.become_probe();
            assert_eq!(p.state, ProgressState::Probe);
            assert_eq!(
                p.next, want,
                "{state:?} matched {matched} next {next} snap {snap_index}"
            );
            assert!(!p.probe_sent);
        }
    }

    #[test]
    fn sends_and_acknowledgements_keep_the_window_exact() {
        let mut p = Progress::new(1, 0);
        p.on_sent(4, 10, true, 7);
        assert!(!p.can_send(8, 1000), "one probe at a time");
        assert_eq!((p.next, p.inflight_len(), p.last_send), (1, 0, 7));
        p.become_replicate();
        p.on_sent(3, 10, false, 8);
        assert_eq!(
            (p.next, p.inflight_len()),
            (1, 0),
            "an empty append fills no window"
        );
        p.on_sent(5, 10, true, 9);
        assert_eq!((p.next, p.inflight_len()), (6, 1));
        assert!(
            !p.can_send(8, 10),
            "the byte window is full at exactly its size"
        );
        assert!(p.can_send(8, 11));
        assert!(p.on_success(5, 10));
        assert_eq!(
            p.inflight_len(),
            0,
            "the send ending at the match is acknowledged"
        );
        assert!(p.can_send(8, 1), "and its bytes are free again");
        assert!(!p.on_success(5, 11), "a duplicate does not advance");
    }

    #[test]
    fn a_probe_rejection_backs_off_to_just_past_the_hint() {
        let mut p = Progress::new(8, 0);
        assert!(p.on_reject(7, 4));
        assert_eq!(p.next, 5);
        assert!(!p.probe_sent);
    }

    #[test]
    fn become_replicate_sends_right_after_the_match() {
        let mut p = Progress::new(9, 0);
        p.matched = 5;
        p.become_replicate();
        assert_eq!((p.state, p.next), (ProgressState::Replicate, 6));
    }

    #[test]
    fn become_snapshot_stops_appends_until_the_snapshot_is_done() {
        let mut p = Progress::new(3, 0);
        p.become_replicate();
        p.on_sent(4, 10, true, 0);
        p.become_snapshot(7);
        assert_eq!(
            (p.state, p.snap_index, p.snap_offset),
            (ProgressState::Snapshot, 7, 0)
        );
        assert_eq!(p.inflight_len(), 0);
        assert!(!p.can_send(8, 1000));
    }

    #[test]
    fn heard_within_is_a_half_open_window() {
        let mut p = Progress::new(1, 0);
        p.last_heard = 100;
        assert!(p.heard_within(149, 50));
        assert!(!p.heard_within(150, 50));
        assert!(p.heard_within(100, 1));
        assert!(!p.heard_within(100, 0));
    }

    #[test]
    fn reordered_successes_never_move_match_backwards() {
        let mut p = Progress::new(1, 0);
        p.become_replicate();
        p.on_sent(5, 1, true, 0);
        p.on_sent(9, 1, true, 0);
        assert!(p.on_success(9, 1));
        assert!(!p.on_success(5, 2));
        assert_eq!(p.matched, 9);
        assert_eq!(p.next, 10);
    }

    #[test]
    fn stale_reject_in_replicate_is_ignored_and_fresh_one_backs_off_to_hint() {
        let mut p = Progress::new(1, 0);
        p.become_replicate();
        p.on_success(4, 0);
        p.on_sent(10, 1, true, 0);
        assert!(!p.on_reject(3, 0));
        assert!(p.on_reject(8, 6));
        assert_eq!(p.state, ProgressState::Probe);
        assert_eq!(p.next, 7);
        // Probe: only a rejection of exactly next-1 counts.
        assert!(!p.on_reject(8, 2));
        assert!(p.on_reject(6, 2));
        assert_eq!(p.next, 5, "never below matched + 1");
    }
}
