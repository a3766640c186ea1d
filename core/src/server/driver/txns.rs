//! Journal transactions on the leader: idle transactions expire by the leader's clock, decided
//! ones are published, and each committer is answered once its entries are visible.
//!
//! - Expiry reuses the [`Lessor`]: a transaction's deadline is its timeout from the moment the
//!   leader last heard of it (create, append, a node starting to lead: plus twice the election
//!   timeout, as leases), moved out by any stall; a passed deadline becomes an `Expire` entry.
//! - Publishing: a transaction whose commit is decided in the applied state gets one publish
//!   record (`server::txn_record`), built from that state. A leader proposes it only after its
//!   term's first entry is applied, and at most once per transaction while it leads: a publish
//!   of an earlier term is then either applied already (the transaction is gone) or can never
//!   commit, so no transaction is ever published twice.
//! - A commit request is answered when the publish record applies, not when the decision does.

use std::collections::{BTreeMap, BTreeSet};

use super::write_path::wall_ms;
use super::{Conn, Driver, reply};
use crate::client::protocol::ReplyBody;
use crate::raft::Role;
use crate::server::command::encode_txn;
use crate::server::lessor::Lessor;
use crate::server::txn_record::encode_publish;
use crate::state::txn::{TxnCommand, TxnOutcome, TxnPhase, TxnRequest};

/// Most expiries and publishes one pass proposes (the rest follow in the next passes).
const MAX_EXPIRIES_PER_PASS: usize = 256;
const MAX_PUBLISHES_PER_PASS: usize = 8;

/// The leader's view of the transactions.
#[derive(Debug)]
pub(super) struct TxnDriver {
    /// Idle deadlines of open transactions while leading.
    lessor: Lessor,
    /// A transaction write (or a snapshot) was applied since the lessor last looked.
    pub changed: bool,
    /// Publishes proposed while leading, not yet applied.
    publishing: BTreeSet<u64>,
    /// Commit requests waiting for their transaction's publish record.
    committers: BTreeMap<u64, Vec<(Conn, u64)>>,
    publish: bool,
    /// `term_start` of the leadership the state above belongs to.
    since: u64,
}

impl TxnDriver {
    pub fn new(lessor: Lessor, publish: bool) -> Self {
        Self {
            lessor,
            changed: false,
            publishing: BTreeSet::new(),
            committers: BTreeMap::new(),
            publish,
            since: u64::MAX,
        }
    }
}

impl Driver {
    /// Keeps expiry and publishing in step with leadership and the applied transactions;
    /// called once per pass.
    pub(super) fn drive_txns(&mut self) {
        let leading = self.raft.role() == Role::Leader && self.applied() >= self.term_start;
        // Not leading, or leading again since the last pass (deposed and re-elected in
        // between): deadlines and proposed publishes belong to the earlier leadership.
        if !leading || self.txns.since != self.term_start {
            if self.txns.lessor.is_leading() {
                self.txns.lessor.demote();
            }
            self.txns.publishing.clear();
            if !leading {
                let applied = self.applied();
                for (_, ws) in std::mem::take(&mut self.txns.committers) {
                    for (conn, req) in ws {
                        reply(&conn, req, Err(self.not_leader()), applied);
                    }
                }
                return;
            }
            self.txns.since = self.term_start;
        }
        let now = self.now();
        if !self.txns.lessor.is_leading() || self.txns.changed {
            let open: Vec<(u64, u64)> = self
                .lock()
                .txns
                .iter()
                .filter(|(_, t)| t.phase == TxnPhase::Open)
                .map(|(tx, t)| (tx, t.timeout_ms))
                .collect();
            if self.txns.lessor.is_leading() {
                self.txns.lessor.sync(now, open);
            } else {
                self.txns.lessor.promote(now, open);
            }
            self.txns.changed = false;
        }
        let due = self.txns.lessor.due(now, MAX_EXPIRIES_PER_PASS);
        if !due.is_empty() {
            let datas = due
                .iter()
                .map(|&tx| {
                    encode_txn(&TxnRequest {
                        id: None,
                        command: TxnCommand::Expire { tx },
                    })
                })
                .collect();
            match self.raft.propose_batch(datas) {
                Ok(_) => {
                    tracing::info!(node = self.cfg.node_id, txs = ?due, "transactions expired")
                }
                Err(e) => {
                    tracing::debug!(reason = %e, "transaction expiry not proposed; judged again");
                    for tx in due {
                        self.txns.lessor.retry(tx);
                    }
                }
            }
        }
        if self.txns.publish {
            self.publish_decided();
        }
    }

    fn publish_decided(&mut self) {
        let ts = wall_ms().max(self.last_ts);
        let records: Vec<(u64, Vec<u8>)> = {
            let m = self.lock();
            m.txns
                .iter()
                .filter(|(tx, t)| {
                    t.phase == TxnPhase::Committing && !self.txns.publishing.contains(tx)
                })
                .take(MAX_PUBLISHES_PER_PASS)
                .map(|(tx, t)| (tx, encode_publish(tx, ts, &t.batches)))
                .collect()
        };
        if records.is_empty() {
            return;
        }
        self.last_ts = ts;
        let txs: Vec<u64> = records.iter().map(|(tx, _)| *tx).collect();
        match self
            .raft
            .propose_batch(records.into_iter().map(|(_, data)| data).collect())
        {
            Ok(_) => {
                tracing::debug!(node = self.cfg.node_id, txs = ?txs, "transactions published");
                self.txns.publishing.extend(txs);
            }
            Err(e) => tracing::debug!(reason = %e, "publish not proposed; tried again"),
        }
    }

    /// An append or completion of `tx` reached this leader: it is not idle.
    pub(super) fn txn_touched(&mut self, tx: u64) {
        let now = self.now();
        self.txns.lessor.keep_alive(tx, now);
    }

    /// A commit of `tx` was decided for the request `(conn, req)`: answers it now if the
    /// entries are visible already, else when the publish record applies.
    pub(super) fn await_publish(&mut self, tx: u64, conn: Conn, req: u64) {
        let committing = self.lock().txns.get(tx).is_some();
        if committing {
            self.txns
                .committers
                .entry(tx)
                .or_default()
                .push((conn, req));
        } else {
            let body = ReplyBody::TxnWritten(TxnOutcome::Committed { tx });
            reply(&conn, req, Ok(body), self.applied());
        }
    }

    /// The publish record of `tx` applied: its committers are answered.
    pub(super) fn on_published(&mut self, tx: u64) {
        self.txns.publishing.remove(&tx);
        let applied = self.applied();
        for (conn, req) in self.txns.committers.remove(&tx).unwrap_or_default() {
            let body = ReplyBody::TxnWritten(TxnOutcome::Committed { tx });
            reply(&conn, req, Ok(body), applied);
        }
    }
}
