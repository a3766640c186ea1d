"""The cluster's built-in SQL database (SQLite, replicated through the log):
``client.sql()`` (:class:`Sql`) and ``async_client.sql()`` (:class:`AsyncSql`).

``execute`` runs statements through the log in one transaction, all or nothing: a statement
SQLite or the determinism guard refuses raises ``RejectedError`` naming it (``statement 2
("…"): …``) and nothing changes. SQL whose result could differ between replicas —
``random()``, ``datetime('now')``, ``changes()``, … — is refused naming the function; the
leader's time is the named parameter ``:jk_timestamp_ms`` (ms since the epoch, bound by the
library, only in ``execute``). ``query`` runs one read-only statement at a consistency level.

Values: ``None``, ``int`` (64-bit signed; ``bool`` is an ``int``), ``float``, ``str`` and
``bytes`` (``bytearray`` / ``memoryview`` too as parameters), both as positional parameters
(``?1``, ``?2``, … or ``?``) and in rows, which are tuples. These classes only name and type
the calls of ``journalkeeper._native``; the Rust core does the work.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Union

from . import _native
from .types import QueryConsistency

STRICT = QueryConsistency.STRICT

#: A value of a parameter or a row (parameters also take ``bytearray`` / ``memoryview``).
SqlValue = Union[None, int, float, str, bytes]
#: What a parameter may be.
SqlParam = Union[None, int, float, str, bytes, bytearray, memoryview]
#: One statement of a batch: its SQL alone, or ``(sql, params)``.
Statement = Union[str, tuple[str, Sequence[SqlParam]]]


class ExecuteResult(NamedTuple):
    """What an ``execute`` changed."""

    #: Rows inserted, updated or deleted by the statements (and their triggers).
    rows_affected: int
    #: The rowid of the last row the statements inserted (0 when they inserted none).
    last_insert_id: int


class QueryResult(NamedTuple):
    """The answer of a ``query``: column names and rows (tuples, in column order)."""

    columns: list[str]
    rows: list[tuple[SqlValue, ...]]

    def dicts(self) -> list[dict[str, SqlValue]]:
        """The rows as ``{column: value}`` dicts."""
        return [dict(zip(self.columns, row)) for row in self.rows]


def _name(value: enum.Enum | str) -> str:
    return value.value if isinstance(value, enum.Enum) else value


def _statements(
    statements: str | Iterable[Statement], params: Sequence[SqlParam] | None
) -> list[tuple[str, Sequence[SqlParam]]]:
    """``execute``'s arguments as ``(sql, params)`` pairs."""
    if isinstance(statements, str):
        return [(statements, () if params is None else params)]
    if params is not None:
        raise TypeError("params goes with one statement: pass (sql, params) pairs in a batch")
    batch: list[tuple[str, Sequence[SqlParam]]] = []
    for i, s in enumerate(statements):
        if isinstance(s, str):
            batch.append((s, ()))
        elif isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str):
            batch.append(s)
        else:
            raise TypeError(
                f"statements[{i}] must be a str or a (sql, params) tuple, not {type(s).__name__}"
            )
    return batch


def _outcome(r: tuple[int, int]) -> ExecuteResult:
    return ExecuteResult(*r)


def _answer(r: tuple[list[str], list[tuple[SqlValue, ...]]]) -> QueryResult:
    return QueryResult(*r)


class Sql:
    """The SQL database: ``client.sql()``."""

    def __init__(self, client: _native.Client) -> None:
        self._n = client.sql()

    def execute(
        self, statements: str | Iterable[Statement], params: Sequence[SqlParam] | None = None
    ) -> ExecuteResult:
        """Runs one statement with ``params`` (``execute("INSERT … VALUES (?1, ?2)", (1,
        "a"))``), or a batch of statements, each a ``str`` or a ``(sql, params)`` pair, in
        order in one transaction once committed on a majority (at most 1024 statements of 64
        KiB and 999 parameters each). A retried call applies once. Raises ``RejectedError``
        naming the refused statement; nothing changed then."""
        return _outcome(self._n.execute(_statements(statements, params)))

    def query(
        self,
        sql: str,
        params: Sequence[SqlParam] = (),
        consistency: QueryConsistency | str = STRICT,
    ) -> QueryResult:
        """Runs one read-only statement at ``consistency`` (``STRICT``: the confirmed leader;
        ``SEQUENTIAL``: any node, never going backwards for this client; ``NONE``: whichever
        node answers, possibly behind). Raises ``RejectedError`` for a statement that writes,
        fails or is refused; ``InvalidArgumentError`` for an answer over 8 MiB."""
        return _answer(self._n.query(sql, params, _name(consistency)))

    def __repr__(self) -> str:
        return "Sql()"


class AsyncSql:
    """The SQL database of an ``AsyncClient``; see :class:`Sql`."""

    def __init__(self, client: _native.Client) -> None:
        self._n = client.sql()

    async def execute(
        self, statements: str | Iterable[Statement], params: Sequence[SqlParam] | None = None
    ) -> ExecuteResult:
        return _outcome(await self._n.execute(_statements(statements, params), True))

    async def query(
        self,
        sql: str,
        params: Sequence[SqlParam] = (),
        consistency: QueryConsistency | str = STRICT,
    ) -> QueryResult:
        return _answer(await self._n.query(sql, params, _name(consistency), True))

    def __repr__(self) -> str:
        return "AsyncSql()"


__all__ = [
    "Sql",
    "AsyncSql",
    "ExecuteResult",
    "QueryResult",
    "SqlValue",
    "SqlParam",
    "Statement",
]
