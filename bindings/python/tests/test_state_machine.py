"""User state machines hosted by embedded servers: a Python bank (tests/bank_machine.py) on a
3-node cluster — updates, refusals, batches, queries at each consistency, the leader stopped
mid-way, a restart restoring from a snapshot, a crashing apply failing only its node."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import journalkeeper as jk
from bank_machine import Bank, FaultyBank
from conftest import CLUSTER_ID, eventually, free_ports, node_config


def config(node_id: int, addrs: list[str], data_dir: Path) -> dict[str, object]:
    cfg = node_config(node_id, addrs, data_dir)
    cfg["snapshot_interval"] = 16
    return cfg


def start(node_id: int, addrs: list[str], data_dir: Path, bank: Bank) -> jk.Server:
    return jk.Server(config(node_id, addrs, data_dir), state_machines={"bank": bank})


def leader_of(servers: dict[int, jk.Server]) -> int:
    def one() -> int | None:
        ids = [i for i, s in servers.items() if s.status()["is_leader"]]
        return ids[0] if len(ids) == 1 else None

    return eventually("one leader", one)


def all_equal(banks: list[Bank]) -> dict[str, int]:
    def same() -> dict[str, int] | None:
        seen = [b.balances() for b in banks]
        return seen[0] if all(s == seen[0] for s in seen) else None

    return eventually("every node's balances equal", same, state=lambda: [b.balances() for b in banks])


def test_bank_updates_batches_queries_failover_and_restore(tmp_path: Path) -> None:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    banks = {i: Bank() for i in (1, 2, 3)}
    servers = {i: start(i, addrs, tmp_path, banks[i]) for i in (1, 2, 3)}
    try:
        with jk.Client(addrs, cluster_id=CLUSTER_ID, request_timeout=20) as c:
            bank = c.state_machine("bank")
            assert bank.update(b"deposit alice 100") == b"100"
            assert bank.update(b"deposit bob 50") == b"50"
            assert bank.update(b"transfer alice bob 30") == b"70"
            with pytest.raises(jk.RejectedError) as refused:
                bank.update(b"transfer bob alice 500")
            assert refused.value.message == "bob has 80, short of 500"
            # A refusal changes nothing and does not stop the rest of a batch.
            results = bank.update_batch(
                [b"deposit carol 10", b"transfer carol alice 11", b"transfer carol alice 4"]
            )
            assert results is not None
            assert results[0] == b"10" and results[2] == b"6"
            assert isinstance(results[1], jk.RejectedError)
            assert results[1].message == "carol has 10, short of 11"
            assert bank.update_batch([b"deposit dave 1"], response="RECEIVE") is None
            assert bank.update(b"deposit dave 1", response=jk.ResponseConfig.PERSISTENCE) is None

            # RECEIVE and PERSISTENCE answer before the commit: wait until a read sees both.
            expected = "alice=74\nbob=80\ncarol=6\ndave=2\n"
            eventually("both dave deposits applied",
                       lambda: True if bank.query(b"balances") == expected.encode() else None)
            assert bank.query(b"balance alice", jk.QueryConsistency.STRICT) == b"74"
            c.sync()
            assert bank.query(b"balance bob", "SEQUENTIAL") == b"80"
            eventually("a NONE read to catch up",
                       lambda: True if bank.query(b"balances", "NONE") == expected.encode() else None)
            assert bank.query(b"balance nobody") == b"0"
            # A query's refusal reaches the caller as the machine raised it.
            with pytest.raises(jk.RejectedError, match="unknown query"):
                bank.query(b"no such query")
            total = 74 + 80 + 6 + 2

            # Transfers round a ring of accounts; the leader stops half-way.
            names = ["alice", "bob", "carol", "dave"]
            stopped = None
            for i in range(40):
                if i == 20:
                    stopped = leader_of(servers)
                    servers.pop(stopped).close()
                a, b = names[i % 4], names[(i + 1) % 4]
                try:
                    bank.update(f"transfer {a} {b} 1".encode())
                except jk.RejectedError:
                    pass
            assert stopped is not None
            live = [banks[i] for i in servers]
            balances = all_equal(live)
            assert sum(balances.values()) == total
            answer = bank.query(b"balances").decode()
            assert answer == "".join(f"{a}={n}\n" for a, n in sorted(balances.items()))

            # The stopped node restarts with an empty bank: it restores a snapshot (its own or
            # the leader's) and replays the rest, ending equal to the others.
            banks[stopped] = Bank()
            servers[stopped] = start(stopped, addrs, tmp_path, banks[stopped])
            bank.update(b"deposit alice 1")
            final = all_equal(list(banks.values()))
            assert sum(final.values()) == total + 1
            assert banks[stopped].restores >= 1
    finally:
        for s in servers.values():
            s.close()


def test_state_changed_events_reach_the_streams_that_ask_for_them(tmp_path: Path) -> None:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    servers = [start(i + 1, addrs, tmp_path, Bank()) for i in range(3)]
    try:
        with jk.Client(addrs, cluster_id=CLUSTER_ID) as c:
            bank = c.state_machine("bank")
            with c.events(state_machines=True) as remote, servers[0].events(
                state_machines=True
            ) as local, c.events() as plain:

                def bank_index(events: jk.Events, above: int) -> int:
                    while True:
                        e = events.next(timeout=20)
                        assert not isinstance(e, jk.StateChanged) or e.machine in ("bank", "jk.sql")
                        if isinstance(e, jk.StateChanged) and e.machine == "bank":
                            if e.applied_index > above:
                                return e.applied_index

                assert bank_index(remote, -1) == 0  # the whole state first: not changed yet
                bank.update(b"deposit alice 3")
                applied = c.sync()
                changed = bank_index(remote, 0)
                assert 0 < changed <= applied
                assert bank_index(local, 0) == changed
                # Without the option: the journal change after the update, no state change.
                c.journal.append(0, [b"x"])
                while True:
                    e = plain.next(timeout=20)
                    assert not isinstance(e, jk.StateChanged)
                    if isinstance(e, jk.JournalChanged) and e.partition == 0 and e.max_index > 0:
                        break
    finally:
        for s in servers:
            s.close()


def test_async_state_machine_client(tmp_path: Path) -> None:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    banks = [Bank() for _ in range(3)]
    servers = [start(i + 1, addrs, tmp_path, banks[i]) for i in range(3)]

    async def main() -> None:
        async with await jk.AsyncClient.connect(addrs, cluster_id=CLUSTER_ID) as c:
            bank = c.state_machine("bank")
            deposits = await asyncio.gather(*(bank.update(b"deposit x 1") for _ in range(10)))
            assert sorted(deposits) == sorted(str(n).encode() for n in range(1, 11))  # type: ignore[type-var]
            with pytest.raises(jk.RejectedError):
                await bank.update(b"transfer x y 11")
            results = await bank.update_batch([b"transfer x y 4", b"transfer y x 5"])
            assert results is not None and results[0] == b"6"
            assert isinstance(results[1], jk.RejectedError)
            assert await bank.query(b"balances") == b"x=6\ny=4\n"

    try:
        asyncio.run(main())
        assert all_equal(banks) == {"x": 6, "y": 4}
    finally:
        for s in servers:
            s.close()


def test_apply_raising_fails_only_its_node(tmp_path: Path) -> None:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    servers: dict[int, jk.Server] = {}
    try:
        banks: dict[int, Bank] = {}
        for i in (1, 2, 3):
            banks[i] = Bank()
            servers[i] = start(i, addrs, tmp_path, banks[i])
        with jk.Client(addrs, cluster_id=CLUSTER_ID, request_timeout=20) as c:
            bank = c.state_machine("bank")
            bank.update(b"deposit a 5")
            # Restart one follower with a bank that crashes on "boom".
            follower = next(i for i in (1, 2, 3) if i != leader_of(servers))
            servers.pop(follower).close()
            banks[follower] = FaultyBank()
            servers[follower] = start(follower, addrs, tmp_path, banks[follower])
            with pytest.raises(jk.RejectedError):
                bank.update(b"boom")  # the healthy nodes refuse it
            eventually("the faulty node to fail",
                       lambda: True if servers[follower].status()["failed"] else None)
            assert not any(s.status()["failed"] for i, s in servers.items() if i != follower)
            assert bank.update(b"deposit a 1") == b"6"
            assert bank.query(b"balance a") == b"6"
    finally:
        for s in servers.values():
            s.close()


def test_machine_without_methods_is_refused(tmp_path: Path) -> None:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(1)]
    cfg = config(1, addrs, tmp_path)
    with pytest.raises(jk.InvalidArgumentError, match="no apply"):
        jk.Server(cfg, state_machines={"bank": object()})  # type: ignore[dict-item]
