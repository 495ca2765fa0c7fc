"""`ipt-workflow projections run --metrics-port` serves the runners' metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.courses import Course
from projections.catalog import CATALOG
from tests.ops.conftest import free_port, wait_until
from tests.support.drivers import ThroughApplication


def samples(text: str) -> dict[tuple[str, str], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, sample.labels.get("projection", ""))] = sample.value
    return found


def test_the_projections_process_serves_running_position_and_lag(
    database_url: str,
) -> None:
    app = build_application(Settings(database_url=database_url))
    try:
        ThroughApplication(app).drive(Course(), Phase.middle)
        head = app.recorder.max_notification_id()
    finally:
        app.close()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPT_")}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "ipt_workflow.cli.main", "projections", "run"),
            *("--metrics-port", str(port)),
        ],
        env={**env, "IPT_DATABASE_URL": database_url, "IPT_LOG_FORMAT": "json"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    scraped: dict[tuple[str, str], float] = {}

    def caught_up() -> bool:
        nonlocal scraped
        try:
            scraped = samples(httpx.get(url, timeout=2).text)
        except httpx.HTTPError:
            return False
        return all(
            scraped.get(("ipt_projection_position", name)) == head for name in CATALOG
        )

    try:
        wait_until(caught_up, 30, "every read model at the log's head")
        elsewhere = httpx.get(f"http://127.0.0.1:{port}/other", timeout=2)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    assert code == 0
    assert elsewhere.status_code == 404
    for name in CATALOG:
        assert scraped[("ipt_projection_running", name)] == 1.0
        assert scraped[("ipt_projection_lag_events", name)] == 0.0
        assert scraped[("ipt_projection_head", name)] == head
    assert scraped[("ipt_database_reachable", "")] == 1.0
