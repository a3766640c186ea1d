"""Cluster events and snapshot administration, as a user does them: a fresh embedded 3-node
cluster per test; events from a client and from an embedded server name the new leader after a
transfer, iterate blocking and async, and end when closed (or their client / server is);
a snapshot is taken, listed on every node and recovered."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import journalkeeper as jk
from conftest import CLUSTER_ID, Cluster, eventually, free_ports, node_config

#: The bound of every wait on an event.
WAIT = 30.0


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Cluster]:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    servers = [jk.Server(node_config(i, addrs, tmp_path)) for i in (1, 2, 3)]
    try:
        yield Cluster(servers, addrs)
    finally:
        for s in servers:
            s.close()


def settled(cluster: Cluster) -> jk.Server:
    """The leader, once every node knows it (so a stream's first event names it)."""
    leader = cluster.leader()
    eventually(
        "every node knows the leader",
        lambda: all(s.status()["leader"] == leader.node_id for s in cluster.servers) or None,
    )
    return leader


def connect(cluster: Cluster) -> jk.Client:
    return jk.Client(cluster.addrs, cluster_id=CLUSTER_ID, request_timeout=30)


def until_leader(events: jk.Events, node_id: int) -> jk.LeaderChanged:
    """Reads events until a ``LeaderChanged`` names ``node_id``, at most ``WAIT`` seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no LeaderChanged naming node {node_id} within {WAIT}s")
        event = events.next(timeout=left)
        if isinstance(event, jk.LeaderChanged) and event.leader is not None:
            if event.leader["node_id"] == node_id:
                return event


def other_voter(cluster: Cluster) -> jk.Server:
    leader = cluster.leader()
    return next(s for s in cluster.servers if s is not leader)


def test_client_events_start_with_the_state_and_name_the_new_leader(fresh: Cluster) -> None:
    leader = settled(fresh)
    with connect(fresh) as client, client.events() as events:
        # The whole current state first: leader, voters, the node's role, each partition.
        state = [events.next(timeout=WAIT) for _ in range(3)]
        first, voters, role = state
        assert isinstance(first, jk.LeaderChanged) and first.term > 0
        assert first.leader is not None and first.leader["node_id"] == leader.node_id
        assert first.leader["addr"] == leader.address
        assert isinstance(voters, jk.VotersChanged)
        assert sorted(m["node_id"] for m in voters.configuration["voters"]) == [1, 2, 3]
        assert voters.configuration["leader"] is None
        assert isinstance(role, jk.RoleChanged) and role.role in jk._native.vocabulary()["roles"]
        journal = events.next(timeout=WAIT)
        assert isinstance(journal, jk.JournalChanged)
        assert (journal.partition, journal.min_index) == (0, 0)

        target = other_voter(fresh)
        client.admin.transfer_leader(target.node_id, timeout=30)
        event = until_leader(events, target.node_id)
        assert event.term > first.term
        assert event == jk.LeaderChanged(
            {"node_id": target.node_id, "addr": target.address}, event.term
        )
        assert repr(events) == "Events(closed=False)"
    assert events.closed
    with pytest.raises(jk.ClosedError):
        events.next()
    assert list(events) == []


def test_server_events_name_the_new_leader_and_end_when_it_stops(fresh: Cluster) -> None:
    settled(fresh)
    server = other_voter(fresh)
    events = server.events()
    first = events.next(timeout=WAIT)
    assert isinstance(first, jk.LeaderChanged) and first.leader is not None
    with connect(fresh) as client:
        client.admin.transfer_leader(server.node_id, timeout=30)
    until_leader(events, server.node_id)
    deadline = time.monotonic() + WAIT
    saw_leader_role = False
    while not saw_leader_role:
        e = events.next(timeout=max(deadline - time.monotonic(), 0.001))
        saw_leader_role = isinstance(e, jk.RoleChanged) and e.role == "LEADER"
        if saw_leader_role:
            assert e == jk.RoleChanged(server.node_id, "LEADER")

    # Iteration (blocking, in another thread) ends once the server stops.
    drained: list[jk.ClusterEvent] = []
    reader = threading.Thread(target=lambda: drained.extend(events))
    reader.start()
    server.close()
    reader.join(WAIT)
    assert not reader.is_alive(), "iteration did not end when the server stopped"
    assert events.closed
    with pytest.raises(jk.ClosedError, match="stopped|closed"):
        events.next(timeout=1)
    with pytest.raises(jk.ClosedError):
        server.events()


def test_events_iterate_async_and_close_ends_iteration(fresh: Cluster) -> None:
    settled(fresh)
    target = other_voter(fresh)

    async def main() -> None:
        async with await jk.AsyncClient.connect(fresh.addrs, cluster_id=CLUSTER_ID) as c:
            events = await c.events()
            got: list[jk.ClusterEvent] = []
            new_leader = asyncio.Event()

            async def read() -> None:
                async for event in events:
                    got.append(event)
                    if isinstance(event, jk.LeaderChanged) and event.leader is not None:
                        if event.leader["node_id"] == target.node_id:
                            new_leader.set()

            reader = asyncio.create_task(read())
            await c.admin.transfer_leader(target.node_id, timeout=30)
            await asyncio.wait_for(new_leader.wait(), WAIT)
            # close() ends the pending iteration; nothing more is read.
            events.close()
            await asyncio.wait_for(reader, WAIT)
            assert isinstance(got[0], jk.LeaderChanged)
            assert events.closed
            assert [e async for e in events] == []

            # A timeout leaves the stream usable; async with closes it.
            async with await c.events() as more:
                assert isinstance(await more.anext(timeout=WAIT), jk.LeaderChanged)
                with pytest.raises(jk.TimeoutError):
                    for _ in range(1000):
                        await more.anext(timeout=0.05)
                assert not more.closed
            assert more.closed

            # Closing the client ends an iteration waiting on its events.
            last = await c.events()
            pending = asyncio.create_task(last.__anext__())
            await c.aclose()
            with pytest.raises(StopAsyncIteration):
                while True:
                    await asyncio.wait_for(pending, WAIT)
                    pending = asyncio.create_task(last.__anext__())

    asyncio.run(asyncio.wait_for(main(), 120))


def test_closing_the_client_ends_blocking_iteration(fresh: Cluster) -> None:
    client = connect(fresh)
    events = client.events()
    seen: list[jk.ClusterEvent] = []
    reader = threading.Thread(target=lambda: seen.extend(events))
    reader.start()
    eventually("the state's first event", lambda: seen or None, WAIT)
    client.close()
    reader.join(WAIT)
    assert not reader.is_alive(), "iteration did not end when the client closed"
    assert isinstance(seen[0], jk.LeaderChanged) and events.closed


def test_a_snapshot_is_taken_listed_everywhere_and_recovered(fresh: Cluster) -> None:
    with connect(fresh) as client:
        admin = client.admin
        client.kv.set("snap/k", b"1")
        index = admin.take_snapshot(timeout=30)
        assert isinstance(index, int) and index > 0

        def listed_everywhere() -> list[jk.NodeSnapshots] | None:
            nodes = admin.snapshots()
            ok = len(nodes) == 3 and all(
                n["error"] is None and index in [s["index"] for s in n["snapshots"]]
                for n in nodes
            )
            return nodes if ok else None

        nodes = eventually("every node lists the snapshot", listed_everywhere, WAIT)
        assert [(n["node_id"], n["addr"]) for n in nodes] == [
            (s.node_id, s.address) for s in fresh.servers
        ]
        snap = next(s for s in nodes[0]["snapshots"] if s["index"] == index)
        assert snap["term"] > 0 and snap["size_bytes"] > 0
        assert abs(snap["time_ms"] / 1000 - time.time()) < 600

        client.kv.set("snap/k", b"2")
        assert client.kv.get("snap/k") == b"2"
        admin.recover_snapshot(index, timeout=30)
        assert client.kv.get("snap/k") == b"1"

        # A snapshot no node retains: InvalidArgumentError (a ValueError) naming it.
        with pytest.raises(jk.InvalidArgumentError, match=f"snapshot {index + 1000}") as info:
            admin.recover_snapshot(index + 1000)
        assert isinstance(info.value, ValueError) and info.value.code == "INVALID_ARGUMENT"
        assert client.kv.get("snap/k") == b"1"
        for bad in (-1, 1 << 64):
            with pytest.raises(jk.InvalidArgumentError, match="index"):
                admin.recover_snapshot(bad)
        for timeout in (jk.MAX_ADMIN_TIMEOUT + 1, -1.0, float("nan")):
            with pytest.raises(jk.InvalidArgumentError, match="timeout"):
                admin.take_snapshot(timeout=timeout)
            with pytest.raises(jk.InvalidArgumentError, match="timeout"):
                admin.recover_snapshot(index, timeout=timeout)
        with pytest.raises(TypeError):
            admin.recover_snapshot("1")  # type: ignore[arg-type]


def test_a_stopped_node_is_listed_with_its_error(fresh: Cluster) -> None:
    stopped = other_voter(fresh)
    stopped.close()
    # A short request timeout: asking the stopped node fails after it.
    with jk.Client(fresh.addrs, cluster_id=CLUSTER_ID, request_timeout=2) as client:
        nodes = {n["node_id"]: n for n in client.admin.snapshots()}
        assert sorted(nodes) == [1, 2, 3]
        err = nodes[stopped.node_id]["error"]
        assert isinstance(err, jk.JournalKeeperError) and nodes[stopped.node_id]["snapshots"] == []
        assert all(n["error"] is None for i, n in nodes.items() if i != stopped.node_id)


def test_async_snapshots(fresh: Cluster) -> None:
    async def main() -> None:
        async with await jk.AsyncClient.connect(fresh.addrs, cluster_id=CLUSTER_ID) as c:
            await c.kv.set("asnap/k", b"1")
            index = await c.admin.take_snapshot()
            nodes = await c.admin.snapshots()
            holding = [n for n in nodes if index in [s["index"] for s in n["snapshots"]]]
            assert len(holding) >= 2  # a majority, when take_snapshot returns
            await c.kv.set("asnap/k", b"2")
            await c.admin.recover_snapshot(index)
            assert await c.kv.get("asnap/k") == b"1"
            with pytest.raises(jk.InvalidArgumentError, match="retained"):
                await c.admin.recover_snapshot(index + 1000, timeout=10)

    asyncio.run(asyncio.wait_for(main(), 120))
