"""GET /cases/{id}/replay: the case as it was, through the code that loads it now."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from ipt_workflow.api.views import case_view
from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.commands import (
    Command,
    CommandContext,
    Reassign,
    RecordMissedSession,
)
from ipt_workflow.domain.errors import DomainError
from tests.audit.conftest import COURSE, TODAY, app_of
from tests.support.api import Api, drive_to_middle


def generate(app: CaseApplication, case_id: UUID, commands: int, seed: int) -> None:
    """Random commands that keep the case open: measures, missed sessions and
    reassignments."""
    rng = random.Random(seed)
    for _ in range(commands):
        command, ctx = random_command(rng)
        try:
            app.execute(case_id, command, ctx)
        except DomainError:
            continue


def random_command(rng: random.Random) -> tuple[Command, CommandContext]:
    """A command and who gives it."""
    ctx = CommandContext(recorded_by=f"gen-{rng.randint(1, 3)}", today=TODAY)
    day = date(2026, 10, rng.randint(1, 28))
    choice = rng.choice(["measure", "measure", "missed", "reassign"])
    if choice == "measure":
        return COURSE.measure(rng.randint(0, 27), on=day), ctx
    if choice == "missed":
        missed = RecordMissedSession.parse(
            scheduled_on=day, reason="client_cancelled", today=TODAY
        )
        return missed, ctx
    return Reassign.parse(clinician_id=f"t-{rng.randint(1, 9)}"), ctx


def fold(app: CaseApplication, case_id: UUID, n: int) -> TherapyCase:
    aggregate: Any = None
    for event in app.case_events(case_id)[:n]:
        aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
    assert isinstance(aggregate, TherapyCase)
    return aggregate


def state(case: TherapyCase) -> dict[str, Any]:
    return {k: v for k, v in vars(case).items() if k != "_pending_events"}


def normalised(view: dict[str, Any]) -> Any:
    return json.loads(json.dumps(view))


class TestReplayByVersion:
    def test_replay_at_every_version_equals_the_fold_of_the_first_n_events(
        self, audit_api: Api
    ) -> None:
        app = app_of(audit_api)
        case_id = audit_api.open_case()
        drive_to_middle(audit_api, case_id)
        generate(app, UUID(case_id), 110, seed=6)
        last = app.get_case(UUID(case_id)).version

        for n in range(1, last + 1):
            answer = audit_api.get(f"/cases/{case_id}/replay", "auditor", version=n)
            folded = fold(app, UUID(case_id), n)
            position = app.position_of(UUID(case_id), n)

            assert answer.status_code == 200, answer.text
            assert answer.json() == normalised(case_view(folded, position)), n
            assert answer.headers["ETag"] == f'"{n}"'
            assert state(app.get_case(UUID(case_id), version=n)) == state(folded)
        assert last > 100  # past two snapshots, so replays start from them

    def test_a_version_beyond_the_case_is_not_found(self, audit_api: Api) -> None:
        case_id = audit_api.open_case()

        beyond = audit_api.get(f"/cases/{case_id}/replay", "auditor", version=2)
        current = audit_api.get(f"/cases/{case_id}/replay", "auditor", version=1)

        assert beyond.status_code == 404
        assert beyond.json()["code"] == "not_found"
        assert "version 2" in beyond.json()["detail"]
        assert current.status_code == 200

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"version": 1, "at": "2026-01-01T00:00:00Z"},
            {"version": 0},
            {"version": "x"},
            {"at": "2026-01-01T00:00:00"},
            {"at": "yesterday"},
            {"version": 10**30},
        ],
    )
    def test_both_or_neither_parameter_or_a_bad_one_is_a_validation_failure(
        self, sqlite_audit_api: Api, params: dict[str, Any]
    ) -> None:
        case_id = sqlite_audit_api.open_case()

        answer = sqlite_audit_api.get(f"/cases/{case_id}/replay", "auditor", **params)

        assert answer.status_code == 422
        assert answer.json()["code"] == "validation_failed"


class TestReplayAtATime:
    def test_replay_at_the_time_of_each_event_gives_the_case_after_it(
        self, sqlite_audit_api: Api
    ) -> None:
        api = sqlite_audit_api
        case_id = api.open_case()
        drive_to_middle(api, case_id)
        history = api.get(f"/cases/{case_id}/history", "auditor").json()["items"]
        times = [(item["version"], item["occurred_at"]) for item in history]

        for version, at in times:
            answer = api.get(f"/cases/{case_id}/replay", "auditor", at=at)

            expected = max(v for v, t in times if t <= at)
            assert answer.status_code == 200
            assert answer.json()["version"] == expected == version

    def test_before_the_case_was_opened_it_is_not_found_and_later_it_is_current(
        self, sqlite_audit_api: Api
    ) -> None:
        api = sqlite_audit_api
        case_id = api.open_case()
        drive_to_middle(api, case_id)
        first = api.get(f"/cases/{case_id}/history", "auditor").json()["items"][0]
        opened = datetime.fromisoformat(first["occurred_at"])

        before = api.get(
            f"/cases/{case_id}/replay",
            "auditor",
            at=(opened - timedelta(microseconds=1)).isoformat(),
        )
        later = api.get(
            f"/cases/{case_id}/replay",
            "auditor",
            at=(opened + timedelta(days=3650)).isoformat(),
        )

        assert before.status_code == 404
        assert later.json()["version"] == app_of(api).get_case(UUID(case_id)).version
        assert later.json()["phase"] == "middle"


class TestHistoryPaging:
    @pytest.mark.parametrize("limit", [1, 2, 3, 6, 7, 8, 1000])
    def test_pages_of_any_size_give_every_version_once_and_end_with_null(
        self, sqlite_audit_api: Api, limit: int
    ) -> None:
        case_id = sqlite_audit_api.open_case()
        drive_to_middle(sqlite_audit_api, case_id)  # 7 versions
        versions: list[int] = []
        after: int | None = 0

        while after is not None:
            page = sqlite_audit_api.get(
                f"/cases/{case_id}/history", "auditor", after_version=after, limit=limit
            ).json()
            versions += [item["version"] for item in page["items"]]
            assert len(page["items"]) <= limit
            after = page["next_after_version"]

        assert versions == [1, 2, 3, 4, 5, 6, 7]

    def test_an_after_version_out_of_range_is_a_validation_failure(
        self, sqlite_audit_api: Api
    ) -> None:
        case_id = sqlite_audit_api.open_case()

        answer = sqlite_audit_api.get(
            f"/cases/{case_id}/history", "auditor", after_version=10**30
        )

        assert answer.status_code == 422
