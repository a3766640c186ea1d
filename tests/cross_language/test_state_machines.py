"""User state machines across languages: a machine hosted in one language, driven from others.

- A bank written in C (examples/c/bank_machine.h), hosted by a 3-node cluster in a C process
  (sm_host.c), driven from Python (update, update_batch, query, a refused transfer with its
  message) and from Node (sm_driver.js); both see the same balances, and every node holds them.
- A bank written in Python (bindings/python/tests/bank_machine.py), hosted by a 3-node cluster
  in this process, driven by a C program (bank_client.c: jk_sm_update, jk_sm_update_batch,
  jk_sm_query, refusals as JK_STATUS_REJECTED); every node's Python bank holds the result.

Run: build/venv/bin/python -m pytest tests/cross_language   (env JK_XLANG_SM_HOST,
JK_XLANG_BANK_CLIENT: the C binaries, built by `make cross-language-test`)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import journalkeeper as jk

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "bindings" / "python" / "tests"))
from bank_machine import Bank  # noqa: E402
from hosts import Host, node_tomls  # noqa: E402

BUILD = ROOT / "build" / "cross_language"
SM_HOST = Path(os.environ.get("JK_XLANG_SM_HOST", BUILD / "sm_host"))
BANK_CLIENT = Path(os.environ.get("JK_XLANG_BANK_CLIENT", BUILD / "bank_client"))
CLUSTER_ID = 11
TIMEOUT_S = 120


def run_json(cmd: list[str]) -> Any:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT)
    assert proc.returncode == 0, f"{cmd[:2]} failed ({proc.returncode}):\n{proc.stderr}"
    return json.loads(proc.stdout)


def eventually(what: str, probe: Callable[[], Any], want: Any, timeout_s: float = 30) -> None:
    """Polls ``probe`` until it returns ``want``; fails with the last value past the deadline."""
    deadline = time.monotonic() + timeout_s
    while (got := probe()) != want:
        assert time.monotonic() < deadline, f"{what}: {got!r}, expected {want!r}"
        time.sleep(0.01)


def balances_text(accounts: dict[str, int]) -> bytes:
    return "".join(f"{a}={n}\n" for a, n in sorted(accounts.items())).encode()


@pytest.fixture
def c_hosted_bank() -> Iterator[list[str]]:
    """A 3-node cluster in a C process hosting the C bank; yields its addresses."""
    with tempfile.TemporaryDirectory(prefix="jk-xlang-sm-") as root:
        addrs, tomls = node_tomls(Path(root), CLUSTER_ID)
        host = Host([str(SM_HOST), "bank", *map(str, tomls)])
        try:
            host.wait_ready(TIMEOUT_S)
            yield addrs
            assert host.stop() == 0, f"sm_host failed:\n{host.stderr_text()}"
        finally:
            host.stop(timeout_s=10)


def test_c_hosted_bank_driven_from_python_and_node(c_hosted_bank: list[str]) -> None:
    addrs = c_hosted_bank
    with jk.Client(addrs, cluster_id=CLUSTER_ID) as client:
        bank = client.state_machine("bank")
        assert bank.update(b"deposit alice 100") == b"100"
        assert bank.update(b"deposit bob 20") == b"20"
        with pytest.raises(jk.RejectedError) as refused:
            bank.update(b"transfer bob alice 50")
        assert refused.value.message == "bob has 20, short of 50"
        results = bank.update_batch([b"transfer alice bob 30", b"transfer bob carol 500", b"deposit carol 7"])
        assert results is not None and len(results) == 3
        assert results[0] == b"70" and results[2] == b"7"
        assert isinstance(results[1], jk.RejectedError) and results[1].message == "bob has 50, short of 500"
        assert bank.query(b"balance alice") == b"70"
        assert bank.query(b"balance nobody") == b"0"

        # Node: more updates on the same machine, a refusal, a batch, and the queries.
        steps = [
            {"update": "transfer alice dave 40"},
            {"update": "transfer dave alice 41"},
            {"batch": ["deposit dave 2", "transfer carol dave 8", "transfer carol bob 7"]},
            {"query": "balance dave"},
            {"query": "nonsense"},
            {"query": "balances"},
        ]
        got = run_json(["node", str(HERE / "sm_driver.js"), str(CLUSTER_ID), ",".join(addrs), "bank", json.dumps(steps)])
        assert got[0] == {"ok": "30"}
        assert got[1] == {"error": "REJECTED", "message": "dave has 40, short of 41"}
        assert got[2] == [{"ok": "42"}, {"error": "REJECTED", "message": "carol has 7, short of 8"}, {"ok": "0"}]
        assert got[3] == {"ok": "42"}
        assert got[4] == {"error": "REJECTED", "message": "unknown query"}
        want = balances_text({"alice": 30, "bob": 57, "carol": 0, "dave": 42})
        assert got[5] == {"ok": want.decode()}

        # Python sees what Node did; every node of the C cluster holds the same balances.
        assert bank.query(b"balances") == want
        assert sum(int(line.split("=")[1]) for line in want.decode().splitlines()) == 129
        for addr in addrs:
            with jk.Client([addr], cluster_id=CLUSTER_ID) as one:
                local = one.state_machine("bank")
                eventually(f"node {addr}", lambda: local.query(b"balances", jk.QueryConsistency.NONE), want)


@pytest.fixture
def python_hosted_banks() -> Iterator[tuple[list[str], list[Bank]]]:
    """A 3-node cluster in this process hosting the Python bank; yields addresses and banks."""
    with tempfile.TemporaryDirectory(prefix="jk-xlang-sm-") as root:
        addrs, tomls = node_tomls(Path(root), CLUSTER_ID + 1)
        banks = [Bank() for _ in tomls]
        servers = []
        try:
            for toml, bank in zip(tomls, banks):
                servers.append(jk.Server.from_toml_file(toml, state_machines={"bank": bank}))
            yield addrs, banks
        finally:
            for s in servers:
                s.close()


def test_python_hosted_bank_driven_from_c(python_hosted_banks: tuple[list[str], list[Bank]]) -> None:
    addrs, banks = python_hosted_banks
    with jk.Client(addrs, cluster_id=CLUSTER_ID + 1) as client:
        bank = client.state_machine("bank")
        assert bank.update(b"deposit pya 9") == b"9"
        out = run_json([str(BANK_CLIENT), str(CLUSTER_ID + 1), ",".join(addrs), "c"])
        want = {"ca": 50, "cb": 25, "pya": 9}
        assert out == {"balances": balances_text(want).decode()}
        # What C did, seen from Python, and applied by every node's Python machine.
        assert bank.query(b"balance cb") == b"25"
        for i, b in enumerate(banks):
            eventually(f"node {i + 1}'s bank", b.balances, want)
