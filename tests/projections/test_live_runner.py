"""The live runner: one pass over the log feeds every read model (D91).

Passes are driven one at a time (`step`), without the runner's thread, so each
claim is about exactly one pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from ipt_workflow.composition import readmodels
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings
from projections.catalog import CATALOG
from projections.store import Batch
from tests.support.caseload import generate


@pytest.fixture
def live(settings: Settings) -> Iterator[readmodels.LiveProjections]:
    app = build_application(settings)
    try:
        generate(app, 12, seed=5)
    finally:
        app.close()
    runner = readmodels.LiveProjections(settings, batch=50)
    yield runner
    runner.__exit__(None, None, None)


def fresh_rows(settings: Settings, name: str) -> tuple[Any, Any]:
    readmodels.fold_into(settings, {name: f"{name}_check"})
    check = readmodels.open_view(settings, CATALOG[name], f"{name}_check")
    try:
        return check.rows(None), check.counters(None)
    finally:
        check.datastore.close()  # type: ignore[attr-defined]


def head(runner: readmodels.LiveProjections) -> int:
    return runner.app.recorder.max_notification_id() or 0


def test_each_pass_applies_a_batch_of_events_to_every_read_model_with_its_position(
    live: readmodels.LiveProjections,
) -> None:
    transactions: list[tuple[str, int, int]] = []
    for name, view in live.views.items():
        original = view.apply

        def counted(batch: Batch, name: str = name, original: Any = original) -> None:
            original(batch)
            transactions.append(
                (name, len(batch.events), batch.tracking.notification_id)
            )

        view.apply = counted  # type: ignore[method-assign]

    assert live.step()
    assert {name for name, _, _ in transactions} == set(CATALOG)
    assert all(size == 50 for _, size, _ in transactions)
    first = {position for _, _, position in transactions}
    assert len(first) == 1
    for name, view in live.views.items():
        assert view.max_tracking_id(live.app.name) == live.positions[name] == min(first)

    while live.step():
        pass
    assert set(live.positions.values()) == {head(live)}
    assert len(transactions) == len(CATALOG) * -(-head(live) // 50)


def test_a_failing_read_model_is_set_aside_while_the_others_go_on_then_catches_up(
    settings: Settings,
    live: readmodels.LiveProjections,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alerts = live.views["alerts"]

    def broken(batch: Batch) -> None:
        raise RuntimeError("a bug in the read model")

    monkeypatch.setattr(alerts, "apply", broken)
    while live.step():
        pass
    assert live.running() == {name: name != "alerts" for name in CATALOG}
    assert alerts.max_tracking_id(live.app.name) is None
    assert all(
        live.positions[name] == head(live) for name in CATALOG if name != "alerts"
    )
    assert not live.step()  # set aside: not tried again before its back-off

    monkeypatch.undo()
    live._set_aside["alerts"].retry_at = 0.0
    while live.step():
        pass
    assert live.running() == dict.fromkeys(CATALOG, True)
    assert alerts.max_tracking_id(live.app.name) == head(live)
    assert (alerts.rows(None), alerts.counters(None)) == fresh_rows(settings, "alerts")
    caseload = live.views["caseload"]
    assert caseload.rows(None) == fresh_rows(settings, "caseload")[0]


def test_a_database_error_stops_the_runner_for_the_supervisor_to_replace(
    live: readmodels.LiveProjections, monkeypatch: pytest.MonkeyPatch
) -> None:
    def gone(batch: Batch) -> None:
        raise OperationalError("the server closed the connection")

    monkeypatch.setattr(live.views["outcomes"], "apply", gone)
    live.__enter__()
    assert live.is_interrupted.wait(10)
    with pytest.raises(OperationalError):
        live.run_forever(timeout=0)
