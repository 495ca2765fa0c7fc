"""Why a plain POST to a two-worker server was once reset, and the proof it is not now.

`test_concurrent_session_posts_to_two_workers_get_gap_free_numbers[postgres]` failed
once on a busy machine with `Connection reset by peer` on a sequential POST. The client
opens a new connection per request (no keep-alive race), and a listen backlog of 2048
does not overflow with one client. What resets accepted connections is uvicorn's
supervisor: every half second it pings each worker and SIGKILLs one that has not
answered within `timeout_worker_healthcheck` (5 s by default), then starts another;
it logs that at INFO, below the `warning` level `serve` gave uvicorn, so the failing
run showed nothing. A worker not scheduled for 5 s, which a 2-core machine shared with
other test suites can do (or whose startup imports take that long), was killed with
the connections it had accepted. `serve` now gives workers
IPT_WORKER_HEALTHCHECK_SECONDS (30) before it replaces them.

Here the stall is made on purpose: both workers of a real server are stopped
(SIGSTOP) for 7 s while a request is in flight, then continued.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.reliability.conftest import ServerFactory, wait_until

STALL_SECONDS = 7.0


def test_workers_stalled_for_7_s_are_not_killed_under_their_requests(
    servers: ServerFactory, tmp_path: Path
) -> None:
    """Caught: the supervisor SIGKILLed both workers after 5 s without a ping answer,
    and the request in flight got `Connection reset by peer`."""
    server = servers(
        f"sqlite:///{tmp_path / 'ipt.db'}",
        "--workers",
        "2",
        env={"IPT_RUN_PROJECTIONS": "false"},
    )
    wait_until(lambda: len(server.workers()) == 2, 30, "two workers")
    case = server.open_case("R-1")
    workers = server.workers()
    answers: list[httpx.Response] = []
    errors: list[BaseException] = []

    def in_flight() -> None:
        # Nobody projects, so this read waits its whole 5 s inside a worker.
        try:
            answers.append(
                server.get(f"/cases/{case['id']}", min_position=case["position"])
            )
        except BaseException as error:
            errors.append(error)

    reader = threading.Thread(target=in_flight)
    reader.start()
    time.sleep(0.5)
    try:
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        time.sleep(STALL_SECONDS)
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):  # killed meanwhile
                os.kill(pid, signal.SIGCONT)
    reader.join(timeout=60)
    after = server.post(
        "/cases/" + case["id"] + "/inventory",
        {"relationships": [{"role": "partner", "closeness": 1, "conflict": True}]},
    )

    assert not errors, f"the request in flight failed: {errors!r}"
    assert [a.status_code for a in answers] == [503]
    assert answers[0].json()["code"] == "projection_lagging"
    assert sorted(server.workers()) == sorted(workers)  # none was replaced
    assert after.status_code == 200, after.text
