"""`make bench-bindings` (a benchmark, not a test): one 3-node cluster embedded in this process
(loopback, temporary directories, partition 0), then — sequentially, same duration each — a
single caller doing batch appends (64 x 1 KiB per call, REPLICATION) from the Rust client
(`journalkeeper bench cluster --servers ... --batch 64`), from Python and from Node, each in its
own process. Prints one JSON object with records/s per language and python/rust, node/rust.

  python bench_bindings.py <journalkeeper binary> [seconds=5]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import journalkeeper as jk
from hosts import free_ports

HERE = Path(__file__).resolve().parent
CLUSTER_ID = 9
BATCH, SIZE, PARTITION = 64, 1024, 0


def run(cmd: list[str], seconds: float) -> Any:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    cli = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    with tempfile.TemporaryDirectory(prefix="jk-bench-bindings-") as data_dir:
        addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
        peers = {i + 1: a for i, a in enumerate(addrs)}
        servers = [
            jk.Server(node_id=i, listen=a, cluster_id=CLUSTER_ID, data_dir=f"{data_dir}/node{i}",
                      peers=peers, partitions=[PARTITION], election_timeout_ms=1000,
                      heartbeat_interval_ms=100, tick_ms=10)
            for i, a in peers.items()
        ]
        try:
            with jk.Client(addrs, cluster_id=CLUSTER_ID) as c:
                c.sync()
            joined = ",".join(addrs)
            args = [str(CLUSTER_ID), joined, str(PARTITION), str(BATCH), str(SIZE), str(seconds)]
            rust = run([cli, "bench", "cluster", "--servers", joined, "--cluster-id", str(CLUSTER_ID),
                        "--clients", "1", "--sizes", str(SIZE), "--batch", str(BATCH),
                        "--seconds", str(seconds)], seconds)
            python = run([sys.executable, str(HERE / "bench_append.py"), *args], seconds)
            node = run(["node", str(HERE / "bench_append.js"), *args], seconds)
        finally:
            for s in servers:
                s.close()
    r, p, n = rust["records_per_s"], python["records_per_s"], node["records_per_s"]
    print(json.dumps({
        "bench": "bindings.append_batch",
        "ack": "REPLICATION",
        "batch": BATCH,
        "payload_bytes": SIZE,
        "seconds_each": seconds,
        "records_per_s": {"rust": r, "python": p, "node": n},
        "ratio_python_rust": round(p / r, 3),
        "ratio_node_rust": round(n / r, 3),
        "target_ratio": 0.7,
        "rust_errors": rust.get("errors"),
    }))


if __name__ == "__main__":
    main()
