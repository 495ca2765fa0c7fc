"""Graceful shutdown: requests in flight finish; the projections stop cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.ops.conftest import ServerFactory, wait_until


def test_sigterm_lets_a_request_in_flight_finish_and_then_stops_cleanly(
    servers: ServerFactory, tmp_path: Path
) -> None:
    # Nobody projects: a read waiting for a case's position takes the whole 5 s.
    server = servers(f"sqlite:///{tmp_path / 'ipt.db'}", IPT_RUN_PROJECTIONS="false")
    opened = server.ok(
        "/cases",
        {"client_ref": "S-1", "protocol": "ipt", "client_age": 30, "clinician_id": "t"},
    )
    answers: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: answers.append(
            server.get("/projections/caseload", min_position=opened["position"])
        )
    )

    slow.start()
    time.sleep(1.0)  # the request is now waiting inside the route
    server.process.send_signal(signal.SIGTERM)
    slow.join(timeout=30)
    code = server.process.wait(timeout=30)
    events = [line["event"] for line in server.log_lines()]

    assert [a.status_code for a in answers] == [503]
    assert answers[0].json()["code"] == "projection_lagging"
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    assert events.index("api_stopping") > events.index("request")
    assert events[-1] == "api_stopped"


def test_the_projection_process_stops_on_sigterm_with_exit_code_0(
    tmp_path: Path,
) -> None:
    heartbeat = tmp_path / "alive"
    env = {
        **os.environ,
        "IPT_DATABASE_URL": f"sqlite:///{tmp_path / 'ipt.db'}",
        "IPT_LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ipt_workflow.cli.main",
            "projections",
            "run",
            "--heartbeat",
            str(heartbeat),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(heartbeat.exists, 30, "the first heartbeat")
        first = heartbeat.stat().st_mtime_ns
        wait_until(
            lambda: heartbeat.stat().st_mtime_ns > first, 10, "a second heartbeat"
        )

        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    errors = process.stderr.read().decode() if process.stderr else ""

    assert code == 0, errors
    assert '"event": "projections_stopped"' in errors
