//! The client ↔ server protocol: the values carried in [`net`](crate::net) frames on client
//! connections ([`Role::Client`](crate::net::Role::Client)).
//!
//! Owns: the request / reply / push types, the "not yet" rule for reads at an index, and the
//! protocol's bounds. Never does: I/O, retries, or policy — the cluster client
//! ([`super`]) decides where to send and when to retry; the server decides how to answer.
//!
//! # One message type per port
//! A node's [`Listener`](crate::net::Listener) carries one message type for peers and clients.
//! That type is [`Wire<P>`], where `P` is the peer (raft) message type the server defines.
//! Clients use `Wire<NoPeer>`; postcard encodes an enum as its variant index followed by the
//! variant, so `Wire::<NoPeer>::Request(r)` and `Wire::<RaftMsg>::Request(r)` are the same
//! bytes. A client receiving `Peer` (impossible to decode into [`NoPeer`]) closes the connection.
//!
//! # Exchanges
//! - The client sends [`ClientRequest`] `{ id, body }`; `id` is unique per connection and
//!   chosen by the client. The server answers each request with exactly one
//!   [`ServerMessage::Reply`] carrying the same `id`, except `Append` / `AppendBatches` /
//!   `KvWrite` with [`ResponseConfig::OneWay`] that the server accepts, which get no reply at
//!   all; a refused one-way write (`NotLeader`, `InvalidArgument`, `Unavailable`, …) is
//!   answered with its error like any write, so nothing is dropped silently. Replies may come
//!   in any order. (The Rust client itself never sends `OneWay` on the wire: it sends the
//!   caller's one-way appends at `Replication` from a background queue, `client::one_way`.)
//! - `AppendBatches` (protocol 1.1) is several callers' `Append`s coalesced by one client into
//!   one request, one session and one reply; each sub-batch keeps its own batch identity in
//!   the journal. A client sends it only when it has two or more batches to coalesce.
//! - `StatusWithResources` (protocol 1.2) is `Status` plus the counts of what the node holds
//!   for its clients ([`NodeResources`]); a client asks a 1.0 / 1.1 node plain `Status`.
//! - `StatusDetail` (protocol 1.4) is `StatusWithResources` plus the monitoring detail
//!   ([`NodeDetail`]: durable and first index, partition bounds, disk, heartbeat ages, each
//!   follower's progress on the leader); a client asks a 1.2 / 1.3 node `StatusWithResources`
//!   and an older one `Status`. New variants at the end of both enums, so `Status` and
//!   `StatusWithResources` keep their bytes.
//! - `CoordWrite`, `LeaseKeepAlive`, `LeaseTimeToLive` (protocol 1.5) carry the coordination
//!   recipes (leases, locks, elections, IDs, liveness); a client refuses to send them to an
//!   older node, which could not decode them.
//! - `TxnWrite` and `OpenTransactions` (protocol 1.6) carry journal transactions; a client
//!   refuses to send them to an older node.
//! - `SmUpdate` and `SmQuery` (protocol 1.7) update and query the user state machines a
//!   server hosts by name; a client refuses to send them to an older node.
//! - The server may push [`ServerMessage::WatchEvents`] and [`ServerMessage::WatchEnded`] for
//!   watches opened on that connection. A watch's reply is sent before its first push.
//! - Every reply carries `applied_index`: the serving node's applied log index when it
//!   produced the answer (for an applied write: at least the write's own log index).
//!
//! # Reads at an index ("not yet")
//! Reads carry a [`ReadAt`]: a consistency level and `min_applied`. A node whose applied index
//! is below `min_applied` must not run the read; it answers `IndexOverflow` with its own
//! `applied_index` in the reply. So a reply with `applied_index < min_applied` is always a
//! "not yet" ([`is_not_yet`]), never an answer, and the client retries (later or elsewhere).
//! This keeps a plain `IndexOverflow` from `Get` (index past the end) distinct from "not yet".
//!
//! # Errors
//! Every `Err` is an [`api::Error`]. `NotLeader` carries `leader_hint` = the leader's *client*
//! address (`"host:port"`) when known. `Unavailable` means "no leader / no quorum right now"
//! (the client retries). `InvalidArgument` names the bound crossed. Other kinds are final.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::api::{self, JournalEntry, QueryConsistency, ResponseConfig};
use crate::state::coord::{CoordOutcome, CoordRequest};
use crate::state::kv::{KvOutcome, KvQuery, KvQueryResult, KvRequest};
use crate::state::session::RequestId;
use crate::state::txn::{TxnOutcome, TxnPhase, TxnRequest};
use crate::state::watch::{KvEvent, WatchFilter};

pub use super::status_detail::{DiskUsage, FollowerStatus, NodeDetail, PartitionBounds};

/// Most entries in one `Append`.
pub const MAX_APPEND_ENTRIES: usize = 4096;
/// Largest single journal entry payload.
pub const MAX_ENTRY_BYTES: usize = 4 * 1024 * 1024;
/// Largest sum of payload sizes in one `Append` (fits the default 16 MiB frame).
pub const MAX_APPEND_BYTES: usize = 8 * 1024 * 1024;
/// Most entries one `Get` asks for. The server may return fewer (to fit a frame), but at least
/// one when `index` is readable.
pub const MAX_GET_ENTRIES: u32 = 4096;
/// Most voters `UpdateVoters` accepts.
pub const MAX_VOTERS: usize = 64;
/// Longest `timeout_ms` of an admin request (10 minutes).
pub const MAX_ADMIN_TIMEOUT_MS: u64 = 600_000;
/// Most partitions in `ScalePartitions`.
pub const MAX_PARTITIONS: usize = 4096;
/// Longest KV key (bytes of UTF-8), as [`KvLimits::default`](crate::state::kv::KvLimits).
pub const MAX_KEY_BYTES: usize = 4096;
/// Largest KV value, as [`KvLimits::default`](crate::state::kv::KvLimits).
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Most entries one KV `List` page returns, as [`KvLimits::default`](crate::state::kv::KvLimits).
pub const MAX_LIST_ENTRIES: usize = 10_000;

/// Everything that crosses a node's port; `P` is the server's peer message type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Wire<P = NoPeer> {
    /// Client → server.
    Request(ClientRequest),
    /// Server → client.
    Server(ServerMessage),
    /// Node → node (raft traffic); never on a client connection.
    Peer(P),
}

/// The peer slot of a client's [`Wire`]: uninhabited, so a client never sends or accepts one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoPeer {}

/// One request on a client connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// Correlation id, unique on this connection; echoed by the reply.
    pub id: u64,
    pub body: RequestBody,
}

/// Where and how fresh a read must be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadAt {
    /// `Strict`: only the leader answers, after confirming leadership (ReadIndex / lease);
    /// others answer `NotLeader`. `Sequential` / `None`: any node answers from its state.
    pub consistency: QueryConsistency,
    /// The node must have applied at least this log index, else "not yet" (see module docs).
    /// `0` for `None` reads.
    pub min_applied: u64,
}

/// What a client asks. "Leader only" requests get `NotLeader` (with a hint) elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RequestBody {
    /// Leader only. Appends `entries` as one batch to `partition`.
    /// Reply: [`ReplyBody::Appended`] with the partition index of the first entry for
    /// `Replication` / `All`, `None` for `Receive` / `Persistence`; no reply for an accepted
    /// `OneWay` (an error reply when refused). A retry carries the same `session` and must not append twice (the original result is
    /// returned). Errors: `InvalidArgument` (empty batch, bounds, unknown partition,
    /// malformed session), `NotLeader`, `Unavailable`.
    Append {
        partition: u16,
        #[serde(with = "crate::bytes_serde::vec")]
        entries: Vec<Vec<u8>>,
        response: ResponseConfig,
        session: RequestId,
    },
    /// Up to `max_entries` entries of `partition` from `index` on ([`ReplyBody::Entries`]).
    /// Errors: `IndexOverflow` (`index` ≥ max index), `IndexUnderflow` (< min index),
    /// `InvalidArgument` (unknown partition, `max_entries` outside 1..=[`MAX_GET_ENTRIES`]).
    Get {
        partition: u16,
        index: u64,
        max_entries: u32,
        read: ReadAt,
    },
    /// Per partition, the smallest readable index ([`ReplyBody::Indices`]).
    MinIndices { read: ReadAt },
    /// Per partition, the next index to be written ([`ReplyBody::Indices`]).
    MaxIndices { read: ReadAt },
    /// The current partition set ([`ReplyBody::Partitions`]).
    ListPartitions { read: ReadAt },
    /// The seed's `queryIndex` rule ([`crate::state::journal_store::query_index`]):
    /// [`ReplyBody::Index`], `None` for an empty partition.
    QueryIndex {
        partition: u16,
        timestamp_ms: u64,
        read: ReadAt,
    },
    /// Leader only. Replaces the partition set once committed ([`ReplyBody::Done`]).
    /// Idempotent by value and by `session`.
    ScalePartitions {
        partitions: BTreeSet<u16>,
        session: RequestId,
    },
    /// Leader only. A KV write; `request.id` is the session for idempotent retries.
    /// Reply: [`ReplyBody::KvWritten`] with the outcome for `Replication` / `All`.
    KvWrite {
        request: KvRequest,
        response: ResponseConfig,
    },
    /// A KV read ([`ReplyBody::KvRead`]).
    KvRead { query: KvQuery, read: ReadAt },
    /// Any node. Opens watch `watch_id` (chosen by the client, unique on the connection) for
    /// events matching `filter` with index ≥ `from_index`; `from_index = 0` means "from the
    /// next index this node applies". Reply: [`ReplyBody::Watching`] with the actual start;
    /// then pushes, in index order, never splitting one index's events across two pushes.
    /// Errors: `IndexUnderflow` when `from_index` is older than the retained history.
    Watch {
        watch_id: u64,
        filter: WatchFilter,
        from_index: u64,
    },
    /// Closes a watch ([`ReplyBody::Done`], also when it was not open).
    Unwatch { watch_id: u64 },
    /// Leader only, step 1 of a two-step read: the leader's applied index after it confirmed
    /// leadership ([`ReplyBody::AppliedIndex`]). Reading anywhere with that `min_applied`
    /// then sees every write acknowledged before this request.
    AppliedIndex,
    /// Any node: that node's own status ([`ReplyBody::Status`]).
    Status,
    /// Leader only: the current configuration ([`ReplyBody::Configuration`]); another node
    /// answers `NotLeader` with its hint (its own view is in its [`NodeStatus`]).
    ClusterConfiguration,
    /// Leader only (protocol 1.1). Several batches (one client coalescing concurrent
    /// `Append`s) appended contiguously to `partition`, in order, as ONE write: one
    /// `session`, one raft proposal, one reply. Each sub-batch keeps its own identity: a
    /// reader sees `batch_size` = that sub-batch's length and `offset` = the position in it,
    /// exactly as if it had been appended alone. Reply: [`ReplyBody::Appended`] with the
    /// partition index of the first entry of the first sub-batch (sub-batch `k` starts after
    /// the entries of the sub-batches before it) for `Replication` / `All`, `None` for
    /// `Receive` / `Persistence`; no reply for an accepted `OneWay`. Retries as `Append`. Errors as
    /// `Append`; bounds ([`check_append_batches`]): at least one sub-batch, each of
    /// 1..=`u16::MAX` entries, at most [`MAX_APPEND_ENTRIES`] entries and
    /// [`MAX_APPEND_BYTES`] bytes in all, each entry at most [`MAX_ENTRY_BYTES`].
    AppendBatches {
        partition: u16,
        #[serde(with = "crate::bytes_serde::vec_vec")]
        batches: Vec<Vec<Vec<u8>>>,
        response: ResponseConfig,
        session: RequestId,
    },
    /// Any node (protocol 1.2): that node's own status and the counts of what it holds for
    /// clients ([`ReplyBody::StatusWithResources`]). Not sent to 1.0 / 1.1 nodes (they
    /// cannot decode it): the client asks them `Status`.
    StatusWithResources,
    /// Leader only (protocol 1.3). The seed's `updateVoters`: moves the voters from `old`
    /// (refused unless it is exactly the current voter set and no change is in progress) to
    /// `new`; idempotent by value (`Done` at once when the voters already are `new`). New members first join as learners and catch up, then the change goes through
    /// joint consensus. Replies [`ReplyBody::Done`] once the final configuration is committed;
    /// `Timeout` when a new member did not catch up within `timeout_ms` (the change is then
    /// cancelled; the cluster keeps its old voters). Each new member's address is recorded in
    /// the replicated address book first.
    UpdateVoters {
        old: Vec<u64>,
        new: Vec<Member>,
        timeout_ms: u64,
    },
    /// Leader only (protocol 1.3). Hands leadership to voter `node_id` (writes wait meanwhile)
    /// and replies [`ReplyBody::Done`] once that node leads; `Timeout` after `timeout_ms`.
    TransferLeader { node_id: u64, timeout_ms: u64 },
    /// Leader only (protocol 1.3). Records the preferred leader (a voter, or `None`) in the
    /// replicated configuration ([`ReplyBody::Done`] once applied); from then on leadership
    /// moves to it whenever it is alive and caught up.
    SetPreferredLeader { node_id: Option<u64> },
    /// Any node (protocol 1.3). Opens event subscription `sub_id` (chosen by the client,
    /// unique on the connection among watches and subscriptions): [`ReplyBody::Done`], then
    /// pushes [`ServerMessage::ClusterEvents`] — first this node's current state (leader,
    /// voters, its role, every partition's bounds), then each change as it sees it. Closed by
    /// `Unwatch { watch_id: sub_id }` or with the connection.
    SubscribeEvents { sub_id: u64 },
    /// Leader only (protocol 1.3). Every node takes a snapshot at the log entry this appends
    /// (the seed's CREATE_SNAPSHOT); [`ReplyBody::Index`] with that index once the leader's
    /// own snapshot is saved.
    TakeSnapshot,
    /// Any node (protocol 1.3): the snapshots this node retains ([`ReplyBody::Snapshots`]).
    ListSnapshots,
    /// Leader only (protocol 1.3). The seed's `recoverSnapshot`: a log entry that makes every
    /// node roll its state machines back to its retained snapshot at `index` ([`ReplyBody::Done`]
    /// once applied on the leader). Journal entries are never unwritten (the journal is the
    /// log) and write sessions stay (a retry never applies twice); the KV returns to the
    /// snapshot's keys and values, each difference an event at the recover entry.
    /// `InvalidArgument` when the leader does not retain the snapshot; the client checks
    /// first that a quorum of voters does (a node without it stops at that entry).
    RecoverSnapshot { index: u64 },
    /// Any node (protocol 1.4): that node's status, resources and monitoring detail
    /// ([`ReplyBody::StatusDetail`]). Not sent to older nodes (they cannot decode it): the
    /// client asks a 1.2 / 1.3 node `StatusWithResources`, an older one `Status`.
    StatusDetail,
    /// Leader only (protocol 1.5). A coordination write: a lease, a lock or election queue,
    /// an ID range, a liveness registration (`request.id` is the session for idempotent
    /// retries). Reply: [`ReplyBody::CoordWritten`] with the outcome. Errors: `LeaseExpired`
    /// when the lease it names is gone, `InvalidArgument` for bounds.
    CoordWrite { request: CoordRequest },
    /// Leader only (protocol 1.5). Renews `lease` for its full TTL from now (not a log entry:
    /// the leader's lessor keeps the deadlines) ([`ReplyBody::Lease`]); `LeaseExpired` when it
    /// is gone or its expiry is already being proposed.
    LeaseKeepAlive { lease: u64 },
    /// Leader only (protocol 1.5). What `lease` has left and holds ([`ReplyBody::Lease`]).
    LeaseTimeToLive { lease: u64 },
    /// Leader only (protocol 1.6). A journal transaction write (`request.id` is the session).
    /// Reply: [`ReplyBody::TxnWritten`]. A commit is answered once the transaction's entries
    /// are visible (`Committing` is never a final reply). Errors: `InvalidArgument` for bounds
    /// and transactions that are not open.
    TxnWrite { request: TxnRequest },
    /// A read (protocol 1.6): every transaction not yet ended ([`ReplyBody::Transactions`]).
    OpenTransactions { read: ReadAt },
    /// Leader only (protocol 1.7). Applies `commands`, in order, to the user state machine
    /// `machine`, as one log entry (`session` makes a retry apply once). Reply:
    /// [`ReplyBody::SmUpdated`] with one result per command for `Replication` / `All`, `None`
    /// for `Receive` / `Persistence`; no reply for an accepted `OneWay`. A command the machine
    /// refuses is an `Err` in its slot (`Rejected` with the machine's message); the others
    /// still apply. Errors: `InvalidArgument` (unknown machine, bounds:
    /// [`crate::server::user_machines::check_update`]).
    SmUpdate {
        machine: String,
        #[serde(with = "crate::bytes_serde::vec")]
        commands: Vec<Vec<u8>>,
        response: ResponseConfig,
        session: RequestId,
    },
    /// A read (protocol 1.7): `query` answered by the user state machine `machine`
    /// ([`ReplyBody::SmAnswer`]).
    SmQuery {
        machine: String,
        #[serde(with = "serde_bytes")]
        query: Vec<u8>,
        read: ReadAt,
    },
    /// Any node (protocol 1.8): [`RequestBody::SubscribeEvents`] with options — with
    /// `state_machines`, the pushes include [`ClusterEvent::StateChanged`] (which a
    /// subscription without it never gets, so an older client never sees the variant).
    SubscribeEventsWith { sub_id: u64, options: EventOptions },
    /// Any node (protocol 1.10), sent by an observer to its parent: the committed entries from
    /// `from` (at most `max_bytes`, bounded by [`MAX_PULL_BYTES`]). When there are none yet the
    /// parent holds the request up to `wait_ms` (at most [`MAX_PULL_WAIT_MS`]) for one to
    /// commit. Reply: [`ReplyBody::Pulled`].
    Pull {
        from: u64,
        max_bytes: u64,
        wait_ms: u64,
    },
    /// Any node (protocol 1.10), sent by an observer fetching its parent's state: a chunk of the
    /// parent's latest snapshot (`index` 0 or another than the latest: from its start). Reply:
    /// [`ReplyBody::SnapshotPiece`].
    PullSnapshot { index: u64, offset: u64 },
    /// Leader only (protocol 1.10): records `node_id` as an observer reachable at `addr` in
    /// the replicated cluster metadata (`None`: no longer an observer). An observer registers
    /// itself when it starts; `convert_role` registers a voter before removing it from the
    /// voters. Reply: [`ReplyBody::Done`] once applied.
    RegisterObserver { node_id: u64, addr: Option<String> },
    /// Any node (protocol 1.11): a KV read against the state as it was at log index `index`
    /// (the two-step read's second step), rebuilt from the nearest retained snapshot at or
    /// below it and the entries after it. Errors: `IndexOverflow` when the node has not applied
    /// `index` (the reply's `applied_index` says how far it is), `IndexUnderflow` when `index`
    /// is before the oldest state it can rebuild. Reply: [`ReplyBody::KvRead`].
    KvReadAt { query: KvQuery, index: u64 },
}

/// Largest batch of entries one [`RequestBody::Pull`] answer carries.
pub const MAX_PULL_BYTES: u64 = 4 << 20;
/// Longest a parent holds a [`RequestBody::Pull`] that has nothing to answer yet.
pub const MAX_PULL_WAIT_MS: u64 = 10_000;
/// Size of one chunk of a [`RequestBody::PullSnapshot`] answer.
pub const PULL_SNAPSHOT_CHUNK: usize = 1 << 20;

/// What an event subscription includes beyond the cluster's state (protocol 1.8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventOptions {
    /// [`ClusterEvent::StateChanged`] for each user state machine as this node applies to it.
    pub state_machines: bool,
}

impl RequestBody {
    /// The read level, for requests that are reads.
    pub fn read_at(&self) -> Option<ReadAt> {
        match self {
            RequestBody::Get { read, .. }
            | RequestBody::MinIndices { read }
            | RequestBody::MaxIndices { read }
            | RequestBody::ListPartitions { read }
            | RequestBody::QueryIndex { read, .. }
            | RequestBody::KvRead { read, .. }
            | RequestBody::OpenTransactions { read }
            | RequestBody::SmQuery { read, .. } => Some(*read),
            _ => None,
        }
    }

    /// The batches of an `Append` (one) or `AppendBatches`; `None` for other requests.
    pub fn append_batches(&self) -> Option<Vec<&[Vec<u8>]>> {
        match self {
            RequestBody::Append { entries, .. } => Some(vec![entries.as_slice()]),
            RequestBody::AppendBatches { batches, .. } => {
                Some(batches.iter().map(Vec::as_slice).collect())
            }
            _ => None,
        }
    }

    /// Whether the server sends no reply once it accepted the write (one-way writes; a
    /// refused one is answered with its error).
    pub fn expects_no_reply(&self) -> bool {
        matches!(
            self,
            RequestBody::Append {
                response: ResponseConfig::OneWay,
                ..
            } | RequestBody::AppendBatches {
                response: ResponseConfig::OneWay,
                ..
            } | RequestBody::KvWrite {
                response: ResponseConfig::OneWay,
                ..
            } | RequestBody::SmUpdate {
                response: ResponseConfig::OneWay,
                ..
            }
        )
    }
}

/// What a server sends on a client connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The answer to request `id`.
    Reply {
        id: u64,
        result: Result<ReplyBody, api::Error>,
        /// The serving node's applied index when it produced `result`.
        applied_index: u64,
    },
    /// New events of an open watch, in index order.
    WatchEvents { watch_id: u64, events: Vec<KvEvent> },
    /// The server stopped the watch (e.g. history compacted: `IndexUnderflow`; node stopping:
    /// `Closed`). No more pushes follow for `watch_id`.
    WatchEnded { watch_id: u64, error: api::Error },
    /// Changes (or, first, the current state) for event subscription `sub_id` (protocol 1.3).
    ClusterEvents {
        sub_id: u64,
        events: Vec<ClusterEvent>,
    },
}

/// What a node reports about the cluster as it sees it (the seed's events). A subscription
/// starts with the current state as events of each kind, so a subscriber that reconnects
/// never misses the latest state (it may see a state twice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterEvent {
    /// A leader was elected (or lost: `leader` is `None`) in `term`.
    LeaderChanged { leader: Option<Member>, term: u64 },
    /// The configuration changed (voters, a joint change, learners).
    VotersChanged { configuration: ClusterConfiguration },
    /// The reporting node's own role changed.
    RoleChanged { node_id: u64, role: NodeRole },
    /// A journal partition's readable range changed: `min_index` is the smallest readable
    /// index, `max_index` the next to be written.
    JournalChanged {
        partition: u16,
        min_index: u64,
        max_index: u64,
    },
    /// The user state machine `machine` changed on the reporting node: `applied_index` is the
    /// log index of the last entry that ran its commands, or that replaced its state (a
    /// snapshot restored or recovered); 0 before any. Coalesced: a subscriber sees the latest
    /// index, not every one. Only for subscriptions that asked ([`EventOptions`], 1.8).
    StateChanged { machine: String, applied_index: u64 },
}

/// Successful answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReplyBody {
    Appended {
        first_index: Option<u64>,
    },
    Entries(Vec<JournalEntry>),
    Indices(BTreeMap<u16, u64>),
    Partitions(BTreeSet<u16>),
    Index(Option<u64>),
    KvWritten(Option<KvOutcome>),
    KvRead(KvQueryResult),
    /// The watch is open; events start at `from_index`.
    Watching {
        from_index: u64,
    },
    AppliedIndex(u64),
    Status(NodeStatus),
    Configuration(ClusterConfiguration),
    /// Nothing to return.
    Done,
    /// The answer to `StatusWithResources` (protocol 1.2). `status.resources` is not encoded
    /// (a `Status` reply keeps its 1.0 bytes); the receiver sets it from `resources`.
    StatusWithResources {
        status: Box<NodeStatus>,
        resources: NodeResources,
    },
    /// The answer to `ListSnapshots` (protocol 1.3), oldest first.
    Snapshots(Vec<SnapshotInfo>),
    /// The answer to `StatusDetail` (protocol 1.4). `status.resources` and `status.detail` are
    /// not encoded; the receiver sets them from `resources` and `detail`.
    StatusDetail {
        status: Box<NodeStatus>,
        resources: NodeResources,
        detail: Box<NodeDetail>,
    },
    /// The outcome of a `CoordWrite` (protocol 1.5).
    CoordWritten(CoordOutcome),
    /// The answer to `LeaseKeepAlive` / `LeaseTimeToLive` (protocol 1.5).
    Lease(LeaseStatus),
    /// The outcome of a `TxnWrite` (protocol 1.6).
    TxnWritten(TxnOutcome),
    /// The answer to `OpenTransactions` (protocol 1.6), oldest first.
    Transactions(Vec<TxnInfo>),
    /// The results of an `SmUpdate` (protocol 1.7), one per command; `None` below
    /// `Replication`.
    SmUpdated(Option<Vec<SmResult>>),
    /// The answer of a user state machine to an `SmQuery` (protocol 1.7).
    SmAnswer(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The answer to [`RequestBody::Pull`], with the leader the parent knows (its address).
    Pulled {
        answer: crate::raft::observer::PullAnswer,
        leader: Option<String>,
    },
    /// The answer to [`RequestBody::PullSnapshot`].
    SnapshotPiece(crate::raft::observer::SnapshotPiece),
}

/// One command's result in [`ReplyBody::SmUpdated`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SmResult {
    Ok(#[serde(with = "serde_bytes")] Vec<u8>),
    Err(api::Error),
}

impl From<SmResult> for Result<Vec<u8>, api::Error> {
    fn from(r: SmResult) -> Self {
        match r {
            SmResult::Ok(bytes) => Ok(bytes),
            SmResult::Err(e) => Err(e),
        }
    }
}

/// A transaction not yet ended, as `OpenTransactions` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnInfo {
    pub tx: u64,
    pub context: BTreeMap<String, String>,
    /// `Committing`: the commit is decided and the entries are being published.
    pub phase: TxnPhase,
    /// Entries and payload bytes it holds.
    pub entries: u64,
    pub bytes: u64,
    /// The partitions it appended to.
    pub partitions: BTreeSet<u16>,
}

/// A lease as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseStatus {
    pub lease: u64,
    /// The TTL it was granted with.
    pub ttl_ms: u64,
    /// Time left before the leader expires it (its own clock; a new leader adds an election
    /// timeout to every lease first).
    pub remaining_ms: u64,
    /// KV keys attached to it.
    pub keys: Vec<String>,
}

/// A snapshot a node retains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// The log index (and its term) of the last entry the snapshot holds.
    pub index: u64,
    pub term: u64,
    /// When the node saved it, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Bytes on disk.
    pub size_bytes: u64,
}

/// A node's role as it reports it (defined with the rest of the vocabulary in `api`). Over the
/// wire a pre-candidate reports `Candidate` (1.x clients know no other value).
pub use crate::api::NodeRole;

/// A cluster member as clients address it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub node_id: u64,
    /// The member's client address (`"host:port"`).
    pub addr: String,
}

/// One node's view of itself (the seed's `getServerStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: u64,
    pub role: NodeRole,
    pub term: u64,
    /// The leader this node follows, when known.
    pub leader: Option<Member>,
    pub commit_index: u64,
    pub applied_index: u64,
    /// Last index in this node's log.
    pub last_index: u64,
    pub configuration: ClusterConfiguration,
    /// What the node holds for its clients; `None` from a node older than protocol 1.2.
    /// Never part of this struct's encoding (see [`ReplyBody::StatusWithResources`]).
    #[serde(skip)]
    pub resources: Option<NodeResources>,
    /// The monitoring detail; `None` from a node older than protocol 1.4. Never part of this
    /// struct's encoding (see [`ReplyBody::StatusDetail`]).
    #[serde(skip)]
    pub detail: Option<Box<NodeDetail>>,
}

/// What a node holds for its clients right now (protocol 1.2). Every count returns to its
/// earlier value once the clients that caused it are gone: a connection that ends releases
/// its watches, whether or not the client unwatched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeResources {
    /// Open client connections (past the handshake, until their task has ended).
    pub client_connections: u64,
    /// Open inbound connections from other nodes.
    pub peer_connections: u64,
    /// Open watches, over all client connections.
    pub watches: u64,
    /// Client connections holding at least one watch.
    pub watching_connections: u64,
    /// Requests waiting for an answer (writes not yet acknowledged, STRICT reads).
    pub pending_requests: u64,
    /// Appends proposed and not yet applied, by client session.
    pub sessions_in_flight: u64,
}

/// Voters and observers (the seed's `getClusterConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfiguration {
    pub voters: Vec<Member>,
    /// The old voter set while a joint-consensus change is in progress.
    pub joint_old_voters: Option<Vec<Member>>,
    pub observers: Vec<Member>,
    pub leader: Option<Member>,
}

/// The bounds of one append request: `Append` is one batch, `AppendBatches` several. Checked
/// by the client before sending and by the server on receipt; the `InvalidArgument` error
/// names the bound crossed.
pub fn check_append_batches(batches: &[&[Vec<u8>]]) -> Result<(), api::Error> {
    let invalid = |m: String| Err(api::Error::new(api::ErrorKind::InvalidArgument, m));
    let count: usize = batches.iter().map(|b| b.len()).sum();
    if count == 0 || count > MAX_APPEND_ENTRIES {
        return invalid(format!(
            "append of {count} entries is outside 1..={MAX_APPEND_ENTRIES}"
        ));
    }
    let mut total = 0usize;
    let mut position = 0usize;
    for (k, batch) in batches.iter().enumerate() {
        if batch.is_empty() || batch.len() > usize::from(u16::MAX) {
            return invalid(format!(
                "batch {k} of the append has {} entries, outside 1..={}",
                batch.len(),
                u16::MAX
            ));
        }
        for e in batch.iter() {
            if e.len() > MAX_ENTRY_BYTES {
                return invalid(format!(
                    "entry {position} of {} bytes exceeds the limit of {MAX_ENTRY_BYTES} bytes",
                    e.len()
                ));
            }
            total += e.len();
            position += 1;
        }
    }
    if total > MAX_APPEND_BYTES {
        return invalid(format!(
            "append of {total} bytes exceeds the limit of {MAX_APPEND_BYTES} bytes"
        ));
    }
    Ok(())
}

/// Whether a reply to a read sent with `min_applied` is a "not yet" rather than an answer.
pub fn is_not_yet(min_applied: u64, applied_index: u64) -> bool {
    applied_index < min_applied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum RaftMsg {
        Vote(u64),
    }

    #[test]
    fn a_client_wire_value_has_the_same_bytes_as_the_servers() {
        let req = ClientRequest {
            id: 9,
            body: RequestBody::Status,
        };
        let client = postcard::to_allocvec(&Wire::<NoPeer>::Request(req.clone())).unwrap();
        let server = postcard::to_allocvec(&Wire::<RaftMsg>::Request(req)).unwrap();
        assert_eq!(client, server);
        let reply = Wire::<RaftMsg>::Server(ServerMessage::Reply {
            id: 9,
            result: Err(api::Error::not_leader(Some("127.0.0.1:1".into()))),
            applied_index: 3,
        });
        let bytes = postcard::to_allocvec(&reply).unwrap();
        let decoded: Wire<NoPeer> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            postcard::to_allocvec(&decoded).unwrap(),
            bytes,
            "decodes to the same value"
        );
        let peer = postcard::to_allocvec(&Wire::<RaftMsg>::Peer(RaftMsg::Vote(1))).unwrap();
        assert!(postcard::from_bytes::<Wire<NoPeer>>(&peer).is_err());
    }

    #[test]
    fn not_yet_is_decided_by_the_applied_index_alone() {
        assert!(is_not_yet(10, 9));
        assert!(!is_not_yet(10, 10));
        assert!(!is_not_yet(0, 0));
    }

    #[test]
    fn one_way_writes_expect_no_reply() {
        let session = RequestId {
            client_id: 1,
            seq: 1,
            first_unacked: 1,
        };
        let append = |response| RequestBody::Append {
            partition: 0,
            entries: vec![],
            response,
            session,
        };
        assert!(append(ResponseConfig::OneWay).expects_no_reply());
        assert!(!append(ResponseConfig::Receive).expects_no_reply());
        assert!(!RequestBody::Status.expects_no_reply());
        let batches = |response| RequestBody::AppendBatches {
            partition: 0,
            batches: vec![],
            response,
            session,
        };
        assert!(batches(ResponseConfig::OneWay).expects_no_reply());
        assert!(!batches(ResponseConfig::All).expects_no_reply());
    }

    #[test]
    fn append_batches_is_a_new_variant_at_the_end() {
        // Existing variants keep their bytes: `Append` is still variant 0 and the new one
        // comes after `ClusterConfiguration` (variant 13).
        let session = RequestId {
            client_id: 1,
            seq: 1,
            first_unacked: 1,
        };
        let append = postcard::to_allocvec(&RequestBody::Append {
            partition: 0,
            entries: vec![],
            response: ResponseConfig::Receive,
            session,
        })
        .unwrap();
        assert_eq!(append[0], 0);
        let status = postcard::to_allocvec(&RequestBody::ClusterConfiguration).unwrap();
        assert_eq!(status, vec![13]);
        let body = RequestBody::AppendBatches {
            partition: 2,
            batches: vec![vec![b"a".to_vec()], vec![b"b".to_vec(), b"c".to_vec()]],
            response: ResponseConfig::All,
            session,
        };
        let bytes = postcard::to_allocvec(&body).unwrap();
        assert_eq!(bytes[0], 14);
        assert_eq!(postcard::from_bytes::<RequestBody>(&bytes).unwrap(), body);
        assert_eq!(
            body.append_batches().unwrap(),
            vec![&[b"a".to_vec()][..], &[b"b".to_vec(), b"c".to_vec()][..]]
        );
    }

    #[test]
    fn status_with_resources_is_new_at_the_end_and_status_keeps_its_bytes() {
        assert_eq!(
            postcard::to_allocvec(&RequestBody::StatusWithResources).unwrap(),
            vec![15]
        );
        let member = Member {
            node_id: 1,
            addr: "127.0.0.1:1".into(),
        };
        let mut status = NodeStatus {
            node_id: 1,
            role: NodeRole::Leader,
            term: 2,
            leader: Some(member.clone()),
            commit_index: 3,
            applied_index: 3,
            last_index: 4,
            configuration: ClusterConfiguration {
                voters: vec![member],
                ..ClusterConfiguration::default()
            },
            resources: None,
            detail: None,
        };
        let plain = postcard::to_allocvec(&ReplyBody::Status(status.clone())).unwrap();
        let resources = NodeResources {
            client_connections: 5,
            peer_connections: 2,
            watches: 7,
            watching_connections: 3,
            pending_requests: 1,
            sessions_in_flight: 1,
        };
        status.resources = Some(resources);
        assert_eq!(
            postcard::to_allocvec(&ReplyBody::Status(status.clone())).unwrap(),
            plain,
            "the resources are not part of a Status reply"
        );
        let reply = ReplyBody::StatusWithResources {
            status: Box::new(status.clone()),
            resources,
        };
        let bytes = postcard::to_allocvec(&reply).unwrap();
        assert_eq!(bytes[0], 12, "after Done (11)");
        match postcard::from_bytes::<ReplyBody>(&bytes).unwrap() {
            ReplyBody::StatusWithResources {
                status: got,
                resources: r,
            } => {
                assert_eq!(got.resources, None, "carried beside the status");
                assert_eq!(r, resources);
                assert_eq!(got.node_id, status.node_id);
            }
            other => panic!("decoded {other:?}"),
        }
    }

    #[test]
    fn status_detail_is_new_at_the_end_and_the_older_status_replies_keep_their_bytes() {
        assert_eq!(
            postcard::to_allocvec(&RequestBody::StatusDetail).unwrap(),
            vec![23],
            "after RecoverSnapshot (22)"
        );
        let member = Member {
            node_id: 2,
            addr: "127.0.0.1:2".into(),
        };
        let mut status = NodeStatus {
            node_id: 2,
            role: NodeRole::Follower,
            term: 5,
            leader: Some(member.clone()),
            commit_index: 7,
            applied_index: 7,
            last_index: 8,
            configuration: ClusterConfiguration {
                voters: vec![member],
                ..ClusterConfiguration::default()
            },
            resources: None,
            detail: None,
        };
        let plain = postcard::to_allocvec(&ReplyBody::Status(status.clone())).unwrap();
        let resources = NodeResources {
            client_connections: 1,
            ..NodeResources::default()
        };
        let with_resources = postcard::to_allocvec(&ReplyBody::StatusWithResources {
            status: Box::new(status.clone()),
            resources,
        })
        .unwrap();
        let detail = NodeDetail {
            first_index: 1,
            durable_index: 8,
            leader_last_heard_ms: Some(12),
            partitions: vec![PartitionBounds {
                partition: 0,
                min_index: 0,
                max_index: 3,
            }],
            ..NodeDetail::default()
        };
        status.resources = Some(resources);
        status.detail = Some(Box::new(detail.clone()));
        assert_eq!(
            postcard::to_allocvec(&ReplyBody::Status(status.clone())).unwrap(),
            plain,
            "neither resources nor detail are part of a Status reply"
        );
        assert_eq!(
            postcard::to_allocvec(&ReplyBody::StatusWithResources {
                status: Box::new(status.clone()),
                resources,
            })
            .unwrap(),
            with_resources
        );
        let reply = ReplyBody::StatusDetail {
            status: Box::new(status),
            resources,
            detail: Box::new(detail.clone()),
        };
        let bytes = postcard::to_allocvec(&reply).unwrap();
        assert_eq!(bytes[0], 14, "after Snapshots (13)");
        match postcard::from_bytes::<ReplyBody>(&bytes).unwrap() {
            ReplyBody::StatusDetail {
                status: got,
                resources: r,
                detail: d,
            } => {
                assert_eq!((got.resources, got.detail), (None, None));
                assert_eq!((r, *d), (resources, detail));
            }
            other => panic!("decoded {other:?}"),
        }
    }

    #[test]
    fn append_batch_bounds_are_checked_and_named() {
        let one = vec![b"x".to_vec()];
        let big = vec![vec![0u8; MAX_ENTRY_BYTES]; 2];
        let many = vec![vec![]; MAX_APPEND_ENTRIES];
        assert!(check_append_batches(&[&one, &one]).is_ok());
        assert!(check_append_batches(&[&many]).is_ok());
        let huge = vec![vec![0u8; MAX_ENTRY_BYTES + 1]];
        let cases: [(Vec<&[Vec<u8>]>, &str); 6] = [
            (vec![], "append of 0 entries is outside"),
            (vec![&[]], "append of 0 entries is outside"),
            (vec![&one, &[], &one], "batch 1 of the append has 0 entries"),
            (vec![&many, &one], "append of 4097 entries is outside"),
            (vec![&one, &huge], "entry 1 of 4194305 bytes exceeds"),
            (vec![&big, &one, &big], "bytes exceeds the limit of"),
        ];
        for (batches, says) in cases {
            let e = check_append_batches(&batches).unwrap_err();
            assert_eq!(e.kind, api::ErrorKind::InvalidArgument);
            assert!(e.message.contains(says), "{e} should say {says}");
        }
    }
}
