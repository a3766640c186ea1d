//! The outbound side: one ordered, bounded send queue and one writer task per peer.
//!
//! [`PeerSender::send`] encodes the message and queues it without ever blocking; the writer
//! task connects, handshakes as [`Role::Peer`], and writes everything queued as batch frames,
//! in queue order — so pipelined AppendEntries reach the follower in the order they were sent.
//! On any error it closes the socket and reconnects with capped exponential backoff and
//! deterministic jitter (seeded by the two node ids, so runs are reproducible).
//!
//! Loss policy (Raft tolerates message loss, never reordering within a connection):
//! - queue full at `send` → the new message is dropped, counted in `dropped_full`, and
//!   `send` returns [`NetError::QueueFull`];
//! - a batch whose write fails → dropped, counted in `dropped_unsent`;
//! - messages queued while disconnected stay queued (up to the queue depth) and are sent
//!   after the reconnect.
//!
//! An idle connection sends an empty batch every `keepalive_interval`; the writer also watches
//! the read half so a closed or restarted peer is noticed without waiting for a write to fail.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::net::codec::{encode_batch_frame, encode_message};
use crate::net::handshake::{self, HANDSHAKE_MAX_FRAME, Hello, RejectReason, Role};
use crate::net::stream::{Batcher, FrameReader, write_within};
use crate::net::{Message, NetConfig, NetError, NodeId};

/// Counters of one peer's outbound queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerStats {
    /// Messages written to a socket.
    pub sent: u64,
    /// Batch frames written (excluding keepalives): `sent / frames` is the batching factor.
    pub frames: u64,
    /// Messages refused by `send` because the queue was full.
    pub dropped_full: u64,
    /// Messages lost in a failed write, or larger than the peer's frame bound.
    pub dropped_unsent: u64,
    /// Successful handshakes so far.
    pub connects: u64,
    /// Whether a handshaken connection is currently up.
    pub connected: bool,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    frames: AtomicU64,
    dropped_full: AtomicU64,
    dropped_unsent: AtomicU64,
    connects: AtomicU64,
    connected: AtomicBool,
}

/// The sending half of one peer's queue. Cheap to clone; `send` never blocks.
pub struct PeerSender<M> {
    peer: NodeId,
    max_frame_size: u32,
    tx: mpsc::Sender<Vec<u8>>,
    counters: Arc<Counters>,
    _msg: PhantomData<fn(M)>,
}

impl<M> Clone for PeerSender<M> {
    fn clone(&self) -> Self {
        PeerSender {
            peer: self.peer,
            max_frame_size: self.max_frame_size,
            tx: self.tx.clone(),
            counters: self.counters.clone(),
            _msg: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for PeerSender<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSender")
            .field("peer", &self.peer)
            .finish()
    }
}

impl<M: Message> PeerSender<M> {
    /// The peer this queue sends to.
    pub fn peer(&self) -> NodeId {
        self.peer
    }

    /// Encodes `msg` and queues it behind everything sent before. Never blocks.
    /// Errors: [`NetError::QueueFull`] (dropped and counted), [`NetError::FrameTooLarge`],
    /// [`NetError::Encode`], or [`NetError::Closed`] after the peer was removed or shut down.
    pub fn send(&self, msg: &M) -> Result<(), NetError> {
        let bytes = encode_message(msg, self.max_frame_size)?;
        self.tx.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                self.counters.dropped_full.fetch_add(1, Ordering::Relaxed);
                NetError::QueueFull
            }
            mpsc::error::TrySendError::Closed(_) => NetError::Closed,
        })
    }

    /// A snapshot of this peer's counters.
    pub fn stats(&self) -> PeerStats {
        let c = &self.counters;
        PeerStats {
            sent: c.sent.load(Ordering::Relaxed),
            frames: c.frames.load(Ordering::Relaxed),
            dropped_full: c.dropped_full.load(Ordering::Relaxed),
            dropped_unsent: c.dropped_unsent.load(Ordering::Relaxed),
            connects: c.connects.load(Ordering::Relaxed),
            connected: c.connected.load(Ordering::Relaxed),
        }
    }
}

struct PeerEntry<M> {
    sender: PeerSender<M>,
    task: JoinHandle<()>,
}

/// The set of outbound peer connections of one node. Must be used inside a tokio runtime.
pub struct Peers<M> {
    local: NodeId,
    config: Arc<NetConfig>,
    peers: HashMap<NodeId, PeerEntry<M>>,
}

impl<M> std::fmt::Debug for Peers<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<_> = self.peers.keys().collect();
        ids.sort();
        f.debug_struct("Peers")
            .field("local", &self.local)
            .field("peers", &ids)
            .finish()
    }
}

impl<M: Message> Peers<M> {
    /// An empty peer set for node `local`.
    pub fn new(local: NodeId, config: NetConfig) -> Result<Self, NetError> {
        config.validate()?;
        Ok(Peers {
            local,
            config: Arc::new(config),
            peers: HashMap::new(),
        })
    }

    /// Adds (or replaces) peer `peer` at `addr` and starts its writer task.
    pub fn add(&mut self, peer: NodeId, addr: SocketAddr) -> PeerSender<M> {
        self.remove(peer);
        let (tx, rx) = mpsc::channel(self.config.peer_queue_depth);
        let counters = Arc::new(Counters::default());
        let sender = PeerSender {
            peer,
            max_frame_size: self.config.max_frame_size,
            tx,
            counters: counters.clone(),
            _msg: PhantomData,
        };
        let writer = Writer {
            local: self.local,
            peer,
            addr,
            config: self.config.clone(),
            counters,
            batcher: Batcher::default(),
        };
        let task = tokio::spawn(writer.run(rx));
        self.peers.insert(
            peer,
            PeerEntry {
                sender: sender.clone(),
                task,
            },
        );
        sender
    }

    /// Removes a peer, stopping its writer (queued messages are dropped). Returns whether it
    /// existed. Outstanding [`PeerSender`] clones then fail with [`NetError::Closed`].
    pub fn remove(&mut self, peer: NodeId) -> bool {
        match self.peers.remove(&peer) {
            Some(entry) => {
                entry.task.abort();
                true
            }
            None => false,
        }
    }

    /// The sender of `peer`, if registered.
    pub fn get(&self, peer: NodeId) -> Option<&PeerSender<M>> {
        self.peers.get(&peer).map(|e| &e.sender)
    }

    /// Ids of the registered peers, sorted.
    pub fn ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<_> = self.peers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Queues `msg` for `peer` without blocking (see [`PeerSender::send`]).
    pub fn send(&self, peer: NodeId, msg: &M) -> Result<(), NetError> {
        self.get(peer).ok_or(NetError::UnknownPeer(peer))?.send(msg)
    }

    /// Stops every writer task and waits until their sockets are closed.
    pub async fn shutdown(mut self) {
        let entries: Vec<_> = self.peers.drain().map(|(_, e)| e.task).collect();
        for task in &entries {
            task.abort();
        }
        for task in entries {
            let _ = task.await;
        }
    }
}

impl<M> Drop for Peers<M> {
    fn drop(&mut self) {
        for entry in self.peers.values() {
            entry.task.abort();
        }
    }
}

/// Capped exponential backoff with deterministic jitter: each delay is drawn uniformly from
/// `[d/2, d]` where `d` doubles from `initial` up to `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            initial,
            max,
            current: initial,
            // xorshift must not start at 0.
            rng: seed | 1,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.current = self.initial;
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = d / 2;
        let span = (d - half).as_nanos() as u64;
        half + Duration::from_nanos(if span == 0 { 0 } else { r % (span + 1) })
    }
}

struct Writer {
    local: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    config: Arc<NetConfig>,
    counters: Arc<Counters>,
    batcher: Batcher,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Vec<u8>>) {
        let seed = self.local.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.peer;
        let mut backoff = Backoff::new(self.config.backoff_initial, self.config.backoff_max, seed);
        let mut failures = 0u64;
        loop {
            let connects = self.counters.connects.load(Ordering::Relaxed);
            let err = self.session(&mut rx, &mut backoff).await;
            self.counters.connected.store(false, Ordering::Relaxed);
            if self.counters.connects.load(Ordering::Relaxed) != connects {
                failures = 0;
            }
            failures += 1;
            let delay = backoff.next_delay();
            // Warn on the first failure and every tenth while the peer stays unreachable.
            if matches!(
                err,
                NetError::Rejected(RejectReason::StateMachinesMismatch { .. })
            ) && failures % 10 == 1
            {
                error!(node = self.local, peer = self.peer, addr = %self.addr, reason = %err, "refusing a peer that hosts other state machines");
            } else if failures % 10 == 1 {
                warn!(node = self.local, peer = self.peer, addr = %self.addr, reason = %err, failures, retry_in = ?delay, "peer connection down");
            } else {
                debug!(node = self.local, peer = self.peer, addr = %self.addr, reason = %err, failures, retry_in = ?delay, "peer still unreachable");
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// One connection: connect, handshake, then write until something fails.
    async fn session(
        &mut self,
        rx: &mut mpsc::Receiver<Vec<u8>>,
        backoff: &mut Backoff,
    ) -> NetError {
        let config = self.config.clone();
        let stream =
            match tokio::time::timeout(config.connect_timeout, TcpStream::connect(self.addr)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return e.into(),
                Err(_) => return NetError::Timeout("connecting"),
            };
        if let Err(e) = stream.set_nodelay(true) {
            return e.into();
        }
        let (mut r, mut w) = stream.into_split();
        let mut reader = FrameReader::new(HANDSHAKE_MAX_FRAME);
        let hello = Hello::new(
            Role::Peer {
                node_id: self.local,
            },
            &config,
        );
        let welcome = match handshake::connect(&mut reader, &mut r, &mut w, &hello, &config).await {
            Ok(w) => w,
            Err(e) => return e,
        };
        if let Some(id) = welcome.node_id
            && id != self.peer
        {
            warn!(node = self.local, peer = self.peer, addr = %self.addr, answered = id, "address answered as a different node");
        }
        let max_frame = config.max_frame_size.min(welcome.max_frame_size);
        let max_batch = config.max_batch_messages.min(welcome.max_batch_messages);
        backoff.reset();
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        self.counters.connected.store(true, Ordering::Relaxed);
        info!(node = self.local, peer = self.peer, addr = %self.addr, "connected to peer");

        let mut probe = [0u8; 64];
        let mut keepalive = Vec::new();
        let _ = encode_batch_frame::<Vec<u8>>(&[], max_frame, &mut keepalive);
        loop {
            let first = match self.batcher.take_carry() {
                Some(m) => m,
                None => tokio::select! {
                    biased;
                    res = r.read(&mut probe) => return match res {
                        Ok(0) => NetError::Closed,
                        Ok(n) => NetError::decode("peer connection", format_args!("{n} unexpected bytes on a one-way connection")),
                        Err(e) => e.into(),
                    },
                    m = rx.recv() => match m {
                        Some(m) => m,
                        // Every sender is gone: the Peers set was dropped. Park until aborted.
                        None => std::future::pending().await,
                    },
                    _ = tokio::time::sleep(config.keepalive_interval) => {
                        if let Err(e) = write_within(&mut w, &keepalive, config.write_timeout).await {
                            return e;
                        }
                        debug!(node = self.local, peer = self.peer, "keepalive");
                        continue;
                    }
                },
            };
            let filled = self.batcher.fill(first, rx, max_frame, max_batch);
            if filled.oversized > 0 {
                self.counters
                    .dropped_unsent
                    .fetch_add(filled.oversized as u64, Ordering::Relaxed);
                warn!(
                    peer = self.peer,
                    dropped = filled.oversized,
                    max_frame,
                    "dropping messages larger than the peer's frame bound"
                );
            }
            if filled.messages == 0 {
                continue;
            }
            if let Err(e) = write_within(&mut w, &self.batcher.out, config.write_timeout).await {
                self.counters
                    .dropped_unsent
                    .fetch_add(filled.messages as u64, Ordering::Relaxed);
                return e;
            }
            self.counters
                .sent
                .fetch_add(filled.messages as u64, Ordering::Relaxed);
            self.counters.frames.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_range() {
        let initial = Duration::from_millis(50);
        let max = Duration::from_secs(5);
        let mut b = Backoff::new(initial, max, 42);
        let mut cap = initial;
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(
                d >= cap / 2 && d <= cap,
                "{d:?} outside [{:?}, {cap:?}]",
                cap / 2
            );
            cap = (cap * 2).min(max);
        }
        b.reset();
        assert!(b.next_delay() <= initial);
    }

    #[test]
    fn backoff_is_deterministic_per_seed() {
        let mk = |seed| {
            let mut b = Backoff::new(Duration::from_millis(50), Duration::from_secs(5), seed);
            (0..8).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(mk(7), mk(7));
        assert_ne!(mk(7), mk(8));
    }
}
