//! The inbound side: a [`Listener`] that accepts peers *and* clients on one port, runs the
//! handshake, and hands the node a single stream of [`Inbound`] messages; plus
//! [`Transport`], which bundles a listener with the outbound [`Peers`] of one node.
//!
//! Connection lifecycle (one tokio task per accepted connection):
//! accept → handshake (under `handshake_timeout`) → read loop (each frame within
//! `idle_timeout` for peers, `client_idle_timeout` for clients) → close. Client connections
//! also run a writer that drains that connection's reply queue in batch frames, and end with
//! [`Inbound::ClientClosed`] after their last message, so the node can release whatever it
//! holds for that connection. [`ConnCounts`] tells how many connections are open.
//! Peer connections are one-way: a node replies to a peer over its own outbound connection.
//!
//! Any bad input — garbage, an oversized length prefix, a checksum or postcard failure, a
//! first frame that is not a `Hello`, a wrong cluster or version — ends *that* connection
//! with a `tracing::warn!` naming the remote address and the reason. The accept loop is never
//! affected. Inbound delivery is back-pressured: when the node's queue is full, connections
//! stop reading (TCP flow control) instead of dropping.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, error, info, warn};

use crate::net::codec::{decode_batch, encode_message};
use crate::net::handshake::{self, Role};
use crate::net::stream::{Batcher, FrameReader, write_within};
use crate::net::{Message, NetConfig, NetError, NodeId, Peers};

/// Identifier of one accepted client connection, unique within a listener.
pub type ConnId = u64;

/// A message received by the listener.
#[derive(Debug)]
pub enum Inbound<M> {
    /// From another node (replies go over [`Peers`], not this connection).
    Peer { from: NodeId, msg: M },
    /// From a client; reply with `conn.send(..)`.
    Client { conn: ConnHandle<M>, msg: M },
    /// Client connection `conn` has ended (clean close, reset, timeout, bad input): delivered
    /// once, after every message of that connection, for every client connection that passed
    /// the handshake. Nothing more arrives from it and replies to it fail with `Closed`.
    ClientClosed { conn: ConnId },
}

/// Where an [`Inbound`] message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    Peer(NodeId),
    Client(ConnId),
}

impl<M> Inbound<M> {
    /// The sender: a peer node, or a client connection.
    pub fn origin(&self) -> Origin {
        match self {
            Inbound::Peer { from, .. } => Origin::Peer(*from),
            Inbound::Client { conn, .. } => Origin::Client(conn.id),
            Inbound::ClientClosed { conn } => Origin::Client(*conn),
        }
    }

    /// The message itself (`None` for [`Inbound::ClientClosed`]).
    pub fn message(&self) -> Option<&M> {
        match self {
            Inbound::Peer { msg, .. } | Inbound::Client { msg, .. } => Some(msg),
            Inbound::ClientClosed { .. } => None,
        }
    }
}

/// The reply side of one client connection. Cheap to clone; sending never blocks.
pub struct ConnHandle<M> {
    id: ConnId,
    client_id: u64,
    addr: SocketAddr,
    max_frame_size: u32,
    tx: mpsc::Sender<Vec<u8>>,
    _msg: PhantomData<fn(M)>,
}

impl<M> Clone for ConnHandle<M> {
    fn clone(&self) -> Self {
        ConnHandle {
            id: self.id,
            client_id: self.client_id,
            addr: self.addr,
            max_frame_size: self.max_frame_size,
            tx: self.tx.clone(),
            _msg: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for ConnHandle<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnHandle")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("addr", &self.addr)
            .finish()
    }
}

impl<M: Message> ConnHandle<M> {
    /// This connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The client id announced in the handshake.
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// The client's socket address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a reply without blocking. Fails with [`NetError::QueueFull`] (reply dropped),
    /// [`NetError::FrameTooLarge`], or [`NetError::Closed`] once the connection has ended.
    pub fn send(&self, msg: &M) -> Result<(), NetError> {
        let bytes = encode_message(msg, self.max_frame_size)?;
        self.tx.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => NetError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => NetError::Closed,
        })
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Completes when the connection has ended.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// How many connections of a [`Listener`] are open right now: handshaken client connections
/// and inbound peer connections, each counted until its task has ended (also when aborted).
/// Cheap to clone; every clone reads the same counters.
#[derive(Clone, Debug, Default)]
pub struct ConnCounts(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    clients: AtomicU64,
    peers: AtomicU64,
}

impl ConnCounts {
    /// Open client connections (past the handshake).
    pub fn clients(&self) -> u64 {
        self.0.clients.load(Ordering::Relaxed)
    }

    /// Open inbound peer connections (past the handshake).
    pub fn peers(&self) -> u64 {
        self.0.peers.load(Ordering::Relaxed)
    }

    fn open(&self, counter: fn(&Counters) -> &AtomicU64) -> Counted {
        counter(&self.0).fetch_add(1, Ordering::Relaxed);
        Counted {
            counts: self.clone(),
            counter,
        }
    }
}

/// One open connection in [`ConnCounts`]; uncounted on drop (so also when its task is aborted).
struct Counted {
    counts: ConnCounts,
    counter: fn(&Counters) -> &AtomicU64,
}

impl Drop for Counted {
    fn drop(&mut self) {
        (self.counter)(&self.counts.0).fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts peer and client connections on one port. Dropping it without
/// [`shutdown`](Self::shutdown) also stops it, without waiting.
#[derive(Debug)]
pub struct Listener<M> {
    local_addr: SocketAddr,
    counts: ConnCounts,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _msg: PhantomData<fn(M)>,
}

struct Shared<M> {
    node_id: NodeId,
    config: NetConfig,
    inbound: mpsc::Sender<Inbound<M>>,
    /// Per remote node: the generation of its newest connection. Delivery from a peer
    /// connection happens under this lock and only while the connection is the newest, so
    /// messages from an old and a new connection of the same node never interleave.
    peer_gates: std::sync::Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<u64>>>>,
    counts: ConnCounts,
}

/// The right to deliver messages from one peer connection.
struct Gate {
    slot: Arc<tokio::sync::Mutex<u64>>,
    generation: u64,
}

impl<M: Message> Listener<M> {
    /// Binds `addr` (port 0 for an ephemeral port) and starts accepting. Messages arrive on
    /// the returned receiver. Must be called inside a tokio runtime.
    pub async fn bind(
        addr: SocketAddr,
        node_id: NodeId,
        config: NetConfig,
    ) -> Result<(Self, mpsc::Receiver<Inbound<M>>), NetError> {
        config.validate()?;
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(config.inbound_queue_depth);
        let (stop_tx, stop_rx) = oneshot::channel();
        let counts = ConnCounts::default();
        let shared = Arc::new(Shared {
            node_id,
            config,
            inbound: tx,
            peer_gates: std::sync::Mutex::new(HashMap::new()),
            counts: counts.clone(),
        });
        info!(node = node_id, addr = %local_addr, "listening");
        let task = tokio::spawn(accept_loop(listener, shared, stop_rx));
        Ok((
            Listener {
                local_addr,
                counts,
                stop: Some(stop_tx),
                task: Some(task),
                _msg: PhantomData,
            },
            rx,
        ))
    }

    /// The bound address (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The live counts of this listener's open connections.
    pub fn counts(&self) -> ConnCounts {
        self.counts.clone()
    }

    /// Stops accepting, closes every accepted connection, and waits until the port and all
    /// connection tasks are released.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl<M> Drop for Listener<M> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop<M: Message>(
    listener: TcpListener,
    shared: Arc<Shared<M>>,
    mut stop: oneshot::Receiver<()>,
) {
    let limit = Arc::new(Semaphore::new(shared.config.max_connections));
    let next_id = AtomicU64::new(1);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    error!(reason = %e, "connection task panicked; the listener keeps serving");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        warn!(peer = %addr, reason = "too many connections", max = shared.config.max_connections, "closing connection");
                        continue;
                    };
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    let shared = shared.clone();
                    conns.spawn(async move {
                        serve(stream, addr, id, &shared).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off briefly instead of spinning.
                    warn!(reason = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    drop(listener);
    conns.shutdown().await;
    info!(node = shared.node_id, "listener stopped");
}

async fn serve<M: Message>(stream: TcpStream, addr: SocketAddr, id: ConnId, shared: &Shared<M>) {
    match run_conn(stream, addr, id, shared).await {
        Ok(()) | Err(NetError::Closed) => debug!(peer = %addr, conn = id, "connection closed"),
        Err(e) => warn!(peer = %addr, conn = id, reason = %e, "closing connection"),
    }
}

async fn run_conn<M: Message>(
    mut stream: TcpStream,
    addr: SocketAddr,
    id: ConnId,
    shared: &Shared<M>,
) -> Result<(), NetError> {
    let config = &shared.config;
    stream.set_nodelay(true)?;
    let (mut r, mut w) = stream.split();
    let mut reader = FrameReader::new(config.max_frame_size);
    let hello =
        handshake::accept(&mut reader, &mut r, &mut w, config, Some(shared.node_id)).await?;
    let send_max = config.max_frame_size.min(hello.max_frame_size);
    let batch_max = config.max_batch_messages.min(hello.max_batch_messages);
    match hello.role {
        Role::Peer { node_id } => {
            debug!(peer = %addr, from = node_id, "peer connected");
            let _counted = shared.counts.open(|c| &c.peers);
            let slot = shared
                .peer_gates
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(node_id)
                .or_default()
                .clone();
            let generation = {
                let mut g = slot.lock().await;
                *g += 1;
                *g
            };
            let gate = Gate { slot, generation };
            let res = read_loop(
                &mut reader,
                &mut r,
                config,
                config.idle_timeout,
                |msg| Inbound::Peer { from: node_id, msg },
                &shared.inbound,
                Some((&gate, node_id)),
            )
            .await;
            let mut gates = shared.peer_gates.lock().unwrap_or_else(|e| e.into_inner());
            // Forget the node once its last connection is gone (map + this gate hold the Arc).
            if Arc::strong_count(&gate.slot) == 2
                && gates
                    .get(&node_id)
                    .is_some_and(|s| Arc::ptr_eq(s, &gate.slot))
            {
                gates.remove(&node_id);
            }
            res
        }
        Role::Client { client_id } => {
            debug!(peer = %addr, client = client_id, conn = id, "client connected");
            let _counted = shared.counts.open(|c| &c.clients);
            let (tx, mut rx) = mpsc::channel(config.client_queue_depth);
            // This handle keeps the queue open for the connection's lifetime.
            let handle = ConnHandle {
                id,
                client_id,
                addr,
                max_frame_size: send_max,
                tx,
                _msg: PhantomData,
            };
            let reading = read_loop(
                &mut reader,
                &mut r,
                config,
                config.client_idle_timeout,
                |msg| Inbound::Client {
                    conn: handle.clone(),
                    msg,
                },
                &shared.inbound,
                None,
            );
            let writing = write_loop(&mut w, &mut rx, send_max, batch_max, config);
            let res = tokio::select! {
                res = reading => res,
                res = writing => res,
            };
            // Replies queued from now on fail with `Closed`; then tell the node, behind every
            // message this connection delivered (same queue), so it can release the
            // connection's watches and buffers even if the client never said goodbye.
            drop(rx);
            let _ = shared
                .inbound
                .send(Inbound::ClientClosed { conn: id })
                .await;
            res
        }
    }
}

async fn read_loop<M: Message, R: tokio::io::AsyncRead + Unpin>(
    reader: &mut FrameReader,
    r: &mut R,
    config: &NetConfig,
    idle: Duration,
    wrap: impl Fn(M) -> Inbound<M>,
    inbound: &mpsc::Sender<Inbound<M>>,
    gate: Option<(&Gate, NodeId)>,
) -> Result<(), NetError> {
    loop {
        let payload = reader
            .read_frame_within(r, idle, "waiting for a frame (idle)")
            .await?;
        let msgs = decode_batch::<M>(&payload, config.max_batch_messages)?;
        if msgs.is_empty() {
            continue; // keepalive
        }
        let _newest = match gate {
            Some((gate, node)) => {
                let current = gate.slot.lock().await;
                if *current != gate.generation {
                    return Err(NetError::Superseded(node));
                }
                Some(current)
            }
            None => None,
        };
        for msg in msgs {
            inbound
                .send(wrap(msg))
                .await
                .map_err(|_| NetError::Closed)?;
        }
    }
}

/// Drains a connection's queue of pre-encoded messages into batch frames until an error.
async fn write_loop<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    rx: &mut mpsc::Receiver<Vec<u8>>,
    max_frame_size: u32,
    max_batch_messages: u32,
    config: &NetConfig,
) -> Result<(), NetError> {
    let mut batcher = Batcher::default();
    loop {
        let first = match batcher.take_carry() {
            Some(m) => m,
            None => match rx.recv().await {
                Some(m) => m,
                None => return Ok(()),
            },
        };
        let filled = batcher.fill(first, rx, max_frame_size, max_batch_messages);
        if filled.oversized > 0 {
            warn!(
                dropped = filled.oversized,
                max_frame_size, "dropping replies larger than the client's frame bound"
            );
        }
        if filled.messages > 0 {
            write_within(w, &batcher.out, config.write_timeout).await?;
        }
    }
}

/// One node's network endpoint: a [`Listener`] for inbound traffic plus its outbound [`Peers`].
#[derive(Debug)]
pub struct Transport<M> {
    listener: Listener<M>,
    peers: Peers<M>,
}

impl<M: Message> Transport<M> {
    /// Binds `listen` and prepares an empty peer set for node `node_id`.
    pub async fn start(
        node_id: NodeId,
        listen: SocketAddr,
        config: NetConfig,
    ) -> Result<(Self, mpsc::Receiver<Inbound<M>>), NetError> {
        let peers = Peers::new(node_id, config.clone())?;
        let (listener, rx) = Listener::bind(listen, node_id, config).await?;
        Ok((Transport { listener, peers }, rx))
    }

    /// The listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// The live counts of the listener's open connections.
    pub fn counts(&self) -> ConnCounts {
        self.listener.counts()
    }

    /// The outbound peer set.
    pub fn peers(&self) -> &Peers<M> {
        &self.peers
    }

    /// The outbound peer set, to add or remove peers.
    pub fn peers_mut(&mut self) -> &mut Peers<M> {
        &mut self.peers
    }

    /// Stops the listener and every peer writer, and waits for them.
    pub async fn shutdown(self) {
        let Transport { listener, peers } = self;
        listener.shutdown().await;
        peers.shutdown().await;
    }
}
