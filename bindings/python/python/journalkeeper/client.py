"""Cluster clients: :class:`Client` (blocking; the GIL is released while waiting) and
:class:`AsyncClient` (every call returns an awaitable), with their ``journal``, ``kv``,
``admin``, ``coord`` (``journalkeeper.coord``) and ``transactions``
(``journalkeeper.transactions``) namespaces, the SQL database (``sql()``,
``journalkeeper.sql``), :class:`Watch` (KV changes) and :class:`Events`
(cluster events).

These classes only name and type the calls of ``journalkeeper._native``; the Rust core does
the work (validation, routing, retries, sessions).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from . import _native
from .coord import AsyncCoord, Coord
from .errors import ClosedError
from .sql import AsyncSql, Sql
from .state_machine import AsyncStateMachineClient, StateMachineClient
from .transactions import AsyncTransactions, Transactions
from .types import (
    BytesLike,
    CasResult,
    ClusterConfiguration,
    ClusterEvent,
    JournalEntry,
    MemberRole,
    NodeSnapshots,
    NodeStatus,
    QueryConsistency,
    ResponseConfig,
    WatchEvent,
)

#: ``journal.get``'s default ``max`` (the protocol allows up to 4096 per call).
DEFAULT_GET_MAX = 1024

STRICT = QueryConsistency.STRICT


def _name(value: enum.Enum | str) -> str:
    """An enum member's value; a plain string is passed on for the core to check."""
    return value.value if isinstance(value, enum.Enum) else value


def _addrs(addrs: str | Iterable[str]) -> list[str]:
    return [addrs] if isinstance(addrs, str) else list(addrs)


def _cas(result: tuple[bool, bytes | None]) -> CasResult:
    return CasResult(*result)


def _new_voters(new: Mapping[int, str | None]) -> list[tuple[int, str | None]]:
    """``update_voters``' ``new`` as the native call takes it: ``(node_id, addr)`` pairs."""
    if not isinstance(new, Mapping):
        raise TypeError(
            "new must be a mapping of node id to address (None or '' for a known member), "
            f"not {type(new).__name__}"
        )
    return list(new.items())


class Watch:
    """KV change events in log order, from ``kv.watch(...)``.

    Iterate it (``for event in watch``) or async-iterate it (``async for event in watch``);
    iteration ends when the watch or its client is closed. ``next(timeout=…)`` /
    ``await anext(timeout=…)`` wait at most ``timeout`` seconds (then ``TimeoutError``, and the
    watch stays usable). Reconnects and resumes are done by the core: no event is lost or
    repeated. Close it (or use ``with``) to unwatch on the server.
    """

    def __init__(self, native: _native.Watch, client: _native.Client) -> None:
        self._native = native
        self._client = client
        self._pid = os.getpid()

    def _ended(self) -> bool:
        """After a ``ClosedError``: was it this watch or its client being closed (iteration
        simply ends) rather than, say, use in a forked child (which raises)?"""
        return self._pid == os.getpid() and (self._native.is_closed or self._client.is_closed)

    def next(self, timeout: float | None = None) -> WatchEvent:
        """The next event (blocking, GIL released)."""
        return self._native.next(timeout)

    async def anext(self, timeout: float | None = None) -> WatchEvent:
        """The next event (awaitable)."""
        return await self._native.next(timeout, True)

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> WatchEvent:
        try:
            return self._native.next(None)
        except ClosedError:
            if self._ended():
                raise StopIteration from None
            raise

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> WatchEvent:
        try:
            return await self._native.next(None, True)
        except ClosedError:
            if self._ended():
                raise StopAsyncIteration from None
            raise

    @property
    def next_index(self) -> int | None:
        """The lowest log index not yet received (``None`` while a ``next`` is waiting)."""
        return self._native.next_index

    @property
    def closed(self) -> bool:
        return self._native.is_closed

    def __repr__(self) -> str:
        return f"Watch(next_index={self.next_index!r}, closed={self.closed!r})"

    def close(self) -> None:
        """Ends the watch (pending ``next`` calls end too) and unwatches. Idempotent."""
        self._native.close()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Events:
    """Cluster events, from ``client.events()`` (as the node the client is subscribed to sees
    them; the core resubscribes elsewhere after a lost connection) or ``Server.events()`` (the
    embedded node's own view): :class:`LeaderChanged`, :class:`VotersChanged`,
    :class:`RoleChanged`, :class:`JournalChanged` and, when asked for
    (``events(state_machines=True)``), :class:`StateChanged` (the :data:`ClusterEvent` union).

    A stream starts with the node's whole current state, then reports each change. Iterate it
    (``for event in events``) or async-iterate it (``async for event in events``); iteration
    ends when the stream is closed, its client is closed or its server stops.
    ``next(timeout=…)`` / ``await anext(timeout=…)`` wait at most ``timeout`` seconds (then
    ``TimeoutError``, and the stream stays usable). Close it (or use ``with``) to end the
    subscription.
    """

    def __init__(self, native: _native.Events) -> None:
        self._native = native
        self._pid = os.getpid()

    def _ended(self) -> bool:
        """After a ``ClosedError``: was it the stream's end (closed, its client closed, its
        server stopped) rather than, say, use in a forked child (which raises)?"""
        return self._pid == os.getpid() and self._native.is_closed

    def next(self, timeout: float | None = None) -> ClusterEvent:
        """The next event (blocking, GIL released)."""
        return self._native.next(timeout)

    async def anext(self, timeout: float | None = None) -> ClusterEvent:
        """The next event (awaitable)."""
        return await self._native.next(timeout, True)

    def __iter__(self) -> Events:
        return self

    def __next__(self) -> ClusterEvent:
        try:
            return self._native.next(None)
        except ClosedError:
            if self._ended():
                raise StopIteration from None
            raise

    def __aiter__(self) -> Events:
        return self

    async def __anext__(self) -> ClusterEvent:
        try:
            return await self._native.next(None, True)
        except ClosedError:
            if self._ended():
                raise StopAsyncIteration from None
            raise

    @property
    def closed(self) -> bool:
        """Closed by :meth:`close`, or its source ended."""
        return self._native.is_closed

    def __repr__(self) -> str:
        return f"Events(closed={self.closed!r})"

    def close(self) -> None:
        """Ends the stream (pending ``next`` calls end too) and the subscription. Idempotent."""
        self._native.close()

    def __enter__(self) -> Events:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Events:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Journal:
    """The journal store: ``client.journal``."""

    def __init__(self, native: _native.Client) -> None:
        self._n = native

    def append(
        self,
        partition: int,
        entries: Iterable[BytesLike],
        response: ResponseConfig | str = ResponseConfig.REPLICATION,
    ) -> int | None:
        """Appends ``entries`` as one batch; returns the index of the first one for
        ``REPLICATION`` / ``ALL``, else ``None``. ``ONE_WAY`` returns once the batch is queued
        and is delivered in the background (see :attr:`ResponseConfig.ONE_WAY`). Bounds:
        1..=``MAX_APPEND_ENTRIES`` entries, each at most ``MAX_ENTRY_BYTES``, together at most
        ``MAX_APPEND_BYTES`` (``InvalidArgumentError`` beyond)."""
        return self._n.append(partition, entries, _name(response))

    def get(
        self,
        partition: int,
        index: int,
        max: int = DEFAULT_GET_MAX,  # noqa: A002 - the documented name
        consistency: QueryConsistency | str = STRICT,
    ) -> list[JournalEntry]:
        """Up to ``max`` (1..=``MAX_GET_ENTRIES``) entries from ``index`` on (fewer when a
        reply fills a frame). ``IndexOverflowError`` when ``index`` is at or past the end,
        ``IndexUnderflowError`` when it was compacted away."""
        return self._n.get(partition, index, max, _name(consistency))

    def min_indices(self, consistency: QueryConsistency | str = STRICT) -> dict[int, int]:
        """Per partition, the smallest readable index."""
        return self._n.min_indices(_name(consistency))

    def max_indices(self, consistency: QueryConsistency | str = STRICT) -> dict[int, int]:
        """Per partition, the index the next appended entry will get."""
        return self._n.max_indices(_name(consistency))

    def list_partitions(self, consistency: QueryConsistency | str = STRICT) -> list[int]:
        """The current partitions, sorted."""
        return self._n.list_partitions(_name(consistency))

    def query_index(
        self, partition: int, timestamp_ms: int, consistency: QueryConsistency | str = STRICT
    ) -> int | None:
        """The index matching ``timestamp_ms``: the last entry stored at or before it, and
        among entries sharing that store time the first of them. Before every entry: the first
        entry. At or after the last entry's time: the last entry (the first of those sharing
        its time), never the end index. ``None`` only when the partition is empty."""
        return self._n.query_index(partition, timestamp_ms, _name(consistency))

    def scale_partitions(self, partitions: Iterable[int]) -> None:
        """Replaces the partition set (1..=``MAX_PARTITIONS`` partitions). A removed partition
        that holds entries cannot be added back (its old entries would reappear):
        ``InvalidArgumentError`` naming it, nothing changes; use new ids."""
        self._n.scale_partitions(list(partitions))


class Kv:
    """The coordination KV: ``client.kv``."""

    def __init__(self, native: _native.Client) -> None:
        self._n = native

    def set(self, key: str, value: BytesLike) -> bytes | None:
        """Sets ``key`` (non-empty, at most ``MAX_KEY_BYTES``) to ``value`` (at most
        ``MAX_VALUE_BYTES``); returns the previous value."""
        return self._n.kv_set(key, value)

    def get(
        self,
        key: str,
        consistency: QueryConsistency | str = STRICT,
        *,
        at_index: int | None = None,
    ) -> bytes | None:
        """The value of ``key`` (``None``: absent), read at ``consistency``. With
        ``at_index``, the value it had at that log index instead (the second step of a
        two-step read after :meth:`Client.sync`; any node that applied the index answers):
        ``IndexOverflowError`` when not even the leader applied it yet,
        ``IndexUnderflowError`` when it is older than the history a node keeps
        (``retain_history`` in the server configuration)."""
        if at_index is not None:
            return self._n.kv_get_at(key, at_index)
        return self._n.kv_get(key, _name(consistency))

    def exists(self, key: str, consistency: QueryConsistency | str = STRICT) -> bool:
        return self._n.kv_exists(key, _name(consistency))

    def remove(self, key: str) -> bytes | None:
        """Removes ``key``; returns the value it had."""
        return self._n.kv_remove(key)

    def list(
        self,
        prefix: str = "",
        consistency: QueryConsistency | str = STRICT,
        *,
        at_index: int | None = None,
    ) -> list[tuple[str, bytes]]:
        """Every ``(key, value)`` whose key starts with ``prefix``, in key order (read in
        pages; no bound on the number returned). With ``at_index``: as they were at that
        log index, one consistent state (errors as :meth:`get`)."""
        if at_index is not None:
            return self._n.kv_list_at(prefix, at_index)
        return self._n.kv_list(prefix, _name(consistency))

    def compare_and_set(self, key: str, expect: BytesLike | None, new: BytesLike | None) -> CasResult:
        """Sets ``key`` to ``new`` (removes it for ``None``) only if its value is ``expect``
        (``None``: absent)."""
        return _cas(self._n.kv_compare_and_set(key, expect, new))

    def watch(
        self, *, key: str | None = None, prefix: str | None = None, from_index: int = 0
    ) -> Watch:
        """Watches ``key`` or every key under ``prefix`` (neither: every key) from log index
        ``from_index`` (``0``: from the next change)."""
        return Watch(self._n.kv_watch(key, prefix, from_index), self._n)


class Admin:
    """Cluster administration: ``client.admin``.

    Membership changes and leader transfers block until done, at most ``timeout`` seconds
    (``None``: 60; at most :data:`MAX_ADMIN_TIMEOUT`, 600). They raise
    ``InvalidArgumentError`` (the old voters differ, a change is already in progress, an
    unknown address, not a voter), ``TimeoutError`` (a new member did not catch up in time:
    the change is cancelled and the voters stay as they were) or ``UnavailableError`` /
    ``NotLeaderError`` (no leader in time).
    """

    def __init__(self, native: _native.Client) -> None:
        self._n = native

    def status(self, node: str) -> NodeStatus:
        """The status of the node at ``node`` (``"host:port"``)."""
        return self._n.admin_status(node)

    def cluster_configuration(self) -> ClusterConfiguration:
        """Voters, the old voters of a change in progress, observers (learners catching up
        included) and leader, as the leader knows them."""
        return self._n.admin_cluster_configuration()

    def update_voters(
        self,
        old: Iterable[int],
        new: Mapping[int, str | None],
        timeout: float | None = None,
    ) -> None:
        """Moves the voters from ``old`` (exactly the current voter ids) to ``new``, a mapping
        of node id to ``"host:port"`` address — ``None`` or ``""`` for a member the cluster
        already knows, e.g. ``{1: None, 2: None, 4: "127.0.0.1:7004"}``. New members join as
        learners, catch up and are then promoted through joint consensus; returns once the
        final configuration is committed."""
        self._n.admin_update_voters(list(old), _new_voters(new), timeout)

    def add_voter(self, node_id: int, addr: str, timeout: float | None = None) -> None:
        """Adds the running node ``node_id`` (started with ``join=True``), reachable at
        ``addr``, as a voter: it joins as a learner, catches up, then is promoted."""
        self._n.admin_add_voter(node_id, addr, timeout)

    def remove_voter(self, node_id: int, timeout: float | None = None) -> None:
        """Removes voter ``node_id`` (the leader too: leadership moves to a remaining voter).
        It stops serving once the configuration without it is committed
        (:meth:`Server.wait_removed`)."""
        self._n.admin_remove_voter(node_id, timeout)

    def convert_role(
        self, node_id: int, role: MemberRole | str, timeout: float | None = None
    ) -> None:
        """Converts ``node_id`` to ``role`` (``"VOTER"`` or ``"OBSERVER"``, any case) and
        returns once the final configuration is committed. To ``"OBSERVER"``: the node must be
        a voter and not the last one; it keeps its data and goes on as a read replica pulling
        from its ``parents`` (or the voters). To ``"VOTER"``: the node must be a registered
        observer (started with ``role="observer"``); it is caught up and promoted. Converting
        a node to the role it has is a no-op. ``InvalidArgumentError`` for another role or a
        node that is neither a voter nor a registered observer."""
        self._n.admin_convert_role(node_id, role, timeout)

    def transfer_leader(self, node_id: int, timeout: float | None = None) -> None:
        """Hands leadership to voter ``node_id`` (writes wait meanwhile; none is lost) and
        returns once it leads."""
        self._n.admin_transfer_leader(node_id, timeout)

    def set_preferred_leader(self, node_id: int | None) -> None:
        """Records voter ``node_id`` as the preferred leader (leadership moves to it whenever
        it is alive and caught up, also after a restart), or clears it with ``None``. Each
        node reports it in ``Server.status()["preferred_leader"]``."""
        self._n.admin_set_preferred_leader(node_id)

    def take_snapshot(self, timeout: float | None = None) -> int:
        """Makes every node snapshot at one log index and returns it once a majority of the
        voters saved it (the others do as they apply it), so :meth:`recover_snapshot` can use
        it at once. ``TimeoutError`` when that takes longer than ``timeout``."""
        return self._n.admin_take_snapshot(timeout)

    def snapshots(self) -> list[NodeSnapshots]:
        """The snapshots every member (voters and learners) retains, by node id; a node that
        cannot be asked is listed with its ``error``."""
        return self._n.admin_snapshots()

    def recover_snapshot(self, index: int, timeout: float | None = None) -> None:
        """Rolls the cluster's state back to the snapshot at ``index`` through a log entry, so
        every node does it at the same point: the KV returns to the snapshot's keys and values
        (watchers see each difference); journal entries and write sessions stay.
        ``InvalidArgumentError`` unless a majority of the voters retain that snapshot (see
        :meth:`snapshots`) or while a membership change is in progress."""
        self._n.admin_recover_snapshot(index, timeout)


class Client:
    """A blocking client of a cluster. Thread-safe; calls release the GIL while waiting.

    ``Client(["127.0.0.1:7001", …], cluster_id=42)`` connects to the first reachable address
    (the leader is found on the first call that needs it). Optional deadlines in seconds:
    ``request_timeout`` (one call, retries included; default 30), ``attempt_timeout`` (one
    try; default 10, lowered to ``request_timeout`` when that is smaller) and ``max_attempts``
    (default 100).

    ``kv.watch(from_index=0)`` starts after what the node serving the watch has applied, which
    may lag this client's own latest write: open a watch before the writes it must see, or
    pass an explicit ``from_index``.
    """

    journal: Journal
    kv: Kv
    admin: Admin
    coord: Coord
    transactions: Transactions

    def __init__(
        self,
        addrs: str | Iterable[str],
        cluster_id: int,
        *,
        request_timeout: float | None = None,
        attempt_timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> None:
        native = _native.connect(
            _addrs(addrs), cluster_id, request_timeout, attempt_timeout, max_attempts
        )
        self._setup(native)

    def _setup(self, native: _native.Client) -> None:
        self._native = native
        self.journal = Journal(native)
        self.kv = Kv(native)
        self.admin = Admin(native)
        self.coord = Coord(native)
        self.transactions = Transactions(native)

    @classmethod
    def _from_native(cls, native: _native.Client) -> Client:
        client = cls.__new__(cls)
        client._setup(native)
        return client

    def state_machine(self, name: str) -> StateMachineClient:
        """The user state machine ``name`` the servers host (see
        :mod:`journalkeeper.state_machine`)."""
        return StateMachineClient(self._native, name)

    def sql(self) -> Sql:
        """The cluster's built-in SQL database (see :mod:`journalkeeper.sql`)."""
        return Sql(self._native)

    @property
    def aio(self) -> AsyncClient:
        """An :class:`AsyncClient` sharing this client's connections."""
        return AsyncClient(self._native)

    def sync(self) -> int:
        """Makes following SEQUENTIAL reads see every write acknowledged before this call;
        returns the leader's applied index."""
        return self._native.sync()

    def events(self, state_machines: bool = False) -> Events:
        """Subscribes to the cluster's events (leader, voters, the node's role, journal
        bounds; with ``state_machines=True`` also :class:`StateChanged` for each user state
        machine) on any node; see :class:`Events`."""
        return Events(self._native.events(state_machines))

    @property
    def client_id(self) -> int:
        return self._native.client_id

    @property
    def leader(self) -> str | None:
        """The leader address this client currently believes in."""
        return self._native.leader

    @property
    def closed(self) -> bool:
        return self._native.is_closed

    def flush(self, timeout: float | None = None) -> None:
        """Waits until every ``ONE_WAY`` append accepted so far is stored (committed), at most
        ``timeout`` seconds (default 5). Raises ``TimeoutError`` (saying how many are left)
        when that passes, or the error of the appends given up since the previous flush."""
        self._native.flush(timeout)

    def close(self) -> None:
        """Flushes the accepted ``ONE_WAY`` appends (waits at most 5 s; never raises for
        them), then closes every connection; later calls raise ``ClosedError``. Idempotent."""
        self._native.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._native)  # in a forked child: no servers, closed


class AsyncJournal:
    """The journal store of an :class:`AsyncClient`; see :class:`Journal`."""

    def __init__(self, native: _native.Client) -> None:
        self._n = native

    async def append(
        self,
        partition: int,
        entries: Iterable[BytesLike],
        response: ResponseConfig | str = ResponseConfig.REPLICATION,
    ) -> int | None:
        return await self._n.append(partition, entries, _name(response), True)

    async def get(
        self,
        partition: int,
        index: int,
        max: int = DEFAULT_GET_MAX,  # noqa: A002
        consistency: QueryConsistency | str = STRICT,
    ) -> list[JournalEntry]:
        return await self._n.get(partition, index, max, _name(consistency), True)

    async def min_indices(self, consistency: QueryConsistency | str = STRICT) -> dict[int, int]:
        return await self._n.min_indices(_name(consistency), True)

    async def max_indices(self, consistency: QueryConsistency | str = STRICT) -> dict[int, int]:
        return await self._n.max_indices(_name(consistency), True)

    async def list_partitions(self, consistency: QueryConsistency | str = STRICT) -> list[int]:
        return await self._n.list_partitions(_name(consistency), True)

    async def query_index(
        self, partition: int, timestamp_ms: int, consistency: QueryConsistency | str = STRICT
    ) -> int | None:
        return await self._n.query_index(partition, timestamp_ms, _name(consistency), True)

    async def scale_partitions(self, partitions: Iterable[int]) -> None:
        await self._n.scale_partitions(list(partitions), True)


class AsyncKv:
    """The coordination KV of an :class:`AsyncClient`; see :class:`Kv`."""

    def __init__(self, native: _native.Client) -> None:
        self._n = native

    async def set(self, key: str, value: BytesLike) -> bytes | None:
        return await self._n.kv_set(key, value, True)

    async def get(
        self,
        key: str,
        consistency: QueryConsistency | str = STRICT,
        *,
        at_index: int | None = None,
    ) -> bytes | None:
        if at_index is not None:
            return await self._n.kv_get_at(key, at_index, True)
        return await self._n.kv_get(key, _name(consistency), True)

    async def exists(self, key: str, consistency: QueryConsistency | str = STRICT) -> bool:
        return await self._n.kv_exists(key, _name(consistency), True)

    async def remove(self, key: str) -> bytes | None:
        return await self._n.kv_remove(key, True)

    async def list(
        self,
        prefix: str = "",
        consistency: QueryConsistency | str = STRICT,
        *,
        at_index: int | None = None,
    ) -> list[tuple[str, bytes]]:
        if at_index is not None:
            return await self._n.kv_list_at(prefix, at_index, True)
        return await self._n.kv_list(prefix, _name(consistency), True)

    async def compare_and_set(
        self, key: str, expect: BytesLike | None, new: BytesLike | None
    ) -> CasResult:
        return _cas(await self._n.kv_compare_and_set(key, expect, new, True))

    async def watch(
        self, *, key: str | None = None, prefix: str | None = None, from_index: int = 0
    ) -> Watch:
        """See :meth:`Kv.watch`; iterate the result with ``async for``."""
        return Watch(await self._n.kv_watch(key, prefix, from_index, True), self._n)


class AsyncAdmin:
    """Cluster administration of an :class:`AsyncClient`; see :class:`Admin`."""

    def __init__(self, native: _native.Client) -> None:
        self._n = native

    async def status(self, node: str) -> NodeStatus:
        return await self._n.admin_status(node, True)

    async def cluster_configuration(self) -> ClusterConfiguration:
        return await self._n.admin_cluster_configuration(True)

    async def update_voters(
        self,
        old: Iterable[int],
        new: Mapping[int, str | None],
        timeout: float | None = None,
    ) -> None:
        await self._n.admin_update_voters(list(old), _new_voters(new), timeout, True)

    async def add_voter(self, node_id: int, addr: str, timeout: float | None = None) -> None:
        await self._n.admin_add_voter(node_id, addr, timeout, True)

    async def remove_voter(self, node_id: int, timeout: float | None = None) -> None:
        await self._n.admin_remove_voter(node_id, timeout, True)

    async def convert_role(
        self, node_id: int, role: MemberRole | str, timeout: float | None = None
    ) -> None:
        await self._n.admin_convert_role(node_id, role, timeout, True)

    async def transfer_leader(self, node_id: int, timeout: float | None = None) -> None:
        await self._n.admin_transfer_leader(node_id, timeout, True)

    async def set_preferred_leader(self, node_id: int | None) -> None:
        await self._n.admin_set_preferred_leader(node_id, True)

    async def take_snapshot(self, timeout: float | None = None) -> int:
        return await self._n.admin_take_snapshot(timeout, True)

    async def snapshots(self) -> list[NodeSnapshots]:
        return await self._n.admin_snapshots(True)

    async def recover_snapshot(self, index: int, timeout: float | None = None) -> None:
        await self._n.admin_recover_snapshot(index, timeout, True)


class AsyncClient:
    """An asyncio client: ``client = await AsyncClient.connect(addrs, cluster_id=42)``.

    Every call returns an awaitable completed by the library's runtime (the event loop is
    never blocked); cancelling it cancels the call. ``async with client:`` closes it.
    """

    journal: AsyncJournal
    kv: AsyncKv
    admin: AsyncAdmin
    coord: AsyncCoord
    transactions: AsyncTransactions

    def __init__(self, native: _native.Client) -> None:
        """Wraps a connected native client; use :meth:`connect` or ``Client.aio``."""
        self._native = native
        self.journal = AsyncJournal(native)
        self.kv = AsyncKv(native)
        self.admin = AsyncAdmin(native)
        self.coord = AsyncCoord(native)
        self.transactions = AsyncTransactions(native)

    @classmethod
    async def connect(
        cls,
        addrs: str | Iterable[str],
        cluster_id: int,
        *,
        request_timeout: float | None = None,
        attempt_timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> AsyncClient:
        """Connects; the options are :class:`Client`'s."""
        native: Any = await _native.connect(
            _addrs(addrs), cluster_id, request_timeout, attempt_timeout, max_attempts, True
        )
        return cls(native)

    def state_machine(self, name: str) -> AsyncStateMachineClient:
        """See :meth:`Client.state_machine`; its calls are awaitable."""
        return AsyncStateMachineClient(self._native, name)

    def sql(self) -> AsyncSql:
        """See :meth:`Client.sql`; its calls are awaitable."""
        return AsyncSql(self._native)

    @property
    def blocking(self) -> Client:
        """A blocking :class:`Client` sharing this client's connections."""
        return Client._from_native(self._native)

    async def sync(self) -> int:
        return await self._native.sync(True)

    async def events(self, state_machines: bool = False) -> Events:
        """See :meth:`Client.events`; iterate the result with ``async for``."""
        return Events(await self._native.events(state_machines, True))

    @property
    def client_id(self) -> int:
        return self._native.client_id

    @property
    def leader(self) -> str | None:
        return self._native.leader

    @property
    def closed(self) -> bool:
        return self._native.is_closed

    async def flush(self, timeout: float | None = None) -> None:
        """See :meth:`Client.flush`."""
        await self._native.flush(timeout, True)

    async def aclose(self) -> None:
        """Flushes the accepted ``ONE_WAY`` appends (at most 5 s), then closes; what
        ``async with`` does on exit. Idempotent."""
        await self._native.close(True)

    def close(self) -> None:
        """Closes without blocking the event loop: at once when no ``ONE_WAY`` append is
        pending, else the flush (at most 5 s) and the close finish in the background; use
        ``await aclose()`` to wait for them. Idempotent."""
        self._native.close_nowait()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return "Async" + repr(self._native)  # in a forked child: no servers, closed


__all__ = [
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
]
