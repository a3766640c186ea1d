"""The coordination recipes: ``client.coord`` (:class:`Coord`) and ``async_client.coord``
(:class:`AsyncCoord`) — leases, keys under a lease, locks with fencing tokens, elections, ID
ranges and liveness groups (see "Coordination recipes" in docs/semantics.md) — with the
objects that live on: :class:`KeepAlive`, :class:`Registration` (context managers) and the
change streams :class:`ElectionObserver`, :class:`MembersWatch` (iterable, sync and async).

Durations are seconds (``float``). These classes only name and type the calls of
``journalkeeper._native``; the Rust core does the work.
"""

from __future__ import annotations

import os
from typing import Generic, TypeVar

from . import _native
from .errors import ClosedError, JournalKeeperError
from .types import BytesLike, ElectionLeader, GroupMember, LeaseStatus, MemberEvent

T = TypeVar("T")


class _Changes(Generic[T]):
    """What :class:`ElectionObserver` and :class:`MembersWatch` share with ``Watch``:
    ``next(timeout=…)`` / ``await anext(timeout=…)`` (then ``TimeoutError``, and the stream
    stays usable), iteration that ends when the stream or its client is closed, ``with``."""

    def __init__(
        self, native: _native.ElectionObserver | _native.MembersWatch, client: _native.Client
    ) -> None:
        self._native = native
        self._client = client
        self._pid = os.getpid()

    def _ended(self) -> bool:
        return self._pid == os.getpid() and (self._native.is_closed or self._client.is_closed)

    def next(self, timeout: float | None = None) -> T:
        """The next change (blocking, GIL released)."""
        value: T = self._native.next(timeout)  # type: ignore[assignment]
        return value

    async def anext(self, timeout: float | None = None) -> T:
        """The next change (awaitable)."""
        value: T = await self._native.next(timeout, True)  # type: ignore[assignment]
        return value

    def __iter__(self) -> _Changes[T]:
        return self

    def __next__(self) -> T:
        try:
            return self.next()
        except ClosedError:
            if self._ended():
                raise StopIteration from None
            raise

    def __aiter__(self) -> _Changes[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.anext()
        except ClosedError:
            if self._ended():
                raise StopAsyncIteration from None
            raise

    @property
    def closed(self) -> bool:
        return self._native.is_closed

    def close(self) -> None:
        """Ends the stream (pending ``next`` calls end too). Idempotent."""
        self._native.close()

    def __enter__(self) -> _Changes[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> _Changes[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class ElectionObserver(_Changes["ElectionLeader | None"]):
    """The leaders of one election, from ``coord.observe(name)``: first the current one
    (``None``: nobody leads), then each change."""

    def __repr__(self) -> str:
        return f"ElectionObserver(closed={self.closed!r})"


class MembersWatch(_Changes[MemberEvent]):
    """The joins and leaves of one liveness group from now on, from
    ``coord.watch_members(group)``."""

    def __repr__(self) -> str:
        return f"MembersWatch(closed={self.closed!r})"


class KeepAlive:
    """A lease renewed in the background (every third of its TTL), from
    ``coord.keep_alive_forever(lease)``. ``revoke()`` (or leaving ``with`` / ``async with``)
    ends the lease now; ``close()`` only stops renewing (the lease runs out after its TTL)."""

    def __init__(self, native: _native.KeepAlive) -> None:
        self._native = native

    @property
    def lease(self) -> int:
        return self._native.lease

    def check(self) -> int:
        """The time (ms) the leader gave the lease at the last renewal; raises why it was
        lost (``LeaseExpiredError``, ``ClosedError``)."""
        return self._native.state()

    @property
    def alive(self) -> bool:
        """Still renewed (not lost, revoked or closed)."""
        try:
            self._native.state()
        except JournalKeeperError:
            return False
        return True

    def revoke(self) -> None:
        """Stops renewing and ends the lease now. Idempotent."""
        self._native.revoke()

    async def arevoke(self) -> None:
        """:meth:`revoke`, awaitable."""
        await self._native.revoke(True)

    def close(self) -> None:
        """Stops renewing; the lease runs out after its TTL. Idempotent."""
        self._native.close()

    def __repr__(self) -> str:
        return f"KeepAlive(lease={self.lease!r}, alive={self.alive!r})"

    def __enter__(self) -> KeepAlive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.revoke()

    async def __aenter__(self) -> KeepAlive:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.arevoke()


class Registration:
    """A member of a liveness group under its own lease, kept alive in the background, from
    ``coord.register(...)``. ``close()`` (or leaving ``with`` / ``async with``) ends it now;
    ``release()`` only stops renewing (the member leaves when the lease runs out)."""

    def __init__(self, native: _native.Registration) -> None:
        self._native = native

    @property
    def lease(self) -> int:
        return self._native.lease

    def close(self) -> None:
        """Revokes the lease: the member leaves every group at once. Idempotent."""
        self._native.close()

    async def aclose(self) -> None:
        """:meth:`close`, awaitable."""
        await self._native.close(True)

    def release(self) -> None:
        """Stops renewing; the member leaves when the lease runs out. Idempotent."""
        self._native.release()

    def __repr__(self) -> str:
        return f"Registration(lease={self.lease!r})"

    def __enter__(self) -> Registration:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Registration:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Coord:
    """The coordination recipes: ``client.coord``. Anything asked under a lease that ended
    raises ``LeaseExpiredError``."""

    def __init__(self, client: _native.Client) -> None:
        self._client = client
        self._n = client.coord()

    def grant(self, ttl: float) -> int:
        """A new lease of ``ttl`` seconds (0.1 s to 7 days): its id."""
        return self._n.grant(ttl)

    def revoke(self, lease: int) -> bool:
        """Ends ``lease`` now (its keys, locks, campaigns, registrations go); ``False`` when
        it had already ended."""
        return self._n.revoke(lease)

    def keep_alive(self, lease: int) -> LeaseStatus:
        """Renews ``lease`` once for its full TTL from now."""
        return self._n.keep_alive(lease)

    def keep_alive_forever(self, lease: int) -> KeepAlive:
        """Renews ``lease`` in the background; see :class:`KeepAlive`."""
        return KeepAlive(self._n.keep_alive_forever(lease))

    def time_to_live(self, lease: int) -> LeaseStatus:
        """What ``lease`` has left and which keys are attached to it."""
        return self._n.time_to_live(lease)

    def put(self, key: str, value: BytesLike, lease: int) -> None:
        """Sets KV ``key`` under ``lease``: removed when the lease ends (a later plain KV
        write detaches it)."""
        self._n.put(key, value, lease)

    def lock(self, name: str, lease: int) -> int:
        """Waits until ``lease`` holds lock ``name`` (FIFO); its fencing token."""
        return self._n.lock(name, lease)

    def try_lock(self, name: str, lease: int, wait: float = 0.0) -> int | None:
        """:meth:`lock` waiting at most ``wait`` seconds; ``None`` when not held by then (the
        lease left the queue again)."""
        return self._n.try_lock(name, lease, wait)

    def unlock(self, name: str, lease: int) -> bool:
        """Releases (or stops waiting for) lock ``name``; ``True`` when ``lease`` held it."""
        return self._n.unlock(name, lease)

    def campaign(self, name: str, value: BytesLike, lease: int) -> int:
        """Waits until ``lease`` leads election ``name`` (in campaign order); its token."""
        return self._n.campaign(name, value, lease)

    def resign(self, name: str, lease: int) -> bool:
        """Stops leading (or campaigning in) election ``name``; ``True`` when it led."""
        return self._n.resign(name, lease)

    def leader(self, name: str) -> ElectionLeader | None:
        """The current leader of election ``name`` (``None``: nobody leads)."""
        return self._n.leader(name)

    def observe(self, name: str) -> ElectionObserver:
        """Follows the leader of election ``name``; see :class:`ElectionObserver`."""
        return ElectionObserver(self._n.observe(name), self._client)

    def next_id(self, name: str) -> int:
        """The next value of sequence ``name`` (1, 2, 3, …)."""
        return self._n.next_id(name)

    def next_ids(self, name: str, count: int) -> range:
        """The next ``count`` values of sequence ``name``, as one contiguous range."""
        return range(*self._n.next_ids(name, count))

    def register(self, group: str, member: str, info: BytesLike = b"", ttl: float = 10.0) -> Registration:
        """Registers ``member`` of ``group`` under a new lease of ``ttl`` seconds kept alive
        in the background; see :class:`Registration`."""
        return Registration(self._n.register(group, member, info, ttl))

    def unregister(self, group: str, member: str, lease: int) -> bool:
        """Removes ``member`` from ``group`` when it is registered under ``lease``."""
        return self._n.unregister(group, member, lease)

    def members(self, group: str) -> list[GroupMember]:
        """The live members of ``group``, by member name."""
        return self._n.members(group)

    def watch_members(self, group: str) -> MembersWatch:
        """Follows ``group``'s joins and leaves from now on; see :class:`MembersWatch`."""
        return MembersWatch(self._n.watch_members(group), self._client)


class AsyncCoord:
    """The coordination recipes of an ``AsyncClient``; see :class:`Coord`."""

    def __init__(self, client: _native.Client) -> None:
        self._client = client
        self._n = client.coord()

    async def grant(self, ttl: float) -> int:
        return await self._n.grant(ttl, True)

    async def revoke(self, lease: int) -> bool:
        return await self._n.revoke(lease, True)

    async def keep_alive(self, lease: int) -> LeaseStatus:
        return await self._n.keep_alive(lease, True)

    async def keep_alive_forever(self, lease: int) -> KeepAlive:
        return KeepAlive(await self._n.keep_alive_forever(lease, True))

    async def time_to_live(self, lease: int) -> LeaseStatus:
        return await self._n.time_to_live(lease, True)

    async def put(self, key: str, value: BytesLike, lease: int) -> None:
        await self._n.put(key, value, lease, True)

    async def lock(self, name: str, lease: int) -> int:
        return await self._n.lock(name, lease, True)

    async def try_lock(self, name: str, lease: int, wait: float = 0.0) -> int | None:
        return await self._n.try_lock(name, lease, wait, True)

    async def unlock(self, name: str, lease: int) -> bool:
        return await self._n.unlock(name, lease, True)

    async def campaign(self, name: str, value: BytesLike, lease: int) -> int:
        return await self._n.campaign(name, value, lease, True)

    async def resign(self, name: str, lease: int) -> bool:
        return await self._n.resign(name, lease, True)

    async def leader(self, name: str) -> ElectionLeader | None:
        return await self._n.leader(name, True)

    async def observe(self, name: str) -> ElectionObserver:
        """See :meth:`Coord.observe`; iterate the result with ``async for``."""
        return ElectionObserver(await self._n.observe(name, True), self._client)

    async def next_id(self, name: str) -> int:
        return await self._n.next_id(name, True)

    async def next_ids(self, name: str, count: int) -> range:
        return range(*await self._n.next_ids(name, count, True))

    async def register(
        self, group: str, member: str, info: BytesLike = b"", ttl: float = 10.0
    ) -> Registration:
        return Registration(await self._n.register(group, member, info, ttl, True))

    async def unregister(self, group: str, member: str, lease: int) -> bool:
        return await self._n.unregister(group, member, lease, True)

    async def members(self, group: str) -> list[GroupMember]:
        return await self._n.members(group, True)

    async def watch_members(self, group: str) -> MembersWatch:
        """See :meth:`Coord.watch_members`; iterate the result with ``async for``."""
        return MembersWatch(await self._n.watch_members(group, True), self._client)


__all__ = [
    "Coord",
    "AsyncCoord",
    "KeepAlive",
    "Registration",
    "ElectionObserver",
    "MembersWatch",
]
