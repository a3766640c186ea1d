"""The native module (Rust, pyo3). Private: use the ``journalkeeper`` package.

Calls that take ``aio`` block (GIL released) and return the value when it is false, and return
an ``asyncio.Future`` of the running event loop when it is true.
"""

from asyncio import Future
from collections.abc import Iterable
from typing import Any, Literal, final, overload

from journalkeeper.types import ClusterConfiguration, NodeStatus, ServerStatus

def version() -> str:
    """The library version, e.g. "0.1.0" (the Rust core's, from Cargo.toml)."""

def vocabulary() -> dict[str, list[str]]:
    """The canonical names, from the core: ``roles``, ``response_configs``,
    ``query_consistencies``, ``error_codes``."""

def limits() -> dict[str, int]:
    """The bounds a caller can hit, from the core (see ``journalkeeper.types.MAX_*``)."""

def _after_fork_in_child() -> None:
    """Forgets the parent's runtime in a forked child; the next call builds a new one."""

@overload
def connect(
    addrs: list[str],
    cluster_id: int,
    request_timeout: float | None = None,
    attempt_timeout: float | None = None,
    max_attempts: int | None = None,
    aio: Literal[False] = False,
) -> Client: ...
@overload
def connect(
    addrs: list[str],
    cluster_id: int,
    request_timeout: float | None,
    attempt_timeout: float | None,
    max_attempts: int | None,
    aio: Literal[True],
) -> Future[Client]: ...
@final
class Client:
    @overload
    def append(self, partition: int, entries: Iterable[bytes | bytearray], response: str, aio: Literal[False] = False) -> int | None: ...
    @overload
    def append(self, partition: int, entries: Iterable[bytes | bytearray], response: str, aio: Literal[True]) -> Future[int | None]: ...
    @overload
    def get(self, partition: int, index: int, max_entries: int, consistency: str, aio: Literal[False] = False) -> list[JournalEntry]: ...
    @overload
    def get(self, partition: int, index: int, max_entries: int, consistency: str, aio: Literal[True]) -> Future[list[JournalEntry]]: ...
    @overload
    def min_indices(self, consistency: str, aio: Literal[False] = False) -> dict[int, int]: ...
    @overload
    def min_indices(self, consistency: str, aio: Literal[True]) -> Future[dict[int, int]]: ...
    @overload
    def max_indices(self, consistency: str, aio: Literal[False] = False) -> dict[int, int]: ...
    @overload
    def max_indices(self, consistency: str, aio: Literal[True]) -> Future[dict[int, int]]: ...
    @overload
    def list_partitions(self, consistency: str, aio: Literal[False] = False) -> list[int]: ...
    @overload
    def list_partitions(self, consistency: str, aio: Literal[True]) -> Future[list[int]]: ...
    @overload
    def query_index(self, partition: int, timestamp_ms: int, consistency: str, aio: Literal[False] = False) -> int | None: ...
    @overload
    def query_index(self, partition: int, timestamp_ms: int, consistency: str, aio: Literal[True]) -> Future[int | None]: ...
    @overload
    def scale_partitions(self, partitions: list[int], aio: Literal[False] = False) -> None: ...
    @overload
    def scale_partitions(self, partitions: list[int], aio: Literal[True]) -> Future[None]: ...
    @overload
    def kv_set(self, key: str, value: bytes | bytearray, aio: Literal[False] = False) -> bytes | None: ...
    @overload
    def kv_set(self, key: str, value: bytes | bytearray, aio: Literal[True]) -> Future[bytes | None]: ...
    @overload
    def kv_get(self, key: str, consistency: str, aio: Literal[False] = False) -> bytes | None: ...
    @overload
    def kv_get(self, key: str, consistency: str, aio: Literal[True]) -> Future[bytes | None]: ...
    @overload
    def kv_exists(self, key: str, consistency: str, aio: Literal[False] = False) -> bool: ...
    @overload
    def kv_exists(self, key: str, consistency: str, aio: Literal[True]) -> Future[bool]: ...
    @overload
    def kv_remove(self, key: str, aio: Literal[False] = False) -> bytes | None: ...
    @overload
    def kv_remove(self, key: str, aio: Literal[True]) -> Future[bytes | None]: ...
    @overload
    def kv_list(self, prefix: str, consistency: str, aio: Literal[False] = False) -> list[tuple[str, bytes]]: ...
    @overload
    def kv_list(self, prefix: str, consistency: str, aio: Literal[True]) -> Future[list[tuple[str, bytes]]]: ...
    @overload
    def kv_compare_and_set(self, key: str, expect: bytes | bytearray | None, new: bytes | bytearray | None, aio: Literal[False] = False) -> tuple[bool, bytes | None]: ...
    @overload
    def kv_compare_and_set(self, key: str, expect: bytes | bytearray | None, new: bytes | bytearray | None, aio: Literal[True]) -> Future[tuple[bool, bytes | None]]: ...
    @overload
    def kv_watch(self, key: str | None, prefix: str | None, from_index: int, aio: Literal[False] = False) -> Watch: ...
    @overload
    def kv_watch(self, key: str | None, prefix: str | None, from_index: int, aio: Literal[True]) -> Future[Watch]: ...
    @overload
    def admin_status(self, node: str, aio: Literal[False] = False) -> NodeStatus: ...
    @overload
    def admin_status(self, node: str, aio: Literal[True]) -> Future[NodeStatus]: ...
    @overload
    def admin_cluster_configuration(self, aio: Literal[False] = False) -> ClusterConfiguration: ...
    @overload
    def admin_cluster_configuration(self, aio: Literal[True]) -> Future[ClusterConfiguration]: ...
    @overload
    def sync(self, aio: Literal[False] = False) -> int: ...
    @overload
    def sync(self, aio: Literal[True]) -> Future[int]: ...
    def close(self) -> None: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def client_id(self) -> int: ...
    @property
    def leader(self) -> str | None: ...
    @property
    def servers(self) -> list[str]: ...

@final
class Watch:
    @overload
    def next(self, timeout: float | None = None, aio: Literal[False] = False) -> WatchEvent: ...
    @overload
    def next(self, timeout: float | None, aio: Literal[True]) -> Future[WatchEvent]: ...
    @property
    def next_index(self) -> int | None: ...
    def close(self) -> None: ...
    @property
    def is_closed(self) -> bool: ...

@final
class Server:
    @staticmethod
    def start(config: dict[str, Any]) -> Server: ...
    @staticmethod
    def from_toml(text: str) -> Server: ...
    @staticmethod
    def from_toml_file(path: str) -> Server: ...
    @property
    def node_id(self) -> int: ...
    @property
    def address(self) -> str: ...
    def status(self) -> ServerStatus: ...
    def close(self) -> None: ...
    @property
    def is_closed(self) -> bool: ...

@final
class JournalEntry:
    """One journal entry; immutable, compares by value."""

    @property
    def partition(self) -> int: ...
    @property
    def index(self) -> int:
        """Dense index within the partition."""
    @property
    def batch_size(self) -> int:
        """Entries appended together share a batch; this is its length."""
    @property
    def offset(self) -> int:
        """Position of this entry within its batch (0-based)."""
    @property
    def term(self) -> int:
        """The Raft term the entry was written in."""
    @property
    def timestamp_ms(self) -> int:
        """Store time chosen by the leader (ms since the Unix epoch; never decreasing)."""
    @property
    def payload(self) -> bytes: ...

@final
class WatchEvent:
    """One KV change; immutable, compares by value."""

    @property
    def index(self) -> int:
        """Log index of the entry that made the change."""
    @property
    def key(self) -> str: ...
    @property
    def old_value(self) -> bytes | None:
        """``None`` when the key did not exist before."""
    @property
    def new_value(self) -> bytes | None:
        """``None`` when the change removed the key."""
