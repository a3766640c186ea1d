//! The watches open on this node, grouped by the client connection that opened them.
//!
//! Owns: each connection's watches (filter and cursor), pushing applied KV events to them,
//! the per-connection bound, and releasing everything a connection held once it is gone.
//! A watch ends with `Unwatch`, with its connection ([`WatchRegistry::connection_closed`],
//! driven by the transport's `Inbound::ClientClosed`, so also when the client vanished
//! without unwatching), when its reply queue is full or closed, or at shutdown.
//! Never does: reading the event history (the driver replays it before [`WatchRegistry::insert`]).

use std::collections::HashMap;

use super::PeerWire;
use crate::api::{Error, ErrorKind};
use crate::client::protocol::{ServerMessage, Wire};
use crate::net::{ConnHandle, ConnId};
use crate::raft::Index;
use crate::state::watch::{KvEvent, WatchFilter};

/// Most watches one client connection may hold open (a client opens one per `WatchStream`).
pub(crate) const MAX_WATCHES_PER_CONNECTION: usize = 1024;

type Conn = ConnHandle<PeerWire>;

struct Watch {
    filter: WatchFilter,
    /// Events with index ≤ cursor were already delivered (replayed).
    cursor: Index,
}

/// One connection's watches; the handle is kept once per connection, not per watch.
struct ConnWatches {
    conn: Conn,
    watches: HashMap<u64, Watch>,
}

/// Every open watch of this node. Holds no connection without a watch.
#[derive(Default)]
pub(crate) struct WatchRegistry {
    conns: HashMap<ConnId, ConnWatches>,
    /// Sum of `watches.len()` over `conns`.
    count: usize,
}

impl WatchRegistry {
    /// Open watches in all.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Connections holding at least one watch.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Whether `conn` may open (or reopen) watch `watch_id`: `InvalidArgument` naming the
    /// bound when the connection already holds [`MAX_WATCHES_PER_CONNECTION`] others.
    pub fn admit(&self, conn: ConnId, watch_id: u64) -> Result<(), Error> {
        match self.conns.get(&conn) {
            Some(c)
                if !c.watches.contains_key(&watch_id)
                    && c.watches.len() >= MAX_WATCHES_PER_CONNECTION =>
            {
                Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "this connection already holds {MAX_WATCHES_PER_CONNECTION} watches, \
                         the most one connection may open"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Registers watch `watch_id` of `conn` (replacing one with the same id), delivering
    /// events with index > `cursor` from now on. A connection that has already ended is not
    /// registered: nothing would ever release it.
    pub fn insert(&mut self, conn: Conn, watch_id: u64, filter: WatchFilter, cursor: Index) {
        if conn.is_closed() {
            return;
        }
        let entry = self.conns.entry(conn.id()).or_insert_with(|| ConnWatches {
            conn,
            watches: HashMap::new(),
        });
        if entry
            .watches
            .insert(watch_id, Watch { filter, cursor })
            .is_none()
        {
            self.count += 1;
        }
    }

    /// Ends watch `watch_id` of connection `conn`; whether it was open.
    pub fn remove(&mut self, conn: ConnId, watch_id: u64) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        let removed = c.watches.remove(&watch_id).is_some();
        if removed {
            self.count -= 1;
        }
        if c.watches.is_empty() {
            self.conns.remove(&conn);
        }
        removed
    }

    /// Connection `conn` has ended: drops all its watches; returns how many.
    pub fn connection_closed(&mut self, conn: ConnId) -> usize {
        match self.conns.remove(&conn) {
            Some(c) => {
                self.count -= c.watches.len();
                c.watches.len()
            }
            None => 0,
        }
    }

    /// Pushes each watch the events of `events` (one applied batch, in index order) that
    /// match its filter and are past its cursor. A watch whose push cannot be queued
    /// (queue full or connection ended) is dropped; so is every watch of an ended connection.
    pub fn push(&mut self, events: &[KvEvent]) {
        let closed: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.conn.is_closed())
            .map(|(&id, _)| id)
            .collect();
        for id in closed {
            self.connection_closed(id);
        }
        let Some(last) = events.last() else {
            return;
        };
        let mut failed = Vec::new();
        for (&id, c) in self.conns.iter_mut() {
            for (&watch_id, w) in c.watches.iter_mut() {
                let matching: Vec<KvEvent> = events
                    .iter()
                    .filter(|e| e.index > w.cursor && w.filter.matches(&e.key))
                    .cloned()
                    .collect();
                w.cursor = w.cursor.max(last.index);
                if matching.is_empty() {
                    continue;
                }
                let msg = Wire::Server(ServerMessage::WatchEvents {
                    watch_id,
                    events: matching,
                });
                if c.conn.send(&msg).is_err() {
                    failed.push((id, watch_id));
                }
            }
        }
        for (id, watch_id) in failed {
            self.remove(id, watch_id);
        }
    }

    /// Ends every watch with `error` (shutdown) and forgets them all.
    pub fn end_all(&mut self, error: impl Fn() -> Error) {
        for (_, c) in std::mem::take(&mut self.conns) {
            for watch_id in c.watches.into_keys() {
                let _ = c.conn.send(&Wire::Server(ServerMessage::WatchEnded {
                    watch_id,
                    error: error(),
                }));
            }
        }
        self.count = 0;
    }
}
