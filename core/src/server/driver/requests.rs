//! Dispatch of a client request to the write path, the read path, watches or the status views,
//! after the node-wide refusals (a failed node, too many pending requests).

use super::{Conn, Driver, reply};
use crate::api::{Error, ErrorKind, QueryConsistency};
use crate::client::protocol::{ClientRequest, EventOptions, ReplyBody, RequestBody};

impl Driver {
    pub(super) fn handle_request(&mut self, conn: Conn, req: ClientRequest) {
        let status_request = matches!(
            req.body,
            RequestBody::Status | RequestBody::StatusWithResources | RequestBody::StatusDetail
        );
        if self.failed && !status_request {
            // `Unavailable`: the client goes on at another node.
            let e = Error::new(
                ErrorKind::Unavailable,
                format!("this node stopped serving: {}", self.fail_reason),
            );
            reply(&conn, req.id, Err(e), self.applied());
            return;
        }
        if let Some(e) = self.standing_error()
            && !status_request
        {
            reply(&conn, req.id, Err(e), self.applied());
            return;
        }
        if self.pending_count >= self.cfg.max_pending_requests {
            let e = Error::new(ErrorKind::Unavailable, "too many pending requests");
            reply(&conn, req.id, Err(e), self.applied());
            return;
        }
        match &req.body {
            RequestBody::Append { .. }
            | RequestBody::AppendBatches { .. }
            | RequestBody::KvWrite { .. }
            | RequestBody::ScalePartitions { .. }
            | RequestBody::SetPreferredLeader { .. }
            | RequestBody::TakeSnapshot
            | RequestBody::RecoverSnapshot { .. }
            | RequestBody::CoordWrite { .. }
            | RequestBody::TxnWrite { .. }
            | RequestBody::SmUpdate { .. }
            | RequestBody::RegisterObserver { .. } => self.handle_write(conn, req),
            RequestBody::Pull {
                from,
                max_bytes,
                wait_ms,
            } => self.handle_pull(conn, req.id, *from, *max_bytes, *wait_ms),
            RequestBody::PullSnapshot { index, offset } => {
                self.handle_pull_snapshot(conn, req.id, *index, *offset)
            }
            RequestBody::KvReadAt { query, index } => {
                self.read_kv_at(conn, req.id, query.clone(), *index)
            }
            RequestBody::LeaseKeepAlive { lease } => self.handle_lease(conn, req.id, *lease, true),
            RequestBody::LeaseTimeToLive { lease } => {
                self.handle_lease(conn, req.id, *lease, false)
            }
            RequestBody::ListSnapshots => {
                let body = ReplyBody::Snapshots(self.snapshot_infos());
                reply(&conn, req.id, Ok(body), self.applied());
            }
            RequestBody::UpdateVoters {
                old,
                new,
                timeout_ms,
            } => {
                let (old, new, timeout_ms) = (old.clone(), new.clone(), *timeout_ms);
                self.handle_update_voters(conn, req.id, &old, &new, timeout_ms);
            }
            RequestBody::SubscribeEvents { sub_id } => {
                self.subscribe_events(conn, req.id, *sub_id, EventOptions::default())
            }
            RequestBody::SubscribeEventsWith { sub_id, options } => {
                self.subscribe_events(conn, req.id, *sub_id, *options)
            }
            RequestBody::TransferLeader {
                node_id,
                timeout_ms,
            } => self.handle_transfer_leader(conn, req.id, *node_id, *timeout_ms),
            RequestBody::Watch {
                watch_id,
                filter,
                from_index,
            } => {
                let (watch_id, filter, from_index) = (*watch_id, filter.clone(), *from_index);
                self.open_watch(conn, req.id, watch_id, filter, from_index);
            }
            RequestBody::Unwatch { watch_id } => {
                self.watches.remove(conn.id(), *watch_id);
                self.events.remove(conn.id(), *watch_id);
                reply(&conn, req.id, Ok(ReplyBody::Done), self.applied());
            }
            RequestBody::AppliedIndex => self.strict_read(conn, req),
            RequestBody::Status => {
                let s = self.node_status();
                reply(&conn, req.id, Ok(ReplyBody::Status(s)), self.applied());
            }
            RequestBody::StatusWithResources => {
                let body = ReplyBody::StatusWithResources {
                    status: Box::new(self.node_status()),
                    resources: self.resources(),
                };
                reply(&conn, req.id, Ok(body), self.applied());
            }
            RequestBody::StatusDetail => {
                let to = super::status_detail::StatusTo::Client { conn, req: req.id };
                self.detailed_status(to);
            }
            RequestBody::ClusterConfiguration => {
                // Only the leader's view is current: a lagging follower's would make a change
                // computed from it (`add_voter` reads the voters first) fail as stale.
                let result = if self.raft.role() == crate::raft::Role::Leader {
                    Ok(ReplyBody::Configuration(self.configuration()))
                } else {
                    Err(self.not_leader())
                };
                reply(&conn, req.id, result, self.applied());
            }
            body => {
                let read = body.read_at().unwrap_or_default();
                match read.consistency {
                    QueryConsistency::Strict => self.strict_read(conn, req),
                    _ => self.local_read(conn, req, read),
                }
            }
        }
    }
}
