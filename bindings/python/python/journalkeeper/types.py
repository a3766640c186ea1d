"""Levels, records and result types shared by the client and the server wrappers."""

from __future__ import annotations

import enum
from typing import NamedTuple, TypeAlias, TypedDict

from ._native import JournalEntry, WatchEvent


#: What byte-string arguments accept.
BytesLike: TypeAlias = bytes | bytearray


class ResponseConfig(enum.Enum):
    """When a write is acknowledged. Only ``REPLICATION`` and ``ALL`` return the index."""

    #: Sent; no reply at all.
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
    """How fresh a read must be."""

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


class NodeStatus(TypedDict):
    """``admin.status(node)``: one node's view of itself."""

    node_id: int
    #: ``"leader"``, ``"follower"``, ``"candidate"`` or ``"observer"``.
    role: str
    term: int
    leader: Member | None
    commit_index: int
    applied_index: int
    last_index: int
    configuration: ClusterConfiguration
    #: ``None`` from a node older than protocol 1.2.
    resources: NodeResources | None


class ServerStatus(TypedDict):
    """``Server.status()``: an embedded node's own status."""

    node_id: int
    #: ``"leader"``, ``"follower"``, ``"candidate"``, ``"pre_candidate"``; ``None`` while starting.
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
    #: The node stopped serving after a storage failure.
    failed: bool


__all__ = [
    "BytesLike",
    "ResponseConfig",
    "QueryConsistency",
    "CasResult",
    "JournalEntry",
    "WatchEvent",
    "Member",
    "ClusterConfiguration",
    "NodeStatus",
    "ServerStatus",
]
