"""What the state machine test and `make bench-machines` share: one cluster configuration as
TOML files (every language's host starts its nodes from the same files), and a host process
that says `ready` on one line once its nodes know a leader and stops when its stdin closes."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def node_tomls(root: Path, cluster_id: int, nodes: int = 3) -> tuple[list[str], list[Path]]:
    """A fresh cluster's addresses and one TOML file per node (data directories under
    ``root``). Timeouts for a loaded 2-core machine: no spurious elections under load."""
    addrs = [f"127.0.0.1:{p}" for p in free_ports(nodes)]
    peers = "".join(f'{i + 1} = "{a}"\n' for i, a in enumerate(addrs))
    files = []
    for i, addr in enumerate(addrs):
        path = root / f"node{i + 1}.toml"
        path.write_text(
            f'node_id = {i + 1}\nlisten = "{addr}"\ncluster_id = {cluster_id}\n'
            f'data_dir = "{root / f"node{i + 1}"}"\nelection_timeout_ms = 1000\n'
            f"heartbeat_interval_ms = 100\ntick_ms = 10\n\n[peers]\n{peers}"
        )
        files.append(path)
    return addrs, files


class Host:
    """A host process: started with ``cmd``; ``wait_ready`` reads its first stdout line
    (bounded); ``stop`` closes its stdin and waits for a clean exit, killing it past the
    deadline (always safe to call, also after a failure)."""

    def __init__(self, cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.cmd = cmd
        # A file, not a pipe: a chatty host never blocks on a full pipe nobody reads.
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, cwd=cwd, env=env
        )

    def wait_ready(self, timeout_s: float) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        line = b""
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise TimeoutError(f"{self.cmd[:2]} not ready after {timeout_s} s")
                chunk = os.read(fd, 256)
                if not chunk:
                    raise RuntimeError(f"{self.cmd[:2]} exited before ready:\n{self.stderr_text()}")
                line += chunk
        if line.strip() != b"ready":
            raise RuntimeError(f"{self.cmd[:2]} said {line!r}, not ready")

    def stderr_text(self) -> str:
        self.stop(timeout_s=10)
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def stop(self, timeout_s: float = 60) -> int:
        """Closes stdin (the host's signal to stop its nodes) and returns its exit code."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
