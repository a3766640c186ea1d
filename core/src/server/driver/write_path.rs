//! Writes: checked, deduplicated by session, staged into one proposal per pass, proposed, and
//! acknowledged when their `ResponseConfig` level holds.

use std::collections::BTreeSet;

use super::errors::{invalid, raft_error};
use super::{Conn, Driver, Waiter, reply};
use crate::api::{Error, ErrorKind, ResponseConfig};
use crate::client::protocol::{self, ClientRequest, ReplyBody, RequestBody};
use crate::raft::Role;
use crate::server::apply::{self, Outcome};
use crate::server::command::{
    RESERVED_PARTITION_START, SnapshotCommand, encode_coord, encode_kv, encode_meta, encode_scale,
    encode_snapshot_command, encode_txn, encode_user, journal_datas,
};
use crate::server::proposal_batch::{StagedWrite, WriteKind};
use crate::server::user_machines::{self, UserCommand};
use crate::state::cluster_meta::MetaCommand;
use crate::state::session::RequestId;
use crate::state::txn::{TxnCommand, TxnOutcome, TxnRequest};

pub(super) fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Driver {
    /// Answers every write whose acknowledgement condition now holds.
    pub(super) fn complete_waiters(&mut self) {
        // Status first, so whoever sees an acknowledgement sees indices that cover it.
        self.publish();
        let applied = self.applied();
        let durable = self.durable;
        let upto = applied.max(durable);
        if self
            .waiters
            .first_key_value()
            .is_none_or(|(k, _)| *k > upto)
        {
            return;
        }
        let later = self.waiters.split_off(&upto.saturating_add(1));
        let due = std::mem::replace(&mut self.waiters, later);
        for (first, ws) in due {
            let mut keep = Vec::new();
            for w in ws {
                let lost = applied >= w.last
                    && !matches!(self.outcomes.get(&first), Some((t, _)) if *t == w.term);
                let done = match w.response {
                    ResponseConfig::Persistence => durable >= w.last || lost,
                    ResponseConfig::All => (applied >= w.last && durable >= w.last) || lost,
                    _ if w.kind == WriteKind::Snapshot => {
                        (applied >= w.last && self.snapshot_saved >= w.last) || lost
                    }
                    _ => applied >= w.last,
                };
                if !done {
                    keep.push(w);
                    continue;
                }
                self.pending_count = self.pending_count.saturating_sub(1);
                let persisted_ok =
                    || durable >= w.last && self.raft.term_at(w.last) == Some(w.term);
                let result =
                    if lost || (w.response == ResponseConfig::Persistence && !persisted_ok()) {
                        Err(Error::new(
                            ErrorKind::Unavailable,
                            "the write was overwritten by a new leader; retry",
                        ))
                    } else if w.response == ResponseConfig::Persistence {
                        Ok(w.kind.reply_without_result())
                    } else {
                        match self.outcomes.get(&first).map(|(_, o)| o.clone()) {
                            Some(Outcome::Appended(r)) => r.map(|i| ReplyBody::Appended {
                                first_index: Some(i),
                            }),
                            Some(Outcome::Kv(r)) => r.map(|o| ReplyBody::KvWritten(Some(o))),
                            Some(Outcome::Scaled(r) | Outcome::Meta(r) | Outcome::Recovered(r)) => {
                                r.map(|()| ReplyBody::Done)
                            }
                            Some(Outcome::Snapshotted(r)) => r.map(|i| ReplyBody::Index(Some(i))),
                            Some(Outcome::Coord(r)) => r.map(ReplyBody::CoordWritten),
                            Some(Outcome::Txn(Ok(TxnOutcome::Committing { tx }))) => {
                                self.await_publish(tx, w.conn, w.req);
                                continue;
                            }
                            Some(Outcome::Txn(r)) => r.map(ReplyBody::TxnWritten),
                            Some(Outcome::User(r)) => r.map(|results| {
                                ReplyBody::SmUpdated(Some(
                                    results.into_iter().map(apply::user_result).collect(),
                                ))
                            }),
                            Some(Outcome::TxnPublished { .. }) | None => {
                                Err(Error::new(ErrorKind::Internal, "no outcome recorded"))
                            }
                        }
                    };
                reply(&w.conn, w.req, result, applied);
            }
            if keep.is_empty() {
                if applied >= first {
                    self.outcomes.remove(&first);
                }
            } else {
                self.waiters.insert(first, keep);
            }
        }
    }

    pub(super) fn handle_write(&mut self, conn: Conn, req: ClientRequest) {
        // A `OneWay` write gets no reply once it is accepted, but a refused one (here: not the
        // leader; below: invalid, or not proposed) is answered with its error like any write,
        // so its client can tell and retry: dropping it silently lost it on a healthy cluster.
        if self.raft.role() != Role::Leader {
            reply(&conn, req.id, Err(self.not_leader()), self.applied());
            return;
        }
        if self.applied() < self.term_start {
            if self.deferred.len() >= self.cfg.max_pending_requests {
                let e = Error::new(
                    ErrorKind::Unavailable,
                    "the new leader is still catching up",
                );
                reply(&conn, req.id, Err(e), self.applied());
                return;
            }
            // Wait until every entry of earlier terms is applied: then the session tables are
            // complete and a retried write is recognised.
            self.deferred.push((conn, req));
            return;
        }
        let one_way = req.body.expects_no_reply();
        let fail = |conn: &Conn, e: Error, applied| reply(conn, req.id, Err(e), applied);
        let applied = self.applied();
        let (datas, response, kind, session) = match &req.body {
            RequestBody::Append {
                partition,
                response,
                session,
                ..
            }
            | RequestBody::AppendBatches {
                partition,
                response,
                session,
                ..
            } => {
                let batches = req.body.append_batches().unwrap_or_default();
                if let Err(e) = check_append(*partition, &batches) {
                    fail(&conn, e, applied);
                    return;
                }
                let key = (session.client_id, session.seq);
                if self.batch.has_session(&key) {
                    // A retry of a write staged in this pass: propose the original, then join it.
                    self.propose_batch();
                }
                if let Some(&(first, last, term)) = self.sessions.get(&key) {
                    // A retry of an append in flight: answer it with the original.
                    match response {
                        ResponseConfig::OneWay => {}
                        ResponseConfig::Receive => {
                            let body = WriteKind::Append.reply_without_result();
                            reply(&conn, req.id, Ok(body), applied);
                        }
                        _ => {
                            self.pending_count += 1;
                            self.waiters.entry(first).or_default().push(Waiter {
                                conn,
                                req: req.id,
                                response: *response,
                                kind: WriteKind::Append,
                                term,
                                last,
                            });
                        }
                    }
                    return;
                }
                if !self.lock().journal_store.declared.contains(partition) {
                    let e = invalid(format!("no such partition: {partition}"));
                    fail(&conn, e, applied);
                    return;
                }
                match self.lock().journal_store.duplicate(session) {
                    Err(e) => {
                        fail(&conn, apply::state_error(e), applied);
                        return;
                    }
                    Ok(Some(r)) => {
                        if !one_way {
                            let r = r.map_err(apply::state_error).map(|i| ReplyBody::Appended {
                                first_index: response.returns_result().then_some(i),
                            });
                            reply(&conn, req.id, r, applied);
                        }
                        return;
                    }
                    Ok(None) => {}
                }
                let ts = wall_ms().max(self.last_ts);
                self.last_ts = ts;
                let datas = journal_datas(*partition, &batches, *session, ts);
                (datas, *response, WriteKind::Append, Some(key))
            }
            RequestBody::KvWrite { request, response } => {
                (vec![encode_kv(request)], *response, WriteKind::Kv, None)
            }
            RequestBody::CoordWrite { request } => (
                vec![encode_coord(request)],
                ResponseConfig::Replication,
                WriteKind::Coord,
                None,
            ),
            RequestBody::TxnWrite { request } => {
                if let Err(e) = check_txn(request) {
                    fail(&conn, e, applied);
                    return;
                }
                if let Some(tx) = request.command.tx() {
                    self.txn_touched(tx);
                }
                (
                    vec![encode_txn(request)],
                    ResponseConfig::Replication,
                    WriteKind::Coord,
                    None,
                )
            }
            RequestBody::SmUpdate {
                machine,
                commands,
                response,
                session,
            } => {
                if let Err(e) = self.check_sm_update(machine, commands) {
                    fail(&conn, e, applied);
                    return;
                }
                let ts = wall_ms().max(self.last_ts);
                self.last_ts = ts;
                let command = UserCommand {
                    machine: machine.clone(),
                    timestamp_ms: ts,
                    session: Some(*session),
                    commands: commands.clone(),
                };
                (
                    vec![encode_user(&command)],
                    *response,
                    WriteKind::User,
                    None,
                )
            }
            RequestBody::ScalePartitions {
                partitions,
                session,
            } => {
                if let Err(e) = check_scale(partitions, session) {
                    fail(&conn, e, applied);
                    return;
                }
                (
                    vec![encode_scale(partitions, *session)],
                    ResponseConfig::Replication,
                    WriteKind::Scale,
                    None,
                )
            }
            RequestBody::TakeSnapshot => (
                vec![encode_snapshot_command(SnapshotCommand::Take)],
                ResponseConfig::Replication,
                WriteKind::Snapshot,
                None,
            ),
            RequestBody::RecoverSnapshot { index } => {
                if let Err(e) = self.check_recoverable(*index) {
                    fail(&conn, e, applied);
                    return;
                }
                (
                    vec![encode_snapshot_command(SnapshotCommand::Recover {
                        index: *index,
                    })],
                    ResponseConfig::Replication,
                    WriteKind::Meta,
                    None,
                )
            }
            RequestBody::SetPreferredLeader { node_id } => {
                if let Err(e) = self.check_preferred_leader(*node_id) {
                    fail(&conn, e, applied);
                    return;
                }
                (
                    vec![encode_meta(&MetaCommand::SetPreferredLeader(*node_id))],
                    ResponseConfig::Replication,
                    WriteKind::Meta,
                    None,
                )
            }
            RequestBody::RegisterObserver { node_id, addr } => {
                let addr = match addr.as_deref().map(str::parse::<std::net::SocketAddr>) {
                    None => None,
                    Some(Ok(a)) => Some(a),
                    Some(Err(e)) => {
                        fail(
                            &conn,
                            invalid(format!("observer address {addr:?}: {e}")),
                            applied,
                        );
                        return;
                    }
                };
                (
                    vec![encode_meta(&MetaCommand::SetObserver {
                        node: *node_id,
                        addr,
                    })],
                    ResponseConfig::Replication,
                    WriteKind::Meta,
                    None,
                )
            }
            _ => return,
        };
        let term = self.raft.term();
        if !self.batch.is_empty() && self.batch.term() != term {
            self.propose_batch();
        }
        self.pending_count += 1;
        let write = StagedWrite {
            conn,
            req: req.id,
            entries: datas.len(),
            response,
            kind,
            session,
        };
        self.batch.stage(term, datas, write);
        if self.batch.is_full() {
            self.propose_batch();
        }
    }

    fn check_sm_update(&self, machine: &str, commands: &[Vec<u8>]) -> Result<(), Error> {
        user_machines::check_update(commands)?;
        if !self.machine_names.iter().any(|n| n == machine) {
            return Err(invalid(format!(
                "no state machine named {machine:?} (this cluster hosts {:?})",
                self.machine_names
            )));
        }
        Ok(())
    }

    /// Proposes the writes staged in this pass as one batch and registers what each waits for.
    pub(super) fn propose_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let term = self.batch.term();
        let (datas, writes) = self.batch.take();
        let applied = self.applied();
        let total = datas.len() as u64;
        let proposed = if self.raft.term() != term {
            Err(self.not_leader())
        } else {
            self.raft
                .propose_batch(datas)
                .map_err(|e| raft_error(e, self.leader_hint()))
        };
        let last = match proposed {
            Ok(last) => last,
            Err(e) => {
                for w in writes {
                    self.pending_count = self.pending_count.saturating_sub(1);
                    reply(&w.conn, w.req, Err(e.clone()), applied);
                }
                return;
            }
        };
        self.commit_timer
            .proposed(last, writes.len(), std::time::Instant::now());
        let mut first = last + 1 - total;
        for w in writes {
            let last = first + w.entries as u64 - 1;
            if let Some(key) = w.session {
                self.sessions.insert(key, (first, last, term));
            }
            match w.response {
                ResponseConfig::OneWay => {
                    self.pending_count = self.pending_count.saturating_sub(1);
                }
                ResponseConfig::Receive => {
                    self.pending_count = self.pending_count.saturating_sub(1);
                    reply(&w.conn, w.req, Ok(w.kind.reply_without_result()), applied);
                }
                response => self.waiters.entry(first).or_default().push(Waiter {
                    conn: w.conn,
                    req: w.req,
                    response,
                    kind: w.kind,
                    term,
                    last,
                }),
            }
            first = last + 1;
        }
    }
}

pub(super) fn check_append(partition: u16, batches: &[&[Vec<u8>]]) -> Result<(), Error> {
    if partition >= RESERVED_PARTITION_START {
        return Err(invalid(format!(
            "partition {partition} is reserved (client partitions are 0..{RESERVED_PARTITION_START})"
        )));
    }
    protocol::check_append_batches(batches)
}

/// What the leader checks of a transaction write before proposing it (the state machine
/// checks the rest): clients never send expiries, and a batch obeys the append bounds.
pub(super) fn check_txn(request: &TxnRequest) -> Result<(), Error> {
    match &request.command {
        TxnCommand::Expire { .. } => Err(invalid("only the leader expires transactions")),
        TxnCommand::Append {
            partition, entries, ..
        } => {
            let batch: Vec<Vec<u8>> = entries.iter().map(|e| e.to_vec()).collect();
            check_append(*partition, &[batch.as_slice()])
        }
        _ => Ok(()),
    }
}

pub(super) fn check_scale(partitions: &BTreeSet<u16>, session: &RequestId) -> Result<(), Error> {
    if partitions.len() > protocol::MAX_PARTITIONS {
        return Err(invalid(format!(
            "at most {} partitions",
            protocol::MAX_PARTITIONS
        )));
    }
    if let Some(p) = partitions.iter().find(|p| **p >= RESERVED_PARTITION_START) {
        return Err(invalid(format!("partition {p} is reserved")));
    }
    if session.seq == 0 || session.first_unacked == 0 || session.first_unacked > session.seq {
        return Err(invalid("malformed session"));
    }
    Ok(())
}
