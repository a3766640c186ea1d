"""Python side of `make bench-bindings`: one caller doing sequential batch appends (REPLICATION)
for a fixed time against a running cluster; prints one JSON object.

  python bench_append.py <cluster_id> <addr,addr,...> <partition> <batch> <size> <seconds>
"""

from __future__ import annotations

import json
import sys
import time

import journalkeeper as jk


def main() -> None:
    cluster_id, addrs, partition, batch, size, seconds = sys.argv[1:7]
    n, nbytes, budget = int(batch), int(size), float(seconds)
    with jk.Client(addrs.split(","), cluster_id=int(cluster_id)) as client:
        client.sync()
        calls = 0
        seq = 0
        start = time.monotonic()
        deadline = start + budget
        while time.monotonic() < deadline:
            entries = []
            for _ in range(n):
                entries.append(seq.to_bytes(8, "little") + b"\x5a" * (nbytes - 8))
                seq += 1
            client.journal.append(int(partition), entries, jk.ResponseConfig.REPLICATION)
            calls += 1
        elapsed = time.monotonic() - start
    print(json.dumps({"lang": "python", "batch": n, "payload_bytes": nbytes, "calls": calls,
                      "records": calls * n, "seconds": round(elapsed, 2),
                      "records_per_s": round(calls * n / elapsed)}))


if __name__ == "__main__":
    main()
