"""Fixtures: one embedded 3-node cluster per test session (in this process, loopback
ephemeral ports, temporary data directories) and a fresh client per test."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

import journalkeeper as jk

CLUSTER_ID = 42
#: The journal partitions of the test cluster (appends elsewhere are an InvalidArgumentError).
PARTITIONS = list(range(64))
T = TypeVar("T")


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (held open together so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def node_config(node_id: int, addrs: list[str], data_dir: Path) -> dict[str, object]:
    """Fast timeouts for tests (the defaults are tuned for real networks)."""
    return {
        "node_id": node_id,
        "listen": addrs[node_id - 1],
        "cluster_id": CLUSTER_ID,
        "data_dir": data_dir / f"n{node_id}",
        "peers": {i + 1: a for i, a in enumerate(addrs)},
        "partitions": PARTITIONS,
        "election_timeout_ms": 300,
        "heartbeat_interval_ms": 30,
        "tick_ms": 5,
    }


def eventually(
    what: str,
    check: Callable[[], T | None],
    timeout: float = 10.0,
    state: Callable[[], object] | None = None,
) -> T:
    """Polls `check` until it returns a value; at the deadline fails, naming `what` and what
    `state()` (when given) shows then."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            seen = f"; state: {state()!r}" if state is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{seen}")
        time.sleep(0.01)


@dataclass
class Cluster:
    servers: list[jk.Server]
    addrs: list[str]

    def leader(self) -> jk.Server:
        def one_leader() -> jk.Server | None:
            leaders = [s for s in self.servers if s.status()["is_leader"]]
            return leaders[0] if len(leaders) == 1 else None

        return eventually("one leader", one_leader)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("cluster")
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    servers = [jk.Server(node_config(i, addrs, data_dir)) for i in (1, 2, 3)]
    try:
        yield Cluster(servers, addrs)
    finally:
        for s in servers:
            s.close()


@pytest.fixture
def client(cluster: Cluster) -> Iterator[jk.Client]:
    with jk.Client(cluster.addrs, cluster_id=CLUSTER_ID, request_timeout=10) as c:
        yield c
