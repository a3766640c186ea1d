"""The bank state machine every binding's tests use (the shared text protocol): commands
``deposit A N`` (→ A's new balance) and ``transfer A B N`` (refused with "A has X, short of N"
when A has less; → A's new balance), queries ``balance A`` and ``balances`` (``A=N`` lines,
sorted). Snapshot: ``A N`` lines."""

from __future__ import annotations

import threading

import journalkeeper as jk


class Bank:
    def __init__(self) -> None:
        self.accounts: dict[str, int] = {}
        self.restores = 0
        self.last_index = 0
        self.lock = threading.Lock()

    def apply(self, ctx: jk.ApplyContext, command: bytes) -> bytes:
        self.last_index = ctx.index
        words = command.decode().split()
        with self.lock:
            if words[0] == "deposit" and len(words) == 3:
                a, n = words[1], int(words[2])
                self.accounts[a] = self.accounts.get(a, 0) + n
                return str(self.accounts[a]).encode()
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
        accounts: dict[str, int] = {}
        for line in data.decode().splitlines():
            a, n = line.split()
            accounts[a] = int(n)
        with self.lock:
            self.accounts = accounts
            self.restores += 1

    def balances(self) -> dict[str, int]:
        with self.lock:
            return dict(self.accounts)


class FaultyBank(Bank):
    """A bank that crashes (ValueError) on the command ``boom``."""

    def apply(self, ctx: jk.ApplyContext, command: bytes) -> bytes:
        if command == b"boom":
            raise ValueError("boom on purpose")
        return super().apply(ctx, command)
