//! Tunables of the consensus core, with validated defaults. Times are milliseconds of the
//! host's monotonic clock as passed to [`super::RaftNode::tick`].

use super::RaftError;
use super::message::NodeId;

/// Configuration of one [`super::RaftNode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This server's id (non-zero).
    pub id: NodeId,
    /// Seed of the internal PRNG (randomized election timeouts); the core is deterministic given
    /// its seed and its inputs.
    pub seed: u64,
    /// Idle leader sends a heartbeat round this often.
    pub heartbeat_interval: u64,
    /// Minimum election timeout; the actual one is drawn from `[t, 2t)` after every reset. Also the
    /// check-quorum period and the leader-stickiness (lease) window of followers.
    pub election_timeout: u64,
    /// Upper bound on how far two servers' clocks may drift apart within one election timeout;
    /// a lease read is valid until `round sent + election_timeout - max_clock_drift`.
    pub max_clock_drift: u64,
    /// Run a pre-vote round before incrementing the term.
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum within an election timeout steps down.
    pub check_quorum: bool,
    /// Serve lease reads (requires `check_quorum`).
    pub lease_reads: bool,
    /// At most this many AppendEntries in flight per follower.
    pub max_inflight_msgs: usize,
    /// At most this many entry bytes in flight per follower.
    pub max_inflight_bytes: u64,
    /// At most this many entry bytes in one AppendEntries (at least one entry is always sent).
    pub max_append_bytes: u64,
    /// At most this many committed-entry bytes handed out per [`super::Ready`].
    pub max_apply_bytes: u64,
    /// Size of one InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Out-of-order AppendEntries a follower keeps while waiting for the gap to fill.
    pub max_stashed_appends: usize,
    /// Maximum queued read requests on the leader.
    pub max_pending_reads: usize,
    /// A learner is promoted once its match index is within this many entries of the leader's.
    pub catchup_lag: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            id: 1,
            seed: 0,
            heartbeat_interval: 100,
            election_timeout: 1000,
            max_clock_drift: 100,
            pre_vote: true,
            check_quorum: true,
            lease_reads: true,
            max_inflight_msgs: 64,
            max_inflight_bytes: 8 << 20,
            max_append_bytes: 1 << 20,
            max_apply_bytes: 8 << 20,
            snapshot_chunk_bytes: 1 << 20,
            max_stashed_appends: 64,
            max_pending_reads: 4096,
            catchup_lag: 64,
        }
    }
}

impl Config {
    /// Checks the limits and their relations.
    pub fn validate(&self) -> Result<(), RaftError> {
        let bad = |why: &str| Err(RaftError::InvalidConfig(why.to_string()));
        if self.id == 0 {
            return bad("id must be non-zero");
        }
        if self.heartbeat_interval == 0 {
            return bad("heartbeat_interval must be > 0");
        }
        if self.election_timeout < 3 * self.heartbeat_interval {
            return bad("election_timeout must be >= 3 * heartbeat_interval");
        }
        if self.max_clock_drift >= self.election_timeout / 2 {
            return bad("max_clock_drift must be < election_timeout / 2");
        }
        if self.lease_reads && !self.check_quorum {
            return bad("lease_reads requires check_quorum");
        }
        if self.max_inflight_msgs == 0 || self.max_inflight_bytes == 0 {
            return bad("the in-flight window must allow at least one message");
        }
        if self.max_append_bytes == 0 || self.max_apply_bytes == 0 || self.snapshot_chunk_bytes == 0
        {
            return bad("byte limits must be > 0");
        }
        if self.max_pending_reads == 0 {
            return bad("max_pending_reads must be > 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn invalid_relations_are_rejected() {
        let bad = [
            Config {
                id: 0,
                ..Config::default()
            },
            Config {
                heartbeat_interval: 0,
                ..Config::default()
            },
            Config {
                election_timeout: 200,
                ..Config::default()
            },
            Config {
                max_clock_drift: 600,
                ..Config::default()
            },
            Config {
                check_quorum: false,
                ..Config::default()
            },
            Config {
                max_inflight_msgs: 0,
                ..Config::default()
            },
            Config {
                snapshot_chunk_bytes: 0,
                ..Config::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    /// Each limit at its boundary: the last valid value and the first invalid one, each limit
    /// alone (the others stay at their valid defaults).
    #[test]
    fn boundaries_table() {
        let timing = |hb, et, drift| Config {
            heartbeat_interval: hb,
            election_timeout: et,
            max_clock_drift: drift,
            ..Config::default()
        };
        let d = Config::default;
        let table: Vec<(&str, Config, bool)> = vec![
            (
                "election timeout exactly 3 heartbeats",
                timing(100, 300, 10),
                true,
            ),
            (
                "election timeout below 3 heartbeats",
                timing(100, 299, 10),
                false,
            ),
            (
                "drift just under half the timeout",
                timing(100, 300, 149),
                true,
            ),
            ("drift at half the timeout", timing(100, 300, 150), false),
            (
                "no lease reads without check-quorum is fine",
                Config {
                    lease_reads: false,
                    check_quorum: false,
                    ..d()
                },
                true,
            ),
            (
                "lease reads need check-quorum",
                Config {
                    check_quorum: false,
                    ..d()
                },
                false,
            ),
            (
                "zero in-flight messages",
                Config {
                    max_inflight_msgs: 0,
                    ..d()
                },
                false,
            ),
            (
                "zero in-flight bytes",
                Config {
                    max_inflight_bytes: 0,
                    ..d()
                },
                false,
            ),
            (
                "one in-flight message and byte",
                Config {
                    max_inflight_msgs: 1,
                    max_inflight_bytes: 1,
                    ..d()
                },
                true,
            ),
            (
                "zero append bytes",
                Config {
                    max_append_bytes: 0,
                    ..d()
                },
                false,
            ),
            (
                "zero apply bytes",
                Config {
                    max_apply_bytes: 0,
                    ..d()
                },
                false,
            ),
            (
                "zero snapshot chunk",
                Config {
                    snapshot_chunk_bytes: 0,
                    ..d()
                },
                false,
            ),
            (
                "one byte each",
                Config {
                    max_append_bytes: 1,
                    max_apply_bytes: 1,
                    snapshot_chunk_bytes: 1,
                    ..d()
                },
                true,
            ),
            (
                "zero pending reads",
                Config {
                    max_pending_reads: 0,
                    ..d()
                },
                false,
            ),
            (
                "one pending read",
                Config {
                    max_pending_reads: 1,
                    ..d()
                },
                true,
            ),
        ];
        for (what, cfg, valid) in table {
            assert_eq!(cfg.validate().is_ok(), valid, "{what}: {cfg:?}");
        }
    }
}
