"""/metrics after a known sequence of commands, through two workers on PostgreSQL."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from ipt_workflow.domain.commands import AgreeContract
from ipt_workflow.domain.courses import Course
from tests.ops.conftest import OpsServer, ServerFactory, route_of
from tests.support.drivers import OverHttp, opening_body, request_for

Key = tuple[str, tuple[tuple[str, str], ...]]


def scrape(server: OpsServer) -> dict[Key, float]:
    """Every sample of /metrics by name and labels."""
    answer = server.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples: dict[Key, float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def moved(
    before: dict[Key, float], after: dict[Key, float], name: str
) -> dict[tuple[tuple[str, str], ...], float]:
    """How much each labelled series of `name` grew, leaving out /metrics itself."""
    found = {}
    for (sample, labels), value in after.items():
        if sample != name or ("route", "/metrics") in labels:
            continue
        delta = value - before.get((sample, labels), 0.0)
        if delta:
            found[labels] = delta
    return found


def labels(**given: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(given.items()))


def worker_pids(folder: Path) -> set[str]:
    """The processes that wrote counters into the multiprocess folder."""
    return {f.stem.split("_")[1] for f in folder.glob("counter_*.db")}


def until_both_workers_served(server: OpsServer, folder: Path) -> None:
    """Bursts of concurrent probes until each worker has answered some."""
    for _ in range(20):
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda _: server.get("/healthz"), range(32)))
        if len(worker_pids(folder)) == 2:
            return
    raise AssertionError(f"one worker took every request: {worker_pids(folder)}")


def test_counters_move_by_exactly_the_commands_sent(
    servers: ServerFactory, postgres_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "metrics"
    server = servers(
        postgres_url, "--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(folder)
    )
    until_both_workers_served(server, folder)
    course = Course(age=29)
    open_body = opening_body(course.opening(client_ref="MX-5521-PRIVATE"))
    probes = sum(a.request.url.path == "/healthz" for a in server.answers)
    before = scrape(server)
    since = len(server.answers)

    opened = server.post("/cases", open_body)
    again = server.post("/cases", open_body)
    case = f"/cases/{opened.json()['id']}"
    OverHttp(server.post).run(opened.json()["id"], course.inventory())
    refused = server.post(f"{case}/transitions/start_middle")
    invalid = server.post(f"{case}/focus", {"primary_area": "unknown_area"})
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    route, contract = request_for(AgreeContract.parse(sessions=12))
    first = server.post(f"{case}/{route}", contract, headers=key)
    retried = server.post(f"{case}/{route}", contract, headers=key)
    missing = server.post(
        f"/cases/{uuid.uuid4()}/focus",
        {"primary_area": "grief", "client_agreed": True},
    )
    read = server.get(case)
    answers = server.answers[since:]
    after = scrape(server)

    healthz = labels(method="GET", route="/healthz", status="200")
    assert before[("ipt_http_requests_total", healthz)] == probes
    assert len(worker_pids(folder)) == 2
    statuses = [a.status_code for a in (opened, again, refused, invalid, first)]
    assert statuses == [201, 200, 409, 422, 200]
    assert (retried.status_code, missing.status_code, read.status_code) == (
        200,
        404,
        200,
    )
    rules = [v["rule"] for v in refused.json()["violations"]]
    assert len(rules) >= 3
    routes: Counter[tuple[tuple[str, str], ...]] = Counter()
    durations: Counter[tuple[tuple[str, str], ...]] = Counter()
    for a in answers:
        method, route = a.request.method, route_of(a.request.url.path)
        routes[labels(method=method, route=route, status=str(a.status_code))] += 1
        durations[labels(method=method, route=route)] += 1
    assert moved(before, after, "ipt_http_requests_total") == routes
    assert moved(before, after, "ipt_http_request_duration_seconds_count") == (
        durations
    )
    assert moved(before, after, "ipt_commands_total") == {
        labels(command="open_case", outcome="created"): 1,
        labels(command="open_case", outcome="replayed"): 1,
        labels(command="record_inventory", outcome="recorded"): 1,
        labels(command="start_middle", outcome="refused"): 1,
        labels(command="contract", outcome="recorded"): 1,
        labels(command="contract", outcome="replayed"): 1,
        labels(command="agree_focus", outcome="not_found"): 1,
    }
    assert moved(before, after, "ipt_guard_failures_total") == {
        labels(command="start_middle", rule=rule): 1 for rule in rules
    }
    assert moved(before, after, "ipt_command_retries_total") == {}
    case_events = 3  # opened, inventory, contract
    for name in ("caseload", "phase_board", "outcomes", "alerts", "fidelity"):
        projection = labels(projection=name)
        assert after[("ipt_projection_lag_events", projection)] == case_events
        assert after[("ipt_projection_position", projection)] == 0
        assert after[("ipt_projection_head", projection)] >= first.json()["position"]
    assert after[("ipt_database_reachable", ())] == 1
    open_max = after[("ipt_db_pool_connections", labels(pool="events", state="max"))]
    assert open_max == 2 * 15  # 5 + 10 overflow in each worker
    text = server.get("/metrics").text
    assert opened.json()["id"] not in text
    assert "MX-5521-PRIVATE" not in text
