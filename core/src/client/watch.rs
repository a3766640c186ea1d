//! [`WatchStream`]: KV change events that survive reconnects.
//!
//! Owns: the resume point (the next log index not yet received), de-duplication, and
//! resubscribing after a lost connection, a full queue or a server-side end that another node
//! may not share. Never does: routing (the cluster layer picks the node) or filtering by key
//! (the server does).
//!
//! Rule: a push never splits one log index's events, so after receiving events up to index
//! `i` the stream resubscribes from `i + 1` and drops anything older — no event is missed or
//! delivered twice.

use std::collections::VecDeque;
use std::sync::Arc;

use super::cluster::{Cluster, WatchSub, closed_error};
use super::conn::WatchPush;
use super::protocol::ReplyBody;
use super::unexpected;
use crate::api::{Error, ErrorKind};
use crate::state::watch::{KvEvent, WatchFilter};

/// A stream of [`KvEvent`]s in log order. Call [`next`](Self::next) in a loop.
/// Dropping it unwatches on the server.
pub struct WatchStream {
    cluster: Arc<Cluster>,
    filter: WatchFilter,
    /// Events with a lower index were received already.
    next_from: u64,
    sub: Option<WatchSub>,
    buffered: VecDeque<KvEvent>,
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("filter", &self.filter)
            .field("next_from", &self.next_from)
            .field("subscribed", &self.sub.is_some())
            .field("buffered", &self.buffered.len())
            .finish()
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        if let Some(sub) = self.sub.take() {
            sub.conn.unwatch(sub.watch_id);
        }
    }
}

impl WatchStream {
    pub(crate) async fn open(
        cluster: Arc<Cluster>,
        filter: WatchFilter,
        from_index: u64,
    ) -> Result<Self, Error> {
        let mut stream = WatchStream {
            cluster,
            filter,
            next_from: from_index,
            sub: None,
            buffered: VecDeque::new(),
        };
        stream.subscribe().await?;
        Ok(stream)
    }

    /// The lowest log index not yet received (where a resubscription starts).
    pub fn next_index(&self) -> u64 {
        self.next_from
    }

    /// The next event. Reconnects and resumes as needed; fails with `Closed` after
    /// [`Client::close`](super::Client::close), `IndexUnderflow` when the servers no longer
    /// hold the events to resume from (re-read the state, then watch from there), or the
    /// cluster layer's `Timeout` / `Unavailable` when no node takes the watch in time (calling
    /// `next` again retries).
    pub async fn next(&mut self) -> Result<KvEvent, Error> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                return Ok(event);
            }
            if self.cluster.is_closed() {
                return Err(closed_error());
            }
            let Some(sub) = self.sub.as_mut() else {
                self.subscribe().await?;
                continue;
            };
            let push = tokio::select! {
                push = sub.rx.recv() => push,
                _ = self.cluster.closed() => return Err(closed_error()),
            };
            match push {
                Some(WatchPush::Events(events)) => self.receive(events),
                Some(WatchPush::Cluster(_)) => {}
                Some(WatchPush::Ended(error)) => {
                    self.sub = None;
                    match error.kind {
                        ErrorKind::Closed | ErrorKind::NotLeader | ErrorKind::Unavailable => {}
                        _ => return Err(error),
                    }
                }
                // Connection lost or queue overflow: resubscribe from `next_from`.
                None => self.sub = None,
            }
        }
    }

    fn receive(&mut self, events: Vec<KvEvent>) {
        let mut highest = None;
        for e in events {
            if e.index >= self.next_from {
                highest = Some(e.index);
                self.buffered.push_back(e);
            }
        }
        if let Some(h) = highest {
            self.next_from = h + 1;
        }
    }

    async fn subscribe(&mut self) -> Result<(), Error> {
        if let Some(old) = self.sub.take() {
            old.conn.unwatch(old.watch_id);
        }
        let (body, sub) = self
            .cluster
            .open_watch(self.filter.clone(), self.next_from)
            .await?;
        match body {
            ReplyBody::Watching { from_index } => {
                self.next_from = self.next_from.max(from_index);
                self.sub = Some(sub);
                Ok(())
            }
            other => {
                sub.conn.unwatch(sub.watch_id);
                Err(unexpected("Watch", &other))
            }
        }
    }
}
