"""The KV API and watches (blocking iteration) against the embedded cluster."""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest

import journalkeeper as jk
from conftest import CLUSTER_ID, Cluster


def test_set_get_exists_list_remove(client: jk.Client) -> None:
    assert client.kv.set("kv1/a", b"1") is None
    assert client.kv.set("kv1/a", b"2") == b"1"
    client.kv.set("kv1/b", bytearray(b"3"))
    client.kv.set("kv2/c", b"")
    assert client.kv.get("kv1/a") == b"2"
    assert client.kv.get("kv1/zzz") is None
    assert client.kv.exists("kv1/b") and not client.kv.exists("kv1/zzz")
    assert client.kv.get("kv2/c", consistency=jk.QueryConsistency.SEQUENTIAL) == b""
    assert client.kv.list("kv1/") == [("kv1/a", b"2"), ("kv1/b", b"3")]
    assert ("kv2/c", b"") in client.kv.list()
    assert client.kv.remove("kv1/a") == b"2"
    assert client.kv.remove("kv1/a") is None
    assert client.kv.list("kv1/") == [("kv1/b", b"3")]


def test_compare_and_set(client: jk.Client) -> None:
    assert client.kv.compare_and_set("cas/k", None, b"v1") == jk.CasResult(True, b"v1")
    r = client.kv.compare_and_set("cas/k", None, b"v2")
    assert not r.swapped and r.current == b"v1"
    assert client.kv.compare_and_set("cas/k", b"v1", b"v2").swapped
    assert client.kv.compare_and_set("cas/k", b"v2", None) == (True, None)
    assert not client.kv.exists("cas/k")


def test_kv_arguments_are_checked(client: jk.Client) -> None:
    with pytest.raises(jk.InvalidArgumentError, match="key"):
        client.kv.set("", b"x")
    with pytest.raises(jk.InvalidArgumentError, match="value"):
        client.kv.set("big", b"x" * ((1 << 20) + 1))
    with pytest.raises(jk.InvalidArgumentError, match="not both"):
        client.kv.watch(key="a", prefix="b")
    with pytest.raises(TypeError):
        client.kv.set("k", "text")  # type: ignore[arg-type]


def test_a_watch_yields_changes_in_log_order(client: jk.Client) -> None:
    with client.kv.watch(prefix="w1/") as watch:
        client.kv.set("w1/a", b"1")
        client.kv.set("other", b"ignored")
        client.kv.set("w1/a", b"2")
        client.kv.remove("w1/a")
        events = [watch.next(timeout=10) for _ in range(3)]
        assert [(e.key, e.old_value, e.new_value) for e in events] == [
            ("w1/a", None, b"1"),
            ("w1/a", b"1", b"2"),
            ("w1/a", b"2", None),
        ]
        assert events[0].index < events[1].index < events[2].index
        assert "key='w1/a'" in repr(events[0])

        # A key watch from an index replays what happened since.
        with client.kv.watch(key="w1/a", from_index=events[1].index) as replay:
            assert [replay.next(timeout=10) for _ in range(2)] == events[1:]
    assert watch.closed
    assert list(watch) == []  # a closed watch ends iteration


def test_watch_iteration_ends_when_closed_from_another_thread(client: jk.Client) -> None:
    watch = client.kv.watch(key="w2/k")
    seen: list[jk.WatchEvent] = []

    def consume() -> None:
        for event in watch:
            seen.append(event)

    t = threading.Thread(target=consume)
    t.start()
    client.kv.set("w2/k", b"x")
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    watch.close()
    t.join(10)
    assert not t.is_alive()
    assert [e.new_value for e in seen] == [b"x"]


def test_a_watch_times_out_and_stays_usable(client: jk.Client) -> None:
    with client.kv.watch(key="w3/k") as watch:
        with pytest.raises(jk.TimeoutError) as info:
            watch.next(timeout=0.05)
        assert isinstance(info.value, TimeoutError)  # the builtin
        assert info.value.code == "TIMEOUT"
        client.kv.set("w3/k", b"v")
        assert watch.next(timeout=10).new_value == b"v"


def test_blocking_calls_release_the_gil(client: jk.Client) -> None:
    watch = client.kv.watch(key="w4/never")
    t = threading.Thread(target=lambda: pytest.raises(jk.TimeoutError, watch.next, 1.0))
    t.start()
    time.sleep(0.05)  # the thread is now waiting in the core
    # Were the GIL held while waiting, this loop would stall for the rest of that second.
    longest_gap, last, end = 0.0, time.monotonic(), time.monotonic() + 0.3
    while (now := time.monotonic()) < end:
        longest_gap, last = max(longest_gap, now - last), now
    t.join()
    watch.close()
    assert longest_gap < 0.4, f"the main thread was stalled {longest_gap:.3f}s"


def test_closing_the_client_ends_watches_and_fails_calls(cluster: Cluster) -> None:
    client = jk.Client(cluster.addrs, cluster_id=CLUSTER_ID)
    watch = client.kv.watch(prefix="w5/")
    client.close()
    assert client.closed
    assert list(watch) == []
    for call in (
        lambda: client.kv.get("w5/a"),
        lambda: client.journal.append(0, [b"x"]),
        lambda: client.kv.watch(prefix="w5/"),
    ):
        with pytest.raises(jk.ClosedError) as info:
            call()
        assert info.value.kind is jk.ErrorKind.CLOSED
    client.close()  # idempotent


def test_a_blocking_wait_lets_signal_handlers_interrupt_it(client: jk.Client) -> None:
    class Interrupted(Exception):
        pass

    def handler(signum: int, frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, handler)
    watch = client.kv.watch(key="w6/k")
    guard = threading.Timer(10, watch.close)  # fail (ClosedError) rather than hang
    guard.start()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            watch.next()  # no timeout: only the signal ends it
        # The interrupted wait was cancelled cleanly: the watch still delivers.
        client.kv.set("w6/k", b"after")
        assert watch.next(timeout=10).new_value == b"after"
    finally:
        guard.cancel()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        watch.close()


def test_reads_at_an_index_see_the_state_of_then(cluster: Cluster, client: jk.Client) -> None:
    client.kv.set("at/color", b"red")
    client.kv.set("at/size", b"L")
    then = client.sync()
    client.kv.set("at/color", b"blue")
    client.kv.remove("at/size")
    assert client.kv.get("at/color", at_index=then) == b"red"
    assert client.kv.get("at/color") == b"blue"
    assert client.kv.list("at/", at_index=then) == [("at/color", b"red"), ("at/size", b"L")]
    # Any node serves it: a client of each node alone.
    for addr in cluster.addrs:
        with jk.Client([addr], cluster_id=CLUSTER_ID, request_timeout=10) as one:
            assert one.kv.get("at/size", at_index=then) == b"L"
    with pytest.raises(jk.IndexOverflowError):
        client.kv.get("at/color", at_index=then + 1_000_000)
    with pytest.raises(jk.InvalidArgumentError, match="key"):
        client.kv.get("", at_index=then)


def test_reads_at_an_index_are_awaitable(cluster: Cluster) -> None:
    async def main() -> None:
        async with await jk.AsyncClient.connect(cluster.addrs, cluster_id=CLUSTER_ID) as c:
            await c.kv.set("aat/k", b"1")
            then = await c.sync()
            await c.kv.set("aat/k", b"2")
            assert await c.kv.get("aat/k", at_index=then) == b"1"
            assert await c.kv.list("aat/", at_index=then) == [("aat/k", b"1")]
            with pytest.raises(jk.IndexOverflowError):
                await c.kv.list("aat/", at_index=then + 1_000_000)

    asyncio.run(asyncio.wait_for(main(), 30))
