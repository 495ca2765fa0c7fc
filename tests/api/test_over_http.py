"""The API as a real server process, over real HTTP, on both back ends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    Close,
    Conclude,
    StartMiddle,
)
from ipt_workflow.domain.courses import Course
from tests.support.drivers import OverHttp, request_for, until_last

AUTH = {"Authorization": "Bearer dev-clinician"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]

    def post(self, path: str, body: Any = None, **headers: str) -> httpx.Response:
        return httpx.post(f"{self.base}{path}", json=body, headers={**AUTH, **headers})

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers=AUTH)

    def ok(self, path: str, body: Any = None) -> dict[str, Any]:
        answer = self.post(path, body)
        assert answer.status_code in (200, 201), f"{path}: {answer.text}"
        found: dict[str, Any] = answer.json()
        return found


def start_server(database_url: str, *args: str) -> Server:
    port = _free_port()
    env = {**os.environ, "IPT_DATABASE_URL": database_url}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ipt_workflow.cli.main",
            "serve",
            "--dev",
            "--port",
            str(port),
            *args,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"server exited: {process.stderr and process.stderr.read()!r}"
            )
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return Server(base, process)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("server did not start within 30 s")


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    running = start_server(database_url)
    yield running
    running.process.terminate()
    running.process.wait(timeout=10)


def test_an_adult_case_runs_its_whole_course_to_follow_up_and_closure(
    server: Server,
) -> None:
    course = Course(baseline=20, final=9, contract=12, today=date(2026, 9, 27))
    http = OverHttp(server.post)
    case_id = http.open(course)
    case = f"/cases/{case_id}"
    http.run(case_id, *until_last(course.commands(Phase.concluded), Conclude))

    concluded = http.run(case_id, Conclude.parse(maintenance_discussed=True))
    closing_early = server.post(f"{case}/transitions/close")
    accepted = http.run(case_id, AcceptFollowUp.parse(sessions=4, frequency="monthly"))
    http.run(case_id, course.session())
    closed = http.run(case_id, Close.parse())
    history = server.get(f"{case}/history").json()

    assert concluded["outcome"]["classification"] == "response"
    assert concluded["follow_up_offer"]["kind"] == "continuation"
    assert closing_early.status_code == 409
    assert closing_early.json()["violations"][0]["rule"] == "offer_awaiting_decision"
    assert accepted["phase"] == "follow_up"
    assert accepted["sessions_remaining"] == 4
    assert closed["phase"] == "closed"
    assert closed["sessions_held"] == {
        "beginning": 1,
        "middle": 9,
        "end": 2,
        "total": 12,
        "follow_up": 1,
    }
    assert history["items"][-1]["type"] == "CaseClosed"


def test_an_fb_ipt_case_cannot_start_the_middle_phase_without_a_parent_session(
    server: Server,
) -> None:
    course = Course(
        "fb-ipt",
        baseline=55,
        instrument="cdrsr",
        area="interpersonal_deficits",
        today=date(2026, 9, 9),
    )
    http = OverHttp(server.post)
    case_id = http.open(course)
    case = f"/cases/{case_id}"
    http.run(case_id, course.inventory(), course.focus())
    server.ok(f"{case}/contract", {})  # the protocol's default contract
    http.run(case_id, course.measure(course.baseline_score), course.session())

    refused = server.post(f"{case}/transitions/start_middle")
    http.run(case_id, course.session(attendees=["client", "parent"]))
    started = http.run(case_id, StartMiddle.parse())

    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert [v["rule"] for v in refused.json()["violations"]] == [
        "parent_session_required"
    ]
    assert started["phase"] == "middle"
    assert started["contract"] == {"sessions": 14, "frequency": "weekly"}


def test_concurrent_session_posts_to_two_workers_get_gap_free_numbers(
    database_url: str,
) -> None:
    course = Course(
        "ipt-g", baseline=30, instrument="bdi2", contract=20, today=date(2026, 10, 1)
    )
    running = start_server(database_url, "--workers", "2")
    try:
        http = OverHttp(running.post)
        case_id = http.drive(course, Phase.middle)
        case = f"/cases/{case_id}"
        group = course.session(attendees=["group"])
        barrier = threading.Barrier(16)
        answers: list[httpx.Response] = []

        def post_one() -> None:
            barrier.wait()
            route, body = request_for(group)
            answers.append(running.post(f"{case}/{route}", body))

        threads = [threading.Thread(target=post_one) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = running.get(case).json()
    finally:
        running.process.terminate()
        running.process.wait(timeout=10)

    assert [a.status_code for a in answers] == [201] * 16, [
        a.text for a in answers if a.status_code != 201
    ]
    numbers = sorted(a.json()["session"]["number"] for a in answers)
    assert numbers == list(range(2, 18))
    assert final["sessions_held"]["total"] == 17


def test_outside_dev_mode_the_server_refuses_to_start_and_says_why(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPT_")} | {
        "IPT_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"
    }

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ipt_workflow.cli.main",
            "serve",
            "--port",
            str(_free_port()),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "IPT_CIPHER_KEY is not set" in done.stderr
    assert "no API key exists" in done.stderr
    assert "IPT_REFERENCE_KEY is not set" in done.stderr
