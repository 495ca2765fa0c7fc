"""A webhook receiver as a real process on loopback, controlled by the test.

`python -m tests.support.receiver` serves HTTP on 127.0.0.1 (a free port, printed
on its first line). Every POST is recorded (path, headers, body, the answer given,
time) before it is answered; what it answers is planned per path by the test:

- `POST /_plan/<path>` `{"plan": [500, 500, "hang", 200], "default": 200,
  "hang_seconds": 30, "fail_rate": 0, "hang_rate": 0, "seed": 1}`: answers taken
  from `plan` in order, then `default`; with rates, the default is replaced at
  random by a 500 or a hang.
- `GET /_received` → every request recorded so far, in arrival order.

`Receiver` starts and drives it from a test.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.plans: dict[str, dict[str, Any]] = {}
        self.received: list[dict[str, Any]] = []

    def answer_for(self, path: str) -> Any:
        with self.lock:
            plan = self.plans.setdefault(path, {"plan": [], "default": 200})
            if plan["plan"]:
                return plan["plan"].pop(0), plan
            rng: random.Random = plan.setdefault(
                "rng", random.Random(plan.get("seed", 1))
            )
            roll = rng.random()
            if roll < plan.get("hang_rate", 0):
                return "hang", plan
            if roll < plan.get("hang_rate", 0) + plan.get("fail_rate", 0):
                return 500, plan
            return plan["default"], plan


STATE = _State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: bytes = b"", kind: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/_received":
            with STATE.lock:
                body = json.dumps(STATE.received).encode()
            self._reply(200, body, "application/json")
            return
        self._reply(404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.startswith("/_plan/"):
            plan = json.loads(body)
            plan.setdefault("plan", [])
            plan.setdefault("default", 200)
            with STATE.lock:
                STATE.plans["/" + self.path.removeprefix("/_plan/")] = plan
            self._reply(204)
            return
        answer, plan = STATE.answer_for(self.path)
        with STATE.lock:
            STATE.received.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode(),
                    "answer": answer,
                    "at": time.time(),
                }
            )
        if answer == "hang":
            time.sleep(float(plan.get("hang_seconds", 30)))
            answer = 200
        self._reply(int(answer), b"ok")


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sys.stdout.write(f"{server.server_address[1]}\n")
    sys.stdout.flush()
    server.serve_forever()


@dataclass
class Receiver:
    """The receiver process and how to talk to it."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/hook") -> str:
        return f"{self.base}{path}"

    def plan(self, path: str = "/hook", *answers: int | str, **options: Any) -> None:
        done = httpx.post(
            f"{self.base}/_plan{path}",
            json={"plan": list(answers), **options},
            timeout=5,
        )
        assert done.status_code == 204

    def received(self, path: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = httpx.get(
            f"{self.base}/_received", timeout=5
        ).json()
        return [r for r in found if path is None or r["path"] == path]

    def bodies(self, path: str = "/hook") -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.received(path)]


@contextmanager
def receiver() -> Iterator[Receiver]:
    """A receiver process for the block; killed after it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.receiver"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield Receiver(process, port)
    finally:
        process.kill()
        process.wait()


if __name__ == "__main__":
    main()
