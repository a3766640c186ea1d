"""The asyncio API: awaitables completed by the library's runtime, async watches,
cancellation. Each test runs its own event loop (no pytest plugin needed)."""

from __future__ import annotations

import asyncio

import pytest

import journalkeeper as jk
from conftest import CLUSTER_ID, Cluster


def test_async_journal_and_kv(cluster: Cluster) -> None:
    async def main() -> None:
        async with await jk.AsyncClient.connect(cluster.addrs, cluster_id=CLUSTER_ID) as c:
            # Concurrent appends: each batch gets its own, distinct range.
            firsts = await asyncio.gather(*(c.journal.append(20, [b"a", b"b"]) for _ in range(10)))
            assert sorted(firsts) == list(range(0, 20, 2))  # type: ignore[type-var]
            entries = await c.journal.get(20, 0, max=100)
            assert len(entries) == 20
            assert (await c.journal.max_indices())[20] == 20
            assert (await c.journal.min_indices())[20] == 0
            assert 20 in await c.journal.list_partitions()
            assert await c.journal.query_index(20, 0) == 0

            assert await c.kv.set("as/a", b"1") is None
            assert await c.kv.get("as/a") == b"1"
            assert await c.kv.exists("as/a")
            assert await c.kv.list("as/") == [("as/a", b"1")]
            assert (await c.kv.compare_and_set("as/a", b"1", b"2")).swapped
            assert await c.kv.remove("as/a") == b"2"
            assert (await c.admin.cluster_configuration())["leader"] is not None
            assert await c.sync() > 0
            with pytest.raises(jk.IndexOverflowError):
                await c.journal.get(20, 20)
            with pytest.raises(jk.InvalidArgumentError):
                await c.journal.append(20, [])
        assert c.closed
        with pytest.raises(jk.ClosedError):
            await c.kv.get("as/a")

    asyncio.run(main())


def test_async_watch_iteration_and_cancellation(cluster: Cluster) -> None:
    async def main() -> None:
        c = await jk.AsyncClient.connect(cluster.addrs, cluster_id=CLUSTER_ID)
        watch = await c.kv.watch(prefix="aw/")
        # A cancelled wait loses nothing: the next wait still gets the first event.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(watch.anext(), 0.05)
        with pytest.raises(jk.TimeoutError):
            await watch.anext(timeout=0.05)
        for i in range(3):
            await c.kv.set(f"aw/{i}", b"v%d" % i)
        got = []
        async for event in watch:
            got.append(event.key)
            if len(got) == 3:
                watch.close()
        assert got == ["aw/0", "aw/1", "aw/2"]
        c.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_the_event_loop_keeps_running_while_calls_wait(cluster: Cluster) -> None:
    async def main() -> None:
        c = await jk.AsyncClient.connect(cluster.addrs, cluster_id=CLUSTER_ID)
        watch = await c.kv.watch(key="loop/k")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        pending = asyncio.create_task(watch.anext())
        await asyncio.sleep(0.2)
        assert ticks >= 3 and not pending.done()
        await c.kv.set("loop/k", b"now")
        assert (await asyncio.wait_for(pending, 10)).new_value == b"now"
        t.cancel()
        watch.close()
        c.close()

    asyncio.run(main())


def test_a_blocking_client_and_its_aio_view_share_connections(client: jk.Client) -> None:
    async def main() -> None:
        aio = client.aio
        assert aio.client_id == client.client_id
        await aio.kv.set("share/k", b"v")
        assert aio.blocking.kv.get("share/k") == b"v"

    asyncio.run(main())
    assert client.kv.get("share/k") == b"v"
