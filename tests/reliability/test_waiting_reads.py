"""Finding 2: `min_position` cannot stall the workers.

A real server over a real SQLite file. With nobody projecting, a read that waits for
a real position waits its whole 5 s; many of them at once must leave `/healthz` (a
plain route on the same thread pool) answering at once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.reliability.conftest import ServerFactory

WAITERS = 60
"""More than the server's thread pool (40): each used to hold a thread for 5 s."""
HEALTHZ_WITHIN = 1.0


def test_a_min_position_beyond_the_head_is_refused_at_once(
    servers: ServerFactory, tmp_path: Path
) -> None:
    """Caught: it polled the database every 50 ms for 5 s, then said 503."""
    server = servers(f"sqlite:///{tmp_path / 'ipt.db'}")
    case = server.open_case("W-1")

    started = time.monotonic()
    answer = server.get(
        f"/cases/{case['id']}", min_position=case["position"] + 1_000_000
    )
    took = time.monotonic() - started

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "position_not_reached"
    assert took < 1.0


def test_sixty_waiting_reads_leave_healthz_answering_within_a_second(
    servers: ServerFactory, tmp_path: Path
) -> None:
    """Caught: 45 waiting reads made /healthz take 4.7 s (a thread each, asleep)."""
    server = servers(
        f"sqlite:///{tmp_path / 'ipt.db'}",
        env={"IPT_RUN_PROJECTIONS": "false", "IPT_RATE_LIMIT_PER_SECOND": "0"},
    )
    case = server.open_case("W-2")
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def wait_for_it(n: int) -> None:
        path = "/projections/caseload" if n % 2 else f"/cases/{case['id']}"
        answer = server.get(path, min_position=case["position"], timeout=30)
        with lock:
            answers.append(answer)

    waiters = [threading.Thread(target=wait_for_it, args=(n,)) for n in range(WAITERS)]
    for waiter in waiters:
        waiter.start()
    time.sleep(1.0)  # every waiter is now inside its 5 s wait
    probes = []
    with httpx.Client(timeout=10) as client:
        for _ in range(8):
            started = time.monotonic()
            probe = client.get(f"{server.base}/healthz")
            probes.append((probe.status_code, time.monotonic() - started))
            time.sleep(0.25)
    for waiter in waiters:
        waiter.join(timeout=60)

    assert all(code == 200 for code, _ in probes)
    assert max(took for _, took in probes) < HEALTHZ_WITHIN, probes
    assert len(answers) == WAITERS
    assert {a.status_code for a in answers} == {503}
    assert {a.json()["code"] for a in answers} == {"projection_lagging"}
