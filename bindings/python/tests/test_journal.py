"""The journal API against the embedded 3-node cluster."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

import journalkeeper as jk
from conftest import CLUSTER_ID, Cluster, eventually


def test_append_and_get_across_partitions(client: jk.Client) -> None:
    first = client.journal.append(10, [b"a0", b"a1", b"a2"])
    assert first == 0
    assert client.journal.append(11, [b"b0"]) == 0
    assert client.journal.append(10, [bytearray(b"a3")]) == 3

    got = client.journal.get(10, 0)
    assert [e.payload for e in got] == [b"a0", b"a1", b"a2", b"a3"]
    assert [e.index for e in got] == [0, 1, 2, 3]
    assert [(e.batch_size, e.offset) for e in got] == [(3, 0), (3, 1), (3, 2), (1, 0)]
    assert all(e.partition == 10 and e.term >= 1 for e in got)
    assert got[0].timestamp_ms <= got[3].timestamp_ms
    assert client.journal.get(10, 1, max=2) == got[1:3]
    assert client.journal.get(11, 0, consistency=jk.QueryConsistency.SEQUENTIAL)[0].payload == b"b0"
    assert "payload=b'a0'" in repr(got[0])

    partitions = client.journal.list_partitions()
    assert {10, 11} <= set(partitions) and partitions == sorted(partitions)
    assert client.journal.max_indices()[10] == 4
    assert client.journal.max_indices()[11] == 1
    assert client.journal.min_indices()[10] == 0


def test_response_levels(client: jk.Client) -> None:
    for level in (jk.ResponseConfig.RECEIVE, jk.ResponseConfig.PERSISTENCE, "ONE_WAY"):
        assert client.journal.append(12, [b"x"], response=level) is None
    assert client.journal.append(12, [b"y"], response=jk.ResponseConfig.ALL) is not None
    client.sync()
    # RECEIVE and PERSISTENCE are in once ALL is; ONE_WAY may still be in the client's queue.
    assert client.journal.max_indices(jk.QueryConsistency.SEQUENTIAL)[12] >= 3


def test_query_index_finds_entries_by_store_time(client: jk.Client) -> None:
    assert client.journal.query_index(13, 0) is None
    client.journal.append(13, [b"early"])
    time.sleep(0.01)
    client.journal.append(13, [b"late1", b"late2"])
    entries = client.journal.get(13, 0)
    assert client.journal.query_index(13, 0) == 0
    assert client.journal.query_index(13, entries[1].timestamp_ms) == 1
    # A batch shares one store time: the first entry of it is the answer.
    assert entries[1].timestamp_ms == entries[2].timestamp_ms
    assert client.journal.query_index(13, entries[2].timestamp_ms + 60_000) == 1


def test_reading_past_the_end_raises_index_overflow(client: jk.Client) -> None:
    client.journal.append(14, [b"only"])
    with pytest.raises(jk.IndexOverflowError) as info:
        client.journal.get(14, 1)
    assert info.value.code == "INDEX_OVERFLOW"
    assert isinstance(info.value, jk.JournalKeeperError)


def test_invalid_arguments_raise_invalid_argument_error(client: jk.Client) -> None:
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: client.journal.append(15, []), "0 entries"),
        (lambda: client.journal.get(15, 0, max=0), "max"),
        (lambda: client.journal.append(-1, [b"x"]), "partition -1"),
        (lambda: client.journal.append(70000, [b"x"]), "partition 70000"),
        (lambda: client.journal.append(15, [b"x"], response="SOMETIMES"), "SOMETIMES"),
        (lambda: client.journal.get(15, 0, consistency="EVENTUAL"), "EVENTUAL"),
        (lambda: client.journal.append(65535, [b"x"]), "65535"),  # reserved; checked by the server
        (lambda: client.journal.append(100, [b"x"]), "100"),  # not a declared partition
        (lambda: client.journal.append(15, [b"x" * (4 * 1024 * 1024 + 1)]), "entry 0"),
    ]
    for call, says in cases:
        with pytest.raises(jk.InvalidArgumentError, match=says):
            call()
    with pytest.raises(ValueError):  # InvalidArgumentError is a ValueError
        client.journal.get(15, -5)


def test_payloads_must_be_bytes(client: jk.Client) -> None:
    with pytest.raises(TypeError, match="entries\\[1\\]"):
        client.journal.append(15, [b"ok", "text"])  # type: ignore[list-item]


def test_admin_status_and_configuration(client: jk.Client, cluster: Cluster) -> None:
    leader = cluster.leader()
    config = client.admin.cluster_configuration()
    assert sorted(m["node_id"] for m in config["voters"]) == [1, 2, 3]
    assert config["leader"] is not None and config["leader"]["node_id"] == leader.node_id
    status = client.admin.status(leader.address)
    assert status["role"] == "LEADER" and status["node_id"] == leader.node_id
    assert status["commit_index"] <= status["last_index"]
    resources = status["resources"]
    assert resources is not None
    # This client's own connection is open; the other two nodes' peer links are counted.
    assert resources["client_connections"] >= 1 and resources["peer_connections"] >= 1
    assert resources["pending_requests"] >= 0 and resources["watches"] >= 0
    detail = status["detail"]
    assert detail is not None
    assert sorted(f["node_id"] for f in detail["followers"]) == sorted(
        m["node_id"] for m in config["voters"] if m["node_id"] != leader.node_id
    )
    assert all(f["match_index"] <= status["last_index"] for f in detail["followers"])
    assert all(f["lag"] == status["last_index"] - f["match_index"] for f in detail["followers"])
    assert detail["leader_last_heard_ms"] is None
    assert detail["durable_index"] >= detail["first_index"]
    assert any(p["partition"] == 0 for p in detail["partitions"])
    assert detail["disk"] is not None and detail["disk"]["total_bytes"] > 0
    with pytest.raises(jk.InvalidArgumentError):
        client.admin.status("no-port")


def follower_first(cluster: Cluster) -> list[str]:
    """The cluster's addresses, starting with a follower's."""
    leader = cluster.servers.index(cluster.leader())
    follower = (leader + 1) % len(cluster.addrs)
    return [cluster.addrs[follower]] + [a for i, a in enumerate(cluster.addrs) if i != follower]


def read_all(cluster: Cluster, partition: int) -> list[bytes]:
    """Every payload of ``partition``, read STRICT through a fresh client."""
    with jk.Client(cluster.addrs, cluster_id=CLUSTER_ID, request_timeout=10) as reader:
        out: list[bytes] = []
        while True:
            try:
                out += [e.payload for e in reader.journal.get(partition, len(out), max=4096)]
            except jk.IndexOverflowError:
                return out


def test_one_way_appends_are_all_stored_after_close(cluster: Cluster) -> None:
    want = [b"ow%d" % i for i in range(200)]
    with jk.Client(follower_first(cluster), cluster_id=CLUSTER_ID, request_timeout=10) as c:
        for payload in want:
            assert c.journal.append(50, [payload], response=jk.ResponseConfig.ONE_WAY) is None
    # Leaving the block closed the client right after the last send: close() flushed.
    assert c.closed
    assert read_all(cluster, 50) == want
    with pytest.raises(jk.ClosedError):
        c.journal.append(50, [b"late"], response="ONE_WAY")
    # flush() waits explicitly (and is bounded).
    with jk.Client(follower_first(cluster), cluster_id=CLUSTER_ID, request_timeout=10) as c:
        for payload in want:
            c.journal.append(51, [payload], response="ONE_WAY")
        c.flush(timeout=10)
        assert read_all(cluster, 51) == want


def test_one_way_appends_are_stored_when_the_client_is_garbage_collected(cluster: Cluster) -> None:
    want = [b"gc%d" % i for i in range(200)]
    c = jk.Client(follower_first(cluster), cluster_id=CLUSTER_ID, request_timeout=10)
    for payload in want:
        c.journal.append(52, [payload], response="ONE_WAY")
    del c  # no close(): the finalizer flushes in the background
    eventually("the collected client's ONE_WAY appends", lambda: read_all(cluster, 52) == want or None)


def test_async_with_exit_flushes_one_way_appends(cluster: Cluster) -> None:
    want = [b"as%d" % i for i in range(200)]

    async def main() -> None:
        c = await jk.AsyncClient.connect(follower_first(cluster), cluster_id=CLUSTER_ID)
        async with c:
            for payload in want:
                await c.journal.append(53, [payload], response="ONE_WAY")
        assert c.closed

    asyncio.run(asyncio.wait_for(main(), 30))
    assert read_all(cluster, 53) == want
