"""`ipt-workflow serve --dev` with one worker runs the dispatcher in-process: the
dev-admin token subscribes a loopback receiver, and a course written over HTTP
arrives there within a second or so of each answer."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ipt_workflow.domain.codes import Phase
from tests.ops.conftest import OpsServer, start_server
from tests.support.drivers import OverHttp
from tests.support.receiver import Receiver
from tests.webhooks.conftest import wait_for
from tests.webhooks.test_delivery import WHOLE

ADMIN = {"Authorization": "Bearer dev-admin"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OpsServer]:
    running = start_server(tmp_path, f"sqlite:///{tmp_path / 'serve.db'}")
    yield running
    running.stop()


def test_a_one_worker_server_delivers_a_course_to_a_dev_subscription(
    server: OpsServer, receiving: Receiver
) -> None:
    created = httpx.post(
        f"{server.base}/subscriptions",
        json={"url": receiving.url(), "event_types": ["*"]},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    answered: dict[int, float] = {}

    def post(path: str, body: Any) -> httpx.Response:
        answer = server.post(path, body)
        found = answer.json()
        position = found.get("case", found).get("position")
        if position is not None:
            answered[position] = time.time()
        return answer

    OverHttp(post).drive(WHOLE, Phase.closed)
    wait_for(
        lambda: (
            {json.loads(r["body"])["data"]["position"] for r in receiving.received()}
            >= set(answered)
        ),
        10,
        "every command's last event",
    )
    arrivals = {
        json.loads(r["body"])["data"]["position"]: r["at"] for r in receiving.received()
    }
    latencies = sorted(arrivals[p] - at for p, at in answered.items())
    status = httpx.get(f"{server.base}/webhooks/status", headers=ADMIN).json()
    metrics = httpx.get(f"{server.base}/metrics").text

    assert statistics.median(latencies) < 1.0, _figures(latencies)
    assert latencies[-1] < 3.0, _figures(latencies)
    assert status["dispatcher"] is not None
    assert status["items"][0]["lag_seconds"] == 0.0
    assert 'ipt_webhook_deliveries_total{outcome="delivered"}' in metrics
    assert "ipt_webhook_delivery_lag_seconds_bucket" in metrics


def _figures(latencies: list[float]) -> str:
    return (
        f"n={len(latencies)} median={statistics.median(latencies) * 1000:.0f} ms "
        f"max={latencies[-1] * 1000:.0f} ms"
    )
