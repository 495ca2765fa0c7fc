"""Exactly once: the projection process is killed at random points and restarted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from ipt_workflow.composition import readmodels
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings
from projections.catalog import CATALOG
from tests.support.caseload import generate


def start_projections(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, "IPT_DATABASE_URL": settings.database_url}
    return subprocess.Popen(
        [sys.executable, "-m", "ipt_workflow.cli.main", "projections", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def process_holder() -> Iterator[list[subprocess.Popen[bytes]]]:
    holder: list[subprocess.Popen[bytes]] = []
    yield holder
    for p in holder:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_a_killed_and_restarted_projection_process_equals_a_fresh_rebuild(
    settings: Settings, process_holder: list[subprocess.Popen[bytes]]
) -> None:
    rng = random.Random(7)
    app = build_application(settings)
    readmodels.open_view(settings, CATALOG["caseload"]).datastore.close()  # type: ignore[attr-defined]
    process_holder.append(start_projections(settings))
    writer = threading.Thread(target=generate, args=(app, 40, 99))
    writer.start()
    kills = 0
    while writer.is_alive() and kills < 4:
        time.sleep(rng.uniform(0.3, 1.2))
        process_holder[-1].send_signal(signal.SIGKILL)
        process_holder[-1].wait()
        kills += 1
        process_holder.append(start_projections(settings))
    writer.join()
    models = readmodels.ReadModels(settings, app)
    caught_up = models.wait(app.recorder.max_notification_id() or 0)
    deadline = time.monotonic() + 60
    while not caught_up and time.monotonic() < deadline:
        caught_up = models.wait(app.recorder.max_notification_id() or 0)
    process_holder[-1].send_signal(signal.SIGTERM)
    status = process_holder[-1].wait(timeout=30)
    stderr = process_holder[-1].stderr
    assert status == 0, stderr.read().decode() if stderr else ""

    assert kills >= 2
    assert caught_up
    readmodels.fold_into(settings, {name: f"{name}_check" for name in CATALOG})
    for name, entry in CATALOG.items():
        check = readmodels.open_view(settings, entry, f"{name}_check")
        live = models.views[name]
        assert live.rows(None) == check.rows(None), name
        assert live.counters(None) == check.counters(None), name
        assert live.max_tracking_id(app.name) == check.max_tracking_id(app.name), name
        check.datastore.close()  # type: ignore[attr-defined]
    models.close()
    app.close()
