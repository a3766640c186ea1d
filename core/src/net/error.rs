//! The network layer's error type. Every variant names what went wrong and, where it
//! applies, the bound or the value that was violated.

use std::io;

use crate::net::NodeId;
use crate::net::handshake::{ProtocolVersion, RejectReason};

/// Errors of the wire protocol and the TCP transport.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// An I/O error on the socket.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// A frame's length prefix (or an outgoing encoded message) exceeds the maximum frame size.
    #[error("frame of {len} bytes exceeds the maximum frame size of {max} bytes")]
    FrameTooLarge { len: u64, max: u32 },
    /// A frame's CRC32C does not match its payload.
    #[error("frame checksum mismatch: header says {expected:#010x}, payload has {actual:#010x}")]
    Checksum { expected: u32, actual: u32 },
    /// A batch announces more messages than allowed.
    #[error("batch of {count} messages exceeds the maximum of {max}")]
    BatchTooLarge { count: u64, max: u32 },
    /// A frame payload is not a valid postcard encoding of the expected type.
    #[error("malformed {what}: {detail}")]
    Decode { what: &'static str, detail: String },
    /// A value could not be encoded.
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
    /// The first frame was not a valid `Hello` (wrong magic, or not a handshake at all).
    #[error("bad handshake: {0}")]
    BadHandshake(String),
    /// The remote end refused our `Hello`.
    #[error("handshake rejected: {0}")]
    Rejected(RejectReason),
    /// The remote end speaks an incompatible protocol version.
    #[error("incompatible protocol version {remote} (local {local})")]
    VersionMismatch {
        local: ProtocolVersion,
        remote: ProtocolVersion,
    },
    /// A deadline passed.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// The connection (or the transport) is closed.
    #[error("connection closed")]
    Closed,
    /// A newer connection from the same node replaced this one.
    #[error("superseded by a newer connection from node {0}")]
    Superseded(NodeId),
    /// A non-blocking send found the queue full; the message was dropped.
    #[error("send queue full; message dropped")]
    QueueFull,
    /// No peer with this id is registered.
    #[error("unknown peer {0}")]
    UnknownPeer(NodeId),
    /// A [`NetConfig`](crate::net::NetConfig) value is out of range.
    #[error("invalid network configuration: {0}")]
    InvalidConfig(String),
}

impl NetError {
    pub(crate) fn decode(what: &'static str, err: impl std::fmt::Display) -> Self {
        NetError::Decode {
            what,
            detail: err.to_string(),
        }
    }

    pub(crate) fn encode(what: &'static str, err: impl std::fmt::Display) -> Self {
        NetError::Encode {
            what,
            detail: err.to_string(),
        }
    }
}
