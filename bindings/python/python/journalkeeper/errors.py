"""The exception hierarchy: one class per error kind of the core (``ErrorKind`` in Rust).

Every exception the library raises for a failed operation is a :class:`JournalKeeperError`
with ``.code`` (the stable identifier, e.g. ``"NOT_LEADER"``, the same string as the C enum
and Node's ``error.code``), ``.kind`` (an :class:`ErrorKind`) and ``.message``.
Some also derive from the builtin exception a Python programmer would catch:

* :class:`InvalidArgumentError` is a ``ValueError``;
* :class:`TimeoutError` is a ``builtins.TimeoutError`` (so ``except TimeoutError`` catches it
  whichever of the two names is in scope); it is also exported as :data:`JkTimeoutError`, the
  name ``from journalkeeper import *`` brings in (it does not shadow the builtin);
* :class:`IoError` is an ``OSError``.

Argument *types* that cannot be converted at all (a ``str`` where ``bytes`` is expected) raise
the builtin ``TypeError``, as Python functions do.
"""

from __future__ import annotations

import builtins
import enum


class ErrorKind(enum.Enum):
    """The error kinds; each value is the kind's stable code."""

    NOT_LEADER = "NOT_LEADER"
    TIMEOUT = "TIMEOUT"
    INDEX_OVERFLOW = "INDEX_OVERFLOW"
    INDEX_UNDERFLOW = "INDEX_UNDERFLOW"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    CLOSED = "CLOSED"
    IO = "IO"
    CORRUPTION = "CORRUPTION"
    TRANSACTION = "TRANSACTION"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"
    WRONG_CLUSTER = "WRONG_CLUSTER"
    LEASE_EXPIRED = "LEASE_EXPIRED"
    REJECTED = "REJECTED"


class JournalKeeperError(Exception):
    """Base class of every error the library reports for a failed operation."""

    #: The stable identifier of the kind (``"NOT_LEADER"``, …).
    code: str = "INTERNAL"

    def __init__(self, message: str, leader_hint: str | None = None) -> None:
        super().__init__(message)
        #: What went wrong, naming the thing (node, index, file, argument).
        self.message: str = message
        #: For :class:`NotLeaderError`: the leader's address when known; else ``None``.
        self.leader_hint: str | None = leader_hint

    @property
    def kind(self) -> ErrorKind:
        """The kind as an :class:`ErrorKind`."""
        return ErrorKind(self.code)


class NotLeaderError(JournalKeeperError):
    """The node is not the leader; ``leader_hint`` is the leader's address when known."""

    code = "NOT_LEADER"


class TimeoutError(JournalKeeperError, builtins.TimeoutError):  # noqa: A001 - documented
    """The operation did not complete in time; it may or may not have taken effect."""

    code = "TIMEOUT"


#: The same class as :class:`TimeoutError`, under a name that does not shadow the builtin.
JkTimeoutError = TimeoutError


class IndexOverflowError(JournalKeeperError):
    """The index is at or beyond the end (not yet written, or not yet reached)."""

    code = "INDEX_OVERFLOW"


class IndexUnderflowError(JournalKeeperError):
    """The index is before the start (compacted away)."""

    code = "INDEX_UNDERFLOW"


class InvalidArgumentError(JournalKeeperError, ValueError):
    """An argument is malformed or crosses a bound; the message names it."""

    code = "INVALID_ARGUMENT"


class ClosedError(JournalKeeperError):
    """The client, watch or server was closed (or belongs to the parent of a fork)."""

    code = "CLOSED"


class IoError(JournalKeeperError, OSError):
    """An operating-system I/O error."""

    code = "IO"


class CorruptionError(JournalKeeperError):
    """Stored data failed its checks; the message names the file and offset."""

    code = "CORRUPTION"


class TransactionError(JournalKeeperError):
    """A transaction could not be created, appended to or completed."""

    code = "TRANSACTION"


class UnavailableError(JournalKeeperError):
    """No quorum or no leader could be reached."""

    code = "UNAVAILABLE"


class InternalError(JournalKeeperError):
    """A bug: an invariant did not hold."""

    code = "INTERNAL"


class WrongClusterError(JournalKeeperError):
    """A server's cluster id differs from the client's ``cluster_id`` (a configuration error;
    raised at once, never retried)."""

    code = "WRONG_CLUSTER"


class LeaseExpiredError(JournalKeeperError):
    """The lease expired, was revoked or never existed (what was held under it is gone)."""

    code = "LEASE_EXPIRED"


class RejectedError(JournalKeeperError):
    """A state machine applied the command and refused it: a deterministic result, the same on
    every node (the message is the machine's). Raise it from a Python state machine's ``apply``
    to refuse a command; any other exception stops that node's apply (fail-stop)."""

    code = "REJECTED"


_BY_CODE: dict[str, type[JournalKeeperError]] = {
    cls.code: cls
    for cls in (
        NotLeaderError,
        TimeoutError,
        IndexOverflowError,
        IndexUnderflowError,
        InvalidArgumentError,
        ClosedError,
        IoError,
        CorruptionError,
        TransactionError,
        UnavailableError,
        InternalError,
        WrongClusterError,
        LeaseExpiredError,
        RejectedError,
    )
}


def _from_native(code: str, message: str, leader_hint: str | None) -> JournalKeeperError:
    """Called by the native module: the exception for a core error."""
    cls = _BY_CODE.get(code, InternalError)
    return cls(message, leader_hint)


__all__ = [
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
    "InternalError",
    "WrongClusterError",
    "LeaseExpiredError",
    "RejectedError",
]
