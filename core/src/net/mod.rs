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
//!
//! # Example: a node and a client on one port
//!
//! ```
//! use journalkeeper::net::{Connection, Hello, Inbound, NetConfig, Role, Transport};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), journalkeeper::net::NetError> {
//! let config = NetConfig::new(/* cluster id */ 42);
//! // Node 1 listens; peers would be added with `node.peers_mut().add(id, addr)`.
//! let (node, mut inbound) =
//!     Transport::<String>::start(1, "127.0.0.1:0".parse().unwrap(), config.clone()).await?;
//!
//! // A client connects to the same port and sends a request.
//! let hello = Hello::new(Role::Client { client_id: 7 }, &config);
//! let mut client = Connection::<String>::connect(node.local_addr(), hello, &config).await?;
//! client.send(&"ping".to_string()).await?;
//!
//! // The node sees it with a handle to reply on that connection.
//! if let Some(Inbound::Client { conn, msg }) = inbound.recv().await {
//!     conn.send(&format!("{msg} -> pong"))?;
//! }
//! assert_eq!(client.recv().await?, "ping -> pong");
//! node.shutdown().await;
//! # Ok(())
//! # }
//! ```

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
pub use transport::{ConnCounts, ConnHandle, ConnId, Inbound, Listener, Origin, Transport};

use serde::{Serialize, de::DeserializeOwned};

/// Identifier of a Raft node (voter or observer) within one cluster.
pub type NodeId = u64;

/// Anything the transport can carry: the raft, server and client layers define the concrete
/// message enums; the transport only needs to encode, decode and move them between tasks.
pub trait Message: Serialize + DeserializeOwned + Send + 'static {}

impl<M: Serialize + DeserializeOwned + Send + 'static> Message for M {}
