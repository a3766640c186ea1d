"""Journal transactions (``client.transactions``) against the session's 3-node cluster: a
committed one is invisible at every level until its commit, then readable in append order with
its batch sizes; an aborted one never appears; ``opening`` lists and clears; calls on an ended
transaction raise ``InvalidArgumentError``; the same from asyncio."""

from __future__ import annotations

import asyncio

import pytest

import journalkeeper as jk
from conftest import CLUSTER_ID, Cluster

# Partitions no other test writes.
P1, P2 = 44, 45
LEVELS = [jk.QueryConsistency.STRICT, jk.QueryConsistency.SEQUENTIAL, jk.QueryConsistency.NONE]


def nothing_after(client: jk.Client, partition: int, end: int) -> None:
    """Nothing of ``partition`` at or after ``end`` is readable at any level (at NONE the node
    answering may not have applied everything before ``end`` yet)."""
    for level in LEVELS:
        seen = client.journal.max_indices(level)[partition]
        assert seen <= end if level is jk.QueryConsistency.NONE else seen == end, (level, seen, end)
        with pytest.raises(jk.IndexOverflowError):
            client.journal.get(partition, end, 16, level)


def listed(client: jk.Client, tx: int) -> jk.TxnInfo | None:
    return next((t for t in client.transactions.opening() if t["tx"] == tx), None)


def test_argument_errors(client: jk.Client) -> None:
    txns = client.transactions
    with pytest.raises(jk.InvalidArgumentError, match="timeout"):
        txns.create(timeout=0.001)
    with pytest.raises(TypeError):
        txns.create(context=[("k", "v")])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        txns.create(context={"k": 1})  # type: ignore[dict-item]
    with pytest.raises(jk.InvalidArgumentError, match="partition"):
        txns.append(1, 70000, [b"x"])
    with pytest.raises(jk.InvalidArgumentError):
        txns.opening("EVENTUAL")
    assert txns.opening() == []


def test_a_committed_transaction_appears_whole_in_append_order(client: jk.Client) -> None:
    txns, journal = client.transactions, client.journal
    journal.append(P1, [b"before"])
    ends = journal.max_indices()
    end1, end2 = ends[P1], ends[P2]

    tx = txns.create({"order": "42", "source": "py"}, timeout=30)
    assert txns.append(tx, P1, [b"a1", b"a2"]) == 2
    assert txns.append(tx, P2, [bytearray(b"b1")]) == 3
    assert txns.append(tx, P1, [b"a3"]) == 4
    with pytest.raises(jk.InvalidArgumentError, match="no such partition"):
        txns.append(tx, 99, [b"x"])

    nothing_after(client, P1, end1)
    nothing_after(client, P2, end2)
    assert listed(client, tx) == {
        "tx": tx,
        "context": {"order": "42", "source": "py"},
        "phase": "OPEN",
        "entries": 4,
        "bytes": 8,
        "partitions": [P1, P2],
    }

    txns.commit(tx)
    got = journal.get(P1, end1)
    assert [(e.payload, e.batch_size, e.offset) for e in got] == [
        (b"a1", 2, 0),
        (b"a2", 2, 1),
        (b"a3", 1, 0),
    ]
    assert got[0].index == end1
    (b1,) = journal.get(P2, end2)
    assert (b1.payload, b1.batch_size) == (b"b1", 1)
    assert {e.timestamp_ms for e in got} == {b1.timestamp_ms}, "one store time"

    assert listed(client, tx) is None
    with pytest.raises(jk.InvalidArgumentError, match="not open"):
        txns.commit(tx)
    with pytest.raises(jk.InvalidArgumentError, match="not open"):
        txns.append(tx, P1, [b"late"])


def test_an_aborted_transaction_never_appears(client: jk.Client) -> None:
    txns, journal = client.transactions, client.journal
    end1 = journal.max_indices()[P1]
    tx = txns.create()
    assert txns.append(tx, P1, [b"lost1", b"lost2"]) == 2
    info = listed(client, tx)
    assert info is not None and info["context"] == {} and info["phase"] == "OPEN"

    assert txns.abort(tx) is True
    assert txns.abort(tx) is False
    assert listed(client, tx) is None
    with pytest.raises(jk.InvalidArgumentError, match="not open"):
        txns.commit(tx)
    # A plain append after the abort is the partition's next entry.
    assert journal.append(P1, [b"after"]) == end1
    assert [e.payload for e in journal.get(P1, end1)] == [b"after"]
    assert txns.opening() == []


def test_async_transactions(cluster: Cluster) -> None:
    async def main() -> None:
        async with await jk.AsyncClient.connect(cluster.addrs, cluster_id=CLUSTER_ID) as c:
            txns, journal = c.transactions, c.journal
            end = (await journal.max_indices())[P2]
            tx = await txns.create({"from": "asyncio"})
            assert await txns.append(tx, P2, [b"x1", b"x2"]) == 2
            (info,) = await txns.opening(jk.QueryConsistency.STRICT)
            assert (info["tx"], info["context"], info["partitions"]) == (tx, {"from": "asyncio"}, [P2])
            with pytest.raises(jk.IndexOverflowError):
                await journal.get(P2, end)
            await txns.commit(tx)
            got = await journal.get(P2, end)
            assert [(e.payload, e.batch_size, e.offset) for e in got] == [(b"x1", 2, 0), (b"x2", 2, 1)]

            other = await txns.create()
            await txns.append(other, P2, [b"gone"])
            assert await txns.abort(other) is True
            assert await txns.opening() == []
            with pytest.raises(jk.InvalidArgumentError, match="not open"):
                await txns.commit(other)
            assert (await journal.max_indices())[P2] == end + 2

    asyncio.run(asyncio.wait_for(main(), 60))
