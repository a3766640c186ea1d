#!/usr/bin/env python3
"""Runs every fenced code block of README.md as written (`make readme-test`).

Each block is run, or marked with the reason it is not, in its info string (the words after the
opening backticks; Markdown renderers show only the first, the language):

  ```sh                      run with `bash -e` in the checkout mirror (below)
  ```sh in=app               run with `bash -e` in the app project (below)
  ```sh in=checkout          run with `bash -e` in the checkout itself (commands that write
                             nothing there but the cargo target dir, e.g. `make demo`)
  ```sh background ready=A,B each line is a long-running command (a node "in its own terminal"),
                             started in the background in the checkout mirror; the runner waits
                             until every address A, B accepts connections. The processes stop
                             (SIGTERM, must exit 0) before the next sh / js / python block
                             without `uses-cluster`
  ```sh background adds ready=A
                             as `background`, but beside the processes already running (a node
                             that joins them); they all stop together, and only the first
                             block's processes are started again by a later `uses-cluster`
                             (the added node may have left the cluster for good)
  ```sh uses-cluster         needs the background processes: started again if they were stopped
  ```js                      an ES module, run with `node` as <app>/readme-<line>.mjs
  ```python                  run with the test venv's python (build/venv, `make python-wheel`)
  ```c file=NAME             written to NAME in the checkout mirror; a later block compiles and
                             runs it (the runner checks that a later block names it)
  ```LANG no-run: REASON     not run; the reason is required

Every block must terminate within its timeout and exit 0. `$JK` is the checkout for every block.

Where blocks run: `build/readme/` is recreated per run. `checkout/` in it mirrors the checkout
through symlinks (every top-level entry but the cargo manifests and .git), so commands written
"from the checkout" (`target/release/journalkeeper`, `examples/...`, `build/lib`) work while
the files they create (a node's `data/`, a compiled program) land in the scratch directory;
`cargo` run there finds the workspace by walking up, as from the root. `app/` is an empty npm
project, the "your project" of the Node section.

Fixed ports: the README's snippets use 127.0.0.1:7001..7003. When the kernel allows it
(`unshare -rn`), the runner re-runs itself in a private network namespace, so they never meet
another process on those ports; otherwise it takes an exclusive lock
(/tmp/journalkeeper-readme.lock) so that concurrent runs on one machine take turns.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNABLE = {"sh", "js", "python", "c"}
FLAGS = {"background", "adds", "uses-cluster"}
KEYS = {"in", "ready", "file"}
TIMEOUT = {"sh": 900, "js": 120, "python": 120}
NETNS_ENV = "JK_README_NETNS"


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    flags: set[str] = field(default_factory=set)
    keys: dict[str, str] = field(default_factory=dict)
    no_run: str | None = None


class ReadmeError(Exception):
    pass


def parse(readme: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = readme.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(.*)$", lines[i])
        if not m:
            i += 1
            continue
        start, info = i + 1, m.group(1).strip()
        j = i + 1
        while j < len(lines) and lines[j] != "```":
            j += 1
        if j == len(lines):
            raise ReadmeError(f"{readme.name}:{start}: code block never closed")
        blocks.append(block(readme.name, start, info, "\n".join(lines[i + 1 : j]) + "\n"))
        i = j + 1
    return blocks


def block(name: str, line: int, info: str, text: str) -> Block:
    where = f"{name}:{line}"
    m = re.match(r"^(\S*)\s*(.*)$", info)
    assert m
    lang, rest = m.group(1), m.group(2)
    b = Block(line, lang, text)
    nr = re.search(r"(?:^|\s)no-run:(.*)$", rest)
    if nr:
        b.no_run = nr.group(1).strip()
        if not b.no_run:
            raise ReadmeError(f"{where}: `no-run:` needs a reason")
        rest = rest[: nr.start()]
    for word in rest.split():
        if "=" in word:
            k, v = word.split("=", 1)
            if k not in KEYS or not v or (k == "in" and v not in {"app", "checkout"}):
                raise ReadmeError(f"{where}: unknown attribute {word!r}")
            b.keys[k] = v
        elif word in FLAGS:
            b.flags.add(word)
        else:
            raise ReadmeError(f"{where}: unknown attribute {word!r}")
    if b.no_run is None:
        if lang not in RUNNABLE:
            raise ReadmeError(
                f"{where}: a ```{lang or '(no language)'} block is neither runnable "
                f"({', '.join(sorted(RUNNABLE))}) nor marked `no-run: <reason>`"
            )
        if lang == "c" and "file" not in b.keys:
            raise ReadmeError(f"{where}: a C block needs file=NAME (compiled by a later block)")
        if "background" in b.flags and "ready" not in b.keys:
            raise ReadmeError(f"{where}: a background block needs ready=HOST:PORT,...")
    return b


def wait_listening(addrs: list[str], procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    deadline = time.monotonic() + 120
    pending = list(addrs)
    while pending:
        for p, log in zip(procs, logs):
            if p.poll() is not None:
                raise ReadmeError(f"`{p.args}` exited with {p.returncode} before {pending} listened:\n{log.read_text()}")
        host, port = pending[0].rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            pending.pop(0)
        except OSError:
            if time.monotonic() > deadline:
                raise ReadmeError(f"nothing listens on {pending[0]} after 120 s") from None
            time.sleep(0.05)  # poll interval of a condition checked above, not a wait for it


class Background:
    """The long-running processes of `background` blocks (one, plus the `adds` blocks after it),
    (re)started on demand."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.started: set[int] = set()
        self.cwd: Path | None = None
        self.procs: list[subprocess.Popen[bytes]] = []
        self.starts = 0

    def define(self, b: Block, cwd: Path) -> None:
        if "adds" in b.flags:
            if not self.blocks:
                raise ReadmeError(f"README line {b.line}: `adds` needs an earlier `background` block")
        else:
            self.stop()
            self.blocks = []
        self.blocks.append(b)
        self.cwd = cwd

    def ensure_up(self, env: dict[str, str]) -> None:
        if not self.blocks or self.cwd is None:
            raise ReadmeError("a `uses-cluster` block comes before any `background` block")
        if not self.procs:
            self.started = set()
        for block in self.blocks:
            if block.line not in self.started:
                self.start(block, env)

    def start(self, block: Block, env: dict[str, str]) -> None:
        assert self.cwd is not None
        self.starts += 1
        self.started.add(block.line)
        cmds = [c for c in block.text.splitlines() if c.strip() and not c.lstrip().startswith("#")]
        logs = []
        procs = []
        for n, cmd in enumerate(cmds):
            log = self.cwd.parent / f"background-{block.line}-{self.starts}-{n}.log"
            logs.append(log)
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(["bash", "-c", f"exec {cmd}"], cwd=self.cwd, env=env, stdout=out, stderr=out)
                )
        self.procs.extend(procs)
        print(f"   started {len(cmds)} background processes (README line {block.line})", flush=True)
        wait_listening(block.keys["ready"].split(","), procs, logs)

    def stop(self) -> None:
        # An added block ran its course: a restarted cluster is the first block's alone.
        self.blocks = [b for b in self.blocks if "adds" not in b.flags]
        procs, self.procs = self.procs, []
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        failed = []
        for p in procs:
            try:
                code = p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                failed.append(f"`{p.args}` ignored SIGTERM for 60 s")
                continue
            if code != 0:
                failed.append(f"`{p.args}` exited with {code} after SIGTERM")
        if failed:
            raise ReadmeError("; ".join(failed))
        if procs:
            print(f"   stopped {len(procs)} background processes (SIGTERM, clean exit)", flush=True)


def mirror(scratch: Path) -> Path:
    m = scratch / "checkout"
    m.mkdir()
    for entry in sorted(ROOT.iterdir()):
        if entry.name not in {"Cargo.toml", "Cargo.lock", ".git", "data"}:
            (m / entry.name).symlink_to(entry)
    return m


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int, what: str) -> None:
    try:
        r = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ReadmeError(f"{what} did not finish within {timeout} s") from None
    if r.returncode != 0:
        raise ReadmeError(f"{what} exited with {r.returncode}")


def run_all(readme: Path) -> None:
    blocks = parse(readme)
    python = ROOT / "build" / "venv" / "bin" / "python"
    scratch = ROOT / "build" / "readme"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    checkout = mirror(scratch)
    app = scratch / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "readme-app", "private": true}\n')
    env = dict(os.environ, JK=str(ROOT))
    background = Background()
    ran = skipped = 0
    try:
        for i, b in enumerate(blocks):
            where = f"{readme.name}:{b.line} ({b.lang})"
            if b.no_run is not None:
                print(f"== {where}: not run: {b.no_run}", flush=True)
                skipped += 1
                continue
            print(f"== {where}", flush=True)
            if "background" in b.flags:
                background.define(b, checkout)
                background.ensure_up(env)
            elif "uses-cluster" in b.flags:
                background.ensure_up(env)
            elif b.lang != "c":  # a C block only writes its file
                background.stop()
            if "background" in b.flags:
                pass
            elif b.lang == "sh":
                cwd = {"app": app, "checkout": ROOT}.get(b.keys.get("in", ""), checkout)
                run(["bash", "-e", "-c", b.text], cwd, env, TIMEOUT["sh"], where)
            elif b.lang == "js":
                script = app / f"readme-{b.line}.mjs"
                script.write_text(b.text)
                run(["node", script.name], app, env, TIMEOUT["js"], where)
            elif b.lang == "python":
                if not python.exists():
                    raise ReadmeError(f"{python} missing: run `make python-wheel` first")
                script = scratch / f"readme-{b.line}.py"
                script.write_text(b.text)
                run([str(python), str(script)], scratch, env, TIMEOUT["python"], where)
            elif b.lang == "c":
                name = b.keys["file"]
                if not any(name in later.text and later.no_run is None for later in blocks[i + 1 :]):
                    raise ReadmeError(f"{where}: no later runnable block compiles {name}")
                (checkout / name).write_text(b.text)
                print(f"   written to {name}, compiled and run by a later block", flush=True)
            ran += 1
    finally:
        background.stop()
    print(f"{readme.name}: {ran} blocks run, {skipped} not run (each with its reason)", flush=True)


def in_private_netns(argv: list[str]) -> int | None:
    """Re-runs this script in a private network namespace; None when the kernel refuses one."""
    if os.environ.get(NETNS_ENV) == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return None
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0 or shutil.which("ip") is None:
        return None
    env = dict(os.environ, **{NETNS_ENV: "1"})
    return subprocess.run(["unshare", "-rn", sys.executable, __file__, *argv], env=env).returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    ap.add_argument("--check", action="store_true", help="only parse and check every block's marking")
    args = ap.parse_args()
    try:
        if args.check:
            blocks = parse(args.readme)
            print(f"{args.readme.name}: {len(blocks)} blocks, each runnable or marked")
            return 0
        code = in_private_netns(sys.argv[1:])
        if code is not None:
            return code
        if os.environ.get(NETNS_ENV) != "1":
            print("no private network namespace here: taking /tmp/journalkeeper-readme.lock", flush=True)
            lock = open("/tmp/journalkeeper-readme.lock", "w")
            fcntl.flock(lock, fcntl.LOCK_EX)
        run_all(args.readme)
        return 0
    except ReadmeError as e:
        print(f"readme-test: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
