//! Leadership on request: `TransferLeader` (the seed's algorithm — writes wait, the target
//! catches up, is told to campaign, the result is verified, and the hand-off is retried until
//! the deadline) and `SetPreferredLeader` (recorded in the replicated [`ClusterMeta`]; the core
//! moves leadership to it whenever it is alive and caught up).
//!
//! [`ClusterMeta`]: crate::state::cluster_meta::ClusterMeta

use super::errors::{invalid, raft_error};
use super::membership::DEFAULT_ADMIN_TIMEOUT_MS;
use super::{Conn, Driver, reply};
use crate::api::{Error, ErrorKind};
use crate::client::protocol::{MAX_ADMIN_TIMEOUT_MS, ReplyBody};
use crate::raft::Role;

/// A `TransferLeader` in progress on this (old) leader.
pub(super) struct Transfer {
    conn: Conn,
    req: u64,
    to: u64,
    deadline: u64,
    timeout_ms: u64,
}

impl Transfer {
    pub(super) fn fail(self, e: &Error) {
        reply(&self.conn, self.req, Err(e.clone()), 0);
    }
}

impl Driver {
    pub(super) fn handle_transfer_leader(
        &mut self,
        conn: Conn,
        req: u64,
        to: u64,
        timeout_ms: u64,
    ) {
        let applied = self.applied();
        if self.raft.role() != Role::Leader {
            return reply(&conn, req, Err(self.not_leader()), applied);
        }
        if timeout_ms > MAX_ADMIN_TIMEOUT_MS {
            let e = invalid(format!(
                "timeout_ms {timeout_ms} exceeds {MAX_ADMIN_TIMEOUT_MS}"
            ));
            return reply(&conn, req, Err(e), applied);
        }
        if to == self.cfg.node_id {
            return reply(&conn, req, Ok(ReplyBody::Done), applied);
        }
        if !self.raft.membership().voters.contains(&to) || self.raft.membership().is_joint() {
            let e = invalid(format!(
                "node {to} is not a voter of a settled configuration"
            ));
            return reply(&conn, req, Err(e), applied);
        }
        if self.transfer.is_some() {
            let e = invalid("a leader transfer is already in progress");
            return reply(&conn, req, Err(e), applied);
        }
        let now = self.now();
        if let Err(e) = self.raft.transfer_leader(to, now) {
            return reply(&conn, req, Err(raft_error(e, self.leader_hint())), applied);
        }
        tracing::info!(node = self.cfg.node_id, to, "leader transfer started");
        let timeout_ms = if timeout_ms == 0 {
            DEFAULT_ADMIN_TIMEOUT_MS
        } else {
            timeout_ms
        };
        self.pending_count += 1;
        self.transfer = Some(Transfer {
            conn,
            req,
            to,
            deadline: now + timeout_ms,
            timeout_ms,
        });
    }

    /// Verifies, retries or ends the transfer in progress; called once per pass.
    pub(super) fn drive_transfer(&mut self) {
        let Some(t) = &self.transfer else {
            return;
        };
        let now = self.now();
        let to = t.to;
        let result = if self.raft.leader() == Some(to) {
            tracing::info!(node = self.cfg.node_id, to, "leader transfer done");
            Some(Ok(ReplyBody::Done))
        } else if now >= t.deadline {
            Some(Err(Error::new(
                ErrorKind::Timeout,
                format!("node {to} did not take over within {} ms", t.timeout_ms),
            )))
        } else if self.raft.role() == Role::Leader {
            // The core gives up a hand-off after an election timeout: try again.
            if self.raft.transfer_target().is_none() {
                match self.raft.transfer_leader(to, now) {
                    Ok(()) => None,
                    Err(e) => Some(Err(raft_error(e, self.leader_hint()))),
                }
            } else {
                None
            }
        } else {
            self.raft.leader().map(|other| {
                Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("node {other} became the leader instead of node {to}"),
                ))
            })
        };
        if let Some(result) = result
            && let Some(t) = self.transfer.take()
        {
            self.pending_count = self.pending_count.saturating_sub(1);
            reply(&t.conn, t.req, result, self.applied());
        }
    }

    /// Checks a `SetPreferredLeader` before it is proposed like any write.
    pub(super) fn check_preferred_leader(&self, node: Option<u64>) -> Result<(), Error> {
        match node {
            Some(id) if !self.raft.membership().voters.contains(&id) => {
                Err(invalid(format!("node {id} is not a voter")))
            }
            _ => Ok(()),
        }
    }
}
