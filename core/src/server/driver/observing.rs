//! Observer replication in the driver (the rules are the core's, [`crate::raft::observer`]):
//!
//! - **Parent side** (any node): a child's `Pull` is answered from the core's log, never past
//!   the commit index; when nothing is committed at its index yet, it is parked (a long poll)
//!   and answered as soon as the commit reaches it or its wait ends. `PullSnapshot` sends a
//!   chunk of the latest snapshot.
//! - **Child side** (an observer): the [`Puller`] says what to ask which parent; the link task
//!   (`server/observer_link.rs`) carries it; the answer goes into the core, whose `Ready`s
//!   store and apply it exactly as a follower's. Pulls pause while the writer is far behind, so
//!   memory stays bounded. The observer registers itself with the leader until its
//!   registration is in the applied metadata.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Conn, Driver, Report, reply};
use crate::client::protocol::{
    MAX_PULL_BYTES, MAX_PULL_WAIT_MS, PULL_SNAPSHOT_CHUNK, ReplyBody, RequestBody,
};
use crate::raft::Index;
use crate::raft::observer::{PullAnswer, PullRequest, Puller};
use crate::server::observer_link::{self, LinkJob, LinkResult};

/// Most pulls one node holds parked at a time (further ones are answered "not yet" at once).
const MAX_PARKED_PULLS: usize = 4096;
/// Entries an observer may hold appended but not yet durable before it pauses pulling.
const MAX_UNPERSISTED: Index = 16_384;
/// How long a child's pull waits at its parent for a new entry.
const PULL_WAIT_MS: u64 = 2_000;
/// Pause after every parent failed in a row, and between registration attempts.
const RETRY_MS: u64 = 200;

/// A child's pull waiting for the commit index to reach `from`.
pub(super) struct ParkedPull {
    conn: Conn,
    req: u64,
    from: Index,
    max_bytes: u64,
    until: Instant,
}

/// This node's pulling, while it is an observer.
pub(super) struct Observing {
    puller: Puller,
    parents: Vec<SocketAddr>,
    link: mpsc::UnboundedSender<LinkJob>,
    /// The request in flight (what its answer is for).
    in_flight: Option<PullRequest>,
    /// The leader's address as the last parent answer named it.
    pub(super) leader_hint: Option<String>,
    registering: bool,
    register_at: u64,
}

/// What the link task reports, for [`Driver::on_pulled`].
pub(crate) struct Pulled(LinkResult);

impl Driver {
    /// `Pull` from a child: answered now, or parked until something commits at `from`.
    pub(super) fn handle_pull(
        &mut self,
        conn: Conn,
        req: u64,
        from: Index,
        max_bytes: u64,
        wait_ms: u64,
    ) {
        let max_bytes = max_bytes.clamp(1, MAX_PULL_BYTES);
        let answer = self.raft.serve_pull(from, max_bytes);
        if matches!(answer, PullAnswer::NotYet { .. })
            && wait_ms > 0
            && self.parked_pulls.len() < MAX_PARKED_PULLS
        {
            let wait = Duration::from_millis(wait_ms.min(MAX_PULL_WAIT_MS));
            self.parked_pulls.push(ParkedPull {
                conn,
                req,
                from,
                max_bytes,
                until: Instant::now() + wait,
            });
            return;
        }
        self.answer_pull(&conn, req, answer);
    }

    fn answer_pull(&self, conn: &Conn, req: u64, answer: PullAnswer) {
        let body = ReplyBody::Pulled {
            answer,
            leader: self.leader_hint(),
        };
        reply(conn, req, Ok(body), self.applied());
    }

    /// Answers the parked pulls whose index committed or whose wait ended.
    pub(super) fn drive_parked_pulls(&mut self) {
        if self.parked_pulls.is_empty() {
            return;
        }
        let commit = self.raft.status().commit;
        let now = Instant::now();
        let parked = std::mem::take(&mut self.parked_pulls);
        for p in parked {
            if p.from <= commit || now >= p.until || self.failed {
                let answer = self.raft.serve_pull(p.from, p.max_bytes);
                self.answer_pull(&p.conn, p.req, answer);
            } else {
                self.parked_pulls.push(p);
            }
        }
    }

    /// `PullSnapshot` from a child fetching this node's state.
    pub(super) fn handle_pull_snapshot(&mut self, conn: Conn, req: u64, index: Index, offset: u64) {
        let result = match self.raft.serve_snapshot(index, offset, PULL_SNAPSHOT_CHUNK) {
            Some(piece) => Ok(ReplyBody::SnapshotPiece(piece)),
            None => Err(crate::api::Error::new(
                crate::api::ErrorKind::Unavailable,
                format!(
                    "node {} cannot read its snapshot now (none yet, or being replaced)",
                    self.cfg.node_id
                ),
            )),
        };
        reply(&conn, req, result, self.applied());
    }

    /// The parents this observer pulls from: its configured ones, else the voters.
    fn parents(&self) -> Vec<SocketAddr> {
        if !self.cfg.parents.is_empty() {
            return self.cfg.parents.clone();
        }
        let me = self.cfg.node_id;
        self.raft
            .membership()
            .voters
            .iter()
            .filter(|&&id| id != me)
            .filter_map(|id| self.peer_addrs.get(id).copied())
            .collect()
    }

    /// Once per pass: start or stop pulling with the standing, and send the next request.
    pub(super) fn drive_observer(&mut self) {
        if self.standing != super::Standing::Observer || self.failed {
            if self.observing.take().is_some() {
                tracing::info!(node = self.cfg.node_id, "stopped pulling: a member now");
            }
            return;
        }
        if self.observing.is_none() {
            let parents = self.parents();
            if parents.is_empty() {
                return;
            }
            tracing::info!(
                node = self.cfg.node_id,
                ?parents,
                "observing: pulling from parents"
            );
            // The members' addresses (the address book holds only those added at run time):
            // to answer a leader once this observer is converted to a voter.
            tokio::spawn(super::membership::ask_for_addresses(
                self.cfg.node_id,
                self.cfg.cluster_id,
                parents.clone(),
                self.report_tx.clone(),
            ));
            let tx = self.report_tx.clone();
            let link =
                observer_link::spawn(self.cfg.net_with_cluster(), self.cfg.node_id, move |r| {
                    tx.send(Report::Pulled(Pulled(r))).is_ok()
                });
            self.observing = Some(Observing {
                puller: Puller::new(parents.len(), self.cfg.node_id, RETRY_MS),
                parents,
                link,
                in_flight: None,
                leader_hint: None,
                registering: false,
                register_at: 0,
            });
        }
        self.drive_registration();
        let now = self.now();
        let s = self.raft.status();
        if s.last_index.saturating_sub(s.persisted_index) > MAX_UNPERSISTED {
            return;
        }
        let Some(o) = self.observing.as_mut() else {
            return;
        };
        let Some(request) = o.puller.next_request(now, s.last_index) else {
            return;
        };
        let addr = o.parents[request.parent()].to_string();
        let (body, timeout) = match request {
            PullRequest::Entries { from, .. } => (
                RequestBody::Pull {
                    from,
                    max_bytes: MAX_PULL_BYTES,
                    wait_ms: PULL_WAIT_MS,
                },
                Duration::from_millis(PULL_WAIT_MS + 5_000),
            ),
            PullRequest::Snapshot { index, offset, .. } => (
                RequestBody::PullSnapshot { index, offset },
                Duration::from_secs(10),
            ),
        };
        o.in_flight = Some(request);
        if o.link
            .send(LinkJob {
                addr,
                body,
                timeout,
            })
            .is_err()
        {
            o.in_flight = None;
            o.puller.on_failure(now);
        }
    }

    /// The answer (or failure) of the request in flight.
    pub(super) fn on_pulled(&mut self, Pulled(result): Pulled) {
        let now = self.now();
        let Some(mut o) = self.observing.take() else {
            return;
        };
        let Some(request) = o.in_flight.take() else {
            self.observing = Some(o);
            return;
        };
        match (request, result) {
            (PullRequest::Entries { from, .. }, Ok(ReplyBody::Pulled { answer, leader })) => {
                if leader.is_some() {
                    o.leader_hint = leader;
                }
                let outcome = self.raft.pulled(from, answer);
                o.puller.on_entries(outcome);
            }
            (PullRequest::Snapshot { .. }, Ok(ReplyBody::SnapshotPiece(piece))) => {
                let index = piece.meta.index;
                match self.raft.pulled_snapshot(piece) {
                    Some(ack) if ack.skipped => o.puller.on_snapshot(index, 0, true),
                    Some(ack) => o.puller.on_snapshot(index, ack.next_offset, ack.installed),
                    None => o.puller.on_failure(now),
                }
            }
            (_, Ok(other)) => {
                tracing::warn!(node = self.cfg.node_id, reply = ?std::mem::discriminant(&other), "unexpected answer to a pull");
                o.puller.on_failure(now);
            }
            (_, Err(e)) => {
                tracing::debug!(node = self.cfg.node_id, reason = %e, "pull failed");
                o.puller.on_failure(now);
            }
        }
        self.observing = Some(o);
    }

    /// Registers this observer with the leader until the applied metadata lists it.
    fn drive_registration(&mut self) {
        let me = self.cfg.node_id;
        let Some(addr) = self.addrs.get(&me).cloned() else {
            return;
        };
        let listed = self.observers.get(&me).map(|a| a.to_string()) == Some(addr.clone());
        let now = self.now();
        let Some(o) = self.observing.as_mut() else {
            return;
        };
        if listed || o.registering || now < o.register_at {
            return;
        }
        o.registering = true;
        let seeds: Vec<String> = o.parents.iter().map(|a| a.to_string()).collect();
        let net = self.cfg.net_with_cluster();
        let tx = self.report_tx.clone();
        tokio::spawn(async move {
            let result = observer_link::register(seeds, net, me, addr).await;
            let _ = tx.send(Report::Registered(result));
        });
    }

    pub(super) fn on_registered(&mut self, result: Result<(), crate::api::Error>) {
        let retry_at = self.now() + 5 * RETRY_MS;
        if let Some(o) = self.observing.as_mut() {
            o.registering = false;
            if let Err(e) = result {
                tracing::info!(node = self.cfg.node_id, reason = %e, "observer registration failed; retrying");
                o.register_at = retry_at;
            } else {
                // Listed once the parent's log brings the entry; until then, do not repeat.
                o.register_at = retry_at + 10_000;
            }
        }
    }
}
