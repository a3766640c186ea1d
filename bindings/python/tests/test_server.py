"""Embedded nodes: start from a dict, TOML text or a TOML file; status; close; errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import journalkeeper as jk
from conftest import CLUSTER_ID, Cluster, eventually, free_ports


def one_node_toml(data_dir: Path, extra: str = "") -> str:
    port = free_ports(1)[0]
    return f"""
        node_id = 1
        listen = "127.0.0.1:{port}"
        cluster_id = {CLUSTER_ID}
        data_dir = "{data_dir}"
        election_timeout_ms = 300
        heartbeat_interval_ms = 30
        tick_ms = 5
        partitions = [0, 5]
        {extra}
        [peers]
        1 = "127.0.0.1:{port}"
    """


def test_the_three_node_cluster_elects_exactly_one_leader(cluster: Cluster) -> None:
    leader = cluster.leader()
    statuses = [s.status() for s in cluster.servers]
    assert sorted(s["node_id"] for s in statuses) == [1, 2, 3]
    assert all(s["voters"] == [1, 2, 3] for s in statuses)
    assert all(not s["failed"] for s in statuses)
    eventually(
        "every node follows the leader",
        lambda: all(s.status()["leader"] == leader.node_id for s in cluster.servers) or None,
    )
    assert [s.address for s in cluster.servers] == cluster.addrs


def test_a_server_starts_from_toml_text_serves_and_closes(tmp_path: Path) -> None:
    with jk.Server.from_toml(one_node_toml(tmp_path / "n1")) as server:
        assert server.node_id == 1
        eventually("leadership", lambda: server.status()["is_leader"] or None)
        with jk.Client(server.address, cluster_id=CLUSTER_ID) as client:
            assert client.journal.append(0, [b"x"]) == 0
    assert server.closed
    with pytest.raises(jk.ClosedError):
        server.status()
    server.close()  # idempotent


def test_a_server_starts_from_a_toml_file_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(one_node_toml(tmp_path / "n1"))
    with jk.Server.from_toml_file(path) as server:
        with jk.Client([server.address], cluster_id=CLUSTER_ID) as client:
            client.journal.append(5, [b"a", b"b"])
    with jk.Server.from_toml_file(str(path)) as server:  # restart from disk
        with jk.Client([server.address], cluster_id=CLUSTER_ID) as client:
            got = client.journal.get(5, 0)
            assert [e.payload for e in got] == [b"a", b"b"]


def test_bad_configurations_raise_invalid_argument_naming_the_field(tmp_path: Path) -> None:
    base = {
        "node_id": 1,
        "listen": f"127.0.0.1:{free_ports(1)[0]}",
        "cluster_id": CLUSTER_ID,
        "data_dir": str(tmp_path),
    }
    cases = [
        ({**base, "node_id": 0}, "node_id"),
        ({**base, "cluster_id": 0}, "cluster_id"),
        ({**base, "bogus": 1}, "bogus"),
        ({k: v for k, v in base.items() if k != "data_dir"}, "data_dir"),
        ({**base, "listen": "nowhere"}, "listen"),
        ({**base, "peers": {2: "127.0.0.1:1"}}, "peers"),
        ({**base, "node_id": -1}, "node_id"),
        ({**base, "partitions": [65535]}, "partitions"),
        ({**base, "partitions": [-1]}, "partitions"),
    ]
    for config, field in cases:
        with pytest.raises(jk.InvalidArgumentError, match=field) as info:
            jk.Server(config)
        assert isinstance(info.value, ValueError)
        assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(jk.InvalidArgumentError, match="TOML"):
        jk.Server.from_toml("node_id = ")


def test_a_missing_toml_file_raises_io_error(tmp_path: Path) -> None:
    with pytest.raises(jk.IoError) as info:
        jk.Server.from_toml_file(tmp_path / "missing.toml")
    assert isinstance(info.value, OSError)
    assert info.value.kind is jk.ErrorKind.IO
    assert "missing.toml" in str(info.value)


def test_kwargs_and_a_dict_combine(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    config = {"node_id": 7, "listen": f"127.0.0.1:{port}", "cluster_id": CLUSTER_ID}
    server = jk.Server(config, data_dir=tmp_path, peers={7: f"127.0.0.1:{port}"}, tick_ms=5)
    try:
        assert server.node_id == 7 and server.address == f"127.0.0.1:{port}"
        assert "node_id=7" in repr(server)
    finally:
        server.close()


def test_a_watch_from_before_the_retained_history_raises_index_underflow(tmp_path: Path) -> None:
    # After a restart from a snapshot, the KV's change history starts at the snapshot.
    path = tmp_path / "node.toml"
    extra = "snapshot_interval = 16\n snapshot_retained_entries = 0"
    path.write_text(one_node_toml(tmp_path / "n1", extra))
    with jk.Server.from_toml_file(path) as server:
        with jk.Client(server.address, cluster_id=CLUSTER_ID) as client:
            for i in range(40):
                client.kv.set(f"h/{i}", b"%d" % i)
    with jk.Server.from_toml_file(path) as server:
        with jk.Client(server.address, cluster_id=CLUSTER_ID) as client:
            assert client.kv.get("h/39") == b"39"
            with pytest.raises(jk.IndexUnderflowError) as info:
                client.kv.watch(prefix="h/", from_index=1)
            assert info.value.code == "INDEX_UNDERFLOW"


def test_calls_to_a_stopped_cluster_fail_within_the_request_timeout(tmp_path: Path) -> None:
    server = jk.Server.from_toml(one_node_toml(tmp_path / "n1"))
    with jk.Client(server.address, cluster_id=CLUSTER_ID, request_timeout=1.0) as client:
        client.kv.set("k", b"v")
        server.close()
        with pytest.raises((jk.UnavailableError, jk.TimeoutError)) as info:
            client.kv.get("k")
        assert info.value.code in ("UNAVAILABLE", "TIMEOUT")


def test_scale_partitions_replaces_the_declared_set(tmp_path: Path) -> None:
    with jk.Server.from_toml(one_node_toml(tmp_path / "n1")) as server:
        with jk.Client(server.address, cluster_id=CLUSTER_ID) as client:
            assert client.journal.list_partitions() == [0, 5]
            client.journal.scale_partitions([3, 4])
            assert client.journal.list_partitions() == [3, 4]
            assert client.journal.append(3, [b"x"]) == 0
            with pytest.raises(jk.InvalidArgumentError):
                client.journal.append(0, [b"x"])
            with pytest.raises(jk.InvalidArgumentError, match="partition count 0"):
                client.journal.scale_partitions([])


def test_a_removed_partition_with_entries_cannot_be_added_back(tmp_path: Path) -> None:
    with jk.Server.from_toml(one_node_toml(tmp_path / "n1")) as server:
        with jk.Client(server.address, cluster_id=CLUSTER_ID) as client:
            assert client.journal.append(5, [b"old"]) == 0
            client.journal.scale_partitions([0])
            with pytest.raises(jk.InvalidArgumentError, match="partition\\(s\\) 5 were removed"):
                client.journal.scale_partitions([0, 5])
            assert client.journal.list_partitions() == [0]
            client.journal.scale_partitions([0, 6])  # a new id is fine
            assert client.journal.list_partitions() == [0, 6]
