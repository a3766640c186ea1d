//! [`NodeConn`]: one multiplexed connection to one node.
//!
//! Owns: the task that holds the [`Connection`], writes queued requests in batch frames and
//! dispatches replies (by correlation id, to oneshot channels) and watch pushes (by watch id,
//! to bounded queues). Never does: retries, leader tracking or reconnecting — a dead
//! `NodeConn` stays dead and the cluster layer makes a new one.
//!
//! When the connection ends, every waiting request sees [`Lost`] and every watch queue is
//! closed. A watch whose queue is full is dropped the same way (and unwatched on the server),
//! so its stream resubscribes from the last index it received; no event is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::debug;

use super::protocol::{ClientRequest, EventOptions, RequestBody, ServerMessage, Wire};
use crate::api::{self, Error, ErrorKind};
use crate::net::{Connection, Hello, NetConfig, NetError, ProtocolVersion, RejectReason, Role};
use crate::state::watch::{KvEvent, WatchFilter};

/// A reply as the cluster layer sees it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub result: Result<super::protocol::ReplyBody, api::Error>,
    pub applied_index: u64,
}

/// The connection ended (or never carried the request); the request may or may not have been
/// processed by the server.
#[derive(Debug, Clone)]
pub(crate) struct Lost(pub String);

/// What a watch queue carries.
#[derive(Debug)]
pub(crate) enum WatchPush {
    Events(Vec<KvEvent>),
    /// Pushes of an event subscription (they share the watches' ids and routes).
    Cluster(Vec<crate::client::protocol::ClusterEvent>),
    Ended(api::Error),
}

#[derive(Default)]
struct Shared {
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    watches: Mutex<HashMap<u64, mpsc::Sender<WatchPush>>>,
    dead: AtomicBool,
    reason: Mutex<Option<String>>,
    /// Correlation and watch ids of this connection.
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn lost(&self) -> Lost {
        Lost(
            lock(&self.reason)
                .clone()
                .unwrap_or_else(|| "connection closed".into()),
        )
    }
}

/// Removes a pending entry when the waiting request is dropped (timeout, cancellation).
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).remove(&self.id);
    }
}

/// One live (or dead) connection to the node at `addr`.
pub(crate) struct NodeConn {
    pub addr: String,
    /// The node's protocol version (from its `Welcome`).
    pub version: ProtocolVersion,
    tx: mpsc::Sender<ClientRequest>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for NodeConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConn")
            .field("addr", &self.addr)
            .field("dead", &self.is_dead())
            .finish()
    }
}

impl Drop for NodeConn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NodeConn {
    /// Resolves `addr`, connects and handshakes as client `client_id`, and starts the task.
    /// Fails with `WrongCluster` when the server refuses our cluster id, else `Unavailable`.
    pub async fn connect(addr: &str, client_id: u64, config: &NetConfig) -> Result<Self, Error> {
        let unavailable = |m: String| Error::new(ErrorKind::Unavailable, m);
        let resolved = tokio::time::timeout(config.connect_timeout, tokio::net::lookup_host(addr))
            .await
            .map_err(|_| unavailable(format!("{addr}: resolving timed out")))?
            .map_err(|e| unavailable(format!("{addr}: cannot resolve: {e}")))?
            .collect::<Vec<_>>();
        let mut last = format!("{addr}: resolves to no address");
        for sock in resolved {
            let hello = Hello::new(Role::Client { client_id }, config);
            match Connection::<Wire>::connect(sock, hello, config).await {
                Ok(conn) => {
                    let batch_max = config
                        .max_batch_messages
                        .min(conn.welcome().max_batch_messages)
                        .max(1) as usize;
                    let version = conn.welcome().version;
                    let (tx, rx) = mpsc::channel(1024);
                    let shared = Arc::new(Shared::default());
                    let task = tokio::spawn(run(
                        conn,
                        rx,
                        shared.clone(),
                        batch_max,
                        config.keepalive_interval,
                    ));
                    debug!(node = addr, client = client_id, "connected");
                    return Ok(NodeConn {
                        addr: addr.to_string(),
                        version,
                        tx,
                        shared,
                        task,
                    });
                }
                Err(NetError::Rejected(RejectReason::ClusterMismatch { server, client })) => {
                    return Err(Error::new(
                        ErrorKind::WrongCluster,
                        format!(
                            "{addr}: the server's cluster id is {server}, this client's is {client}"
                        ),
                    ));
                }
                Err(e) => last = format!("{addr} ({sock}): {e}"),
            }
        }
        Err(unavailable(last))
    }

    pub fn is_dead(&self) -> bool {
        self.shared.dead.load(Ordering::SeqCst)
    }

    fn next_id(&self) -> u64 {
        self.shared.next_id()
    }

    /// Sends `body` and waits for its reply (no deadline here: the caller bounds it).
    pub async fn request(&self, body: RequestBody) -> Result<Reply, Lost> {
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.pending).insert(id, tx);
        let _guard = PendingGuard {
            shared: &self.shared,
            id,
        };
        // The task marks the connection dead before draining `pending`: an entry inserted after
        // the drain is noticed here.
        if self.is_dead() {
            return Err(self.shared.lost());
        }
        if self.tx.send(ClientRequest { id, body }).await.is_err() {
            return Err(self.shared.lost());
        }
        rx.await.map_err(|_| self.shared.lost())
    }

    /// Opens a watch: registers its queue (so no push can arrive before it exists), then sends
    /// `Watch` and waits for the reply. The queue is removed again if the reply is an error.
    pub async fn watch(
        &self,
        filter: WatchFilter,
        from_index: u64,
        depth: usize,
    ) -> Result<(Reply, u64, mpsc::Receiver<WatchPush>), Lost> {
        self.open_pushes(depth, |watch_id| RequestBody::Watch {
            watch_id,
            filter,
            from_index,
        })
        .await
    }

    /// Opens an event subscription, as [`NodeConn::watch`] opens a watch.
    pub async fn subscribe_events(
        &self,
        depth: usize,
        options: EventOptions,
    ) -> Result<(Reply, u64, mpsc::Receiver<WatchPush>), Lost> {
        self.open_pushes(depth, |sub_id| {
            if options == EventOptions::default() {
                RequestBody::SubscribeEvents { sub_id }
            } else {
                RequestBody::SubscribeEventsWith { sub_id, options }
            }
        })
        .await
    }

    async fn open_pushes(
        &self,
        depth: usize,
        body: impl FnOnce(u64) -> RequestBody,
    ) -> Result<(Reply, u64, mpsc::Receiver<WatchPush>), Lost> {
        let watch_id = self.next_id();
        let (tx, rx) = mpsc::channel(depth);
        lock(&self.shared.watches).insert(watch_id, tx);
        let reply = self.request(body(watch_id)).await;
        match reply {
            Ok(r) if r.result.is_ok() => Ok((r, watch_id, rx)),
            other => {
                lock(&self.shared.watches).remove(&watch_id);
                other.map(|r| (r, watch_id, rx))
            }
        }
    }

    /// Forgets watch `watch_id` and tells the server, without waiting (usable from `Drop`).
    pub fn unwatch(&self, watch_id: u64) {
        lock(&self.shared.watches).remove(&watch_id);
        if !self.is_dead() {
            let id = self.next_id();
            let _ = self.tx.try_send(ClientRequest {
                id,
                body: RequestBody::Unwatch { watch_id },
            });
        }
    }

    /// Stops the task; waiting requests see [`Lost`].
    pub fn close(&self) {
        self.task.abort();
        self.die("closed by the client".into());
    }

    fn die(&self, reason: String) {
        die(&self.shared, reason);
    }
}

fn die(shared: &Shared, reason: String) {
    lock(&shared.reason).get_or_insert(reason);
    shared.dead.store(true, Ordering::SeqCst);
    lock(&shared.pending).clear();
    lock(&shared.watches).clear();
}

/// The connection task: write queued requests, read and dispatch server messages.
async fn run(
    mut conn: Connection<Wire>,
    mut rx: mpsc::Receiver<ClientRequest>,
    shared: Arc<Shared>,
    batch_max: usize,
    keepalive: std::time::Duration,
) {
    let mut unwatch_ids: Vec<u64> = Vec::new();
    // An empty batch when nothing was written for a keepalive interval, so a watch-only
    // client is not closed as idle by the server.
    let mut ticker = tokio::time::interval(keepalive);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut wrote = false;
    let reason = loop {
        if !unwatch_ids.is_empty() {
            let batch: Vec<Wire> = unwatch_ids
                .drain(..)
                .map(|watch_id| {
                    Wire::Request(ClientRequest {
                        id: shared.next_id(),
                        body: RequestBody::Unwatch { watch_id },
                    })
                })
                .collect();
            if let Err(e) = send_all(&mut conn, batch, &shared, batch_max).await {
                break e.to_string();
            }
            wrote = true;
        }
        tokio::select! {
            _ = ticker.tick() => {
                if !std::mem::take(&mut wrote)
                    && let Err(e) = conn.send_batch(&[]).await
                {
                    break e.to_string();
                }
            }
            msg = conn.recv() => match msg {
                Ok(Wire::Server(m)) => dispatch(&shared, m, &mut unwatch_ids),
                Ok(_) => break "the server sent a message that is not for clients".to_string(),
                Err(e) => break e.to_string(),
            },
            first = rx.recv() => {
                let Some(first) = first else { break "client dropped the connection".to_string() };
                let mut batch = vec![Wire::Request(first)];
                while batch.len() < batch_max {
                    match rx.try_recv() {
                        Ok(r) => batch.push(Wire::Request(r)),
                        Err(_) => break,
                    }
                }
                if let Err(e) = send_all(&mut conn, batch, &shared, batch_max).await {
                    break e.to_string();
                }
                wrote = true;
            }
        }
    };
    debug!(reason = %reason, "client connection ended");
    rx.close();
    die(&shared, reason);
}

/// Writes `batch` in one frame; if it does not fit, one message per frame, failing the
/// requests that alone exceed the frame bound with `InvalidArgument`.
async fn send_all(
    conn: &mut Connection<Wire>,
    batch: Vec<Wire>,
    shared: &Shared,
    batch_max: usize,
) -> Result<(), NetError> {
    debug_assert!(batch.len() <= batch_max);
    match conn.send_batch(&batch).await {
        Err(NetError::FrameTooLarge { .. }) | Err(NetError::BatchTooLarge { .. })
            if batch.len() > 1 =>
        {
            for msg in batch {
                send_one(conn, msg, shared).await?;
            }
            Ok(())
        }
        Err(NetError::FrameTooLarge { len, max }) => {
            fail_too_large(shared, batch.into_iter().next(), len, max);
            Ok(())
        }
        other => other,
    }
}

async fn send_one(conn: &mut Connection<Wire>, msg: Wire, shared: &Shared) -> Result<(), NetError> {
    match conn.send(&msg).await {
        Err(NetError::FrameTooLarge { len, max }) => {
            fail_too_large(shared, Some(msg), len, max);
            Ok(())
        }
        other => other,
    }
}

fn fail_too_large(shared: &Shared, msg: Option<Wire>, len: u64, max: u32) {
    if let Some(Wire::Request(req)) = msg
        && let Some(tx) = lock(&shared.pending).remove(&req.id)
    {
        let _ = tx.send(Reply {
            result: Err(api::Error::new(
                ErrorKind::InvalidArgument,
                format!("request of {len} bytes exceeds the frame bound of {max} bytes"),
            )),
            applied_index: 0,
        });
    }
}

fn dispatch(shared: &Shared, msg: ServerMessage, unwatch_ids: &mut Vec<u64>) {
    match msg {
        ServerMessage::Reply {
            id,
            result,
            applied_index,
        } => {
            if let Some(tx) = lock(&shared.pending).remove(&id) {
                let _ = tx.send(Reply {
                    result,
                    applied_index,
                });
            }
        }
        ServerMessage::WatchEvents { watch_id, events } => {
            let mut watches = lock(&shared.watches);
            let Some(tx) = watches.get(&watch_id) else {
                return;
            };
            if tx.try_send(WatchPush::Events(events)).is_err() {
                // Full (slow consumer) or the stream is gone: drop the route; the stream
                // resubscribes from the last index it received.
                watches.remove(&watch_id);
                unwatch_ids.push(watch_id);
            }
        }
        ServerMessage::ClusterEvents { sub_id, events } => {
            let mut watches = lock(&shared.watches);
            let Some(tx) = watches.get(&sub_id) else {
                return;
            };
            if tx.try_send(WatchPush::Cluster(events)).is_err() {
                // The stream resubscribes and is sent the whole state again.
                watches.remove(&sub_id);
                unwatch_ids.push(sub_id);
            }
        }
        ServerMessage::WatchEnded { watch_id, error } => {
            if let Some(tx) = lock(&shared.watches).remove(&watch_id) {
                let _ = tx.try_send(WatchPush::Ended(error));
            }
        }
    }
}
