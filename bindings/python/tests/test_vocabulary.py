"""One vocabulary: the names of roles, levels and error codes are the core's (the same lists
are asserted by the C, Node and CLI tests), and level names are accepted in any case."""

from __future__ import annotations

import pytest

import journalkeeper as jk
from conftest import Cluster
from journalkeeper import _native

ROLES = ["LEADER", "FOLLOWER", "PRE_CANDIDATE", "CANDIDATE", "OBSERVER"]
RESPONSE_CONFIGS = ["ONE_WAY", "RECEIVE", "PERSISTENCE", "REPLICATION", "ALL"]
QUERY_CONSISTENCIES = ["STRICT", "SEQUENTIAL", "NONE"]


def test_names_are_the_cores() -> None:
    v = _native.vocabulary()
    assert v["roles"] == ROLES
    assert v["response_configs"] == RESPONSE_CONFIGS
    assert [m.value for m in jk.ResponseConfig] == RESPONSE_CONFIGS
    assert v["query_consistencies"] == QUERY_CONSISTENCIES
    assert [m.value for m in jk.QueryConsistency] == QUERY_CONSISTENCIES
    assert sorted(v["error_codes"]) == sorted(k.value for k in jk.ErrorKind)


def test_level_names_are_accepted_in_any_case(client: jk.Client) -> None:
    assert client.journal.append(17, [b"a"], response="one-way") is None
    assert client.journal.append(17, [b"b"], response="Persistence") is None
    first = client.journal.append(17, [b"c"], response="replication")
    assert first is not None
    entries = client.journal.get(17, first, consistency="sTrIcT")
    assert [e.payload for e in entries] == [b"c"]
    assert client.journal.list_partitions(consistency="sequential")
    with pytest.raises(jk.InvalidArgumentError, match="ONE_WAY, RECEIVE, PERSISTENCE"):
        client.journal.append(17, [b"d"], response="majority")
    with pytest.raises(jk.InvalidArgumentError, match="STRICT, SEQUENTIAL, NONE"):
        client.journal.get(17, 0, consistency="linearizable")


def test_status_roles_use_the_canonical_names(client: jk.Client, cluster: Cluster) -> None:
    leader = cluster.leader()
    assert leader.status()["role"] == "LEADER"
    assert client.admin.status(leader.address)["role"] == "LEADER"
    for s in cluster.servers:
        assert s.status()["role"] in ROLES


def test_bounds_are_stated_and_enforced(client: jk.Client) -> None:
    assert (jk.MAX_APPEND_ENTRIES, jk.MAX_GET_ENTRIES, jk.MAX_PARTITIONS) == (4096, 4096, 4096)
    assert (jk.MAX_ENTRY_BYTES, jk.MAX_APPEND_BYTES) == (4 << 20, 8 << 20)
    assert (jk.MAX_KEY_BYTES, jk.MAX_VALUE_BYTES) == (4096, 1 << 20)
    with pytest.raises(jk.InvalidArgumentError):
        client.journal.append(17, [b"x"] * (jk.MAX_APPEND_ENTRIES + 1))
    with pytest.raises(jk.InvalidArgumentError):
        client.journal.append(17, [bytes(jk.MAX_ENTRY_BYTES + 1)])
    with pytest.raises(jk.InvalidArgumentError):
        client.kv.set("k" * (jk.MAX_KEY_BYTES + 1), b"v")
    with pytest.raises(jk.InvalidArgumentError):
        client.kv.set("bounds/v", bytes(jk.MAX_VALUE_BYTES + 1))
    with pytest.raises(jk.InvalidArgumentError):
        client.journal.get(17, 0, max=jk.MAX_GET_ENTRIES + 1)
