"""Cross-language state machines, Python host (`make bench-machines`): one embedded node per
TOML file given, each hosting the counter below as "counter" (`add N` → the new value in
decimal; any query → the value; snapshot = the value in decimal). Prints `ready` once node 1
knows a leader, then serves until stdin closes.

  python sm_host.py <node.toml>...
"""

from __future__ import annotations

import sys
import time

import journalkeeper as jk


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def apply(self, ctx: jk.ApplyContext, command: bytes) -> bytes:
        if not command.startswith(b"add "):
            raise jk.RejectedError("unknown command")
        self.value += int(command[4:])
        return str(self.value).encode()

    def query(self, query: bytes) -> bytes:
        return str(self.value).encode()

    def snapshot(self, file: jk.SnapshotWriter) -> None:
        file.write(str(self.value).encode())

    def restore(self, file: jk.SnapshotReader) -> None:
        data = bytearray()
        while chunk := file.read(4096):
            data += chunk
        self.value = int(data)


def main() -> None:
    servers = [jk.Server.from_toml_file(path, state_machines={"counter": Counter()}) for path in sys.argv[1:]]
    try:
        deadline = time.monotonic() + 60
        while servers[0].status().get("leader") is None:
            if time.monotonic() > deadline:
                raise SystemExit("sm_host.py: no leader after 60 s")
            time.sleep(0.01)
        print("ready", flush=True)
        sys.stdin.buffer.read()
    finally:
        for s in servers:
            s.close()


if __name__ == "__main__":
    main()
