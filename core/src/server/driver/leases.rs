//! Leases on the leader: the lessor's deadlines follow the applied lease table, keep-alives
//! and time-to-live answer from them, and each lease whose deadline passed is ended by an
//! `Expire` entry (see [`crate::server::lessor`] for the rules that keep one from ending early).

use super::{Conn, Driver, reply};
use crate::api::{Error, ErrorKind};
use crate::client::protocol::{LeaseStatus, ReplyBody};
use crate::raft::Role;
use crate::server::command::encode_coord;
use crate::server::lessor::Lessor;
use crate::state::coord::{CoordCommand, CoordRequest};

/// Most expiries one pass proposes (the rest follow in the next passes).
const MAX_EXPIRIES_PER_PASS: usize = 256;

/// The lessor for this node's timing: a new leader adds twice the election timeout (the longest
/// a randomized election can take) to every lease; a pass gap over half an election timeout is a
/// stall.
pub(super) fn lessor_for(election_timeout_ms: u64, tick_ms: u64) -> Lessor {
    Lessor::new(
        election_timeout_ms.saturating_mul(2),
        (election_timeout_ms / 2).max(tick_ms.saturating_mul(5)),
    )
}

impl Driver {
    /// Keeps the lessor in step with leadership and the applied leases, and proposes the
    /// expiry of every lease that ran out; called once per pass.
    pub(super) fn drive_leases(&mut self) {
        let leading = self.raft.role() == Role::Leader && self.applied() >= self.term_start;
        // Leading again since the lessor last looked (deposed and re-elected between two
        // passes): its deadlines are beliefs of an earlier leadership; another leader may have
        // renewed leases since. Start afresh, as any new leader.
        if !leading || self.lessor_since != self.term_start {
            if self.lessor.is_leading() {
                self.lessor.demote();
            }
            if !leading {
                return;
            }
        }
        let now = self.now();
        if !self.lessor.is_leading() {
            let leases = self.lease_table();
            self.lessor.promote(now, leases);
            self.lessor_since = self.term_start;
            self.leases_changed = false;
        } else if self.leases_changed {
            let leases = self.lease_table();
            self.lessor.sync(now, leases);
            self.leases_changed = false;
        }
        let due = self.lessor.due(now, MAX_EXPIRIES_PER_PASS);
        if due.is_empty() {
            return;
        }
        let datas = due
            .iter()
            .map(|&lease| {
                encode_coord(&CoordRequest {
                    id: None,
                    command: CoordCommand::Expire { lease },
                })
            })
            .collect();
        match self.raft.propose_batch(datas) {
            Ok(_) => tracing::info!(node = self.cfg.node_id, leases = ?due, "leases expired"),
            Err(e) => {
                tracing::debug!(reason = %e, "lease expiry not proposed; judged again");
                for lease in due {
                    self.lessor.retry(lease);
                }
            }
        }
    }

    fn lease_table(&self) -> Vec<(u64, u64)> {
        self.lock()
            .coord
            .leases()
            .map(|(id, info)| (id, info.ttl_ms))
            .collect()
    }

    /// `LeaseKeepAlive` (`renew`) or `LeaseTimeToLive`, answered by the leader's lessor.
    pub(super) fn handle_lease(&mut self, conn: Conn, req: u64, lease: u64, renew: bool) {
        let applied = self.applied();
        if self.raft.role() != Role::Leader {
            reply(&conn, req, Err(self.not_leader()), applied);
            return;
        }
        // Until this leader leads with its lease table (its term's first entry applied), it
        // cannot tell a live lease from an unknown one.
        self.drive_leases();
        if !self.lessor.is_leading() {
            let e = Error::new(
                ErrorKind::Unavailable,
                "the new leader is still catching up",
            );
            reply(&conn, req, Err(e), applied);
            return;
        }
        let now = self.now();
        // Only a leader no other node can have replaced answers (its raft lease, confirmed by
        // a quorum within an election timeout): a deposed leader that has not noticed yet —
        // paused, partitioned — must not tell a client its lease was renewed. Without lease
        // reads there is no such promise to lean on, and the answer is the lessor's alone.
        if self.cfg.lease_reads && self.raft.lease_expiry().is_none_or(|until| now >= until) {
            let e = Error::new(
                ErrorKind::Unavailable,
                "this leader has not confirmed its leadership within an election timeout; retry",
            );
            reply(&conn, req, Err(e), applied);
            return;
        }
        let remaining = if renew {
            self.lessor.keep_alive(lease, now)
        } else {
            self.lessor.time_to_live(lease, now)
        };
        let result = match remaining {
            Some(r) => {
                let keys = self
                    .lock()
                    .coord
                    .lease(lease)
                    .map(|info| info.keys.iter().cloned().collect())
                    .unwrap_or_default();
                Ok(ReplyBody::Lease(LeaseStatus {
                    lease,
                    ttl_ms: r.ttl_ms,
                    remaining_ms: r.remaining_ms,
                    keys,
                }))
            }
            None => Err(crate::server::apply::state_error(
                crate::state::coord::lease_gone(lease),
            )),
        };
        reply(&conn, req, result, applied);
    }
}
