"""/readyz: unready while the database is away or the read models lag; ready after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ipt_workflow.domain.commands import AgreeContract
from ipt_workflow.domain.courses import Course
from tests.ops.conftest import OpsServer, ServerFactory, wait_until
from tests.support.drivers import OverHttp
from tests.support.postgres import Cluster

COURSE = Course(age=30)


def readiness(server: OpsServer) -> tuple[int, dict[str, Any]]:
    answer = server.get("/readyz")
    found: dict[str, Any] = answer.json()
    return answer.status_code, found


def is_ready(server: OpsServer) -> bool:
    return readiness(server)[0] == 200


def open_case(server: OpsServer, client_ref: str) -> tuple[str, int]:
    """A new case's id and the log position of its first event."""
    case = OverHttp(server.post).opened(COURSE, client_ref, "t-7")
    return case["id"], case["position"]


def test_readyz_fails_while_postgresql_is_stopped_and_recovers_by_itself(
    servers: ServerFactory, postgres: Cluster, postgres_url: str
) -> None:
    server = servers(postgres_url)  # one worker: it runs the projections too
    wait_until(lambda: is_ready(server), 30, "ready before the outage")
    open_case(server, "R-BEFORE")
    seen: list[tuple[int, dict[str, Any]]] = []

    def runners_stopped() -> bool:
        seen.append(readiness(server))
        projections: str = seen[-1][1]["checks"]["projections"]
        return projections.startswith("stopped: ")

    stopped = False
    try:
        postgres.stop()
        stopped = True
        wait_until(runners_stopped, 30, "the runners notice the outage")
        scrape_down = server.get("/metrics")
    finally:
        if stopped:
            postgres.start()
    wait_until(lambda: is_ready(server), 60, "ready again after the restart", 0.5)
    case_id, position = open_case(server, "R-AFTER")
    caseload = server.get("/projections/caseload", min_position=position)
    metrics = server.get("/metrics").text

    status, down = seen[0]
    assert status == 503
    assert down["code"] == "unavailable"
    assert down["checks"]["database"].startswith("unreachable")
    assert "database" in down["detail"]
    assert all(code == 503 for code, _ in seen)
    assert scrape_down.status_code == 200
    assert "ipt_database_reachable 0.0" in scrape_down.text
    assert 'ipt_projection_running{projection="caseload"}' in scrape_down.text
    assert caseload.status_code == 200, caseload.text
    assert case_id in {row["case_id"] for row in caseload.json()["items"]}
    assert 'ipt_projection_running{projection="caseload"} 1.0' in metrics
    assert 'ipt_projection_restarts_total{projection="caseload"}' in metrics


def test_readyz_fails_when_the_read_models_lag_past_the_limit(
    servers: ServerFactory, tmp_path: Path
) -> None:
    server = servers(
        f"sqlite:///{tmp_path / 'ipt.db'}",
        IPT_RUN_PROJECTIONS="false",  # nobody projects: the lag can only grow
        IPT_READY_MAX_LAG_EVENTS="2",
    )
    case_id, _ = open_case(server, "L-1")
    ready_at_one = readiness(server)

    OverHttp(server.post).run(
        case_id, COURSE.inventory(), AgreeContract.parse(sessions=12)
    )
    status, body = readiness(server)

    assert ready_at_one[0] == 200
    assert ready_at_one[1]["checks"] == {"database": "ok", "events": "ok", "lag": "ok"}
    assert status == 503
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["lag"].startswith("behind: ")
    assert "caseload (3 events" in body["checks"]["lag"]
