"""`make bench-machines` (a benchmark, not a test): updates/s of the same trivial counter state
machine written in Rust, C, Python and Node. For each language in turn, in one run: a host
process of that language starts a 3-node embedded cluster from the same TOML files (loopback,
a fresh temporary directory, the same timeouts; every node fsyncs as always) hosting its
counter as "counter" — `journalkeeper bench sm-host`, sm_host.c, sm_host.py, sm_host.js — and
the same driver (`journalkeeper bench sm`, release build) runs concurrent `add 1` updates
acknowledged at REPLICATION for the same time. Each language runs in two layouts: all three
nodes in one host process ("one_process": the machines of three nodes share that process — for
Node its one JS thread, for Python its GIL) and one host process per node ("process_per_node":
how a service embeds its node). Prints one JSON object per language and layout, then one per
layout with each language's updates/s as a ratio of Rust's and its p99.

  python bench_machines.py <journalkeeper binary> <sm_host (C) binary> [seconds=5] [clients=32]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hosts import Host, node_tomls

HERE = Path(__file__).resolve().parent
CLUSTER_ID = 13
TARGETS = {"c": 0.9, "python": 0.5, "node": 0.5}


def measure(
    cli: str, host_cmd: list[str], label: str, seconds: float, clients: int, per_node: bool
) -> Any:
    with tempfile.TemporaryDirectory(prefix=f"jk-bench-sm-{label}-") as root:
        addrs, tomls = node_tomls(Path(root), CLUSTER_ID)
        groups = [[t] for t in tomls] if per_node else [tomls]
        hosts = [Host([*host_cmd, *map(str, g)]) for g in groups]
        try:
            # Every host is started before any is waited for: a lone node knows no leader.
            for host in hosts:
                host.wait_ready(120)
            out = subprocess.run(
                [cli, "bench", "sm", "--servers", ",".join(addrs), "--cluster-id", str(CLUSTER_ID),
                 "--name", "counter", "--clients", str(clients), "--seconds", str(seconds),
                 "--label", label],
                capture_output=True, text=True, timeout=seconds + 120,
            )
            if out.returncode != 0:
                raise RuntimeError(f"bench sm against the {label} host failed:\n{out.stderr}")
            line = json.loads(out.stdout.strip().splitlines()[-1])
            line["layout"] = "process_per_node" if per_node else "one_process"
            for host in hosts:
                if host.stop() != 0:
                    raise RuntimeError(f"the {label} host failed:\n{host.stderr_text()}")
            return line
        finally:
            for host in hosts:
                host.stop(timeout_s=10)


def main() -> None:
    cli, c_host = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    clients = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    hosts = {
        "rust": [cli, "bench", "sm-host"],
        "c": [c_host, "counter"],
        "python": [sys.executable, str(HERE / "sm_host.py")],
        "node": ["node", str(HERE / "sm_host.js")],
    }
    for per_node in (False, True):
        report(cli, hosts, seconds, clients, per_node)


def report(cli: str, hosts: dict[str, list[str]], seconds: float, clients: int, per_node: bool) -> None:
    lines = {}
    for lang, cmd in hosts.items():
        lines[lang] = measure(cli, cmd, lang, seconds, clients, per_node)
        print(json.dumps(lines[lang]), flush=True)
    rust = lines["rust"]["updates_per_s"]
    print(json.dumps({
        "bench": "sm.update.languages",
        "layout": "process_per_node" if per_node else "one_process",
        "machine": "counter",
        "ack": "REPLICATION",
        "clients": clients,
        "seconds_each": seconds,
        "updates_per_s": {k: v["updates_per_s"] for k, v in lines.items()},
        "p50_ms": {k: v["p50_ms"] for k, v in lines.items()},
        "p99_ms": {k: v["p99_ms"] for k, v in lines.items()},
        "ratio_vs_rust": {k: round(v["updates_per_s"] / rust, 3) for k, v in lines.items() if k != "rust"},
        "target_ratio": TARGETS,
        "errors": {k: v["errors"] for k, v in lines.items()},
    }))


if __name__ == "__main__":
    main()
