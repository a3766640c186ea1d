"""Fork safety: a forked child gets its own runtime; objects from the parent fail cleanly."""

from __future__ import annotations

import faulthandler
import gc
import os
import shutil
import subprocess
import time

import journalkeeper as jk
from conftest import CLUSTER_ID, Cluster

CHILD_DEADLINE_S = 30


def native_stacks(pid: int) -> str:
    """Every thread's native stack in process `pid`, when gdb is installed (else nothing)."""
    if shutil.which("gdb") is None:
        return ""
    out = subprocess.run(
        ["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return "\nnative stacks of the child:\n" + out.stdout[-30000:]


def run_in_child(body: object) -> tuple[int, str]:
    """Forks; the child runs `body()` (returning a report string) and exits 0, or exits 1 with
    the exception. The parent waits at most CHILD_DEADLINE_S, then kills the child."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        # A hang shows where the child's Python code waits (on the test's stderr).
        faulthandler.dump_traceback_later(CHILD_DEADLINE_S - 5, exit=False)
        code, report = 0, ""
        try:
            report = body()  # type: ignore[operator]
        except BaseException as e:  # noqa: BLE001 - report everything to the parent
            code, report = 1, f"{type(e).__name__}: {e}"
        os.write(write_end, report.encode())
        os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + CHILD_DEADLINE_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            stacks = native_stacks(pid)
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError(f"the forked child hung for {CHILD_DEADLINE_S}s{stacks}")
        time.sleep(0.02)
    with os.fdopen(read_end, "rb") as r:
        report = r.read().decode()
    return os.waitstatus_to_exitcode(status), report


def test_a_forked_child_uses_a_new_client_and_rejects_the_parents(
    client: jk.Client, cluster: Cluster
) -> None:
    client.kv.set("fork/parent", b"before")  # the runtime is running in the parent
    watch = client.kv.watch(key="fork/child")

    def child() -> str:
        try:
            client.kv.get("fork/parent")
        except jk.ClosedError as e:
            assert "before a fork" in str(e), e
        else:
            raise AssertionError("the parent's client worked in the child")
        try:
            watch.next(timeout=1)
        except jk.ClosedError:
            pass
        else:
            raise AssertionError("the parent's watch worked in the child")
        assert watch.closed, "the parent's watch is closed in the child"
        watch.close()  # a no-op: the watch is the parent's
        assert client.closed and repr(client) == "Client(servers=[], closed=True)"
        try:
            _ = client.leader
        except jk.ClosedError:
            pass
        else:
            raise AssertionError("the parent's client told its leader in the child")
        try:
            cluster.servers[0].status()
        except jk.ClosedError:
            pass
        else:
            raise AssertionError("the parent's server answered in the child")
        cluster.servers[0].close()  # a no-op: the node runs in the parent
        with jk.Client(cluster.addrs, cluster_id=CLUSTER_ID) as c:
            assert c.kv.get("fork/parent") == b"before"
            c.kv.set("fork/child", b"hello from the child")
            return "ok"

    code, report = run_in_child(child)
    assert (code, report) == (0, "ok")
    # The parent's client, watch, servers and runtime still work.
    assert not cluster.servers[0].closed
    assert watch.next(timeout=10).new_value == b"hello from the child"
    watch.close()
    assert client.kv.get("fork/child") == b"hello from the child"


def test_a_child_forked_before_any_runtime_use_works(cluster: Cluster) -> None:
    def child() -> str:
        with jk.Client(cluster.addrs, cluster_id=CLUSTER_ID) as c:
            return str(c.journal.append(30, [b"from child"]))

    code, report = run_in_child(child)
    assert code == 0, report
    with jk.Client(cluster.addrs, cluster_id=CLUSTER_ID) as c:
        assert c.journal.get(30, int(report))[0].payload == b"from child"


def test_a_child_frees_the_parents_objects_without_touching_them(cluster: Cluster) -> None:
    """The child's garbage collector may free a client or watch of the parent: that leaks it
    (its destructor would wake the parent's runtime, whose locks a parent thread may hold)."""
    parents: list[object] = []
    c = jk.Client(cluster.addrs, cluster_id=CLUSTER_ID)
    parents += [c, c.kv.watch(key="fork/freed")]
    parents.append(parents)  # a cycle: only the collector frees it
    del c

    def child() -> str:
        parents.clear()
        gc.collect()
        with jk.Client(cluster.addrs, cluster_id=CLUSTER_ID) as fresh:
            fresh.kv.set("fork/freed", b"by the child")
        return "ok"

    code, report = run_in_child(child)
    assert (code, report) == (0, "ok")
    watch = parents[1]
    assert isinstance(watch, jk.Watch)
    assert watch.next(timeout=10).new_value == b"by the child", "the parent's watch still works"
    watch.close()
    client = parents[0]
    assert isinstance(client, jk.Client)
    client.close()
