//! The effects of a `Ready` in the order `raft::Ready` prescribes (persist, send, apply, answer
//! reads), and the reports of the writer and apply threads that come back to the driver.

use super::{Driver, reply, send_all};
use crate::net::Transport;
use crate::raft::{Event, Role};
use crate::server::PeerWire;
use crate::server::apply::{ApplyDone, ApplyJob};
use crate::server::command::JournalHeader;
use crate::server::storage::{WriteDone, WriteJob};

impl Driver {
    pub(super) fn process_ready(&mut self, transport: &Transport<PeerWire>) {
        let mut rounds = 0;
        while self.raft.has_ready() && rounds < 64 {
            rounds += 1;
            let rd = self.raft.ready();
            tracing::trace!(
                node = self.cfg.node_id,
                snapshot = rd.snapshot.as_ref().map(|s| s.index),
                chunks = rd.snapshot_chunks.len(),
                entries = ?rd.entries.first().map(|e| (e.index, rd.entries.len())),
                committed = ?rd.committed_entries.first().map(|e| (e.index, rd.committed_entries.len())),
                "ready"
            );
            for ev in &rd.events {
                self.on_event(ev);
            }
            // A received snapshot goes to the apply thread through the writer, once its file
            // is installed (the apply thread restores by reading it).
            let point = rd.persist_point();
            if rd.snapshot.is_some()
                || !rd.snapshot_chunks.is_empty()
                || !rd.entries.is_empty()
                || rd.hard_state.is_some()
                || !rd.persisted_messages.is_empty()
            {
                self.scan_for_addresses(&rd.entries);
                for e in &rd.entries {
                    if let crate::raft::EntryKind::Normal(d) = &e.kind
                        && let Some((h, _)) = JournalHeader::decode(d)
                    {
                        self.last_ts = self.last_ts.max(h.timestamp_ms);
                    }
                }
                let job = WriteJob::Ready {
                    chunks: rd.snapshot_chunks,
                    snapshot: rd.snapshot,
                    entries: rd.entries,
                    hard_state: rd.hard_state,
                    point,
                    msgs: rd.persisted_messages,
                };
                if self.write_tx.send(job).is_err() {
                    self.fail("storage writer is gone".into());
                    return;
                }
            }
            send_all(transport, rd.messages);
            // Entries reach the apply thread only once written: directly when the writer has
            // written everything queued, else through the writer, behind the writes.
            if !rd.committed_entries.is_empty() {
                let sent = if self.write_tx.is_drained() {
                    self.apply_tx
                        .send(ApplyJob::Entries(rd.committed_entries))
                        .is_ok()
                } else {
                    self.write_tx
                        .send(WriteJob::Apply(rd.committed_entries))
                        .is_ok()
                };
                if !sent {
                    self.fail("storage writer or apply thread is gone".into());
                    return;
                }
            }
            for rs in rd.read_states {
                let id = u64::from_le_bytes(rs.ctx.as_slice().try_into().unwrap_or([0; 8]));
                if let Some(r) = self.reads.remove(&id) {
                    self.pending_count = self.pending_count.saturating_sub(1);
                    self.serve_read(r.conn, r.req, 0);
                }
            }
        }
    }

    pub(super) fn on_event(&mut self, ev: &Event) {
        let node = self.cfg.node_id;
        match ev {
            Event::RoleChanged { role, term } => {
                tracing::info!(node, ?role, term, "role changed");
                if *role == Role::Leader {
                    self.term_start = self.raft.status().last_index;
                } else {
                    self.commit_timer.clear();
                    self.term_start = u64::MAX;
                    self.sessions.clear();
                    let hint = self.not_leader();
                    for (conn, req) in std::mem::take(&mut self.deferred) {
                        reply(&conn, req.id, Err(hint.clone()), 0);
                    }
                }
            }
            Event::LeaderChanged { leader, term } => {
                tracing::info!(node, ?leader, term, "leader changed");
                if leader.is_some() {
                    self.metrics.leader_changed();
                }
            }
            Event::MembershipChanged { index, membership } => {
                tracing::info!(node, index, ?membership, "membership changed");
            }
            Event::Applied { .. } => {}
            Event::ReadDropped { ctx } => {
                let id = u64::from_le_bytes(ctx.as_slice().try_into().unwrap_or([0; 8]));
                if let Some(r) = self.reads.remove(&id) {
                    self.pending_count = self.pending_count.saturating_sub(1);
                    reply(&r.conn, r.req.id, Err(self.not_leader()), self.applied());
                }
            }
        }
    }

    pub(super) fn on_write(&mut self, w: WriteDone, transport: &Transport<PeerWire>) {
        match w {
            WriteDone::Persisted {
                point,
                msgs,
                durable,
            } => {
                if let Some((index, term)) = point {
                    self.raft.on_persisted(index, term);
                }
                // The journal's durable index (it drops when a conflicting suffix is truncated).
                self.durable = durable.min(self.raft.status().last_index);
                send_all(transport, msgs);
                self.complete_waiters();
                self.try_snapshot();
            }
            WriteDone::SnapshotSaved {
                index,
                compact_upto,
            } => {
                self.snapshot_saved = self.snapshot_saved.max(index);
                self.complete_waiters();
                tracing::info!(
                    node = self.cfg.node_id,
                    index,
                    compact_upto,
                    "snapshot saved"
                );
            }
            WriteDone::Failed(reason) => self.fail(reason),
        }
    }

    pub(super) fn on_apply(&mut self, a: ApplyDone) {
        match a {
            ApplyDone::Applied {
                upto,
                results,
                events,
                meta,
            } => {
                self.raft.on_applied(upto);
                let now = std::time::Instant::now();
                self.commit_timer
                    .applied(upto, now, &self.metrics.commit_latency);
                if let Some(meta) = meta {
                    self.on_meta_applied(&meta);
                }
                self.sessions.retain(|_, (_, last, _)| *last > upto);
                for (index, term, outcome) in results {
                    use crate::server::apply::Outcome;
                    match outcome {
                        Outcome::Coord(_) => self.leases_changed = true,
                        Outcome::Recovered(_) => {
                            self.leases_changed = true;
                            self.txns.changed = true;
                        }
                        Outcome::Txn(_) => self.txns.changed = true,
                        Outcome::TxnPublished { tx } => {
                            self.txns.changed = true;
                            self.on_published(tx);
                        }
                        _ => {}
                    }
                    if self.waiters.contains_key(&index) {
                        self.outcomes.insert(index, (term, outcome));
                    }
                }
                self.watches.push(&events);
                self.complete_waiters();
                if self.raft.role() == Role::Leader && upto >= self.term_start {
                    for (conn, req) in std::mem::take(&mut self.deferred) {
                        self.handle_request(conn, req);
                    }
                }
            }
            ApplyDone::Snapshot { index, staged } => {
                self.pending_snapshots.push_back((index, staged));
                self.try_snapshot();
            }
            ApplyDone::Failed(reason) => self.fail(reason),
        }
    }

    pub(super) fn try_snapshot(&mut self) {
        while let Some(&(index, _)) = self.pending_snapshots.front() {
            if self.raft.status().persisted_index < index {
                return;
            }
            let Some((_, staged)) = self.pending_snapshots.pop_front() else {
                return;
            };
            self.save_snapshot(index, staged);
        }
    }

    fn save_snapshot(&mut self, index: crate::raft::Index, staged: std::path::PathBuf) {
        match self.raft.on_snapshot_taken(index) {
            Ok(meta) => {
                let compact_upto = index.saturating_sub(self.cfg.snapshot_retained_entries);
                let _ = self.write_tx.send(WriteJob::SaveSnapshot {
                    meta,
                    staged,
                    compact_upto,
                });
            }
            Err(e) => {
                tracing::debug!(node = self.cfg.node_id, reason = %e, "snapshot skipped");
                let _ = std::fs::remove_file(&staged);
            }
        }
    }
}
