"""The built-in SQL database on the session's 3-node cluster: a schema and inserts, a batch
failing at its second statement that changes nothing, every value type round-tripping, reads
at each consistency level, non-deterministic SQL refused, the leader's timestamp parameter,
argument checks, and the same through ``AsyncClient``. Each test uses tables of its own."""

from __future__ import annotations

import asyncio
import time

import pytest

import journalkeeper as jk
from conftest import CLUSTER_ID, Cluster, eventually


def test_schema_inserts_and_the_leader_timestamp(client: jk.Client) -> None:
    sql = client.sql()
    r = sql.execute(
        "CREATE TABLE py_item"
        " (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, qty INTEGER, at INTEGER)"
    )
    assert r == jk.ExecuteResult(rows_affected=0, last_insert_id=0)
    before = int(time.time() * 1000)
    r = sql.execute(
        [
            ("INSERT INTO py_item (name, qty, at) VALUES (?1, ?2, :jk_timestamp_ms)", ("apple", 3)),
            ("INSERT INTO py_item (name, qty, at) VALUES (?, ?, :jk_timestamp_ms)", ["pear", 5]),
            "UPDATE py_item SET qty = qty + 1",
        ]
    )
    after = int(time.time() * 1000)
    assert (r.rows_affected, r.last_insert_id) == (4, 2)
    answer = sql.query("SELECT name, qty, at FROM py_item ORDER BY id")
    assert answer.columns == ["name", "qty", "at"]
    assert [row[:2] for row in answer.rows] == [("apple", 4), ("pear", 6)]
    stamps = {row[2] for row in answer.rows}
    assert len(stamps) == 1  # one entry, one leader time
    (at,) = stamps
    assert isinstance(at, int) and before - 1000 <= at <= after + 1000
    assert answer.dicts()[0] == {"name": "apple", "qty": 4, "at": at}
    # The leader's time is known only where the log stamps it.
    with pytest.raises(jk.RejectedError, match=":jk_timestamp_ms is only known in execute"):
        sql.query("SELECT :jk_timestamp_ms")


def test_a_batch_failing_at_statement_2_changes_nothing(client: jk.Client) -> None:
    sql = client.sql()
    sql.execute(
        [
            "CREATE TABLE py_acct"
            " (name TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))",
            ("INSERT INTO py_acct VALUES (?1, ?2)", ("alice", 10)),
        ]
    )
    with pytest.raises(jk.RejectedError) as refused:
        sql.execute(
            [
                ("INSERT INTO py_acct VALUES (?1, ?2)", ("bob", 5)),
                "UPDATE py_acct SET balance = balance - 50 WHERE name = 'alice'",
                "DELETE FROM py_acct",
            ]
        )
    assert refused.value.code == "REJECTED"
    assert refused.value.message.startswith(
        "statement 2 (\"UPDATE py_acct SET balance = balance - 50 WHERE name = 'alice'\"): "
    )
    assert "CHECK constraint failed" in refused.value.message
    assert sql.query("SELECT name, balance FROM py_acct").rows == [("alice", 10)]


def test_every_value_type_round_trips(client: jk.Client) -> None:
    sql = client.sql()
    sql.execute("CREATE TABLE py_vals (id INTEGER PRIMARY KEY, v)")
    values: list[jk.SqlParam] = [
        None,
        0,
        -(2**63),
        2**63 - 1,
        True,
        1.5,
        -0.0,
        1e300,
        "",
        "héllo ✓ \x00 nul",
        b"",
        b"\x00\x01\xfe\xff",
        bytearray(b"ba"),
        memoryview(b"mv"),
    ]
    sql.execute([("INSERT INTO py_vals (v) VALUES (?1)", (v,)) for v in values])
    expected = [bytes(v) if isinstance(v, (bytearray, memoryview)) else v for v in values]
    expected[4] = 1  # bool is an int, as in sqlite3
    got = sql.query("SELECT v FROM py_vals ORDER BY id").rows
    assert [row[0] for row in got] == expected
    assert [type(row[0]) for row in got] == [type(v) for v in expected]
    # Straight back as query parameters, and typeof() agrees.
    echo = sql.query(
        "SELECT ?1, ?2, ?3, ?4, ?5, typeof(?1), typeof(?2), typeof(?3), typeof(?4), typeof(?5)",
        (None, 7, 2.25, "t", b"b"),
    )
    assert echo.rows == [(None, 7, 2.25, "t", b"b", "null", "integer", "real", "text", "blob")]
    assert len(echo.columns) == 10


def test_argument_errors_name_the_argument(client: jk.Client) -> None:
    sql = client.sql()
    with pytest.raises(jk.InvalidArgumentError, match="outside the 64-bit"):
        sql.query("SELECT ?1", (2**63,))
    not_a_value = r"params\[1\] must be None, int, float, str or bytes, not list"
    with pytest.raises(TypeError, match=not_a_value):
        sql.query("SELECT ?1, ?2", (1, [2]))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sequence of values"):
        sql.query("SELECT ?1", "x")  # a str is a sequence, but not of values
    not_a_statement = r"statements\[1\] must be a str or a \(sql, params\) tuple"
    with pytest.raises(TypeError, match=not_a_statement):
        sql.execute(["SELECT 1", 42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="params goes with one statement"):
        sql.execute(["SELECT 1"], (1,))
    with pytest.raises(jk.InvalidArgumentError, match="1..=1024 statements, not 0"):
        sql.execute([])
    with pytest.raises(jk.RejectedError, match="the statement has 2 parameters but 1 were given"):
        sql.query("SELECT ?1, ?2", (1,))
    with pytest.raises(jk.RejectedError, match="a query must not write: use execute"):
        sql.query("DELETE FROM py_vals")
    with pytest.raises(jk.InvalidArgumentError):
        sql.query("SELECT 1", consistency="LINEARIZABLE")


def test_non_deterministic_sql_is_refused_naming_the_function(client: jk.Client) -> None:
    sql = client.sql()
    sql.execute("CREATE TABLE py_rand (x)")
    with pytest.raises(jk.RejectedError, match=r"random\(\) is refused") as refused:
        sql.execute("INSERT INTO py_rand VALUES (random())")
    assert refused.value.message.startswith('statement 1 ("INSERT INTO py_rand VALUES (random())")')
    with pytest.raises(jk.RejectedError, match=r"datetime\(\) is refused"):
        sql.query("SELECT datetime('now')")
    assert sql.query("SELECT count(*) FROM py_rand").rows == [(0,)]


def test_reads_at_each_consistency_level(cluster: Cluster, client: jk.Client) -> None:
    sql = client.sql()
    sql.execute(
        [
            "CREATE TABLE py_levels (k TEXT PRIMARY KEY, v INTEGER)",
            "INSERT INTO py_levels VALUES ('a', 1)",
        ]
    )
    sql.execute("UPDATE py_levels SET v = ?1 WHERE k = 'a'", (2,))  # REPLICATION: committed
    select = "SELECT v FROM py_levels WHERE k = 'a'"
    assert sql.query(select, consistency=jk.QueryConsistency.STRICT).rows == [(2,)]
    assert sql.query(select, consistency="SEQUENTIAL").rows == [(2,)]
    # NONE reads whichever node answers, which may lag: each node catches up.
    for addr in cluster.addrs:
        with jk.Client([addr], cluster_id=CLUSTER_ID) as one:
            local = one.sql()

            def caught_up() -> bool | None:
                try:
                    rows = local.query(select, consistency=jk.QueryConsistency.NONE).rows
                except jk.RejectedError:  # no such table on this node yet
                    return None
                return True if rows == [(2,)] else None

            eventually(f"{addr} serving the update at NONE", caught_up)


def test_async_client_executes_and_queries(cluster: Cluster) -> None:
    async def main() -> None:
        async with await jk.AsyncClient.connect(cluster.addrs, cluster_id=CLUSTER_ID) as c:
            sql = c.sql()
            r = await sql.execute(
                [
                    "CREATE TABLE py_async (id INTEGER PRIMARY KEY, name TEXT, at INTEGER)",
                    ("INSERT INTO py_async (name, at) VALUES (?1, :jk_timestamp_ms)", ("x",)),
                ]
            )
            assert r.last_insert_id == 1 and r.rows_affected == 1
            results = await asyncio.gather(
                *(
                    sql.execute("INSERT INTO py_async (name) VALUES (?1)", (f"n{i}",))
                    for i in range(5)
                )
            )
            assert sorted(r.last_insert_id for r in results) == [2, 3, 4, 5, 6]
            answer = await sql.query("SELECT count(*) FROM py_async WHERE name LIKE ?1", ("n%",))
            assert answer == jk.QueryResult(columns=["count(*)"], rows=[(5,)])
            with pytest.raises(jk.RejectedError, match="statement 2"):
                await sql.execute(["DELETE FROM py_async", "INSERT INTO missing VALUES (1)"])
            answer = await sql.query("SELECT count(*) FROM py_async", consistency="SEQUENTIAL")
            assert answer.rows == [(6,)]
            with pytest.raises(jk.RejectedError, match=r"random\(\) is refused"):
                await sql.query("SELECT random()")
            assert repr(sql) == "AsyncSql()"

    asyncio.run(main())
