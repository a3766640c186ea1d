"""The native module (Rust, pyo3). Private: use the ``journalkeeper`` package.

Calls that take ``aio`` return the value when it is false (blocking, GIL released) and an
``asyncio.Future`` of the running event loop when it is true; their return type is therefore
``Any`` here and precise in ``journalkeeper.client``.
"""

from typing import Any, final

def version() -> str:
    """The library version, e.g. "0.1.0" (the Rust core's, from Cargo.toml)."""

def _after_fork_in_child() -> None:
    """Forgets the parent's runtime in a forked child; the next call builds a new one."""

def connect(
    addrs: list[str],
    cluster_id: int,
    request_timeout: float | None = None,
    attempt_timeout: float | None = None,
    max_attempts: int | None = None,
    aio: bool = False,
) -> Any:
    """A connected :class:`Client` (or an awaitable of one)."""

@final
class Client:
    def append(self, partition: int, entries: Any, response: str, aio: bool = False) -> Any: ...
    def get(
        self, partition: int, index: int, max_entries: int, consistency: str, aio: bool = False
    ) -> Any: ...
    def min_indices(self, consistency: str, aio: bool = False) -> Any: ...
    def max_indices(self, consistency: str, aio: bool = False) -> Any: ...
    def list_partitions(self, consistency: str, aio: bool = False) -> Any: ...
    def query_index(
        self, partition: int, timestamp_ms: int, consistency: str, aio: bool = False
    ) -> Any: ...
    def scale_partitions(self, partitions: list[int], aio: bool = False) -> Any: ...
    def kv_set(self, key: str, value: bytes, aio: bool = False) -> Any: ...
    def kv_get(self, key: str, consistency: str, aio: bool = False) -> Any: ...
    def kv_exists(self, key: str, consistency: str, aio: bool = False) -> Any: ...
    def kv_remove(self, key: str, aio: bool = False) -> Any: ...
    def kv_list(self, prefix: str, consistency: str, aio: bool = False) -> Any: ...
    def kv_compare_and_set(
        self, key: str, expect: bytes | None, new: bytes | None, aio: bool = False
    ) -> Any: ...
    def kv_watch(
        self, key: str | None, prefix: str | None, from_index: int, aio: bool = False
    ) -> Any: ...
    def admin_status(self, node: str, aio: bool = False) -> Any: ...
    def admin_cluster_configuration(self, aio: bool = False) -> Any: ...
    def sync(self, aio: bool = False) -> Any: ...
    def close(self) -> None: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def client_id(self) -> int: ...
    @property
    def leader(self) -> str | None: ...

@final
class Watch:
    def next(self, timeout: float | None = None, aio: bool = False) -> Any: ...
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
    def status(self) -> Any: ...
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
