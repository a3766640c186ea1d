"""JournalKeeper-rs for Python: a thin layer over the Rust core (see the project README).

* :class:`Server` — an embedded node; :class:`Client` / :class:`AsyncClient` — cluster clients
  with ``journal``, ``kv``, ``admin``, ``coord`` and ``transactions`` namespaces and the SQL
  database ``sql()`` (:class:`Sql`, :class:`AsyncSql`, ``journalkeeper.sql``); :class:`KeepAlive`,
  :class:`Registration`, :class:`ElectionObserver`, :class:`MembersWatch` — the coordination
  recipes' handles and change streams; :class:`Watch` — KV change events;
  :class:`Events` — cluster events (:class:`LeaderChanged`, :class:`VotersChanged`,
  :class:`RoleChanged`, :class:`JournalChanged`, :class:`StateChanged`).
* :class:`ResponseConfig`, :class:`QueryConsistency` — write acknowledgement / read levels.
* :class:`JournalKeeperError` and one subclass per error kind (``journalkeeper.errors``).

The library runs one tokio runtime per process; after ``os.fork()`` the child gets a new one
on first use (objects made before the fork raise ``ClosedError`` in the child).
"""

import os as _os

from . import _native
from ._native import version
from .client import (
    Admin,
    AsyncAdmin,
    AsyncClient,
    AsyncJournal,
    AsyncKv,
    Client,
    Events,
    Journal,
    Kv,
    Watch,
)
from .coord import AsyncCoord, Coord, ElectionObserver, KeepAlive, MembersWatch, Registration
from .transactions import AsyncTransactions, Transactions
from .errors import (
    ClosedError,
    CorruptionError,
    ErrorKind,
    IndexOverflowError,
    IndexUnderflowError,
    InternalError,
    InvalidArgumentError,
    IoError,
    JkTimeoutError,
    JournalKeeperError,
    NotLeaderError,
    TransactionError,
    UnavailableError,
    WrongClusterError,
    LeaseExpiredError,
    RejectedError,
)
from .errors import TimeoutError as TimeoutError  # noqa: A004 - subclasses the builtin
from .server import Server
from .sql import AsyncSql, ExecuteResult, QueryResult, Sql, SqlParam, SqlValue
from .state_machine import (
    ApplyContext,
    AsyncStateMachineClient,
    SnapshotReader,
    SnapshotWriter,
    StateMachine,
    StateMachineClient,
)
from .types import (
    MAX_APPEND_BYTES,
    MAX_APPEND_ENTRIES,
    MAX_ENTRY_BYTES,
    MAX_GET_ENTRIES,
    MAX_KEY_BYTES,
    MAX_PARTITIONS,
    MAX_VALUE_BYTES,
    MAX_VOTERS,
    MAX_ADMIN_TIMEOUT,
    BytesLike,
    CasResult,
    ClusterConfiguration,
    ClusterEvent,
    DiskUsage,
    ElectionLeader,
    GroupMember,
    LeaseStatus,
    MemberEvent,
    TxnInfo,
    FollowerStatus,
    JournalChanged,
    StateChanged,
    JournalEntry,
    LeaderChanged,
    Member,
    NodeDetail,
    NodeResources,
    NodeSnapshots,
    NodeStatus,
    PartitionBounds,
    QueryConsistency,
    ResponseConfig,
    RoleChanged,
    ServerStatus,
    SnapshotInfo,
    Standing,
    VotersChanged,
    WatchEvent,
)

__version__: str = version()

# A forked child must not use the parent's runtime (its threads were not forked).
_os.register_at_fork(after_in_child=_native._after_fork_in_child)

__all__ = [
    "version",
    "__version__",
    "Server",
    "Sql",
    "AsyncSql",
    "ExecuteResult",
    "QueryResult",
    "SqlValue",
    "SqlParam",
    "Client",
    "AsyncClient",
    "Journal",
    "Kv",
    "Admin",
    "AsyncJournal",
    "AsyncKv",
    "AsyncAdmin",
    "Watch",
    "Events",
    "Coord",
    "AsyncCoord",
    "KeepAlive",
    "Registration",
    "ElectionObserver",
    "MembersWatch",
    "LeaseStatus",
    "ElectionLeader",
    "GroupMember",
    "MemberEvent",
    "Transactions",
    "StateMachine",
    "ApplyContext",
    "SnapshotWriter",
    "SnapshotReader",
    "StateMachineClient",
    "AsyncStateMachineClient",
    "AsyncTransactions",
    "TxnInfo",
    "ResponseConfig",
    "QueryConsistency",
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
    "CasResult",
    "JournalEntry",
    "WatchEvent",
    "Member",
    "ClusterConfiguration",
    "NodeResources",
    "NodeDetail",
    "PartitionBounds",
    "DiskUsage",
    "FollowerStatus",
    "NodeStatus",
    "ServerStatus",
    "Standing",
    "SnapshotInfo",
    "NodeSnapshots",
    "ClusterEvent",
    "LeaderChanged",
    "VotersChanged",
    "RoleChanged",
    "JournalChanged",
    "StateChanged",
    "ErrorKind",
    "JournalKeeperError",
    "NotLeaderError",
    "JkTimeoutError",
    "IndexOverflowError",
    "IndexUnderflowError",
    "InvalidArgumentError",
    "ClosedError",
    "IoError",
    "CorruptionError",
    "TransactionError",
    "UnavailableError",
    "WrongClusterError",
    "LeaseExpiredError",
    "RejectedError",
    "InternalError",
]
