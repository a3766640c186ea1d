"""Reprs look like Python: constructor-like, Python literals (quotes, True/False, bytes), no
Rust debug output."""

from __future__ import annotations

import asyncio
import re

import journalkeeper as jk
from conftest import CLUSTER_ID, Cluster


def test_client_and_server_reprs(cluster: Cluster) -> None:
    with jk.Client(cluster.addrs[:1], cluster_id=CLUSTER_ID) as client:
        assert repr(client) == f"Client(servers=[{cluster.addrs[0]!r}], closed=False)"
    assert repr(client) == f"Client(servers=[{cluster.addrs[0]!r}], closed=True)"
    server = cluster.servers[0]
    assert repr(server) == (
        f"Server(node_id={server.node_id}, address={server.address!r}, closed=False)"
    )


def test_async_client_repr(cluster: Cluster) -> None:
    async def run() -> str:
        client = await jk.AsyncClient.connect(cluster.addrs[:1], cluster_id=CLUSTER_ID)
        try:
            return repr(client)
        finally:
            client.close()

    assert asyncio.run(run()) == f"AsyncClient(servers=[{cluster.addrs[0]!r}], closed=False)"


def test_record_reprs(client: jk.Client) -> None:
    first = client.journal.append(18, [b"it's"])
    assert first is not None
    [entry] = client.journal.get(18, first)
    assert re.fullmatch(
        rf"JournalEntry\(partition=18, index={first}, batch_size=1, offset=0, term=\d+, "
        r"timestamp_ms=\d+, payload=b\"it's\"\)",
        repr(entry),
    ), repr(entry)
    with client.kv.watch(key="repr/k") as watch:
        assert repr(watch).startswith("Watch(next_index=") and repr(watch).endswith("closed=False)")
        client.kv.set("repr/k", b"1")
        event = watch.next(timeout=10)
        assert re.fullmatch(
            r"WatchEvent\(index=\d+, key='repr/k', old_value=None, new_value=b'1'\)", repr(event)
        ), repr(event)
    assert repr(client.kv.compare_and_set("repr/k", b"1", b"2")) == (
        "CasResult(swapped=True, current=b'2')"
    )
    for r in (repr(client), repr(entry), repr(event)):
        assert "Some(" not in r and "true" not in r and '"' not in r.replace('b"it\'s"', "")
