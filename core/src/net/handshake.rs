//! The handshake: the first frame on every connection.
//!
//! The connecting side sends a [`Hello`] (magic, protocol version, cluster id, role, its frame
//! bound); the accepting side answers with [`HelloReply::Welcome`] or
//! [`HelloReply::Reject`] and, after a reject, closes. Nothing else may be sent before the
//! handshake completes: a first frame that is not a valid `Hello` closes the connection.
//! Both directions run under `handshake_timeout`, and handshake frames are capped at
//! [`HANDSHAKE_MAX_FRAME`] bytes whatever `max_frame_size` is.
//!
//! After a `Welcome`, each side sends frames no larger than the *smaller* of the two
//! `max_frame_size` values exchanged here.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::net::codec::{decode_value, encode_value_frame};
use crate::net::stream::{FrameReader, write_within};
use crate::net::{NetConfig, NetError, NodeId};

/// The four bytes every `Hello` payload starts with.
pub const MAGIC: [u8; 4] = *b"JKRS";

/// The protocol version this build speaks. 1.1 added the client request `AppendBatches`
/// (a 1.0 node cannot decode it; clients send it only when coalescing two or more appends);
/// 1.2 added `StatusWithResources` (clients ask older nodes plain `Status`); 1.3 live
/// administration: `UpdateVoters`, `TransferLeader`, `SetPreferredLeader`, event subscriptions
/// and the snapshot requests (refused by the client for older nodes); 1.4 `StatusDetail`, the status with its monitoring detail (clients ask
/// older nodes `StatusWithResources` or `Status`); 1.5 the coordination recipes; 1.6 journal
/// transactions; 1.7 user state machines (`SmUpdate`, `SmQuery`) and
/// [`HelloReply::WelcomePeer`], which a node sends only to a 1.7 peer; 1.8 event
/// subscriptions with options (`SubscribeEventsWith`: user state machine changes); 1.10
/// observers (`Pull`, `PullSnapshot`, `RegisterObserver`); 1.11 KV reads at an index
/// (`KvReadAt`).
pub const PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion {
    major: 1,
    minor: 11,
};

/// Largest handshake frame payload accepted.
pub const HANDSHAKE_MAX_FRAME: u32 = 4096;

/// Wire protocol version: peers are compatible when their major versions are equal; a minor
/// bump only adds things an older peer can ignore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolVersion {
    pub major: u16,
    pub minor: u16,
}

impl ProtocolVersion {
    /// Whether two versions can talk.
    pub fn is_compatible(self, other: ProtocolVersion) -> bool {
        self.major == other.major
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Who is connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Another node of the cluster, which will send raft traffic.
    Peer { node_id: NodeId },
    /// A client, which sends requests and receives replies on this connection.
    Client { client_id: u64 },
}

/// The first frame on every connection, sent by the connecting side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub magic: [u8; 4],
    pub version: ProtocolVersion,
    pub cluster_id: u64,
    pub role: Role,
    /// Largest frame payload the connecting side accepts.
    pub max_frame_size: u32,
    /// Most messages in one batch frame the connecting side accepts.
    pub max_batch_messages: u32,
}

impl Hello {
    /// A `Hello` for this build's protocol version, with the cluster id and bounds of `config`.
    pub fn new(role: Role, config: &NetConfig) -> Self {
        Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            cluster_id: config.cluster_id,
            role,
            max_frame_size: config.max_frame_size,
            max_batch_messages: config.max_batch_messages,
        }
    }
}

/// Acceptance of a `Hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub version: ProtocolVersion,
    /// The accepting node's id, when it is a node.
    pub node_id: Option<NodeId>,
    /// Largest frame payload the accepting side accepts.
    pub max_frame_size: u32,
    /// Most messages in one batch frame the accepting side accepts.
    pub max_batch_messages: u32,
}

/// Why a `Hello` was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RejectReason {
    #[error("not a JournalKeeper connection (magic {got:?})")]
    BadMagic { got: [u8; 4] },
    #[error("protocol version {client} is incompatible with server version {server}")]
    VersionMismatch {
        server: ProtocolVersion,
        client: ProtocolVersion,
    },
    #[error("cluster id {client} does not match this node's cluster id {server}")]
    ClusterMismatch { server: u64, client: u64 },
    #[error("unusable bounds: {0}")]
    InvalidBounds(String),
    #[error("{0}")]
    Other(String),
    /// Found by the connecting node in [`HelloReply::WelcomePeer`]; never sent.
    #[error(
        "this node hosts the state machines {local:?} but the peer hosts {remote:?}; every node \
         of a cluster must host the same state machines"
    )]
    StateMachinesMismatch {
        local: Vec<String>,
        remote: Vec<String>,
    },
}

/// The accepting side's answer to a `Hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    Welcome(Welcome),
    Reject(RejectReason),
    /// `Welcome` to a peer of protocol 1.7 or later, with the user state machines this node
    /// hosts: the connecting node refuses a peer that hosts other names.
    WelcomePeer {
        welcome: Welcome,
        state_machines: Vec<String>,
    },
}

/// Checks a received `Hello` against this node's identity. Pure.
pub fn check_hello(hello: &Hello, cluster_id: u64) -> Result<(), RejectReason> {
    if hello.magic != MAGIC {
        return Err(RejectReason::BadMagic { got: hello.magic });
    }
    if !PROTOCOL_VERSION.is_compatible(hello.version) {
        return Err(RejectReason::VersionMismatch {
            server: PROTOCOL_VERSION,
            client: hello.version,
        });
    }
    if hello.cluster_id != cluster_id {
        return Err(RejectReason::ClusterMismatch {
            server: cluster_id,
            client: hello.cluster_id,
        });
    }
    let min = crate::net::config::MIN_FRAME_SIZE;
    if hello.max_frame_size < min {
        return Err(RejectReason::InvalidBounds(format!(
            "max_frame_size {} is below the minimum {min}",
            hello.max_frame_size
        )));
    }
    if hello.max_batch_messages == 0 {
        return Err(RejectReason::InvalidBounds(
            "max_batch_messages is 0".into(),
        ));
    }
    Ok(())
}

/// Runs `fut` under the handshake deadline.
async fn within<T>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, NetError>>,
) -> Result<T, NetError> {
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or(Err(NetError::Timeout("handshaking")))
}

/// Accepting side: reads the `Hello`, checks it, answers. On success returns the `Hello`;
/// on a refusal the `Reject` has been sent (best effort) and the error is
/// [`NetError::Rejected`]; the caller closes the connection either way on error.
pub(crate) async fn accept<R, W>(
    reader: &mut FrameReader,
    r: &mut R,
    w: &mut W,
    config: &NetConfig,
    local_node: Option<NodeId>,
) -> Result<Hello, NetError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    within(config.handshake_timeout, async {
        let bound = reader.decoder.max_frame_size();
        reader
            .decoder
            .set_max_frame_size(HANDSHAKE_MAX_FRAME.min(bound));
        let payload = reader.read_frame(r).await?;
        reader.decoder.set_max_frame_size(bound);
        let hello: Hello = decode_value(&payload, "hello")
            .map_err(|e| NetError::BadHandshake(format!("first frame is not a Hello: {e}")))?;
        let reply = match check_hello(&hello, config.cluster_id) {
            Ok(()) => {
                let welcome = Welcome {
                    version: PROTOCOL_VERSION,
                    node_id: local_node,
                    max_frame_size: config.max_frame_size,
                    max_batch_messages: config.max_batch_messages,
                };
                let peer_1_7 = matches!(hello.role, Role::Peer { .. })
                    && hello.version.major == 1
                    && hello.version.minor >= 7;
                if peer_1_7 {
                    HelloReply::WelcomePeer {
                        welcome,
                        state_machines: config.state_machines.clone(),
                    }
                } else {
                    HelloReply::Welcome(welcome)
                }
            }
            Err(reason) => HelloReply::Reject(reason),
        };
        let mut out = Vec::new();
        encode_value_frame(&reply, "hello reply", HANDSHAKE_MAX_FRAME, &mut out)?;
        write_within(w, &out, config.write_timeout).await?;
        match reply {
            HelloReply::Welcome(_) | HelloReply::WelcomePeer { .. } => Ok(hello),
            HelloReply::Reject(reason) => Err(NetError::Rejected(reason)),
        }
    })
    .await
}

/// Connecting side: sends `hello` and waits for the reply.
pub(crate) async fn connect<R, W>(
    reader: &mut FrameReader,
    r: &mut R,
    w: &mut W,
    hello: &Hello,
    config: &NetConfig,
) -> Result<Welcome, NetError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    within(config.handshake_timeout, async {
        let mut out = Vec::new();
        encode_value_frame(hello, "hello", HANDSHAKE_MAX_FRAME, &mut out)?;
        write_within(w, &out, config.write_timeout).await?;
        let bound = reader.decoder.max_frame_size();
        reader
            .decoder
            .set_max_frame_size(HANDSHAKE_MAX_FRAME.min(bound));
        let payload = reader.read_frame(r).await?;
        reader.decoder.set_max_frame_size(bound);
        let welcome = match decode_value::<HelloReply>(&payload, "hello reply")? {
            HelloReply::Welcome(welcome) => welcome,
            HelloReply::WelcomePeer {
                welcome,
                state_machines,
            } => {
                if matches!(hello.role, Role::Peer { .. })
                    && state_machines != config.state_machines
                {
                    return Err(NetError::Rejected(RejectReason::StateMachinesMismatch {
                        local: config.state_machines.clone(),
                        remote: state_machines,
                    }));
                }
                welcome
            }
            HelloReply::Reject(reason) => return Err(NetError::Rejected(reason)),
        };
        if welcome.max_frame_size < crate::net::config::MIN_FRAME_SIZE
            || welcome.max_batch_messages == 0
        {
            return Err(NetError::BadHandshake(format!(
                "unusable bounds in Welcome: max_frame_size {}, max_batch_messages {}",
                welcome.max_frame_size, welcome.max_batch_messages
            )));
        }
        if !PROTOCOL_VERSION.is_compatible(welcome.version) {
            return Err(NetError::VersionMismatch {
                local: PROTOCOL_VERSION,
                remote: welcome.version,
            });
        }
        Ok(welcome)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_checks_magic_version_cluster_and_bound() {
        let ok = Hello::new(Role::Peer { node_id: 1 }, &NetConfig::new(9));
        assert_eq!(check_hello(&ok, 9), Ok(()));
        assert!(matches!(
            check_hello(&ok, 8),
            Err(RejectReason::ClusterMismatch {
                server: 8,
                client: 9
            })
        ));
        let mut v = ok.clone();
        v.version.major += 1;
        assert!(matches!(
            check_hello(&v, 9),
            Err(RejectReason::VersionMismatch { .. })
        ));
        let mut minor = ok.clone();
        minor.version.minor += 1;
        assert_eq!(check_hello(&minor, 9), Ok(()));
        let mut m = ok.clone();
        m.magic = *b"HTTP";
        assert!(matches!(
            check_hello(&m, 9),
            Err(RejectReason::BadMagic { .. })
        ));
        let mut f = ok;
        f.max_frame_size = 10;
        assert!(matches!(
            check_hello(&f, 9),
            Err(RejectReason::InvalidBounds(_))
        ));
    }

    #[test]
    fn hello_payload_starts_with_magic() {
        let bytes = postcard::to_allocvec(&Hello::new(
            Role::Client { client_id: 2 },
            &NetConfig::new(1),
        ))
        .unwrap();
        assert_eq!(&bytes[..4], b"JKRS");
    }

    #[test]
    fn reject_reasons_read_clearly() {
        let r = RejectReason::ClusterMismatch {
            server: 1,
            client: 2,
        };
        assert_eq!(
            r.to_string(),
            "cluster id 2 does not match this node's cluster id 1"
        );
    }
}
