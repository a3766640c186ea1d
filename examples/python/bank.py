"""A replicated bank: a Python state machine hosted by a 3-node cluster inside this process.
Deposits, transfers round a ring of accounts (one refused for lack of funds), the leader
stopped half-way; then every surviving node must hold the same balances, summing to what was
deposited. Exits 1 on a mismatch.

Run: python examples/python/bank.py   (after `pip install ./bindings/python`)
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time

import journalkeeper as jk

CLUSTER_ID = 42
ACCOUNTS = ["alice", "bob", "carol"]


class Bank:
    """The shared bank protocol: ``deposit A N``, ``transfer A B N`` (refused with "A has X,
    short of N"), queries ``balance A`` and ``balances``; snapshot: ``A N`` lines."""

    def __init__(self) -> None:
        self.accounts: dict[str, int] = {}
        self.lock = threading.Lock()

    def apply(self, ctx: jk.ApplyContext, command: bytes) -> bytes:
        words = command.decode().split()
        with self.lock:
            if words[0] == "deposit" and len(words) == 3:
                self.accounts[words[1]] = self.accounts.get(words[1], 0) + int(words[2])
                return str(self.accounts[words[1]]).encode()
            if words[0] == "transfer" and len(words) == 4:
                a, b, n = words[1], words[2], int(words[3])
                have = self.accounts.get(a, 0)
                if have < n:
                    raise jk.RejectedError(f"{a} has {have}, short of {n}")
                self.accounts[a] = have - n
                self.accounts[b] = self.accounts.get(b, 0) + n
                return str(self.accounts[a]).encode()
        raise jk.RejectedError(f"unknown command {command!r}")

    def query(self, query: bytes) -> bytes:
        words = query.decode().split()
        with self.lock:
            if words == ["balances"]:
                return "".join(f"{a}={n}\n" for a, n in sorted(self.accounts.items())).encode()
            if len(words) == 2 and words[0] == "balance":
                return str(self.accounts.get(words[1], 0)).encode()
        raise jk.RejectedError(f"unknown query {query!r}")

    def snapshot(self, file: jk.SnapshotWriter) -> None:
        with self.lock:
            lines = [f"{a} {n}\n".encode() for a, n in sorted(self.accounts.items())]
        for line in lines:
            file.write(line)

    def restore(self, file: jk.SnapshotReader) -> None:
        data = bytearray()
        while chunk := file.read(4096):
            data += chunk
        accounts = {a: int(n) for a, n in (line.split() for line in data.decode().splitlines())}
        with self.lock:
            self.accounts = accounts

    def balances(self) -> dict[str, int]:
        with self.lock:
            return dict(self.accounts)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def main() -> int:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    peers = {i + 1: a for i, a in enumerate(addrs)}
    banks = {i: Bank() for i in (1, 2, 3)}
    with tempfile.TemporaryDirectory() as data_dir:
        servers = {
            i: jk.Server(
                node_id=i, listen=addrs[i - 1], cluster_id=CLUSTER_ID,
                data_dir=f"{data_dir}/node{i}", peers=peers, election_timeout_ms=300,
                heartbeat_interval_ms=30, tick_ms=5, snapshot_interval=16,
                state_machines={"bank": banks[i]},
            )
            for i in (1, 2, 3)
        }
        try:
            with jk.Client(addrs, cluster_id=CLUSTER_ID, request_timeout=20) as client:
                bank = client.state_machine("bank")
                for a in ACCOUNTS:
                    bank.update(f"deposit {a} 100".encode())
                total = 100 * len(ACCOUNTS)
                try:
                    bank.update(b"transfer alice bob 1000")
                    print("a transfer beyond the balance was accepted")
                    return 1
                except jk.RejectedError as e:
                    print(f"refused: {e.message}")
                for i in range(60):
                    if i == 30:
                        leader = next(n for n, s in servers.items() if s.status()["is_leader"])
                        print(f"stopping the leader, node {leader}")
                        servers.pop(leader).close()
                    a, b = ACCOUNTS[i % 3], ACCOUNTS[(i + 1) % 3]
                    bank.update(f"transfer {a} {b} {i % 7 + 1}".encode())
                answer = bank.query(b"balances").decode()
                print(answer, end="")
                live = [banks[n] for n in servers]
                deadline = time.monotonic() + 10
                while any(b.balances() != live[0].balances() for b in live):
                    if time.monotonic() > deadline:
                        print(f"nodes differ: {[b.balances() for b in live]}")
                        return 1
                    time.sleep(0.01)
                balances = live[0].balances()
                if answer != "".join(f"{a}={n}\n" for a, n in sorted(balances.items())):
                    print(f"the query {answer!r} differs from the nodes' {balances}")
                    return 1
                if sum(balances.values()) != total:
                    print(f"total {sum(balances.values())} != deposited {total}")
                    return 1
                print(f"ok: {len(live)} nodes equal, total {total} conserved")
                return 0
        finally:
            for s in servers.values():
                s.close()


if __name__ == "__main__":
    sys.exit(main())
