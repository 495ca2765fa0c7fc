"""The API as a real `ipt-workflow serve` process whose log lines are kept in a file."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

CLINICIAN = {"Authorization": "Bearer dev-clinician"}
START_SECONDS = 30.0


UUID_IN_PATH = re.compile(
    r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def route_of(path: str) -> str:
    """The route template a path is answered by (`/cases/{case_id}/...`)."""
    path = UUID_IN_PATH.sub("/{case_id}", path)
    return re.sub(r"/transitions/\w+$", "/transitions/{name}", path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OpsServer:
    """A running server, its base URL and the file its stderr (the logs) goes to."""

    base: str
    process: subprocess.Popen[bytes]
    log_path: Path
    answers: list[httpx.Response] = field(default_factory=list)

    def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        answer = httpx.post(
            f"{self.base}{path}",
            json=body,
            headers={**CLINICIAN, **(headers or {})},
            timeout=30,
        )
        self.answers.append(answer)
        return answer

    def get(
        self, path: str, headers: dict[str, str] | None = None, **params: Any
    ) -> httpx.Response:
        answer = httpx.get(
            f"{self.base}{path}",
            headers={**CLINICIAN, **(headers or {})},
            params=params,
            timeout=30,
        )
        self.answers.append(answer)
        return answer

    def ok(self, path: str, body: Any = None) -> dict[str, Any]:
        answer = self.post(path, body)
        assert answer.status_code in (200, 201), f"{path}: {answer.text}"
        found: dict[str, Any] = answer.json()
        return found

    def stop(self) -> int:
        """SIGTERM, as an orchestrator stops it; the exit code. Whatever of its
        process group is still there afterwards is killed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            self.kill_group()

    def kill_group(self) -> None:
        """SIGKILL the server and its workers (its own process group): a worker
        can outlive a parent that was killed, and must not outlive the test."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)

    def log_lines(self) -> list[dict[str, Any]]:
        """Every line written so far; each must be one JSON object."""
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def start_server(
    tmp_path: Path, database_url: str, *args: str, dev: bool = True, **env: str
) -> OpsServer:
    """`ipt-workflow serve` on a free port, its logs in a file; with `dev=False` as
    in production (keys and secrets must come in `env`)."""
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    environment = {
        **os.environ,
        "IPT_DATABASE_URL": database_url,
        "IPT_LOG_FORMAT": "json",
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ipt_workflow.cli.main",
                "serve",
                *(["--dev"] if dev else []),
                "--port",
                str(port),
                *args,
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    server = OpsServer(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log_path.read_text()}")
        try:
            # A probe given up on client-side may still be answered and counted by
            # the server, so wait long enough for a slow first answer.
            probe = httpx.get(f"{server.base}/healthz", timeout=10)
        except httpx.HTTPError:
            time.sleep(0.1)
            continue
        if probe.status_code == 200:
            server.answers.append(probe)
            return server
        time.sleep(0.1)
    server.kill_group()
    raise AssertionError("server did not start within 30 s")


ServerFactory = Callable[..., OpsServer]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerFactory]:
    """Starts servers on demand; stops whatever is still running at the end."""
    started: list[OpsServer] = []

    def start(database_url: str, *args: str, **env: str) -> OpsServer:
        server = start_server(tmp_path, database_url, *args, dev=True, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill_group()


def wait_until(
    check: Callable[[], bool], seconds: float, what: str, every: float = 0.2
) -> None:
    """Poll `check` until it holds, at most `seconds`; fail naming `what`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(every)
