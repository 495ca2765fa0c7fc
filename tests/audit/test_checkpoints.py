"""Signed checkpoints: when they fall due, the server's thread, racing takers."""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from ipt_workflow.application import auditing as audit
from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.composition.bootstrap import production_problems
from ipt_workflow.composition.builders import build_application, build_checkpointer
from ipt_workflow.composition.settings import Settings
from ipt_workflow.storage.audit import AuditRecorder
from tests.audit.conftest import CHECKPOINT_KEY, app_of, audit_settings
from tests.support.api import Api

KEY = CHECKPOINT_KEY.encode()


def test_a_checkpoint_falls_due_after_enough_events_or_enough_time(
    sqlite_audit_api: Api,
) -> None:
    app = app_of(sqlite_audit_api)
    now = datetime.now(UTC)

    def due(at: datetime = now) -> bool:
        return audit.checkpoint_due(app, every_events=5, every_seconds=60, now=at)

    empty = due()
    sqlite_audit_api.open_case("A-1")
    first = due()
    audit.take_checkpoint(app, KEY, now=now)
    just_taken = due()
    sqlite_audit_api.open_case("A-2")
    few_events = due()
    later = due(now + timedelta(seconds=61))
    sqlite_audit_api.open_case("A-3")
    sqlite_audit_api.open_case("A-4")
    many_events = due()

    assert (empty, first, just_taken) == (False, True, False)
    assert (few_events, later, many_events) == (False, True, True)


def test_the_server_thread_takes_checkpoints_when_they_fall_due(
    sqlite_audit_api: Api,
) -> None:
    app = app_of(sqlite_audit_api)
    thread = audit.Checkpointer(
        app, KEY, every_events=1, every_seconds=math.inf, poll_seconds=0.01
    )
    thread.start()
    try:
        sqlite_audit_api.open_case()
        deadline = time.monotonic() + 10
        while not recorder(app).select_checkpoints() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        thread.stop()

    assert [c.log_head for c in recorder(app).select_checkpoints()] == [2]


def test_racing_takers_produce_one_chain_of_checkpoints(sqlite_audit_api: Api) -> None:
    app = app_of(sqlite_audit_api)
    taken: list[int] = []

    def take() -> None:
        for _ in range(5):
            found = audit.take_checkpoint(app, KEY)
            if found is not None:
                taken.append(found.seq)

    sqlite_audit_api.open_case("A-1")
    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(taken) == [1]
    assert audit.verify_log(app, [KEY]).intact


def test_the_server_checkpoints_only_with_a_key_and_production_needs_one(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    keyless = Settings(database_url=url)
    keyed = audit_settings(url)

    app = app_of_settings(keyed)
    try:
        assert build_checkpointer(keyless, app) is None
        assert isinstance(build_checkpointer(keyed, app), audit.Checkpointer)
    finally:
        app.close()
    assert any("IPT_CHECKPOINT_KEY" in p for p in production_problems(keyless))
    assert not any("IPT_CHECKPOINT_KEY" in p for p in production_problems(keyed))


def app_of_settings(settings: Settings) -> CaseApplication:
    return build_application(settings)


def recorder(app: CaseApplication) -> AuditRecorder:
    found: Any = app.recorder
    return cast(AuditRecorder, found)
