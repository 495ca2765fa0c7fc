"""At least once, in order, nothing skipped: the webhook dispatcher process is
SIGKILLed at random points while cases are written and the receiver sometimes
answers 500 or hangs past the timeout (reliability.md, the webhook promise)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from ipt_workflow.application.webhooks import pending, subscribed
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings
from ipt_workflow.composition.webhooks import build_webhooks
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.courses import Course
from ipt_workflow.storage.webhooks import Subscription
from tests.support.drivers import ThroughApplication
from tests.support.receiver import Receiver, receiver

KILLS = 4
CASES = 8
WHOLE = Course(final=3, brief=True)
DISPATCHER_ENV = {
    "IPT_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
    "IPT_WEBHOOK_RETRY_SECONDS": "0.05,0.1",
    "IPT_WEBHOOK_TIMEOUT_SECONDS": "1",
    "IPT_WEBHOOK_POLL_SECONDS": "0.05",
}


def start_dispatcher(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, "IPT_DATABASE_URL": settings.database_url, **DISPATCHER_ENV}
    return subprocess.Popen(
        [sys.executable, "-m", "ipt_workflow.cli.main", "webhooks", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.fixture
def receiving() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def write_cases(settings: Settings) -> None:
    app = build_application(settings)
    try:
        for n in range(CASES):
            ThroughApplication(app, "clinic-a").drive(WHOLE, Phase.closed)
            if n % 2 == 0:  # another clinic's events are never delivered here
                ThroughApplication(app, "clinic-b").drive(WHOLE, Phase.middle)
    finally:
        app.close()


def test_a_killed_dispatcher_loses_and_skips_no_webhook(
    settings: Settings,
    processes: list[subprocess.Popen[bytes]],
    receiving: Receiver,
) -> None:
    rng = random.Random(14)
    settings = settings.model_copy(update={"webhook_allow_hosts": "127.0.0.1"})
    app = build_application(settings)
    webhooks = build_webhooks(settings, app)
    receiving.plan("/all", fail_rate=0.15, hang_rate=0.03, hang_seconds=2, seed=3)
    receiving.plan("/sessions", fail_rate=0.2, seed=4)
    subs = {
        path: webhooks.get(
            webhooks.subscribe(
                clinic_id="clinic-a",
                url=receiving.url(path),
                types=types,
                description=None,
                actor="test",
            ).subscription_id,
            None,
        )
        for path, types in (("/all", ["*"]), ("/sessions", ["SessionHeld"]))
    }
    processes.append(start_dispatcher(settings))
    writer = threading.Thread(target=write_cases, args=(settings,))

    writer.start()
    kills = 0
    while kills < KILLS:  # while writing, and while catching up after
        time.sleep(rng.uniform(0.3, 1.0))
        processes[-1].send_signal(signal.SIGKILL)
        processes[-1].wait()
        kills += 1
        processes.append(start_dispatcher(settings))
    writer.join()
    expected = {path: wanted(app, sub) for path, sub in subs.items()}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not all(
        caught_up(webhooks.get(sub.id, None), expected[path])
        for path, sub in subs.items()
    ):
        time.sleep(0.2)
    processes[-1].send_signal(signal.SIGTERM)
    status = processes[-1].wait(timeout=30)
    stderr = processes[-1].stderr
    received = {path: receiving.received(path) for path in subs}

    assert status == 0, stderr.read().decode() if stderr else ""
    assert kills == KILLS
    assert len(expected["/all"]) > 80
    for path, sub in subs.items():
        got = received[path]
        first_acks = list(
            dict.fromkeys(r["headers"]["webhook-id"] for r in got if r["answer"] == 200)
        )
        assert first_acks == [event_id for _, event_id in expected[path]], path
        for r in got:
            Webhook(sub.secret).verify(r["body"], r["headers"])
        assert any(r["answer"] != 200 for r in got), "the receiver never failed"
    webhooks.store.close()
    app.close()


def wanted(app: Any, sub: Subscription) -> list[tuple[int, str]]:
    """(position, event id) of every event the subscription must get, in order."""
    found: list[tuple[int, str]] = []
    after = sub.position
    head = app.recorder.max_notification_id() or 0
    while after < head:
        batch = pending(app, sub.clinic_id, after, 500)
        found += [
            (n.id, f"{n.originator_id}:{n.originator_version}")
            for n in batch.events
            if subscribed(sub, n.topic)
        ]
        after = batch.scanned_to
    return found


def caught_up(sub: Subscription, expected: list[tuple[int, str]]) -> bool:
    return not expected or sub.position >= expected[-1][0]
