"""Observers, as a user runs them: a fresh embedded 3-node cluster per test and a 4th node
started with ``role="observer"`` and the founders as ``parents``. It holds what is written
(a NONE read on it sees the entries), its standing is ``"OBSERVER"``, the configuration lists
it among the observers; ``admin.convert_role`` makes it a voter and an observer again, also
from asyncio; wrong roles and nodes are ``InvalidArgumentError``s."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import journalkeeper as jk
from conftest import CLUSTER_ID, eventually, free_ports, node_config


class Cluster:
    """Three founding nodes and one observer pulling from them."""

    def __init__(self, tmp_path: Path) -> None:
        ports = free_ports(4)
        self.addrs = [f"127.0.0.1:{p}" for p in ports[:3]]
        self.servers = [jk.Server(node_config(i, self.addrs, tmp_path)) for i in (1, 2, 3)]
        config = node_config(4, [*self.addrs, f"127.0.0.1:{ports[3]}"], tmp_path)
        del config["peers"]  # an observer's peers name only itself (the default)
        self.observer = jk.Server(config, role="observer", parents=self.addrs)

    def client(self) -> jk.Client:
        return jk.Client(self.addrs, cluster_id=CLUSTER_ID, request_timeout=30)

    def close(self) -> None:
        for s in [self.observer, *self.servers]:
            s.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


def holds(addr: str, payloads: list[bytes]) -> bool:
    """The node at ``addr`` holds exactly ``payloads`` in partition 0, read from its own state."""
    with jk.Client(addr, cluster_id=CLUSTER_ID, request_timeout=5) as direct:
        try:
            got = direct.journal.get(0, 0, max=4096, consistency="NONE")
        except jk.JournalKeeperError:
            return False
        return [e.payload for e in got] == payloads


def roles(client: jk.Client) -> tuple[list[int], list[int]] | None:
    """(voter ids, observer ids) of a settled configuration."""
    conf = client.admin.cluster_configuration()
    if conf["joint_old_voters"] is not None:
        return None
    return (
        sorted(m["node_id"] for m in conf["voters"]),
        sorted(m["node_id"] for m in conf["observers"]),
    )


def test_an_observer_pulls_and_is_converted_to_a_voter_and_back(cluster: Cluster) -> None:
    obs = cluster.observer
    with cluster.client() as client:
        admin = client.admin
        written = [b"e%d" % i for i in range(10)]
        for p in written:
            client.journal.append(0, [p])
        assert obs.status()["standing"] == "OBSERVER"
        eventually("the observer holds every entry", lambda: holds(obs.address, written) or None)
        eventually("it is registered", lambda: roles(client) == ([1, 2, 3], [4]) or None)
        # The second step of a two-step read, on the observer: the state at an index.
        client.kv.set("obs/k", b"before")
        then = client.sync()
        client.kv.set("obs/k", b"after")
        with jk.Client(obs.address, cluster_id=CLUSTER_ID, request_timeout=10) as direct:
            assert direct.kv.get("obs/k", at_index=then) == b"before"

        admin.convert_role(4, "VOTER", timeout=30)
        assert roles(client) == ([1, 2, 3, 4], [])
        eventually("it is a member", lambda: obs.status()["standing"] == "MEMBER" or None)
        admin.convert_role(4, "voter")  # the role it has: nothing to do
        written.append(b"as-voter")
        client.journal.append(0, [b"as-voter"])
        eventually("the voter holds every entry", lambda: holds(obs.address, written) or None)

        admin.convert_role(4, "OBSERVER", timeout=30)
        assert roles(client) == ([1, 2, 3], [4])
        eventually("it observes again", lambda: obs.status()["standing"] == "OBSERVER" or None)
        written.append(b"as-observer")
        client.journal.append(0, [b"as-observer"])
        eventually("it goes on pulling", lambda: holds(obs.address, written) or None)


def test_wrong_roles_nodes_and_options_are_refused(cluster: Cluster, tmp_path: Path) -> None:
    with cluster.client() as client:
        admin = client.admin
        with pytest.raises(jk.InvalidArgumentError, match="VOTER or OBSERVER"):
            admin.convert_role(4, "LEADER")
        not_a_str: Any = 1
        with pytest.raises(TypeError):
            admin.convert_role(4, not_a_str)
        with pytest.raises(jk.InvalidArgumentError, match="neither"):
            admin.convert_role(9, "VOTER")
        with pytest.raises(jk.InvalidArgumentError, match="node_id"):
            admin.convert_role(-1, "VOTER")
    port = free_ports(1)[0]
    config = node_config(1, [f"127.0.0.1:{port}"], tmp_path / "other")
    with pytest.raises(jk.InvalidArgumentError, match="role"):
        jk.Server(config, role="leader", parents=cluster.addrs)
    with pytest.raises(jk.InvalidArgumentError, match="parents"):
        jk.Server(config, role="observer", parents=["nowhere"])
    with pytest.raises(jk.InvalidArgumentError, match="parent"):
        jk.Server(config, role="observer")


def test_convert_role_from_asyncio(cluster: Cluster) -> None:
    async def main() -> None:
        async with await jk.AsyncClient.connect(cluster.addrs, cluster_id=CLUSTER_ID) as c:
            await c.journal.append(0, [b"x"])
            eventually("it is registered", lambda: (4 in observers(cluster)) or None)
            await c.admin.convert_role(4, "VOTER", timeout=30)
            conf = await c.admin.cluster_configuration()
            assert sorted(m["node_id"] for m in conf["voters"]) == [1, 2, 3, 4]
            await c.admin.convert_role(4, "OBSERVER", timeout=30)
            conf = await c.admin.cluster_configuration()
            assert sorted(m["node_id"] for m in conf["voters"]) == [1, 2, 3]

    asyncio.run(main())


def observers(cluster: Cluster) -> list[int]:
    with cluster.client() as client:
        return [m["node_id"] for m in client.admin.cluster_configuration()["observers"]]
