"""The coordination recipes (``client.coord``): one test per recipe against the session's
3-node cluster, then asyncio coverage of locks and elections."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import journalkeeper as jk
from conftest import CLUSTER_ID, Cluster, eventually


def test_a_revoked_lease_takes_its_keys_and_later_calls_raise_lease_expired(
    client: jk.Client,
) -> None:
    coord = client.coord
    with pytest.raises(jk.InvalidArgumentError, match="ttl"):
        coord.grant(0.001)
    lease = coord.grant(60)
    coord.put("py-lease/k", b"v", lease)
    assert client.kv.get("py-lease/k") == b"v"
    status = coord.time_to_live(lease)
    assert status["lease"] == lease and status["ttl_ms"] == 60_000
    assert status["remaining_ms"] > 0 and status["keys"] == ["py-lease/k"]
    assert coord.keep_alive(lease)["remaining_ms"] > 0

    assert coord.revoke(lease) is True
    assert client.kv.get("py-lease/k") is None
    assert coord.revoke(lease) is False
    with pytest.raises(jk.LeaseExpiredError):
        coord.time_to_live(lease)
    with pytest.raises(jk.LeaseExpiredError):
        coord.put("py-lease/k", b"v", lease)


def test_an_unrenewed_lease_ends_while_a_kept_one_lives(client: jk.Client) -> None:
    coord = client.coord
    kept, left = coord.grant(1), coord.grant(1)
    coord.put("py-lease/kept", b"k", kept)
    coord.put("py-lease/left", b"l", left)
    with coord.keep_alive_forever(kept) as keep_alive:
        assert keep_alive.lease == kept
        eventually("the unrenewed lease's key to go", lambda: client.kv.get("py-lease/left") is None or None)
        with pytest.raises(jk.LeaseExpiredError):
            coord.keep_alive(left)
        # As old as the one that ended, the kept lease still holds its key.
        assert client.kv.get("py-lease/kept") == b"k"
        assert keep_alive.alive and keep_alive.check() > 0
    # Leaving `with` revoked it.
    assert not keep_alive.alive
    assert client.kv.get("py-lease/kept") is None


def test_lock_tokens_increase_and_a_second_contender_waits(client: jk.Client) -> None:
    coord = client.coord
    a, b, c = coord.grant(60), coord.grant(60), coord.grant(60)
    t1 = coord.lock("py-lock", a)
    start = time.monotonic()
    assert coord.try_lock("py-lock", b, wait=0.3) is None
    assert time.monotonic() - start >= 0.3

    got: list[int] = []
    second = threading.Thread(target=lambda: got.append(coord.lock("py-lock", b)))
    second.start()
    # b cannot hold the lock while a does: a third contender's wait passes first.
    assert coord.try_lock("py-lock", c, wait=0.3) is None
    assert got == []
    assert coord.unlock("py-lock", a) is True
    second.join(30)
    assert len(got) == 1 and got[0] > t1

    assert coord.unlock("py-lock", b) is True
    t3 = coord.try_lock("py-lock", a)
    assert t3 is not None and t3 > got[0]
    assert coord.unlock("py-lock", a) is True
    assert coord.unlock("py-lock", a) is False
    coord.revoke(b)
    with pytest.raises(jk.LeaseExpiredError):
        coord.lock("py-lock", b)
    coord.revoke(a)
    coord.revoke(c)


def test_an_observer_sees_each_leader_of_an_election(client: jk.Client) -> None:
    coord = client.coord
    a, b = coord.grant(60), coord.grant(60)
    with coord.observe("py-election") as observer:
        assert observer.next(timeout=30) is None
        with pytest.raises(jk.TimeoutError):
            observer.next(timeout=0.1)
        ta = coord.campaign("py-election", b"first", a)
        assert observer.next(timeout=30) == {"value": b"first", "lease": a, "token": ta}
        assert coord.leader("py-election") == {"value": b"first", "lease": a, "token": ta}

        got: list[int] = []
        second = threading.Thread(target=lambda: got.append(coord.campaign("py-election", b"second", b)))
        second.start()
        with pytest.raises(jk.TimeoutError):
            observer.next(timeout=0.3)  # b does not lead while a does
        assert got == []
        assert coord.resign("py-election", a) is True
        second.join(30)
        assert len(got) == 1 and got[0] > ta
        assert observer.next(timeout=30) == {"value": b"second", "lease": b, "token": got[0]}

        coord.resign("py-election", b)
        assert observer.next(timeout=30) is None
        assert coord.leader("py-election") is None
    assert observer.closed
    assert list(observer) == []  # a closed observer ends iteration
    coord.revoke(a)
    coord.revoke(b)


def test_id_ranges_follow_each_other_without_overlap(client: jk.Client) -> None:
    coord = client.coord
    with pytest.raises(jk.InvalidArgumentError, match="count"):
        coord.next_ids("py-ids", 0)
    first = coord.next_id("py-ids")
    assert first == 1
    block = coord.next_ids("py-ids", 10)
    assert block == range(first + 1, first + 11)
    assert coord.next_id("py-ids") == block.stop
    assert coord.next_id("py-other-ids") == 1


def test_registered_members_are_listed_and_watched(client: jk.Client) -> None:
    coord = client.coord
    with pytest.raises(jk.InvalidArgumentError, match="'/'"):
        coord.register("py/g", "m1")
    with coord.watch_members("py-g") as watch:
        with coord.register("py-g", "m1", b"info1", ttl=2) as r1:
            r2 = coord.register("py-g", "m2", b"info2", ttl=2)
            assert r1.lease != r2.lease
            assert coord.members("py-g") == [
                {"member": "m1", "info": b"info1", "lease": r1.lease},
                {"member": "m2", "info": b"info2", "lease": r2.lease},
            ]
            assert watch.next(timeout=30) == {"joined": True, "member": "m1", "info": b"info1", "lease": r1.lease}
            assert watch.next(timeout=30)["member"] == "m2"
        # Leaving `with` closed r1: m1 left at once.
        assert watch.next(timeout=30) == {"joined": False, "member": "m1", "info": b"", "lease": 0}
        assert [m["member"] for m in coord.members("py-g")] == ["m2"]
        assert coord.unregister("py-g", "m2", r2.lease) is True
        assert watch.next(timeout=30)["joined"] is False
        r2.release()
    assert coord.members("py-g") == []


def test_async_lock_and_campaign(cluster: Cluster) -> None:
    async def main() -> None:
        async with await jk.AsyncClient.connect(cluster.addrs, cluster_id=CLUSTER_ID) as c:
            coord = c.coord
            a, b = await coord.grant(60), await coord.grant(60)
            t1 = await coord.lock("py-alock", a)
            waiting = asyncio.create_task(coord.lock("py-alock", b))
            assert await coord.try_lock("py-alock", await coord.grant(60), wait=0.2) is None
            assert not waiting.done()
            assert await coord.unlock("py-alock", a)
            t2 = await asyncio.wait_for(waiting, 30)
            assert t2 > t1
            assert await coord.unlock("py-alock", b)

            observer = await coord.observe("py-aelection")
            async with observer:
                assert await observer.anext(timeout=30) is None
                ta = await coord.campaign("py-aelection", b"a", a)
                seen = await observer.anext(timeout=30)
                assert seen == {"value": b"a", "lease": a, "token": ta}
                assert await coord.leader("py-aelection") == seen
                assert await coord.resign("py-aelection", a)
                async for leader in observer:
                    assert leader is None
                    break
            ids = await coord.next_ids("py-aids", 3)
            assert list(ids) == [1, 2, 3] and await coord.next_id("py-aids") == 4
            async with await coord.register("py-ag", "m", b"i", ttl=2) as reg:
                assert [m["lease"] for m in await coord.members("py-ag")] == [reg.lease]
            assert await coord.members("py-ag") == []
            async with await coord.keep_alive_forever(b) as keep_alive:
                assert keep_alive.check() > 0
            with pytest.raises(jk.LeaseExpiredError):
                await coord.time_to_live(b)

    asyncio.run(asyncio.wait_for(main(), 60))
