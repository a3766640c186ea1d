"""The exception hierarchy and the errors of connecting."""

from __future__ import annotations

import builtins
import time

import pytest

import journalkeeper as jk
from conftest import CLUSTER_ID, Cluster, free_ports
from journalkeeper.errors import _from_native

KINDS = {
    "NOT_LEADER": jk.NotLeaderError,
    "TIMEOUT": jk.TimeoutError,
    "INDEX_OVERFLOW": jk.IndexOverflowError,
    "INDEX_UNDERFLOW": jk.IndexUnderflowError,
    "INVALID_ARGUMENT": jk.InvalidArgumentError,
    "CLOSED": jk.ClosedError,
    "IO": jk.IoError,
    "CORRUPTION": jk.CorruptionError,
    "TRANSACTION": jk.TransactionError,
    "UNAVAILABLE": jk.UnavailableError,
    "INTERNAL": jk.InternalError,
    "WRONG_CLUSTER": jk.WrongClusterError,
    "LEASE_EXPIRED": jk.LeaseExpiredError,
    "REJECTED": jk.RejectedError,
}


def test_every_error_kind_has_its_class() -> None:
    assert {k.value for k in jk.ErrorKind} == set(KINDS)
    for code, cls in KINDS.items():
        e = _from_native(code, f"what went wrong: {code}", None)
        assert type(e) is cls and isinstance(e, jk.JournalKeeperError)
        assert e.code == code and e.kind is jk.ErrorKind(code)
        assert str(e) == e.message == f"what went wrong: {code}"
        assert e.leader_hint is None


def test_builtin_bases() -> None:
    assert issubclass(jk.InvalidArgumentError, ValueError)
    assert issubclass(jk.TimeoutError, builtins.TimeoutError)
    assert jk.JkTimeoutError is jk.TimeoutError
    assert issubclass(jk.IoError, OSError)
    assert "TimeoutError" not in jk.__all__  # star imports keep the builtin name


def test_not_leader_carries_the_hint() -> None:
    e = _from_native("NOT_LEADER", "not the leader", "127.0.0.1:7001")
    assert isinstance(e, jk.NotLeaderError) and e.leader_hint == "127.0.0.1:7001"


def test_connecting_to_nothing_raises_unavailable() -> None:
    port = free_ports(1)[0]
    with pytest.raises(jk.UnavailableError, match="no server reachable"):
        jk.Client(f"127.0.0.1:{port}", cluster_id=CLUSTER_ID)


def test_connect_arguments_are_checked() -> None:
    with pytest.raises(jk.InvalidArgumentError, match="host:port"):
        jk.Client(["localhost"], cluster_id=CLUSTER_ID)
    with pytest.raises(jk.InvalidArgumentError, match="at least one"):
        jk.Client([], cluster_id=CLUSTER_ID)
    with pytest.raises(jk.InvalidArgumentError, match="request_timeout"):
        jk.Client("127.0.0.1:1", cluster_id=CLUSTER_ID, request_timeout=-1)
    with pytest.raises(jk.InvalidArgumentError, match="cluster_id"):
        jk.Client("127.0.0.1:1", cluster_id=-3)


def test_a_wrong_cluster_id_raises_wrong_cluster_error_at_once(cluster: Cluster) -> None:
    started = time.monotonic()
    with pytest.raises(jk.WrongClusterError, match=f"cluster id is {CLUSTER_ID}") as info:
        jk.Client(cluster.addrs, cluster_id=CLUSTER_ID + 1, request_timeout=30)
    assert info.value.code == "WRONG_CLUSTER" and info.value.kind is jk.ErrorKind.WRONG_CLUSTER
    assert time.monotonic() - started < 5, "not retried until the request timeout"
