//! [`EventStream`]: the cluster's events (leader, voters, role, journal bounds) as the node
//! the client is subscribed to sees them, across reconnects.
//!
//! Owns: resubscribing after a lost connection, a full queue or a node that stopped. Rule: a
//! subscription starts with the node's whole current state, so after a reconnect the stream
//! repeats the latest state of each kind (a consumer treats events as state, not as deltas
//! to count) and never misses the latest one.

use std::collections::VecDeque;
use std::sync::Arc;

use super::cluster::{Cluster, WatchSub, closed_error};
use super::conn::WatchPush;
use super::protocol::{ClusterEvent, EventOptions};
use crate::api::{Error, ErrorKind};

/// A stream of [`ClusterEvent`]s. Call [`next`](Self::next) in a loop; dropping it ends the
/// subscription on the server.
pub struct EventStream {
    cluster: Arc<Cluster>,
    options: EventOptions,
    sub: Option<WatchSub>,
    buffered: VecDeque<ClusterEvent>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("subscribed", &self.sub.is_some())
            .field("buffered", &self.buffered.len())
            .finish()
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if let Some(sub) = self.sub.take() {
            sub.conn.unwatch(sub.watch_id);
        }
    }
}

impl EventStream {
    pub(crate) async fn open(cluster: Arc<Cluster>, options: EventOptions) -> Result<Self, Error> {
        let mut stream = EventStream {
            cluster,
            options,
            sub: None,
            buffered: VecDeque::new(),
        };
        stream.sub = Some(stream.cluster.open_events(options).await?);
        Ok(stream)
    }

    /// The next event. Resubscribes (on any node) as needed; fails with `Closed` after
    /// [`Client::close`](super::Client::close), or the cluster layer's `Timeout` /
    /// `Unavailable` when no node takes the subscription in time (calling `next` again
    /// retries).
    pub async fn next(&mut self) -> Result<ClusterEvent, Error> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                return Ok(event);
            }
            if self.cluster.is_closed() {
                return Err(closed_error());
            }
            let Some(sub) = self.sub.as_mut() else {
                self.sub = Some(self.cluster.open_events(self.options).await?);
                continue;
            };
            let push = tokio::select! {
                push = sub.rx.recv() => push,
                _ = self.cluster.closed() => return Err(closed_error()),
            };
            match push {
                Some(WatchPush::Cluster(events)) => self.buffered.extend(events),
                Some(WatchPush::Events(_)) => {}
                Some(WatchPush::Ended(error)) => {
                    self.sub = None;
                    match error.kind {
                        ErrorKind::Closed | ErrorKind::NotLeader | ErrorKind::Unavailable => {}
                        _ => return Err(error),
                    }
                }
                // Connection lost or queue overflow: subscribe again (the whole state follows).
                None => {
                    if let Some(old) = self.sub.take() {
                        old.conn.unwatch(old.watch_id);
                    }
                }
            }
        }
    }
}
