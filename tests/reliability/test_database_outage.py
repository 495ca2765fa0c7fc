"""The database going away is survivable, under load, for the API and the projections.

A real `ipt-workflow serve --workers 2` and a real `ipt-workflow projections run` over
the real PostgreSQL cluster, under a bounded load from three client processes; the
cluster is stopped for a few seconds in the middle of it and started again. Neither
process is restarted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import (
    Load,
    Served,
    ServerFactory,
    check_exactly_once,
    wait_until,
)
from tests.reliability.load_client import ANSWER_WITHIN
from tests.support.postgres import Cluster

CLIENTS = 3
COMMANDS = 30
OUTAGE_SECONDS = 4.0
RECOVERY_WITHIN = 60.0


@pytest.fixture
def projections_process(
    tmp_path: Path,
) -> Iterator[Callable[[Served], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(served: Served) -> subprocess.Popen[bytes]:
        heartbeat = tmp_path / "projections.alive"
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
            env={**served.env, "IPT_LOG_FORMAT": "json"},
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "projections.log").open("wb"),
            start_new_session=True,
        )
        started.append(process)
        # Running, not starting: a start-up failure stops the process by design (D31).
        wait_until(heartbeat.exists, 60, "the projection process runs")
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait(timeout=30)


def test_an_outage_under_load_is_503s_then_recovery_with_nothing_acknowledged_lost(
    servers: ServerFactory,
    postgres: Cluster,
    postgres_url: str,
    load: Callable[..., Load],
    projections_process: Callable[[Served], subprocess.Popen[bytes]],
) -> None:
    """503 while it is down (never a 500, never a wait past the client's 10 s), the
    same processes answering again after, every 2xx in the history once, and the read
    models caught up by the same projection process."""
    server = servers(postgres_url, "--workers", "2")
    projector = projections_process(server)
    clients = load(server, CLIENTS, COMMANDS, seconds=180)
    wait_until(lambda: len(clients.acknowledged()) >= 6, 60, "the load is running")

    stopped = False
    try:
        postgres.stop()
        stopped = True
        down_at = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        readiness_down = server.get("/readyz", who=None, timeout=15)
    finally:
        if stopped:
            postgres.start()
    up_at = time.monotonic()
    codes = clients.wait(180)
    attempts = clients.attempts()
    last = max(a["position"] for a in clients.acknowledged().values())
    deadline = time.monotonic() + RECOVERY_WITHIN
    caught_up = server.get("/projections/caseload", min_position=last, timeout=30)
    while caught_up.status_code != 200 and time.monotonic() < deadline:
        caught_up = server.get("/projections/caseload", min_position=last, timeout=30)

    assert codes == [0] * CLIENTS, codes
    statuses = {a["status"] for a in attempts}
    assert 503 in statuses, statuses
    assert statuses <= {0, 200, 201, 503}, statuses
    assert not [
        a for a in attempts if a["status"] == 0 and a.get("error") != "ConnectError"
    ]
    assert max(a["seconds"] for a in attempts) < ANSWER_WITHIN
    assert readiness_down.status_code == 503
    assert up_at - down_at >= OUTAGE_SECONDS
    assert server.process.poll() is None  # the same server, never restarted
    assert projector.poll() is None  # the same projection process
    checked = check_exactly_once(server, clients)
    assert checked == CLIENTS * (COMMANDS + 1)
    assert caught_up.status_code == 200, caught_up.text
    cases = {line["case_id"] for line in clients.acknowledged().values()}
    rows = {r["case_id"] for r in caught_up.json()["items"]}
    assert cases <= rows
