"""One cluster, three languages, one protocol and one data format.

A 3-node cluster runs embedded in this Python process (loopback ephemeral ports, temporary data
directories). A C program (writer.c, built by `make cross-language-test` against
include/journalkeeper.h and build/lib/libjournalkeeper.so) writes partition 1 and a KV key, a
Node script (writer.js, the built addon) writes partition 2 and a KV key, Python writes
partition 0; Python then reads everything back and checks payloads and indices against what each
writer reported, and Node reads the C-written entries back.

Run: build/venv/bin/python -m pytest tests/cross_language   (env JK_XLANG_WRITER: the C binary)
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import journalkeeper as jk
from hosts import free_ports

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
C_WRITER = Path(os.environ.get("JK_XLANG_WRITER", ROOT / "build" / "cross_language" / "writer"))
CLUSTER_ID = 7
N = 10
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[str]]:
    with tempfile.TemporaryDirectory(prefix="jk-xlang-") as data_dir:
        addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
        peers = {i + 1: a for i, a in enumerate(addrs)}
        servers = [
            jk.Server(
                node_id=node_id,
                listen=addr,
                cluster_id=CLUSTER_ID,
                data_dir=f"{data_dir}/node{node_id}",
                peers=peers,
                partitions=[0, 1, 2],
            )
            for node_id, addr in peers.items()
        ]
        try:
            yield [s.address for s in servers]
        finally:
            for s in servers:
                s.close()


def run_json(cmd: list[str]) -> Any:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT)
    assert proc.returncode == 0, f"{cmd[0]} failed ({proc.returncode}):\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_one_cluster_three_languages(cluster: list[str]) -> None:
    addrs = ",".join(cluster)
    with jk.Client(cluster, cluster_id=CLUSTER_ID) as client:
        client.sync()
        c_out = run_json([str(C_WRITER), str(CLUSTER_ID), addrs, "1", str(N), "xlang/c", "from-c"])
        node_out = run_json(
            ["node", str(HERE / "writer.js"), "write", str(CLUSTER_ID), addrs, "2", str(N), "xlang/node", "from-node"]
        )
        py_payloads = [f"py-{i}".encode() for i in range(N)]
        py_indices = [client.journal.append(0, [p], jk.ResponseConfig.REPLICATION) for p in py_payloads]

        reports = [
            (0, py_indices, py_payloads),
            (1, c_out["indices"], [p.encode() for p in c_out["payloads"]]),
            (2, node_out["indices"], [p.encode() for p in node_out["payloads"]]),
        ]
        assert c_out["partition"] == 1 and node_out["partition"] == 2
        for partition, indices, payloads in reports:
            assert len(indices) == N and indices == sorted(set(indices)), (partition, indices)
            first = indices[0]
            entries = client.journal.get(partition, first, 2 * N)
            # Exactly the reported entries, at exactly the reported indices, nothing else.
            assert [e.index for e in entries] == indices, partition
            assert [e.payload for e in entries] == payloads, partition
            assert all(e.partition == partition and e.batch_size == 1 for e in entries)
            assert client.journal.max_indices()[partition] == indices[-1] + 1

        assert client.kv.get("xlang/c") == b"from-c"
        assert client.kv.get("xlang/node") == b"from-node"
        assert dict(client.kv.list("xlang/")) == {"xlang/c": b"from-c", "xlang/node": b"from-node"}

        # Node reads what C wrote (and the Python-written partition), entry for entry.
        for partition, indices, payloads in reports[:2]:
            got = run_json(
                ["node", str(HERE / "writer.js"), "read", str(CLUSTER_ID), addrs, str(partition), str(indices[0]), str(N)]
            )
            assert [(g["partition"], g["index"], g["payload"].encode()) for g in got] == [
                (partition, i, p) for i, p in zip(indices, payloads)
            ]
