"""The service's processes as deployed: `serve --workers N` and `projections run`.

Each runs in a session of its own, so a Ctrl-C at the terminal reaches only the
harness, which then stops them (SIGTERM to the group, SIGKILL if they linger).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

BIN = Path(sys.executable).parent
STOP_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(
    args: Sequence[str], env: Mapping[str, str], timeout: float = 3600
) -> subprocess.CompletedProcess[str]:
    """One `ipt-workflow` command, as an operator would type it."""
    done = subprocess.run(
        [str(BIN / "ipt-workflow"), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"ipt-workflow {' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}"
        )
    return done


@dataclass
class Managed:
    """A started process group, stopped by `stop`."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(STOP_SECONDS)
        # Workers left behind by a dead master would keep the port: end the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(
                f"{self.name} exited ({self.process.returncode}):\n{tail}"
            )

    def tree(self) -> list[int]:
        """This process and every descendant."""
        return [self.pid, *descendants(self.pid)]

    def rss_mib(self) -> float:
        return sum(rss_kib(p) for p in self.tree()) / 1024


def start(
    name: str, args: Sequence[str], env: Mapping[str, str], logs: Path
) -> Managed:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with open(log, "ab") as sink:
        process = subprocess.Popen(
            [str(BIN / "ipt-workflow"), *args],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )
    return Managed(name, process, log)


class StartFailed(RuntimeError):
    pass


@contextmanager
def server(
    env: Mapping[str, str], logs: Path, *, workers: int
) -> Iterator[tuple[Managed, str]]:
    """`ipt-workflow serve --workers N` once every worker started; stopped on exit."""
    with servers(env, logs, workers=workers, count=1) as started:
        yield started[0]


@contextmanager
def servers(
    env: Mapping[str, str], logs: Path, *, workers: int, count: int
) -> Iterator[list[tuple[Managed, str]]]:
    """`count` API processes on ports of their own, started together."""
    ports = [free_port() for _ in range(count)]
    running: list[Managed] = []
    try:
        for port in ports:
            running.append(
                start(
                    f"serve-{workers}w-{port}",
                    [
                        "serve",
                        *("--host", "127.0.0.1", "--port", str(port)),
                        *("--workers", str(workers)),
                    ],
                    env,
                    logs,
                )
            )
        for managed, port in zip(running, ports, strict=True):
            _wait_started(managed, f"http://127.0.0.1:{port}", workers)
        yield [
            (m, f"http://127.0.0.1:{p}") for m, p in zip(running, ports, strict=True)
        ]
    finally:
        for managed in running:
            managed.stop()


@contextmanager
def projections(env: Mapping[str, str], logs: Path) -> Iterator[Managed]:
    """`ipt-workflow projections run`, its own process; stopped on exit."""
    managed = start("projections", ["projections", "run"], env, logs)
    try:
        deadline = time.monotonic() + 60
        while "projections running" not in managed.log.read_text(errors="replace"):
            managed.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError("projections did not start within 60 s")
            time.sleep(0.1)
        yield managed
    finally:
        managed.stop()


def _wait_started(managed: Managed, base: str, workers: int) -> None:
    """Every worker logged its start and /healthz answers; StartFailed otherwise."""
    deadline = time.monotonic() + 90
    while True:
        log = managed.log.read_text(errors="replace")
        if "startup failed" in log or "failed to start" in log:
            raise StartFailed(f"a worker failed to start:\n{log[-2000:]}")
        if managed.process.poll() is not None:
            raise StartFailed(f"exited with {managed.process.returncode}")
        if log.count('"api_started"') >= workers:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise StartFailed("no answer within 90 s")
        time.sleep(0.1)


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU time the processes used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def python_children(pid: int) -> list[int]:
    """The worker processes of a uvicorn master (not its resource tracker)."""
    found = []
    for child in descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing.spawn" in cmdline or b"spawn_main" in cmdline:
            found.append(child)
    return found


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP raise SystemExit, SIGINT KeyboardInterrupt: so every
    `finally` stops what it started."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
    # Started from a script in the background, SIGINT is inherited as ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
