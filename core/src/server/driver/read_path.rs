//! The read levels: STRICT through the raft core (lease or ReadIndex), SEQUENTIAL and weaker
//! from the local state machines; every read runs on a blocking thread once it may.

use super::errors::raft_error;
use super::{Conn, Driver, PendingRead, reply};
use crate::api::{Error, ErrorKind, QueryConsistency};
use crate::client::protocol::{ClientRequest, ReadAt, ReplyBody, RequestBody};
use crate::raft::{ReadMode, Role};
use crate::server::read::read_machines;
use crate::state::kv::KvQuery;

impl Driver {
    pub(super) fn strict_read(&mut self, conn: Conn, req: ClientRequest) {
        if self.raft.role() != Role::Leader {
            reply(&conn, req.id, Err(self.not_leader()), self.applied());
            return;
        }
        let id = self.next_read;
        self.next_read += 1;
        let mode = if self.cfg.lease_reads {
            ReadMode::Lease
        } else {
            ReadMode::ReadIndex
        };
        match self.raft.read(id.to_le_bytes().to_vec(), mode, self.now()) {
            Ok(()) => {
                self.pending_count += 1;
                self.reads.insert(id, PendingRead { conn, req });
            }
            Err(e) => {
                let e = raft_error(e, self.leader_hint());
                reply(&conn, req.id, Err(e), self.applied());
            }
        }
    }

    pub(super) fn local_read(&mut self, conn: Conn, req: ClientRequest, read: ReadAt) {
        let applied = self.applied();
        let min_applied = match read.consistency {
            QueryConsistency::Sequential => read.min_applied,
            _ => 0,
        };
        if applied < min_applied {
            reply(&conn, req.id, Err(not_yet(applied, min_applied)), applied);
            return;
        }
        self.serve_read(conn, req, min_applied);
    }

    /// Runs a read against the state machines on a blocking thread and replies. The state
    /// itself must have applied `min_applied`: raft counts an accepted snapshot as applied
    /// before the apply thread has restored it, so its index alone is not enough.
    pub(super) fn serve_read(&self, conn: Conn, req: ClientRequest, min_applied: u64) {
        let machines = self.machines.clone();
        let max_bytes = (self.cfg.net.max_frame_size as usize / 2).max(1024);
        tokio::task::spawn_blocking(move || {
            let m = machines.lock().unwrap_or_else(|p| p.into_inner());
            let applied = m.applied;
            let result = match &req.body {
                _ if applied < min_applied => Err(not_yet(applied, min_applied)),
                RequestBody::AppliedIndex => Ok(ReplyBody::AppliedIndex(m.applied)),
                body => read_machines(&m, body, max_bytes),
            };
            drop(m);
            reply(&conn, req.id, result, applied);
        });
    }
}

impl Driver {
    /// A KV read at log index `index` (`server/at_index.rs`), on a blocking thread: a state
    /// rebuilt from a snapshot and the log can take a while.
    pub(super) fn read_kv_at(&self, conn: Conn, req: u64, query: KvQuery, index: u64) {
        let machines = self.machines.clone();
        let history = self.history.clone();
        tokio::task::spawn_blocking(move || {
            let (result, applied) = history.read(&machines, index, &query);
            reply(&conn, req, result.map(ReplyBody::KvRead), applied);
        });
    }
}

fn not_yet(applied: u64, min_applied: u64) -> Error {
    Error::new(
        ErrorKind::IndexOverflow,
        format!("not yet: this node applied {applied} < {min_applied} requested"),
    )
}
