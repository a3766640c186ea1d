//! Wire protocol (length-prefixed postcard frames, versioned handshake) and TCP transport.
//!
//! This module owns everything between a Rust value and a TCP socket, and nothing above:
//! it never interprets the messages it carries (they are a generic `M`, defined by the raft,
//! server and client layers), and it never decides what to send — it only moves values, in
//! order, with bounded memory, and closes any connection that misbehaves.
//!
//! Files, bottom up:
//! - [`frame`]: the frame format (`u32` length, CRC32C, payload) and an incremental decoder
//!   that never panics and rejects oversized frames before allocating. Pure, no I/O.
//! - [`codec`]: postcard encoding of one message and of message *batches* (one frame carries
//!   many small messages). Pure, no I/O.
//! - [`handshake`]: the first frame on every connection (`Hello`) and its reply
//!   (`Welcome` / `Reject`), with protocol version and cluster id checks.
//! - [`transport`]: the tokio listener that accepts peers and clients on one port and
//!   delivers [`Inbound`] messages to the node.
//! - [`peers`]: outbound per-peer ordered, bounded send queues with a writer task per peer
//!   that reconnects with capped, jittered exponential backoff.
//! - [`connection`]: a plain client-side connection (`connect`, `send`, `recv`).
//! - [`config`] / [`error`]: the validated [`NetConfig`] and the layer's [`NetError`].
//!
//! See `ARCHITECTURE-net.md` at the repository root for the byte layout and lifecycle.

pub mod codec;
pub mod config;
pub mod connection;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod peers;
mod stream;
pub mod transport;

pub use config::NetConfig;
pub use connection::Connection;
pub use error::NetError;
pub use handshake::{Hello, HelloReply, ProtocolVersion, RejectReason, Role, Welcome};
pub use peers::{PeerSender, PeerStats, Peers};
pub use transport::{ConnHandle, ConnId, Inbound, Listener, Transport};

use serde::{Serialize, de::DeserializeOwned};

/// Identifier of a Raft node (voter or observer) within one cluster.
pub type NodeId = u64;

/// Anything the transport can carry: the raft, server and client layers define the concrete
/// message enums; the transport only needs to encode, decode and move them between tasks.
pub trait Message: Serialize + DeserializeOwned + Send + 'static {}

impl<M: Serialize + DeserializeOwned + Send + 'static> Message for M {}
