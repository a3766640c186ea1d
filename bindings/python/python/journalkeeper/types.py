"""Levels, records and result types shared by the client and the server wrappers."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple, TypeAlias, TypedDict

from .errors import JournalKeeperError

from ._native import JournalEntry, WatchEvent, limits

_LIMITS = limits()
# The bounds a caller can hit (the core's; crossing one raises InvalidArgumentError naming it).
#: Most entries in one ``journal.append`` batch.
MAX_APPEND_ENTRIES: Final[int] = _LIMITS["max_append_entries"]
#: Largest payload of one journal entry, in bytes (4 MiB).
MAX_ENTRY_BYTES: Final[int] = _LIMITS["max_entry_bytes"]
#: Largest sum of the payloads of one ``journal.append``, in bytes (8 MiB).
MAX_APPEND_BYTES: Final[int] = _LIMITS["max_append_bytes"]
#: Largest ``max`` of one ``journal.get`` (a reply may hold fewer, to fit a frame).
MAX_GET_ENTRIES: Final[int] = _LIMITS["max_get_entries"]
#: Most partitions in one ``journal.scale_partitions`` set.
MAX_PARTITIONS: Final[int] = _LIMITS["max_partitions"]
#: Longest KV key, in bytes of UTF-8 (the servers' default limit).
MAX_KEY_BYTES: Final[int] = _LIMITS["max_key_bytes"]
#: Largest KV value, in bytes (1 MiB; the servers' default limit).
MAX_VALUE_BYTES: Final[int] = _LIMITS["max_value_bytes"]
#: Most voters of one ``admin.update_voters`` (the new set).
MAX_VOTERS: Final[int] = _LIMITS["max_voters"]
#: Longest ``timeout`` of an admin change, in seconds (10 minutes).
MAX_ADMIN_TIMEOUT: Final[float] = _LIMITS["max_admin_timeout_ms"] / 1000


#: What byte-string arguments accept.
BytesLike: TypeAlias = bytes | bytearray


class ResponseConfig(enum.Enum):
    """When a write is acknowledged. Only ``REPLICATION`` and ``ALL`` return the index.

    Wherever a level is taken, its name as a string works too, in any case and with ``-`` or
    ``_`` (``"one-way"``, ``"Replication"``)."""

    #: No reply: ``append`` returns once the batch is accepted into the client's bounded queue
    #: (64 MiB; when full it waits for room up to ``request_timeout``, then raises
    #: ``TimeoutError``). The library then delivers it to the leader in the background like any
    #: write (redirects followed, retried under one session id, so stored once) and counts it
    #: stored when the leader reports it committed on a majority. On a cluster with a leader
    #: every accepted ONE_WAY append is stored, in order per partition; ``client.flush()``
    #: waits for that, and ``close()`` / ``with`` exit flush for at most 5 s before closing
    #: (garbage collection flushes in the background). Lost only if the process dies (or the
    #: 5 s pass at close) before the leader committed it, or if no leader takes it within
    #: ``request_timeout`` (retries exhausted).
    ONE_WAY = "ONE_WAY"
    #: The server received the request.
    RECEIVE = "RECEIVE"
    #: Written to the leader's disk, not necessarily replicated.
    PERSISTENCE = "PERSISTENCE"
    #: Committed: on the disks of a majority (the default).
    REPLICATION = "REPLICATION"
    #: Committed and on the leader's own disk.
    ALL = "ALL"


class QueryConsistency(enum.Enum):
    """How fresh a read must be. Its name as a string works too, in any case (``"strict"``)."""

    #: Linearizable: served by the confirmed leader (the default).
    STRICT = "STRICT"
    #: Any node, in log order, never going backwards for one client.
    SEQUENTIAL = "SEQUENTIAL"
    #: Local state of whichever node answers; no guarantee.
    NONE = "NONE"


class CasResult(NamedTuple):
    """The result of ``kv.compare_and_set``."""

    #: Whether the value was replaced.
    swapped: bool
    #: The key's value after the operation (``None``: absent).
    current: bytes | None


class Member(TypedDict):
    node_id: int
    addr: str


class LeaseStatus(TypedDict):
    """``coord.time_to_live(lease)`` / ``coord.keep_alive(lease)``: a lease as the leader sees it."""

    lease: int
    #: The TTL it was granted with.
    ttl_ms: int
    #: Time left before the leader ends it.
    remaining_ms: int
    #: The KV keys attached to it.
    keys: list[str]


class ElectionLeader(TypedDict):
    """The leader of an election (``coord.leader(name)``, an observer's items)."""

    #: The value it campaigned with.
    value: bytes
    #: The lease it leads under.
    lease: int
    #: Its fencing token: increases with every new leader of the election.
    token: int


class GroupMember(TypedDict):
    """A live member of a liveness group (``coord.members(group)``)."""

    member: str
    info: bytes
    #: The lease it lives under.
    lease: int


class MemberEvent(TypedDict):
    """A change of a liveness group (``coord.watch_members(group)``): ``joined`` true for a
    join (or a re-registration with new ``info``), false for a leave (``info`` is ``b""``,
    ``lease`` 0)."""

    joined: bool
    member: str
    info: bytes
    lease: int


class TxnInfo(TypedDict):
    """A journal transaction not yet ended (``transactions.opening()``)."""

    #: Its id (the log index of its creation: ids increase).
    tx: int
    #: The context it was created with.
    context: dict[str, str]
    #: ``"OPEN"`` (taking appends) or ``"COMMITTING"`` (its commit is decided and its entries
    #: are being published: no more appends, no abort).
    phase: Literal["OPEN", "COMMITTING"]
    #: Entries and payload bytes it holds.
    entries: int
    bytes: int
    #: The partitions it appended to, ascending.
    partitions: list[int]


class ClusterConfiguration(TypedDict):
    """``admin.cluster_configuration()``: voters, observers and leader, as the leader knows them."""

    voters: list[Member]
    #: The old voter set while a joint-consensus change is in progress.
    joint_old_voters: list[Member] | None
    observers: list[Member]
    leader: Member | None


class NodeResources(TypedDict):
    """``NodeStatus["resources"]``: what a node holds for its clients right now."""

    client_connections: int
    peer_connections: int
    watches: int
    #: Client connections holding at least one watch.
    watching_connections: int
    #: Writes not yet acknowledged and STRICT reads.
    pending_requests: int
    #: Appends proposed and not yet applied, by client session.
    sessions_in_flight: int


class PartitionBounds(TypedDict):
    """``NodeDetail["partitions"][i]``: one partition's index range."""

    partition: int
    #: Smallest readable index.
    min_index: int
    #: Next index to be written.
    max_index: int


class DiskUsage(TypedDict):
    """``NodeDetail["disk"]``: the filesystem holding the node's data directory."""

    path: str
    total_bytes: int
    #: Used on the whole filesystem.
    used_bytes: int
    #: Available to the node.
    free_bytes: int


class FollowerStatus(TypedDict):
    """``NodeDetail["followers"][i]``: a follower's replication as the leader tracks it."""

    node_id: int
    #: Next log index the leader sends it.
    next_index: int
    #: Highest log index known durable on it and matching the leader's log.
    match_index: int
    #: The leader's last index less ``match_index``.
    lag: int
    #: How long ago the leader last heard from it.
    last_heard_ms: int


class NodeDetail(TypedDict):
    """``NodeStatus["detail"]``: what a node reports for monitoring (times in ms ago)."""

    #: First index in the node's log (the min index).
    first_index: int
    #: Highest log index durable on the node's disk.
    durable_index: int
    preferred_leader: int | None
    partitions: list[PartitionBounds]
    #: ``None`` when the filesystem could not be measured.
    disk: DiskUsage | None
    #: On a non-leader: how long ago it last heard a leader (``None``: never since it started).
    leader_last_heard_ms: int | None
    #: On the leader: every other member's replication (empty elsewhere).
    followers: list[FollowerStatus]


class NodeStatus(TypedDict):
    """``admin.status(node)``: one node's view of itself."""

    node_id: int
    #: ``"LEADER"``, ``"FOLLOWER"``, ``"CANDIDATE"`` or ``"OBSERVER"`` (the names of
    #: ``_native.vocabulary()["roles"]``; over the network a pre-candidate reports
    #: ``"CANDIDATE"``).
    role: str
    term: int
    leader: Member | None
    commit_index: int
    applied_index: int
    last_index: int
    configuration: ClusterConfiguration
    #: ``None`` from a node older than protocol 1.2.
    resources: NodeResources | None
    #: ``None`` from a node older than protocol 1.4.
    detail: NodeDetail | None


class SnapshotInfo(TypedDict):
    """One snapshot a node retains (``admin.snapshots()``)."""

    #: The log index (and its term) of the last entry the snapshot holds.
    index: int
    term: int
    #: When the node saved it, in milliseconds since the Unix epoch.
    time_ms: int
    #: Bytes on disk.
    size_bytes: int


class NodeSnapshots(TypedDict):
    """One member of ``admin.snapshots()``: the snapshots it retains, oldest first, or the
    error that kept it from answering (its ``snapshots`` are then empty)."""

    node_id: int
    addr: str
    snapshots: list[SnapshotInfo]
    #: ``None`` when the node answered; else the exception (not raised), e.g.
    #: ``UnavailableError``.
    error: JournalKeeperError | None


@dataclass(frozen=True, slots=True)
class LeaderChanged:
    """A leader was elected in ``term`` (or lost: ``leader`` is ``None``)."""

    leader: Member | None
    term: int


@dataclass(frozen=True, slots=True)
class VotersChanged:
    """The configuration changed (voters, a joint change in progress, learners). Its
    ``leader`` is always ``None``: :class:`LeaderChanged` reports the leader."""

    configuration: ClusterConfiguration


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """The reporting node's own role changed (``"LEADER"``, ``"FOLLOWER"``, …; the names of
    ``_native.vocabulary()["roles"]``)."""

    node_id: int
    role: str


@dataclass(frozen=True, slots=True)
class JournalChanged:
    """A journal partition's readable range changed: ``min_index`` is the smallest readable
    index, ``max_index`` the next to be written."""

    partition: int
    min_index: int
    max_index: int


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The user state machine ``machine`` changed on the reporting node: ``applied_index`` is
    the log index of the last entry that ran its commands (or replaced its state from a
    snapshot); 0 before any. Coalesced: the latest index, not every one. Only in streams
    opened with ``events(state_machines=True)``."""

    machine: str
    applied_index: int


#: One event of ``client.events()`` / ``Server.events()``. A stream starts with the node's
#: whole current state (one event of each kind, one ``JournalChanged`` per partition), then
#: reports each change; after a reconnect it repeats the latest state, so treat events as
#: state, not as deltas to count. Match on the class::
#:
#:     match event:
#:         case LeaderChanged(leader=leader, term=term): ...
ClusterEvent: TypeAlias = (
    LeaderChanged | VotersChanged | RoleChanged | JournalChanged | StateChanged
)


#: An embedded node's standing: ``"JOINING"`` (started with ``join=True``, not a member until
#: ``admin.add_voter`` adds it; it serves no client meanwhile), ``"MEMBER"`` (a voter or a
#: learner catching up), ``"REMOVED"`` (a committed configuration no longer holds it: it serves
#: nothing, and its data directory cannot start a node again), ``"OBSERVER"`` (a read replica
#: outside the voters, started with ``role="observer"`` or converted with
#: ``admin.convert_role``, that pulls committed entries from its parents and serves NONE reads).
Standing: TypeAlias = Literal["JOINING", "MEMBER", "REMOVED", "OBSERVER"]

#: What ``admin.convert_role`` makes a node: a voter or an observer (any case is accepted).
MemberRole: TypeAlias = Literal["VOTER", "OBSERVER"]


class ServerStatus(TypedDict):
    """``Server.status()``: an embedded node's own status."""

    node_id: int
    #: ``"LEADER"``, ``"FOLLOWER"``, ``"PRE_CANDIDATE"``, ``"CANDIDATE"`` or ``"OBSERVER"``;
    #: ``None`` while starting.
    role: str | None
    is_leader: bool
    #: The leader's node id, when known.
    leader: int | None
    term: int
    commit_index: int
    applied_index: int
    durable_index: int
    first_index: int
    last_index: int
    voters: list[int]
    #: The node stopped serving after a storage failure or a state machine's crash (fail-stop).
    failed: bool
    #: Joining, member or removed (see :data:`Standing`).
    standing: Standing
    #: The preferred leader recorded in the replicated configuration
    #: (``admin.set_preferred_leader``), or ``None``.
    preferred_leader: int | None


__all__ = [
    "MAX_APPEND_ENTRIES",
    "MAX_ENTRY_BYTES",
    "MAX_APPEND_BYTES",
    "MAX_GET_ENTRIES",
    "MAX_PARTITIONS",
    "MAX_KEY_BYTES",
    "MAX_VALUE_BYTES",
    "MAX_VOTERS",
    "MAX_ADMIN_TIMEOUT",
    "BytesLike",
    "ResponseConfig",
    "QueryConsistency",
    "CasResult",
    "JournalEntry",
    "WatchEvent",
    "Member",
    "LeaseStatus",
    "ElectionLeader",
    "GroupMember",
    "MemberEvent",
    "TxnInfo",
    "ClusterConfiguration",
    "NodeResources",
    "PartitionBounds",
    "DiskUsage",
    "FollowerStatus",
    "NodeDetail",
    "NodeStatus",
    "ServerStatus",
    "Standing",
    "MemberRole",
    "SnapshotInfo",
    "NodeSnapshots",
    "LeaderChanged",
    "VotersChanged",
    "RoleChanged",
    "JournalChanged",
    "StateChanged",
    "ClusterEvent",
]
