"""Live administration, as a user does it: a fresh embedded 3-node cluster per test and a 4th
node started with ``join=True``, added as a voter, made leader, preferred, and removed; the
refusals and the timeout of a change that cannot complete; the asyncio variants, which do not
block the event loop, and the blocking ones, which release the GIL."""

from __future__ import annotations

import asyncio
import builtins
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import journalkeeper as jk
from conftest import CLUSTER_ID, eventually, free_ports, node_config


@dataclass
class Founders:
    """Three founding nodes and the address reserved for a fourth, joining one."""

    servers: list[jk.Server]
    addrs: list[str]
    joiner_addr: str
    data_dir: Path
    joiners: list[jk.Server] = field(default_factory=list)

    def join(self) -> jk.Server:
        """Starts node 4, which joins through the founders (this node is added by ``join``)."""
        config = node_config(4, [*self.addrs, self.joiner_addr], self.data_dir)
        config["peers"] = {i + 1: a for i, a in enumerate(self.addrs)}
        server = jk.Server(config, join=True)
        self.joiners.append(server)
        return server

    def client(self) -> jk.Client:
        return jk.Client(self.addrs, cluster_id=CLUSTER_ID, request_timeout=30)


@pytest.fixture
def founders(tmp_path: Path) -> Iterator[Founders]:
    ports = free_ports(4)
    addrs = [f"127.0.0.1:{p}" for p in ports[:3]]
    servers = [jk.Server(node_config(i, addrs, tmp_path)) for i in (1, 2, 3)]
    f = Founders(servers, addrs, f"127.0.0.1:{ports[3]}", tmp_path)
    try:
        yield f
    finally:
        for s in f.joiners + f.servers:
            s.close()


def voters(client: jk.Client) -> list[int] | None:
    """The voter ids of a settled configuration (no change in progress, no learner left)."""
    conf = client.admin.cluster_configuration()
    if conf["joint_old_voters"] is not None or conf["observers"]:
        return None
    return sorted(m["node_id"] for m in conf["voters"])


def holds(addr: str, payloads: list[bytes]) -> bool:
    """The node at ``addr`` holds exactly ``payloads`` in partition 0, read from its own state."""
    with jk.Client(addr, cluster_id=CLUSTER_ID, request_timeout=5) as direct:
        try:
            got = direct.journal.get(0, 0, max=4096, consistency="NONE")
        except jk.JournalKeeperError:
            return False
        return [e.payload for e in got] == payloads


def test_a_joining_node_is_added_leads_is_preferred_and_is_removed(founders: Founders) -> None:
    with founders.client() as client:
        admin = client.admin
        written = [b"e%d" % i for i in range(20)]
        for p in written:
            client.journal.append(0, [p])
        assert voters(client) == [1, 2, 3]

        joiner = founders.join()
        status = joiner.status()
        assert status["standing"] == "JOINING"
        assert status["preferred_leader"] is None
        assert all(s.status()["standing"] == "MEMBER" for s in founders.servers)

        # Refusals before it is a voter: InvalidArgumentError (a ValueError) naming the reason.
        with pytest.raises(jk.InvalidArgumentError, match="not a voter") as info:
            admin.transfer_leader(4, timeout=5)
        assert isinstance(info.value, ValueError) and info.value.code == "INVALID_ARGUMENT"
        with pytest.raises(jk.InvalidArgumentError, match="not a voter"):
            admin.set_preferred_leader(4)

        # Added: a voter and a member holding everything written before and after.
        admin.add_voter(4, joiner.address, timeout=30)
        assert voters(client) == [1, 2, 3, 4]
        eventually("the joiner is a member", lambda: joiner.status()["standing"] == "MEMBER" or None)
        written.append(b"after-add")
        client.journal.append(0, [b"after-add"])
        eventually("the joiner holds every entry", lambda: holds(joiner.address, written) or None)

        # Leadership moves to it; it is preferred on every node, then cleared.
        admin.transfer_leader(4, timeout=30)
        leader = admin.cluster_configuration()["leader"]
        assert leader is not None and leader["node_id"] == 4
        eventually("the joiner leads", lambda: joiner.status()["is_leader"] or None)
        admin.set_preferred_leader(4)
        everyone = [*founders.servers, joiner]

        def views() -> list[object]:
            """Each node's id, role, term, leader, last / durable / commit / applied index and
            preferred leader, then the leader's view of its followers."""
            out: list[object] = []
            for s in everyone:
                st = s.status()
                out.append(
                    (st["node_id"], st["role"], st["term"], st["leader"], st["last_index"])
                    + (st["durable_index"], st["commit_index"], st["applied_index"])
                    + (st["preferred_leader"],)
                )
                if st["is_leader"]:
                    detail = admin.status(s.address).get("detail")
                    out.append(detail["followers"] if detail else None)
            return out

        eventually(
            "every node records the preferred leader",
            lambda: all(s.status()["preferred_leader"] == 4 for s in everyone) or None,
            state=views,
        )
        admin.set_preferred_leader(None)
        eventually(
            "every node clears the preferred leader",
            lambda: all(s.status()["preferred_leader"] is None for s in everyone) or None,
            state=views,
        )

        # Removed while it leads: it knows it, the founders serve on without it.
        with pytest.raises(jk.TimeoutError):
            joiner.wait_removed(timeout=0.02)
        admin.remove_voter(4, timeout=30)
        joiner.wait_removed(timeout=30)
        assert joiner.status()["standing"] == "REMOVED"
        assert voters(client) == [1, 2, 3]
        written.append(b"after-remove")
        client.journal.append(0, [b"after-remove"])
        for s in founders.servers:
            eventually("a founder holds every entry", lambda: holds(s.address, written) or None)
            assert s.status()["standing"] == "MEMBER"
        joiner.close()
        with pytest.raises(jk.ClosedError):
            joiner.wait_removed()


def test_update_voters_takes_a_mapping_and_refuses_what_is_wrong(founders: Founders) -> None:
    with founders.client() as client:
        admin = client.admin
        joiner = founders.join()
        with pytest.raises(jk.InvalidArgumentError, match="not the current voters"):
            admin.update_voters([1, 2], {1: None, 2: None})
        with pytest.raises(jk.InvalidArgumentError, match="no known address"):
            admin.update_voters([1, 2, 3], {1: None, 2: "", 3: None, 7: None})
        bad_new: Any = [(1, None), (2, None)]
        with pytest.raises(TypeError, match="mapping"):
            admin.update_voters([1, 2, 3], bad_new)
        # Timeouts: the bound is stated and checked; nonsense is an InvalidArgumentError.
        assert jk.MAX_ADMIN_TIMEOUT == 600 and jk.MAX_VOTERS == 64
        for timeout in (jk.MAX_ADMIN_TIMEOUT + 1, 1e19, -1.0, float("nan")):
            with pytest.raises(jk.InvalidArgumentError, match="timeout"):
                admin.add_voter(4, joiner.address, timeout=timeout)
        with pytest.raises(jk.InvalidArgumentError, match="node_id"):
            admin.remove_voter(-1)
        assert voters(client) == [1, 2, 3]
        assert joiner.status()["standing"] == "JOINING"

        # The joiner and a founder swap places in one change; the address is given only for
        # the new member.
        admin.update_voters([1, 2, 3], {2: None, 3: None, 4: joiner.address}, timeout=30)
        assert voters(client) == [2, 3, 4]
        founders.servers[0].wait_removed(timeout=30)
        assert founders.servers[0].status()["standing"] == "REMOVED"
        eventually("the joiner is a member", lambda: joiner.status()["standing"] == "MEMBER" or None)


def test_a_change_that_cannot_complete_times_out_and_the_voters_stay(founders: Founders) -> None:
    dead = f"127.0.0.1:{free_ports(1)[0]}"
    with founders.client() as client:
        client.journal.append(0, [b"x"])
        # The blocking call releases the GIL: another Python thread runs meanwhile.
        ticks = 0
        stop = threading.Event()

        def tick() -> None:
            nonlocal ticks
            while not stop.wait(0.01):
                ticks += 1

        ticker = threading.Thread(target=tick)
        ticker.start()
        try:
            with pytest.raises(jk.TimeoutError, match="did not catch up") as info:
                client.admin.add_voter(9, dead, timeout=1.5)
        finally:
            stop.set()
            ticker.join()
        assert isinstance(info.value, builtins.TimeoutError) and info.value.code == "TIMEOUT"
        assert ticks >= 20, ticks
        eventually("the voters as they were", lambda: voters(client) == [1, 2, 3] or None)
        # A later change is not blocked.
        client.admin.transfer_leader(2, timeout=30)
        leader = client.admin.cluster_configuration()["leader"]
        assert leader is not None and leader["node_id"] == 2


def test_async_admin_changes_membership_without_blocking_the_loop(founders: Founders) -> None:
    joiner = founders.join()
    dead = f"127.0.0.1:{free_ports(1)[0]}"

    async def main() -> None:
        async with await jk.AsyncClient.connect(founders.addrs, cluster_id=CLUSTER_ID) as c:
            admin = c.admin
            await admin.update_voters([1, 2, 3], {1: None, 2: None, 3: None, 4: joiner.address})
            conf = await admin.cluster_configuration()
            assert sorted(m["node_id"] for m in conf["voters"]) == [1, 2, 3, 4]
            await admin.transfer_leader(4, timeout=30)
            leader = (await admin.cluster_configuration())["leader"]
            assert leader is not None and leader["node_id"] == 4
            await admin.set_preferred_leader(3)
            await admin.set_preferred_leader(None)
            with pytest.raises(jk.InvalidArgumentError, match="not a voter"):
                await admin.set_preferred_leader(9)
            await admin.remove_voter(4, timeout=30)

            # The loop keeps running while a change waits for its (1 s) timeout.
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            t = asyncio.create_task(ticker())
            with pytest.raises(jk.TimeoutError):
                await admin.add_voter(9, dead, timeout=1.0)
            t.cancel()
            assert ticks >= 20, ticks

    asyncio.run(asyncio.wait_for(main(), 120))
    joiner.wait_removed(timeout=30)
    assert joiner.status()["standing"] == "REMOVED"
