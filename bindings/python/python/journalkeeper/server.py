"""An embedded node: :class:`Server` runs a JournalKeeper node inside this process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from . import _native
from .client import Events
from .state_machine import StateMachine
from .types import ServerStatus


def _machines(machines: Mapping[str, StateMachine] | None) -> dict[str, StateMachine] | None:
    return None if machines is None else dict(machines)


class Server:
    """A node running in this process, on the library's runtime (not on the caller's thread).

    Start it from the keys of the TOML configuration format (see the Rust
    ``ServerConfig`` docs), as a dict and/or keyword arguments::

        Server(node_id=1, listen="127.0.0.1:7001", cluster_id=42, data_dir="/tmp/jk1",
               peers={1: "127.0.0.1:7001", 2: "127.0.0.1:7002", 3: "127.0.0.1:7003"})

    or from TOML with :meth:`from_toml` / :meth:`from_toml_file`. Required keys: ``node_id``,
    ``listen`` (``"ip:port"``), ``cluster_id``, ``data_dir``; ``peers`` (every voter, this node
    included; default: this node alone), ``join`` (``True``: join a running cluster instead of
    forming one — ``peers`` then names members it can reach, this node is added to them, and
    ``data_dir`` must be empty; the node is ``"JOINING"`` and serves nothing until
    ``client.admin.add_voter`` adds it), ``role`` (``"voter"``, the default, or ``"observer"``: a read replica
    that never votes and pulls committed entries from one of ``parents``, a list of
    ``"ip:port"`` addresses of voters or other observers; its ``peers`` name only itself, its
    standing is ``"OBSERVER"`` and ``client.admin.convert_role`` can make it a voter), ``partitions`` (the journal's partitions until
    ``journal.scale_partitions``; default ``[0]``; the same on every node) and the tuning keys (``election_timeout_ms``,
    ``heartbeat_interval_ms``, ``tick_ms``, ``lease_reads``, ``snapshot_interval``,
    ``snapshot_retained_entries``, ``max_segment_bytes``, ``max_pending_requests``) are
    optional. ``state_machines`` (keyword-only, also on :meth:`from_toml` /
    :meth:`from_toml_file`) maps names (``[A-Za-z0-9_.-]{1,64}``, not starting ``jk.``) to
    :class:`~journalkeeper.StateMachine` objects this node hosts — the same names on every
    node; see :mod:`journalkeeper.state_machine` for the threading and failure rules. The
    constructor returns once the node listens. ``close()`` (or leaving a
    ``with`` block) stops it cleanly.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        /,
        *,
        state_machines: Mapping[str, StateMachine] | None = None,
        **kwargs: Any,
    ) -> None:
        merged = dict(config or {})
        merged.update(kwargs)
        self._native = _native.Server.start(merged, _machines(state_machines))

    @classmethod
    def _wrap(cls, native: _native.Server) -> Server:
        server = cls.__new__(cls)
        server._native = native
        return server

    @classmethod
    def from_toml(
        cls, text: str, *, state_machines: Mapping[str, StateMachine] | None = None
    ) -> Server:
        """Starts a node from TOML text."""
        return cls._wrap(_native.Server.from_toml(text, _machines(state_machines)))

    @classmethod
    def from_toml_file(
        cls,
        path: str | os.PathLike[str],
        *,
        state_machines: Mapping[str, StateMachine] | None = None,
    ) -> Server:
        """Starts a node from a TOML file."""
        return cls._wrap(
            _native.Server.from_toml_file(os.fspath(path), _machines(state_machines))
        )

    @property
    def node_id(self) -> int:
        return self._native.node_id

    @property
    def address(self) -> str:
        """The ``"ip:port"`` peers and clients reach this node at."""
        return self._native.address

    @property
    def closed(self) -> bool:
        return self._native.is_closed

    def status(self) -> ServerStatus:
        """The node's latest status (role, leader, term, indices, voters, standing, preferred
        leader)."""
        return self._native.status()

    def events(self, state_machines: bool = False) -> Events:
        """This node's own events (leader, voters, its role, journal bounds; with
        ``state_machines=True`` also :class:`StateChanged` for each hosted user state machine),
        starting with its current state; iteration ends when the server stops. See
        :class:`Events`."""
        return Events(self._native.events(state_machines))

    def wait_removed(self, timeout: float | None = None) -> None:
        """Waits (GIL released) until a committed configuration no longer holds this node
        (``client.admin.remove_voter``); it then serves nothing and its standing is
        ``"REMOVED"``. Returns at once if it already was; raises ``TimeoutError`` after
        ``timeout`` seconds (``None``: no bound) and ``ClosedError`` when the server is closed
        first."""
        self._native.wait_removed(timeout)

    def close(self) -> None:
        """Stops the node: fails waiting requests with ``ClosedError``, makes the log durable,
        releases the port. Idempotent."""
        self._native.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._native)


__all__ = ["Server"]
