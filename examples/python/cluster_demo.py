"""A 3-node JournalKeeper cluster inside this Python process: write, read, watch, close.

Run: python examples/python/cluster_demo.py   (after `pip install ./bindings/python`)
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time

import journalkeeper as jk

CLUSTER_ID = 42


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_cluster(data_dir: str) -> list[jk.Server]:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    peers = {i + 1: a for i, a in enumerate(addrs)}
    return [
        jk.Server(
            node_id=node_id,
            listen=addr,
            cluster_id=CLUSTER_ID,
            data_dir=f"{data_dir}/node{node_id}",
            peers=peers,
            partitions=[0, 1],
            election_timeout_ms=300,
            heartbeat_interval_ms=30,
            tick_ms=5,
        )
        for node_id, addr in peers.items()
    ]


async def async_part(addrs: list[str]) -> None:
    async with await jk.AsyncClient.connect(addrs, cluster_id=CLUSTER_ID) as client:
        firsts = await asyncio.gather(*(client.journal.append(1, [b"async"]) for _ in range(5)))
        print(f"5 concurrent async appends to partition 1 got indices {sorted(firsts)}")  # type: ignore[type-var]
        watch = await client.kv.watch(prefix="jobs/")
        await client.kv.set("jobs/42", b"queued")
        event = await watch.anext(timeout=10)
        print(f"async watch: {event.key} -> {event.new_value!r}")
        watch.close()


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as data_dir:
        servers = start_cluster(data_dir)
        addrs = [s.address for s in servers]
        print(f"started nodes {[s.node_id for s in servers]} at {addrs}")
        try:
            with jk.Client(addrs, cluster_id=CLUSTER_ID) as client:
                first = client.journal.append(0, [b"hello", b"journal"])
                print(f"appended 2 entries to partition 0 from index {first}")
                for entry in client.journal.get(0, 0):
                    print(f"  [{entry.partition}:{entry.index}] {entry.payload!r} term {entry.term}")
                print(f"max indices: {client.journal.max_indices()}")

                with client.kv.watch(prefix="config/") as watch:
                    client.kv.set("config/color", b"blue")
                    swapped = client.kv.compare_and_set("config/color", b"blue", b"green")
                    print(f"compare_and_set blue -> green: {swapped}")
                    for _ in range(2):
                        e = watch.next(timeout=10)
                        print(f"watch: {e.key} {e.old_value!r} -> {e.new_value!r} @ {e.index}")

                leader = client.admin.cluster_configuration()["leader"]
                print(f"leader: {leader}")
                try:
                    client.journal.get(0, 1000)
                except jk.IndexOverflowError as e:
                    print(f"reading past the end raises {type(e).__name__} ({e.code})")

            asyncio.run(async_part(addrs))
        finally:
            for s in servers:
                s.close()
    print(f"closed the cluster; done in {time.monotonic() - started:.2f}s")


if __name__ == "__main__":
    main()
