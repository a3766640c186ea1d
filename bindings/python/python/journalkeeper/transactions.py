"""Journal transactions: ``client.transactions`` (:class:`Transactions`) and
``async_client.transactions`` (:class:`AsyncTransactions`). Entries appended under one
transaction, to any partitions, become visible together when it commits — in each partition
in the order appended, each batch keeping its batch size — or never (see "Journal
transactions" in docs/semantics.md).

Durations are seconds (``float``). These classes only name and type the calls of
``journalkeeper._native``; the Rust core does the work.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from . import _native
from .types import BytesLike, QueryConsistency, TxnInfo

STRICT = QueryConsistency.STRICT


def _name(value: enum.Enum | str) -> str:
    return value.value if isinstance(value, enum.Enum) else value


def _context(context: Mapping[str, str] | None) -> dict[str, str]:
    if context is None:
        return {}
    if not isinstance(context, Mapping):
        raise TypeError(f"context must be a mapping of str to str, not {type(context).__name__}")
    return dict(context)


class Transactions:
    """Journal transactions: ``client.transactions``. A call for a transaction that has ended
    (committed, aborted, expired) raises ``InvalidArgumentError`` ("not open")."""

    def __init__(self, client: _native.Client) -> None:
        self._n = client.transactions()

    def create(self, context: Mapping[str, str] | None = None, timeout: float | None = None) -> int:
        """Opens a transaction carrying ``context`` (string pairs, at most 64 of 16 KiB
        together; :meth:`opening` reports them): its id (ids increase). The leader aborts it
        when it sees no append for ``timeout`` seconds (0.1 s to 24 h; ``None``: 60 s). At
        most 128 are open at once."""
        return self._n.create(_context(context), timeout)

    def append(self, tx: int, partition: int, entries: Iterable[BytesLike]) -> int:
        """Adds ``entries`` as one batch for ``partition`` to transaction ``tx`` (the bounds of
        ``journal.append``; at most 3 MiB and 65 536 entries per transaction). Nothing of it
        is readable before the commit. Returns the number of entries the transaction holds."""
        return self._n.append(tx, partition, entries)

    def commit(self, tx: int) -> None:
        """Commits ``tx``; returns once every entry is visible to readers at every level, all
        at once. A retry after a lost reply applies once."""
        self._n.commit(tx)

    def abort(self, tx: int) -> bool:
        """Aborts ``tx``: nothing of it will ever be visible. ``False`` when it had already
        ended (aborted or expired). A transaction whose commit is decided cannot be aborted."""
        return self._n.abort(tx)

    def opening(self, consistency: QueryConsistency | str = STRICT) -> list[TxnInfo]:
        """The transactions not yet ended (open, or committing), oldest first."""
        return self._n.opening(_name(consistency))


class AsyncTransactions:
    """Journal transactions of an ``AsyncClient``; see :class:`Transactions`."""

    def __init__(self, client: _native.Client) -> None:
        self._n = client.transactions()

    async def create(
        self, context: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> int:
        return await self._n.create(_context(context), timeout, True)

    async def append(self, tx: int, partition: int, entries: Iterable[BytesLike]) -> int:
        return await self._n.append(tx, partition, entries, True)

    async def commit(self, tx: int) -> None:
        await self._n.commit(tx, True)

    async def abort(self, tx: int) -> bool:
        return await self._n.abort(tx, True)

    async def opening(self, consistency: QueryConsistency | str = STRICT) -> list[TxnInfo]:
        return await self._n.opening(_name(consistency), True)


__all__ = ["Transactions", "AsyncTransactions"]
