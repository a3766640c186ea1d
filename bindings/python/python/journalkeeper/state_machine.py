"""User state machines: what a machine hosted by an embedded :class:`~journalkeeper.Server`
implements (:class:`StateMachine`, called with an :class:`ApplyContext`), and the client side
(:class:`StateMachineClient`, :class:`AsyncStateMachineClient`, from
``client.state_machine(name)``).

Hosting: ``Server(config, state_machines={"bank": Bank()})`` (also ``Server.from_toml(...,
state_machines=...)``). Every node of a cluster must host the same names. The node calls

* ``apply(ctx, command) -> bytes`` for each committed command, in log order, on the node's
  single apply thread. It must be deterministic (no clock, randomness or node-local I/O; use
  ``ctx.timestamp_ms`` for time). Raising :class:`~journalkeeper.RejectedError` ``(msg)`` is a
  deterministic refusal: the state must be unchanged, and the caller's ``update`` raises
  ``RejectedError`` with ``msg`` (every node refuses it alike). **Any other exception**, or a
  return value that is not ``bytes``, is a crash: the node stops applying (fail-stop — its
  ``status()["failed"]`` is ``True``, the exception and its traceback are logged) rather than
  skip the entry and diverge; the other nodes go on serving.
* ``query(q) -> bytes`` for reads, on a worker thread; never concurrently with ``apply`` on
  the same node. Any exception (``RejectedError`` included) reaches the caller as
  ``InvalidArgumentError`` with its text (the node does not fail).
* ``snapshot(file)``: write the whole state with ``file.write(b)`` (binary; streamed to disk as
  written). An exception abandons that snapshot (the node keeps running).
* ``restore(file)``: replace the whole state with one ``snapshot`` wrote, reading it with
  ``file.read(n)`` (at most ``n`` bytes, ``b""`` at the end). An exception is a crash, as in
  ``apply``.

Threading: the library takes the GIL only around these calls, and every blocking call of this
package releases it while waiting, so a Python thread waiting in ``update`` never blocks the
apply thread. A machine's methods run on the library's threads, one at a time per node; the
same object must not be given to two servers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from . import _native
from .errors import JournalKeeperError
from .types import BytesLike, QueryConsistency, ResponseConfig


class ApplyContext(Protocol):
    """What ``apply`` is told about the committed entry."""

    @property
    def index(self) -> int:
        """The entry's global log index."""
        ...

    @property
    def term(self) -> int:
        """The term the entry was proposed in."""
        ...

    @property
    def timestamp_ms(self) -> int:
        """The leader's time when it appended the entry (ms since the epoch; the same on every
        node)."""
        ...


class SnapshotWriter(Protocol):
    """The binary file ``snapshot`` writes to."""

    def write(self, data: bytes | bytearray | memoryview, /) -> int: ...


class SnapshotReader(Protocol):
    """The binary file ``restore`` reads from."""

    def read(self, n: int = -1, /) -> bytes: ...


@runtime_checkable
class StateMachine(Protocol):
    """A deterministic replicated state machine (see the module docs for the rules)."""

    def apply(self, ctx: ApplyContext, command: bytes) -> bytes: ...

    def query(self, query: bytes) -> bytes: ...

    def snapshot(self, file: SnapshotWriter) -> None: ...

    def restore(self, file: SnapshotReader) -> None: ...


def _name(value: ResponseConfig | QueryConsistency | str) -> str:
    return value if isinstance(value, str) else value.value


class StateMachineClient:
    """``client.state_machine(name)``: updates and queries of one hosted machine."""

    def __init__(self, native: _native.Client, name: str) -> None:
        self._n = native
        self.name = name

    def update(
        self, command: BytesLike, response: ResponseConfig | str = ResponseConfig.REPLICATION
    ) -> bytes | None:
        """Applies ``command`` once (retries are deduplicated by the client's session) and
        returns ``apply``'s result; ``None`` below ``REPLICATION`` (``ONE_WAY`` is sent as
        ``RECEIVE``). Raises ``RejectedError`` with the machine's message when it refused."""
        return self._n.sm_update(self.name, command, _name(response))

    def update_batch(
        self,
        commands: Iterable[BytesLike],
        response: ResponseConfig | str = ResponseConfig.REPLICATION,
    ) -> list[bytes | JournalKeeperError] | None:
        """Applies ``commands`` as one log entry, in order. Returns one element per command:
        its result, or the (unraised) ``RejectedError`` of a refused one — a refusal does not
        stop the later commands; ``None`` below ``REPLICATION``."""
        return self._n.sm_update_batch(self.name, list(commands), _name(response))

    def query(
        self, query: BytesLike, consistency: QueryConsistency | str = QueryConsistency.STRICT
    ) -> bytes:
        """``query``'s answer, at the given consistency (``STRICT``: the confirmed leader;
        ``SEQUENTIAL``: any node, never going backwards for this client; ``NONE``: whichever
        node answers)."""
        return self._n.sm_query(self.name, query, _name(consistency))

    def __repr__(self) -> str:
        return f"StateMachineClient(name={self.name!r})"


class AsyncStateMachineClient:
    """The :class:`StateMachineClient` of an ``AsyncClient``: the same calls, awaitable."""

    def __init__(self, native: _native.Client, name: str) -> None:
        self._n = native
        self.name = name

    async def update(
        self, command: BytesLike, response: ResponseConfig | str = ResponseConfig.REPLICATION
    ) -> bytes | None:
        return await self._n.sm_update(self.name, command, _name(response), True)

    async def update_batch(
        self,
        commands: Iterable[BytesLike],
        response: ResponseConfig | str = ResponseConfig.REPLICATION,
    ) -> list[bytes | JournalKeeperError] | None:
        return await self._n.sm_update_batch(self.name, list(commands), _name(response), True)

    async def query(
        self, query: BytesLike, consistency: QueryConsistency | str = QueryConsistency.STRICT
    ) -> bytes:
        return await self._n.sm_query(self.name, query, _name(consistency), True)

    def __repr__(self) -> str:
        return f"AsyncStateMachineClient(name={self.name!r})"


__all__ = [
    "ApplyContext",
    "SnapshotWriter",
    "SnapshotReader",
    "StateMachine",
    "StateMachineClient",
    "AsyncStateMachineClient",
]
