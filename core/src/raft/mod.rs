//! Sans-IO Raft consensus core: a deterministic state machine. No threads, sockets, files or
//! clock reads.
//!
//! The host drives a [`RaftNode`] with a handful of calls — [`RaftNode::tick`] (time),
//! [`RaftNode::step`] (a peer message), [`RaftNode::propose`], [`RaftNode::read`],
//! [`RaftNode::change_membership`], [`RaftNode::transfer_leader`],
//! [`RaftNode::on_persisted`], [`RaftNode::on_applied`], [`RaftNode::on_snapshot_taken`] — and
//! drains the effects with [`RaftNode::ready`]. The log is read through the [`Storage`] trait,
//! which the host implements over its durable journal.
//!
//! ```
//! use journalkeeper::raft::{Config, EntryKind, MemStorage, Membership, RaftNode, Role};
//!
//! let cfg = Config { id: 1, ..Config::default() };
//! let mut node = RaftNode::new(cfg, MemStorage::new(Membership::new([1])), 0, 0).unwrap();
//! let mut applied = Vec::new();
//! let mut now = 0;
//! let mut proposed = false;
//! while applied.len() < 2 {
//!     now += 100;
//!     node.tick(now);
//!     if node.role() == Role::Leader && !proposed {
//!         node.propose(b"hello".to_vec()).unwrap();
//!         proposed = true;
//!     }
//!     let rd = node.ready();
//!     // 1. persist (a real host fsyncs here), then report durability.
//!     for chunk in &rd.snapshot_chunks {
//!         node.storage_mut().receive_chunk(chunk);
//!     }
//!     if let Some(meta) = rd.snapshot.clone() {
//!         node.storage_mut().install_received(meta);
//!     }
//!     node.storage_mut().append(&rd.entries);
//!     if let Some(hs) = rd.hard_state.clone() {
//!         node.storage_mut().hard_state = hs;
//!     }
//!     if let Some((index, term)) = rd.persist_point() {
//!         node.on_persisted(index, term);
//!     }
//!     // 2. send rd.messages and rd.persisted_messages (single node: none).
//!     // 3. apply.
//!     for e in &rd.committed_entries {
//!         applied.push(e.kind.clone());
//!         node.on_applied(e.index);
//!     }
//! }
//! assert_eq!(applied, vec![EntryKind::Noop, EntryKind::Normal(b"hello".to_vec())]);
//! ```

mod config;
mod log;
mod membership;
mod message;
mod node;
pub mod observer;
#[doc(hidden)]
pub mod planted;
mod progress;
mod quorum;
mod ready;
mod storage;

pub use config::Config;
pub use membership::Membership;
pub use message::{
    Entry, EntryKind, HardState, Index, Message, MessageBody, NodeId, Snapshot, SnapshotChunk,
    SnapshotMeta, Term,
};
pub use node::{FollowerProgress, RaftNode, SnapshotAck, Status};
pub use progress::{Progress, ProgressState};
pub use ready::{Event, ReadMode, ReadState, Ready, Role};
pub use storage::{MemStorage, Storage};

/// Errors returned to the host by the consensus core's inputs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    #[error("node is not the leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("leadership transfer to node {0} in progress")]
    TransferInProgress(NodeId),
    #[error("a membership change is already in progress")]
    ConfChangeInProgress,
    #[error("invalid raft configuration: {0}")]
    InvalidConfig(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("too many pending reads")]
    TooManyPendingReads,
    #[error("cannot snapshot at index {index}: {why}")]
    SnapshotUnavailable { index: Index, why: String },
}
