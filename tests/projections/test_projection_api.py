"""The read models over HTTP: roles, scoping, suppression, read-your-writes, alerts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ipt_workflow.api.app import create_app
from ipt_workflow.composition.builders import build_key_store
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import AgreeContract, Command, StartMiddle
from ipt_workflow.domain.courses import Course
from ipt_workflow.storage.keys import make_key
from tests.support.api import Api
from tests.support.drivers import OverHttp, case_of

ADULT = Course(age=40)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Api]:
    """The API with its projection runners in-process, as `make run` has them."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'live.db'}",
        run_projections=True,
        rate_limit_per_second=0,
    )
    store = build_key_store(settings)
    tokens = {}
    for name, role, clinics in [
        ("clinician", "clinician", ["clinic-a"]),
        ("other_clinician", "clinician", ["clinic-b"]),
        ("auditor", "auditor", ["clinic-a"]),
        ("ops", "ops", ["*"]),
    ]:
        key, token = make_key(role, clinics, f"{name}-actor")  # type: ignore[arg-type]
        store.add(key, token)
        tokens[name] = token
    store.close()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client, tokens)


def opened(
    api: Api,
    ref: str,
    who: str = "clinician",
    course: Course = ADULT,
    clinician_id: str = "t-7",
) -> tuple[str, int]:
    """A new case of the course's client: its id and the position of its opening."""
    case = OverHttp(partial(api.post, who=who)).opened(course, ref, clinician_id)
    return case["id"], case["position"]


def ok(api: Api, case_id: str, *commands: Command) -> dict[str, Any]:
    """Send the commands; the case after the last."""
    return case_of(OverHttp(api.post).run(case_id, *commands))


def september(day: int) -> date:
    return date(2026, 9, day)


class TestReadYourWrites:
    def test_a_read_with_min_position_sees_the_write_just_made(self, live: Api) -> None:
        case_id, position = opened(live, "RYW-1")

        board = live.get("/projections/phase_board", who="ops", min_position=position)
        caseload = live.get("/projections/caseload", min_position=position)

        assert board.status_code == 200
        assert {
            "clinic_id": "clinic-a",
            "protocol": "ipt@1",
            "phase": "beginning",
            "cases": 1,
        } in board.json()["items"]
        assert [r["case_id"] for r in caseload.json()["items"]] == [case_id]
        assert caseload.json()["position"] >= position

    def test_a_position_beyond_the_log_is_refused_at_once_with_422(
        self, live: Api
    ) -> None:
        answer = live.get("/projections/caseload", min_position=10**9)

        assert answer.status_code == 422
        assert answer.json()["code"] == "position_not_reached"
        assert answer.json()["errors"][0]["field"] == "min_position"

    def test_case_reads_honour_min_position_too(self, live: Api) -> None:
        case_id, position = opened(live, "RYW-2")

        answer = live.get(f"/cases/{case_id}", min_position=position)
        lagging = live.get(f"/cases/{case_id}", min_position=10**9)

        assert answer.status_code == 200
        assert lagging.status_code == 422


class TestCaseload:
    def test_a_clinician_sees_its_own_clinic_by_case_id_without_client_ref(
        self, live: Api
    ) -> None:
        mine, _ = opened(live, "SECRET-REF-9")
        _, theirs = opened(live, "OTHER-1", who="other_clinician")

        answer = live.get("/projections/caseload", min_position=theirs)

        assert [r["case_id"] for r in answer.json()["items"]] == [mine]
        assert "SECRET-REF-9" not in answer.text
        assert "client_ref" not in answer.text

    def test_filters_and_pages(self, live: Api) -> None:
        ids = [opened(live, f"P-{n}", clinician_id=f"t-{n % 2}")[0] for n in range(5)]
        last = opened(live, "P-last", course=Course("ipt-b"))[1]

        page1 = live.get("/projections/caseload", min_position=last, limit=2).json()
        page2 = live.get(
            "/projections/caseload", limit=2, after=page1["next_after"]
        ).json()
        by_clinician = live.get("/projections/caseload", clinician_id="t-1").json()
        by_protocol = live.get("/projections/caseload", protocol="ipt-b").json()

        assert (
            len(page1["items"]) == 2
            and page1["next_after"] == page1["items"][-1]["case_id"]
        )
        assert page2["items"][0]["case_id"] > page1["next_after"]
        assert {r["case_id"] for r in by_clinician["items"]} == {ids[1], ids[3]}
        assert [r["protocol"] for r in by_protocol["items"]] == ["ipt-b@1"]

    def test_ops_may_not_read_the_caseload(self, live: Api) -> None:
        assert live.get("/projections/caseload", who="ops").status_code == 403


class TestOutcomes:
    def test_small_cells_are_suppressed_for_ops_but_not_for_clinicians(
        self, live: Api
    ) -> None:
        _, position = opened(live, "O-1")

        ops = live.get("/projections/outcomes", who="ops", min_position=position).json()
        clinician = live.get("/projections/outcomes").json()

        assert ops["items"] == [
            {
                "clinic_id": "clinic-a",
                "protocol": "ipt@1",
                "focus_area": "none_agreed",
                "suppressed": True,
            }
        ]
        assert clinician["items"][0]["suppressed"] is False
        assert clinician["items"][0]["cases"] == 1

    def test_cells_of_five_cases_are_shown_to_ops(self, live: Api) -> None:
        positions = [opened(live, f"O5-{n}")[1] for n in range(5)]

        ops = live.get(
            "/projections/outcomes", who="ops", min_position=positions[-1]
        ).json()

        assert ops["items"][0]["suppressed"] is False
        assert ops["items"][0]["cases"] == 5
        assert ops["items"][0]["residual_rate"] is None


class TestAlerts:
    def test_alerts_appear_and_clear_as_the_rules_say(self, live: Api) -> None:
        course = Course("ipt-a", baseline=18, contract=12, today=september(25))
        case_id, _ = opened(live, "AL-1", course=course)
        ok(
            live,
            case_id,
            course.inventory(),
            course.focus(),
            AgreeContract.parse(sessions=12),
            course.measure(18, on=september(1)),
        )
        first = ok(live, case_id, course.session(held_on=september(1)))

        def alerts(as_of: str, position: int) -> list[str]:
            answer = live.get(
                "/projections/alerts", as_of=as_of, min_position=position
            ).json()
            return sorted(
                a["alert"]
                for i in answer["items"]
                if i["case_id"] == case_id
                for a in i["alerts"]
            )

        after_one = alerts("2026-09-10", first["position"])
        overdue = alerts("2026-09-16", first["position"])
        with_parent = ok(
            live,
            case_id,
            course.session(held_on=september(16), attendees=["client", "parent"]),
        )
        cleared = alerts("2026-09-17", with_parent["position"])
        ok(live, case_id, StartMiddle.parse())
        last = ok(
            live,
            case_id,
            *(course.session(held_on=september(d)) for d in range(17, 21)),
        )
        measure_due = alerts("2026-09-21", last["position"])
        last = ok(
            live,
            case_id,
            *(course.session(held_on=september(d)) for d in range(21, 25)),
        )
        termination = alerts("2026-09-25", last["position"])

        assert after_one == ["parent_session_missing"]
        assert overdue == ["parent_session_missing", "session_overdue"]
        assert cleared == []
        assert measure_due == ["measure_due"]
        assert "termination_to_be_raised" in termination

    def test_an_offer_awaiting_a_decision_for_over_fourteen_days_alerts(
        self, live: Api
    ) -> None:
        # Remission after three prior episodes: maintenance is offered.
        course = Course(baseline=18, final=3, contract=12, prior_episodes=3)
        case_id, _ = opened(live, "AL-2", course=course)
        concluded = ok(live, case_id, *course.commands(Phase.concluded))
        offered = concluded["follow_up_offer"]["offered_at"][:10]

        def alerts(as_of: str) -> list[dict[str, Any]]:
            answer = live.get(
                "/projections/alerts",
                who="ops",
                as_of=as_of,
                min_position=concluded["position"],
            ).json()
            return [
                a
                for i in answer["items"]
                if i["case_id"] == case_id
                for a in i["alerts"]
            ]

        offered_on = date.fromisoformat(offered)
        assert concluded["follow_up_offer"]["kind"] == "maintenance"
        assert alerts((offered_on + timedelta(days=14)).isoformat()) == []
        assert alerts((offered_on + timedelta(days=15)).isoformat()) == [
            {
                "alert": "offer_awaiting_decision",
                "offer": "maintenance",
                "days_waiting": 15,
            }
        ]


class TestStatus:
    def test_status_reports_position_head_and_lag_of_every_read_model(
        self, live: Api
    ) -> None:
        _, position = opened(live, "ST-1")
        live.get("/projections/caseload", min_position=position)
        live.get("/projections/fidelity", min_position=position)

        items = live.get("/projections/status", who="ops").json()["items"]

        assert [i["projection"] for i in items] == [
            "caseload",
            "phase_board",
            "outcomes",
            "alerts",
            "fidelity",
            "case_list",
        ]
        for item in items:
            assert item["head"] >= position
            assert set(item) >= {"position", "lag_events", "lag_seconds"}
