"""Real `ipt-workflow serve` processes in production mode, and in-process apps.

Every server runs in a process group of its own, so the fixture that started it can
kill it and every worker it forked, whatever the test did to it, also when the test
failed. Nothing here waits without a bound.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
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
from fastapi.testclient import TestClient

from ipt_workflow.api.app import create_app
from ipt_workflow.composition.builders import build_key_store
from ipt_workflow.composition.settings import Settings
from ipt_workflow.storage.keys import Role, make_key

START_SECONDS = 60.0
ROLES: dict[str, tuple[Role, list[str]]] = {
    "clinician": ("clinician", ["clinic-a"]),
    "other_clinician": ("clinician", ["clinic-b"]),
    "auditor": ("auditor", ["clinic-a"]),
    "ops": ("ops", ["clinic-a"]),
    "all_ops": ("ops", ["*"]),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Could a new server listen on this port (as uvicorn does, SO_REUSEADDR)?"""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def secrets_env() -> dict[str, str]:
    """Production secrets, fresh for each server: a cipher key and the two others."""
    return {
        "IPT_CIPHER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "IPT_REFERENCE_KEY": secrets.token_urlsafe(32),
        "IPT_CHECKPOINT_KEY": secrets.token_urlsafe(32),
    }


def add_tokens(database_url: str) -> dict[str, str]:
    """An API key per role of ROLES in this database; their tokens by role name."""
    store = build_key_store(Settings(database_url=database_url))
    tokens = {}
    try:
        for name, (role, clinics) in ROLES.items():
            key, token = make_key(role, clinics, f"{name}-actor")
            store.add(key, token)
            tokens[name] = token
    finally:
        store.close()
    return tokens


def children_of(pid: int) -> list[int]:
    """Every process whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces: the fields after it are safe.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.append(int(entry.name))
    return found


def rss_kib(pid: int) -> int:
    """Resident memory of one process, in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Served:
    """A running server: where it listens, its process group and its log file."""

    base: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    tokens: dict[str, str]
    database_url: str
    env: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str | None = "clinician", **extra: str) -> dict[str, str]:
        auth = {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}
        return {**auth, **extra}

    def get(
        self,
        path: str,
        who: str | None = "clinician",
        timeout: float = 30,
        **params: Any,
    ) -> httpx.Response:
        return httpx.get(
            f"{self.base}{path}",
            headers=self.headers(who),
            params=params,
            timeout=timeout,
        )

    def post(
        self,
        path: str,
        body: Any = None,
        who: str = "clinician",
        timeout: float = 30,
        **headers: str,
    ) -> httpx.Response:
        return httpx.post(
            f"{self.base}{path}",
            json=body,
            headers=self.headers(who, **headers),
            timeout=timeout,
        )

    def open_case(self, client_ref: str, who: str = "clinician") -> dict[str, Any]:
        answer = self.post(
            "/cases",
            {
                "client_ref": client_ref,
                "protocol": "ipt",
                "client_age": 34,
                "clinician_id": "t-7",
            },
            who=who,
        )
        assert answer.status_code == 201, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def workers(self) -> list[int]:
        """uvicorn's worker processes (not multiprocessing's resource tracker)."""
        found = []
        for pid in children_of(self.process.pid):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in command:
                found.append(pid)
        return found

    def rss_kib(self) -> int:
        """The server's resident memory: the parent and every child process."""
        pids = [self.process.pid, *children_of(self.process.pid)]
        return sum(rss_kib(pid) for pid in pids)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill_group(self) -> None:
        """SIGKILL the server and every process of its group; reap the parent."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)


def wait_until(
    check: Callable[[], bool], seconds: float, what: str, every: float = 0.1
) -> None:
    """Poll `check` until it holds, at most `seconds`; fail naming `what`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(every)


def start_server(
    tmp_path: Path,
    database_url: str,
    *args: str,
    tokens: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
    ready: bool = True,
) -> Served:
    """`ipt-workflow serve` in production mode (keys, secrets) in its own group."""
    port = port or free_port()
    log_path = tmp_path / f"server-{port}-{time.monotonic_ns()}.log"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IPT_")},
        "IPT_DATABASE_URL": database_url,
        "IPT_LOG_FORMAT": "json",
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ipt_workflow.cli.main",
                "serve",
                "--port",
                str(port),
                *args,
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    served = Served(
        f"http://127.0.0.1:{port}",
        port,
        process,
        log_path,
        tokens or {},
        database_url,
        environment,
    )
    if not ready:
        return served
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {served.log_text()[-3000:]}")
        try:
            if httpx.get(f"{served.base}/healthz", timeout=1).status_code == 200:
                return served
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    served.kill_group()
    raise AssertionError("server did not start within 60 s")


ServerFactory = Callable[..., Served]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerFactory]:
    """Starts production servers on demand; kills every one and its group at the end.

    `servers(url, *args, env=...)` adds API keys to the database once, and reuses
    the same secrets for every server of that database (a restart keeps its keys).
    """
    started: list[Served] = []
    known: dict[str, tuple[dict[str, str], dict[str, str]]] = {}

    def start(
        database_url: str,
        *args: str,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> Served:
        if database_url not in known:
            known[database_url] = (add_tokens(database_url), secrets_env())
        tokens, keys = known[database_url]
        served = start_server(
            tmp_path,
            database_url,
            *args,
            tokens=tokens,
            env={**keys, **(env or {})},
            port=port,
        )
        started.append(served)
        return served

    try:
        yield start
    finally:
        for served in started:
            served.kill_group()


@dataclass(frozen=True)
class InProcess:
    """The real app in this process over a real store, with a token per role."""

    client: TestClient
    tokens: dict[str, str]
    settings: Settings

    def headers(self, who: str = "clinician") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str = "clinician", **params: Any) -> httpx.Response:
        answer: httpx.Response = self.client.get(
            path, headers=self.headers(who), params=params
        )
        return answer

    def post(
        self, path: str, body: Any = None, who: str = "clinician"
    ) -> httpx.Response:
        answer: httpx.Response = self.client.post(
            path, json=body, headers=self.headers(who)
        )
        return answer

    def open_case(self, client_ref: str, who: str = "clinician") -> dict[str, Any]:
        answer = self.post(
            "/cases",
            {
                "client_ref": client_ref,
                "protocol": "ipt",
                "client_age": 34,
                "clinician_id": "t-7",
            },
            who=who,
        )
        assert answer.status_code == 201, answer.text
        found: dict[str, Any] = answer.json()
        return found


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[Callable[..., InProcess]]:
    """Builds the app in-process over a SQLite file; closes every one at the end."""
    opened: list[TestClient] = []

    def build(
        database_url: str | None = None,
        tokens: dict[str, str] | None = None,
        **values: Any,
    ) -> InProcess:
        url = database_url or f"sqlite:///{tmp_path / 'ipt.db'}"
        settings = Settings(database_url=url, rate_limit_per_second=0, **values)
        found = tokens if tokens is not None else add_tokens(url)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return InProcess(client, found, settings)

    try:
        yield build
    finally:
        for client in reversed(opened):
            client.__exit__(None, None, None)


@dataclass
class Load:
    """Clinic systems as processes of their own, each writing what it was told."""

    clients: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def attempts(self) -> list[dict[str, Any]]:
        found = []
        for path in self.logs:
            if path.exists():
                found += [json.loads(line) for line in path.read_text().splitlines()]
        return found

    def acknowledged(self) -> dict[str, dict[str, Any]]:
        """Every key that got a 2xx, with the (first) answer it got."""
        found: dict[str, dict[str, Any]] = {}
        for line in self.attempts():
            if 200 <= line["status"] < 300:
                found.setdefault(line["key"], line)
        return found

    def sent_keys(self) -> set[str]:
        return {line["key"] for line in self.attempts()}

    def wait(self, seconds: float) -> list[int | None]:
        deadline = time.monotonic() + seconds
        for client in self.clients:
            with contextlib.suppress(subprocess.TimeoutExpired):
                client.wait(timeout=max(0.1, deadline - time.monotonic()))
        return [c.poll() for c in self.clients]

    def stop(self) -> None:
        for client in self.clients:
            if client.poll() is None:
                client.kill()
                client.wait()


@pytest.fixture
def load(tmp_path: Path) -> Iterator[Callable[..., Load]]:
    """Starts load-client processes; kills any still running at the end."""
    started: list[Load] = []

    def start(
        served: Served, clients: int, commands: int, seconds: float = 120
    ) -> Load:
        logs = [
            tmp_path / f"client-{n}-{time.monotonic_ns()}.jsonl" for n in range(clients)
        ]
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.reliability.load_client",
                    served.base,
                    served.tokens["clinician"],
                    f"c{n}-{secrets.token_hex(3)}",
                    str(commands),
                    str(logs[n]),
                    str(seconds),
                ],
                cwd=Path(__file__).resolve().parents[2],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for n in range(clients)
        ]
        found = Load(processes, logs)
        started.append(found)
        return found

    try:
        yield start
    finally:
        for found in started:
            found.stop()


def history(served: Served, case_id: str) -> list[dict[str, Any]]:
    """Every event of a case, through the API, page by page."""
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = served.get(f"/cases/{case_id}/history", after_version=after, limit=1000)
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        if body["next_after_version"] is None:
            return items
        after = body["next_after_version"]


def check_exactly_once(served: Served, load: Load) -> int:
    """Every acknowledged command is in its case's history once; nothing unsent is.

    Returns how many acknowledged commands were checked.
    """
    acknowledged = load.acknowledged()
    sent = load.sent_keys()
    cases = {line["case_id"] for line in acknowledged.values()}
    seen: dict[str, int] = {}
    for case_id in cases:
        for item in history(served, case_id):
            seen[item["command_id"]] = seen.get(item["command_id"], 0) + 1
    missing = sorted(set(acknowledged) - set(seen))
    doubled = sorted(k for k, n in seen.items() if n > 1 and k in sent)
    unsent = sorted(set(seen) - sent)
    assert not missing, f"acknowledged but not in the history: {missing}"
    assert not doubled, f"written more than once: {doubled}"
    assert not unsent, f"in the history, but no client sent it: {unsent}"
    return len(acknowledged)
