"""Every case route of api.md over HTTP: its success and each documented refusal.

Successes, idempotency and If-Match run on both back ends (`api`, a fresh database
per test). Rules (409), bad input (422), unknown cases (404) and the per-route
checks do not depend on storage: they share one SQLite API per module
(`sqlite_api`), each test on cases of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from ipt_workflow.api.app import create_app
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    AgreeContract,
    Conclude,
    StartEnd,
    Withdraw,
)
from ipt_workflow.domain.commands import Command as CaseCommand
from ipt_workflow.domain.courses import Course
from tests.api.conftest import TODAY_ISH, inventory, session
from tests.support.api import Api, make_api
from tests.support.drivers import OverHttp, until_last

PROBLEM = "application/problem+json"
FUTURE = "2099-01-01"
COURSE = Course(baseline=18, final=8, contract=16, brief=True, today=date(2026, 10, 1))
"""The course the builders below bring cases along, every command on 2026-10-01:
phq9 18 at baseline, a 16-session contract cut to 4 after one middle session (a
contract_range deviation), so the end phase has 2 sessions left; 8 at the end is a
response with residual symptoms."""
BASELINE = COURSE.measure(COURSE.baseline_score).params()
"""{"instrument": "phq9", "score": 18, "measured_on": "2026-10-01"}"""
OPENING = {
    "client_ref": "A-1042",
    "protocol": "ipt",
    "client_age": 34,
    "clinician_id": "t-7",
}
CASE_FIELDS = {
    "retention_until",
    "legal_hold",
    "id",
    "clinic_id",
    "client_ref",
    "protocol",
    "clinician_id",
    "client_age",
    "prior_episodes",
    "phase",
    "version",
    "position",
    "sessions_held",
    "contract",
    "sessions_remaining",
    "focus",
    "baseline",
    "latest_measure",
    "outcome",
    "follow_up_offer",
    "follow_up_contract",
    "deviations",
    "transitions",
    "outcome_revised_after_decision",
    "intake_on",
    "inventory",
    "termination_tasks",
    "risk",
    "relapse",
    "protocol_parameters",
}
TRANSITIONS = {
    "start_middle",
    "start_end",
    "conclude",
    "accept_follow_up",
    "decline_follow_up",
    "close",
    "withdraw",
}
NO_SESSIONS = {"beginning": 0, "middle": 0, "end": 0, "total": 0, "follow_up": 0}

Arrange = Callable[[Api, str], None]


def shared_sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One API on SQLite for a whole module, with no IPT_ setting of the shell.

    Starting an app costs more than most tests here; tests that share it open
    cases with client_refs of their own and use Idempotency-Keys of their own.
    """
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("IPT_")]:
            env.delenv(name)
        url = f"sqlite:///{tmp_path_factory.mktemp('shared') / 'api.db'}"
        yield from make_api(Settings(database_url=url, rate_limit_per_second=0))


@pytest.fixture(scope="module")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """This module's SQLite API (shared; the conftest one is per test)."""
    yield from shared_sqlite_api(tmp_path_factory)


# --- asserting answers -------------------------------------------------------------


def assert_case_answer(answer: Response, status: int) -> dict[str, Any]:
    """A case answer: status, JSON, every field of api.md, ETag of its version."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.json()
    case = body["case"] if "session" in body else body
    assert set(case) == CASE_FIELDS
    assert answer.headers["ETag"] == f'"{case["version"]}"'
    assert isinstance(case["position"], int)
    assert set(case["sessions_held"]) == set(NO_SESSIONS)
    assert set(case["transitions"]) == TRANSITIONS
    for name, why in case["transitions"].items():
        assert set(why) == {"allowed", "reasons"}, name
        assert why["allowed"] is (why["reasons"] == []), name
        for reason in why["reasons"]:
            assert set(reason) == {"rule", "message"}, name
    return body


def assert_problem(answer: Response, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 problem with the fields and code api.md promises."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = answer.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == status
    assert body["code"] == code
    assert all(
        isinstance(body[k], str) and body[k] for k in ("type", "title", "detail")
    )
    return body


def guard_rules(answer: Response) -> list[str]:
    """The rules of a 409 guard_failed, in the order the answer lists them."""
    body = assert_problem(answer, 409, "guard_failed")
    assert all(v["message"] for v in body["violations"])
    return [v["rule"] for v in body["violations"]]


def bad_fields(answer: Response) -> set[str]:
    """The fields of a 422 validation_failed."""
    body = assert_problem(answer, 422, "validation_failed")
    assert all(e["message"] for e in body["errors"])
    return {e["field"] for e in body["errors"]}


def rules_of(case: dict[str, Any], transition: str) -> list[str]:
    return [r["rule"] for r in case["transitions"][transition]["reasons"]]


# --- driving a case ----------------------------------------------------------------


def post_ok(api: Api, case_id: str, route: str, body: Any = None) -> dict[str, Any]:
    answer: Response = api.post(f"/cases/{case_id}/{route}", body)
    assert answer.status_code in (200, 201), f"{route}: {answer.text}"
    found: dict[str, Any] = answer.json()
    return found


def read_case(api: Api, case_id: str, who: str = "clinician") -> dict[str, Any]:
    answer: Response = api.get(f"/cases/{case_id}", who=who)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def history(api: Api, case_id: str) -> list[dict[str, Any]]:
    answer: Response = api.get(f"/cases/{case_id}/history", limit=1000)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def event_types(api: Api, case_id: str) -> list[str]:
    return [item["type"] for item in history(api, case_id)]


def drive(api: Api, case_id: str, *commands: CaseCommand) -> None:
    """Send the commands over HTTP; each must succeed."""
    OverHttp(api.post).run(case_id, *commands)


def nothing(api: Api, case_id: str) -> None:
    """A freshly opened case is the state the command needs."""


def with_inventory(api: Api, case_id: str) -> None:
    drive(api, case_id, COURSE.inventory())


def with_role_dispute(api: Api, case_id: str) -> None:
    drive(
        api,
        case_id,
        COURSE.inventory(),
        COURSE.focus("role_dispute", dispute_stage="impasse"),
    )


def with_contract(api: Api, case_id: str) -> None:
    drive(api, case_id, AgreeContract.parse(sessions=16, frequency="weekly"))


def with_session(api: Api, case_id: str) -> None:
    drive(api, case_id, COURSE.session())


def with_risk_flag(api: Api, case_id: str) -> None:
    """A PHQ-9 whose item 9 (thoughts of self-harm) was 2: a flag to follow up."""
    post_ok(api, case_id, "measures", {**BASELINE, "risk_item": 2})


def ready_for_middle(api: Api, case_id: str) -> None:
    """Inventory, focus, a 16-session contract, a baseline and one session."""
    drive(api, case_id, *COURSE.beginning_ready())


def in_middle(api: Api, case_id: str) -> None:
    drive(api, case_id, *COURSE.commands(Phase.middle))


def ready_for_end(api: Api, case_id: str) -> None:
    """A middle session, then the contract cut to 4 under a contract_range deviation."""
    drive(api, case_id, *until_last(COURSE.commands(Phase.end), StartEnd))


def in_end(api: Api, case_id: str) -> None:
    drive(api, case_id, *COURSE.commands(Phase.end))


def ready_to_conclude(api: Api, case_id: str, final: int = 8) -> None:
    """Two end sessions and a phq9 in the end phase (baseline 18)."""
    commands = COURSE.with_(final=final).commands(Phase.concluded)
    drive(api, case_id, *until_last(commands, Conclude))


def concluded_with_continuation(api: Api, case_id: str) -> None:
    """A response (18 to 8) with residual symptoms: continuation is offered."""
    drive(api, case_id, *COURSE.commands(Phase.concluded))


def concluded_with_referral(api: Api, case_id: str) -> None:
    """No response (18 to 16): a referral is offered."""
    drive(api, case_id, *COURSE.with_(final=16).commands(Phase.concluded))


def concluded_in_remission(api: Api, case_id: str) -> None:
    """Remission (18 to 2) with no prior episodes: nothing is offered."""
    drive(api, case_id, *COURSE.with_(final=2).commands(Phase.concluded))


def in_follow_up(api: Api, case_id: str) -> None:
    """Continuation accepted for 6 monthly sessions."""
    drive(
        api,
        case_id,
        *COURSE.commands(Phase.concluded),
        AcceptFollowUp.parse(sessions=6, frequency="monthly"),
    )


def withdrawn(api: Api, case_id: str) -> None:
    drive(api, case_id, Withdraw.parse(reason="moved"))


@dataclass(frozen=True)
class Command:
    """A command route, a state where it succeeds, and a body it accepts."""

    route: str
    body: dict[str, Any] | None
    arrange: Arrange = nothing
    status: int = 200


COMMANDS: dict[str, Command] = {
    "inventory": Command("inventory", inventory()),
    "focus": Command(
        "focus",
        {
            "primary_area": "role_dispute",
            "dispute_stage": "impasse",
            "client_agreed": True,
        },
        with_inventory,
    ),
    "dispute-stage": Command(
        "dispute-stage", {"stage": "renegotiation"}, with_role_dispute
    ),
    "contract": Command("contract", {"sessions": 16, "frequency": "weekly"}),
    "contract-renegotiation": Command(
        "contract",
        {"sessions": 12, "frequency": "weekly", "reason": "client_request"},
        with_contract,
    ),
    "deviations": Command(
        "deviations", {"rule": "beginning_session_limit", "reason": "crisis"}
    ),
    "measures": Command("measures", BASELINE),
    "sessions": Command("sessions", session(), status=201),
    "missed-sessions": Command(
        "missed-sessions",
        {"scheduled_on": TODAY_ISH, "reason": "client_cancelled"},
        status=201,
    ),
    "corrections": Command(
        "corrections",
        {"entry": "session", "number": 1, "reason": "duplicate_entry"},
        with_session,
    ),
    "reassign": Command("reassign", {"clinician_id": "t-9"}),
    "risk-reviews": Command(
        "risk-reviews", {"outcome": "safety_plan_made"}, with_risk_flag
    ),
    "start_middle": Command("transitions/start_middle", None, ready_for_middle),
    "start_end": Command("transitions/start_end", None, ready_for_end),
    "conclude": Command(
        "transitions/conclude", {"maintenance_discussed": True}, ready_to_conclude
    ),
    "close": Command("transitions/close", None, concluded_in_remission),
    "withdraw": Command("transitions/withdraw", {"reason": "moved"}),
    "accept_follow_up": Command(
        "transitions/accept_follow_up",
        {"sessions": 6, "frequency": "monthly"},
        concluded_with_continuation,
    ),
    "decline_follow_up": Command(
        "transitions/decline_follow_up", None, concluded_with_continuation
    ),
    "follow-up-offer": Command(
        "follow-up/offer", {"kind": "maintenance"}, concluded_in_remission
    ),
    "follow-up-decision": Command(
        "follow-up/decision",
        {"accepted": True, "sessions": 6, "frequency": "monthly"},
        concluded_with_continuation,
    ),
}
"""Every command route of api.md; the role matrix uses this table too."""


def new_case(api: Api, **fields: Any) -> str:
    """A new case of clinic-a with a client_ref of its own."""
    return api.open_case(f"C-{uuid.uuid4().hex[:16]}", **fields)


def prepared(api: Api, command: Command) -> str:
    """A new case of clinic-a in the state where `command` succeeds."""
    case_id = new_case(api)
    command.arrange(api, case_id)
    return case_id


def key() -> str:
    return f"key-{uuid.uuid4().hex}"


# --- POST /cases -------------------------------------------------------------------


class TestOpenCase:
    def test_opening_a_case_answers_201_with_its_location_and_the_new_case(
        self, api: Api
    ) -> None:
        body = {**OPENING, "prior_episodes": 2}

        answer: Response = api.post("/cases", body)

        case = assert_case_answer(answer, 201)
        assert answer.headers["Location"] == f"/cases/{case['id']}"
        assert uuid.UUID(case["id"])
        assert case["clinic_id"] == "clinic-a"
        assert case["client_ref"] == "A-1042"
        assert case["protocol"] == "ipt@1"
        assert case["clinician_id"] == "t-7"
        assert (case["client_age"], case["prior_episodes"]) == (34, 2)
        assert (case["phase"], case["version"]) == ("beginning", 1)
        assert case["position"] >= 1
        assert case["sessions_held"] == NO_SESSIONS
        assert case["contract"] is None
        assert case["sessions_remaining"] is None
        assert case["focus"] is None
        assert case["baseline"] is None
        assert case["latest_measure"] is None
        assert case["outcome"] is None
        assert case["follow_up_offer"] is None
        assert case["follow_up_contract"] is None
        assert case["deviations"] == []
        assert case["transitions"]["withdraw"] == {"allowed": True, "reasons": []}
        assert rules_of(case, "start_middle") == [
            "beginning_session_required",
            "baseline_measure_required",
            "inventory_required",
            "focus_required",
            "contract_required",
        ]
        assert rules_of(case, "conclude") == ["wrong_phase"]

    def test_opening_again_with_the_same_client_ref_and_data_answers_200_with_it(
        self, api: Api
    ) -> None:
        first: Response = api.post("/cases", OPENING)
        same_data = {**OPENING, "protocol": "ipt@1"}

        again: Response = api.post("/cases", same_data)

        case = assert_case_answer(again, 200)
        assert case == first.json()
        assert again.headers["Location"] == first.headers["Location"]
        assert event_types(api, case["id"]) == ["CaseOpened"]

    def test_opening_again_with_the_same_client_ref_and_other_data_is_409_conflict(
        self, api: Api
    ) -> None:
        case_id = api.open_case()

        answer: Response = api.post("/cases", {**OPENING, "client_age": 35})

        assert_problem(answer, 409, "conflict")
        assert read_case(api, case_id)["client_age"] == 34
        assert event_types(api, case_id) == ["CaseOpened"]

    def test_the_client_ref_of_an_ended_case_opens_a_new_case(self, api: Api) -> None:
        ended = api.open_case()
        withdrawn(api, ended)

        answer: Response = api.post("/cases", OPENING)

        case = assert_case_answer(answer, 201)
        assert case["id"] != ended
        assert case["phase"] == "beginning"

    def test_the_same_client_ref_at_another_clinic_opens_a_separate_case(
        self, api: Api
    ) -> None:
        ours = api.open_case()

        answer: Response = api.post("/cases", OPENING, who="other_clinician")

        case = assert_case_answer(answer, 201)
        assert case["id"] != ours
        assert case["clinic_id"] == "clinic-b"

    def test_an_age_outside_the_protocol_is_409_guard_failed(
        self, sqlite_api: Api
    ) -> None:
        body = {**OPENING, "client_age": 15}

        answer: Response = sqlite_api.post("/cases", body)

        assert guard_rules(answer) == ["age_outside_protocol"]

    def test_a_body_that_does_not_fit_the_schema_lists_every_bad_field(
        self, sqlite_api: Api
    ) -> None:
        body = {"client_ref": "bad ref!", "protocol": "ipt", "client_age": "34", "x": 1}

        answer: Response = sqlite_api.post("/cases", body)

        assert bad_fields(answer) == {"client_ref", "client_age", "clinician_id", "x"}

    def test_an_unknown_protocol_is_listed_beside_other_bad_fields(
        self, sqlite_api: Api
    ) -> None:
        body = {**OPENING, "protocol": "ipt-x", "client_age": 131}

        answer: Response = sqlite_api.post("/cases", body)

        assert bad_fields(answer) == {"protocol", "client_age"}

    def test_a_retry_of_the_opening_request_after_a_reassignment_returns_the_case(
        self, sqlite_api: Api
    ) -> None:
        body = {**OPENING, "client_ref": f"R-{uuid.uuid4().hex[:16]}"}
        first: Response = sqlite_api.post("/cases", body)
        post_ok(sqlite_api, first.json()["id"], "reassign", {"clinician_id": "t-9"})

        again: Response = sqlite_api.post("/cases", body)

        case = assert_case_answer(again, 200)
        assert case["id"] == first.json()["id"]
        assert again.headers["Location"] == first.headers["Location"]

    def test_an_unknown_protocol_alone_is_422(self, sqlite_api: Api) -> None:
        body = {**OPENING, "protocol": "ipt-x"}

        answer: Response = sqlite_api.post("/cases", body)

        assert bad_fields(answer) == {"protocol"}


# --- GET /cases/{id} ---------------------------------------------------------------


class TestReadCase:
    def test_reading_a_case_answers_what_its_last_command_answered(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        last = post_ok(
            api, case_id, "contract", {"sessions": 14, "frequency": "weekly"}
        )

        answer: Response = api.get(f"/cases/{case_id}")

        case = assert_case_answer(answer, 200)
        assert case == last
        assert case["version"] == 2
        assert answer.headers["ETag"] == '"2"'

    def test_an_auditor_of_the_clinic_reads_the_same_case(self, api: Api) -> None:
        case_id = api.open_case()
        clinicians_view = read_case(api, case_id)

        answer: Response = api.get(f"/cases/{case_id}", who="auditor")

        assert assert_case_answer(answer, 200) == clinicians_view

    @pytest.mark.parametrize("who", ["clinician", "auditor"])
    def test_an_unknown_case_is_404(self, sqlite_api: Api, who: str) -> None:
        answer: Response = sqlite_api.get(f"/cases/{uuid.uuid4()}", who=who)

        assert_problem(answer, 404, "not_found")

    @pytest.mark.parametrize("who", ["other_clinician", "other_auditor"])
    def test_a_case_of_another_clinic_is_404(self, sqlite_api: Api, who: str) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.get(f"/cases/{case_id}", who=who)

        assert_problem(answer, 404, "not_found")

    def test_an_id_that_is_not_a_uuid_is_404(self, sqlite_api: Api) -> None:
        answer: Response = sqlite_api.get("/cases/not-a-uuid")

        assert_problem(answer, 404, "not_found")


# --- GET /cases/{id}/history -------------------------------------------------------


class TestHistory:
    def test_history_lists_every_event_in_version_order_with_who_and_which_command(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        api.post(
            f"/cases/{case_id}/reassign",
            {"clinician_id": "t-9", "on_behalf_of": "t-7"},
            **{"Idempotency-Key": "reassign-1"},
        )

        answer: Response = api.get(f"/cases/{case_id}/history")

        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert set(page) == {"items", "next_after_version"}  # no next_after: last
        assert page["next_after_version"] is None
        opened, reassigned = page["items"]
        for item in (opened, reassigned):
            assert set(item) == {
                "version",
                "type",
                "occurred_at",
                "recorded_by",
                "on_behalf_of",
                "command_id",
                "data",
                "erased",
            }
            assert item["erased"] is False
            assert item["recorded_by"] == "clinician-actor"
            assert item["occurred_at"].endswith("+00:00")
        assert (opened["version"], opened["type"]) == (1, "CaseOpened")
        assert opened["on_behalf_of"] is None
        assert opened["command_id"]
        assert opened["data"]["client_ref"] == "A-1042"
        assert (reassigned["version"], reassigned["type"]) == (2, "CaseReassigned")
        assert reassigned["on_behalf_of"] == "t-7"
        assert reassigned["command_id"] == "reassign-1"
        assert reassigned["data"] == {
            "clinician_id": "t-9",
            "previous_clinician_id": "t-7",
        }

    def test_history_pages_by_after_version_and_limit(self, api: Api) -> None:
        case_id = api.open_case()
        ready_for_middle(api, case_id)

        pages = [
            api.get(f"/cases/{case_id}/history", limit=2, after_version=after).json()
            for after in (0, 2, 4)
        ]

        assert [[i["version"] for i in p["items"]] for p in pages] == [
            [1, 2],
            [3, 4],
            [5, 6],
        ]
        assert [p["next_after_version"] for p in pages] == [2, 4, None]
        assert [p.get("next_after") for p in pages] == [2, 4, None]
        by_after = api.get(f"/cases/{case_id}/history", limit=2, after=2).json()
        assert by_after["items"] == pages[1]["items"]

    def test_a_page_past_the_last_event_is_empty(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.get(f"/cases/{case_id}/history", after_version=1)

        assert answer.status_code == 200
        assert answer.json() == {"items": [], "next_after_version": None}

    def test_without_a_limit_a_page_holds_100_events(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)
        for n in range(100):
            post_ok(sqlite_api, case_id, "reassign", {"clinician_id": f"t-{n}"})

        answer: Response = sqlite_api.get(f"/cases/{case_id}/history")

        page = answer.json()
        assert len(page["items"]) == 100
        assert page["next_after_version"] == 100
        assert page["next_after"] == 100

    def test_an_auditor_of_the_clinic_reads_the_history(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.get(f"/cases/{case_id}/history", who="auditor")

        assert answer.status_code == 200
        assert [i["type"] for i in answer.json()["items"]] == ["CaseOpened"]

    @pytest.mark.parametrize(
        ("query", "fields"),
        [
            ({"limit": 0}, {"limit"}),
            ({"limit": 1001}, {"limit"}),
            ({"limit": "ten"}, {"limit"}),
            ({"after_version": -1}, {"after_version"}),
            ({"after_version": -1, "limit": 0}, {"after_version", "limit"}),
        ],
    )
    def test_a_query_outside_its_range_is_422_listing_every_bad_field(
        self, sqlite_api: Api, query: dict[str, Any], fields: set[str]
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.get(f"/cases/{case_id}/history", **query)

        assert bad_fields(answer) == fields

    def test_a_limit_of_1000_is_allowed(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.get(f"/cases/{case_id}/history", limit=1000)

        assert answer.status_code == 200

    @pytest.mark.parametrize("who", ["other_clinician", "other_auditor"])
    def test_the_history_of_a_case_of_another_clinic_is_404(
        self, sqlite_api: Api, who: str
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.get(f"/cases/{case_id}/history", who=who)

        assert_problem(answer, 404, "not_found")

    def test_the_history_of_an_unknown_case_is_404(self, sqlite_api: Api) -> None:
        answer: Response = sqlite_api.get(f"/cases/{uuid.uuid4()}/history")

        assert_problem(answer, 404, "not_found")


# --- POST /cases/{id}/inventory ----------------------------------------------------


class TestInventory:
    def test_recording_the_inventory_answers_the_case_without_that_missing_rule(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        body = {
            **inventory(),
            "attachment_style": "anxious",
            "communication_style": "passive",
        }

        answer: Response = api.post(f"/cases/{case_id}/inventory", body)

        case = assert_case_answer(answer, 200)
        assert case["version"] == 2
        assert "inventory_required" not in rules_of(case, "start_middle")
        recorded = history(api, case_id)[-1]
        assert recorded["type"] == "InterpersonalInventoryRecorded"
        assert recorded["data"]["attachment_style"] == "anxious"
        assert recorded["data"]["relationships"][0]["role"] == "partner"

    def test_recording_it_again_replaces_it_and_keeps_both_in_the_history(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        with_inventory(api, case_id)
        grief = {
            "relationships": [{"role": "mother", "closeness": 1, "deceased": True}]
        }

        answer: Response = api.post(f"/cases/{case_id}/inventory", grief)
        focus = post_ok(
            api, case_id, "focus", {"primary_area": "grief", "client_agreed": True}
        )

        assert assert_case_answer(answer, 200)["version"] == 3
        assert focus["focus"]["primary_area"] == "grief"
        assert event_types(api, case_id).count("InterpersonalInventoryRecorded") == 2

    def test_outside_the_beginning_phase_it_is_409_wrong_phase(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        in_middle(sqlite_api, case_id)

        answer: Response = sqlite_api.post(f"/cases/{case_id}/inventory", inventory())

        assert guard_rules(answer) == ["wrong_phase"]

    def test_bad_relationships_and_styles_are_422_listing_every_field(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        body = {
            "relationships": [
                {"role": "partner", "closeness": 4},
                {"role": "neighbour", "closeness": 1, "conflict": "yes"},
            ],
            "attachment_style": "clingy",
        }

        answer: Response = sqlite_api.post(f"/cases/{case_id}/inventory", body)

        assert bad_fields(answer) == {
            "relationships[0].closeness",
            "relationships[1].role",
            "relationships[1].conflict",
            "attachment_style",
        }

    def test_an_empty_inventory_is_422(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/inventory", {"relationships": []}
        )

        assert bad_fields(answer) == {"relationships"}


# --- POST /cases/{id}/focus --------------------------------------------------------


class TestFocus:
    def test_agreeing_the_focus_answers_the_case_with_it(self, api: Api) -> None:
        case_id = api.open_case()
        with_inventory(api, case_id)
        body = {
            "primary_area": "role_dispute",
            "dispute_stage": "impasse",
            "secondary_area": "role_transition",
            "secondary_reason": "linked_to_onset",
            "client_agreed": True,
        }

        answer: Response = api.post(f"/cases/{case_id}/focus", body)

        case = assert_case_answer(answer, 200)
        assert case["focus"] == {
            "primary_area": "role_dispute",
            "secondary_area": "role_transition",
            "dispute_stage": "impasse",
        }
        assert case["version"] == 3
        assert "focus_required" not in rules_of(case, "start_middle")

    def test_a_refused_focus_lists_every_unmet_rule(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)
        body = {
            "primary_area": "role_dispute",
            "secondary_area": "role_dispute",
            "client_agreed": False,
        }

        answer: Response = sqlite_api.post(f"/cases/{case_id}/focus", body)

        assert guard_rules(answer) == [
            "inventory_required",
            "secondary_area_repeats_primary",
            "secondary_reason_required",
            "dispute_stage_required",
            "client_agreement_required",
        ]
        assert read_case(sqlite_api, case_id)["focus"] is None

    def test_grief_without_a_deceased_relationship_is_409(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        with_inventory(sqlite_api, case_id)
        body = {
            "primary_area": "grief",
            "dispute_stage": "impasse",
            "client_agreed": True,
        }

        answer: Response = sqlite_api.post(f"/cases/{case_id}/focus", body)

        assert guard_rules(answer) == [
            "grief_needs_deceased_relationship",
            "dispute_stage_without_role_dispute",
        ]

    def test_unknown_codes_and_a_non_boolean_agreement_are_422_listing_every_field(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        body = {
            "primary_area": "loneliness",
            "dispute_stage": "war",
            "client_agreed": 1,
        }

        answer: Response = sqlite_api.post(f"/cases/{case_id}/focus", body)

        assert bad_fields(answer) == {"primary_area", "dispute_stage", "client_agreed"}


# --- POST /cases/{id}/dispute-stage ------------------------------------------------


class TestDisputeStage:
    def test_changing_the_dispute_stage_answers_the_case_with_the_new_stage(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        with_role_dispute(api, case_id)

        answer: Response = api.post(
            f"/cases/{case_id}/dispute-stage", {"stage": "renegotiation"}
        )

        case = assert_case_answer(answer, 200)
        assert case["focus"]["dispute_stage"] == "renegotiation"
        assert case["version"] == 4
        assert history(api, case_id)[-1]["data"] == {
            "stage": "renegotiation",
            "previous_stage": "impasse",
        }

    def test_without_a_role_dispute_focus_it_is_409(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/dispute-stage", {"stage": "impasse"}
        )

        assert guard_rules(answer) == ["focus_not_role_dispute"]

    def test_the_same_stage_again_is_409(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)
        with_role_dispute(sqlite_api, case_id)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/dispute-stage", {"stage": "impasse"}
        )

        assert guard_rules(answer) == ["dispute_stage_unchanged"]

    def test_an_unknown_stage_is_422(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/dispute-stage", {"stage": "truce", "extra": True}
        )

        assert bad_fields(answer) == {"stage", "extra"}


# --- POST /cases/{id}/contract -----------------------------------------------------


class TestContract:
    def test_agreeing_a_contract_answers_the_case_with_it_and_the_sessions_remaining(
        self, api: Api
    ) -> None:
        case_id = api.open_case()

        answer: Response = api.post(
            f"/cases/{case_id}/contract", {"sessions": 14, "frequency": "twice_weekly"}
        )

        case = assert_case_answer(answer, 200)
        assert case["contract"] == {"sessions": 14, "frequency": "twice_weekly"}
        assert case["sessions_remaining"] == 14
        assert case["version"] == 2
        assert history(api, case_id)[-1]["type"] == "ContractAgreed"

    def test_a_contract_call_when_one_exists_renegotiates_it_with_its_reason(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        with_contract(api, case_id)
        with_session(api, case_id)

        answer: Response = api.post(
            f"/cases/{case_id}/contract",
            {"sessions": 12, "frequency": "weekly", "reason": "client_request"},
        )

        case = assert_case_answer(answer, 200)
        assert case["contract"] == {"sessions": 12, "frequency": "weekly"}
        assert case["sessions_remaining"] == 11
        renegotiated = history(api, case_id)[-1]
        assert renegotiated["type"] == "ContractRenegotiated"
        assert renegotiated["data"]["reason"] == "client_request"
        assert renegotiated["data"]["previous_sessions"] == 16

    def test_a_renegotiation_without_a_reason_is_422(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)
        with_contract(sqlite_api, case_id)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/contract", {"sessions": 12, "frequency": "weekly"}
        )

        assert bad_fields(answer) == {"reason"}
        assert read_case(sqlite_api, case_id)["contract"]["sessions"] == 16

    def test_a_renegotiation_that_names_only_the_sessions_keeps_the_frequency(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        post_ok(
            sqlite_api,
            case_id,
            "contract",
            {"sessions": 16, "frequency": "twice_weekly"},
        )

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/contract", {"sessions": 14, "reason": "scheduling"}
        )

        case = assert_case_answer(answer, 200)
        assert case["contract"] == {"sessions": 14, "frequency": "twice_weekly"}

    def test_a_contract_outside_the_protocol_range_is_409(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/contract", {"sessions": 20, "frequency": "weekly"}
        )

        assert guard_rules(answer) == ["contract_outside_range"]
        assert read_case(sqlite_api, case_id)["contract"] is None

    def test_a_renegotiation_below_the_sessions_owed_lists_every_unmet_rule(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        in_middle(sqlite_api, case_id)
        with_session(sqlite_api, case_id)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/contract", {"sessions": 3, "reason": "slow_progress"}
        )

        assert guard_rules(answer) == [
            "contract_outside_range",
            "contract_below_sessions_owed",
        ]

    def test_wrong_types_and_codes_are_422_listing_every_field(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        body = {"sessions": "16", "frequency": "daily", "reason": "bored"}

        answer: Response = sqlite_api.post(f"/cases/{case_id}/contract", body)

        assert bad_fields(answer) == {"sessions", "frequency", "reason"}


# --- POST /cases/{id}/deviations ---------------------------------------------------


class TestDeviations:
    def test_recording_a_deviation_answers_the_case_listing_it(self, api: Api) -> None:
        case_id = api.open_case()

        answer: Response = api.post(
            f"/cases/{case_id}/deviations",
            {"rule": "beginning_session_limit", "reason": "other", "note": "crisis"},
        )

        case = assert_case_answer(answer, 200)
        assert case["version"] == 2
        [deviation] = case["deviations"]
        assert deviation["rule"] == "beginning_session_limit"
        assert deviation["reason"] == "other"
        assert deviation["note"] == "crisis"
        assert deviation["phase"] == "beginning"
        assert deviation["used"] is False

    def test_an_extra_beginning_session_outside_the_beginning_is_409(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        in_middle(sqlite_api, case_id)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/deviations",
            {"rule": "beginning_session_limit", "reason": "crisis"},
        )

        assert guard_rules(answer) == ["deviation_not_applicable"]

    def test_a_second_open_contract_range_deviation_is_409(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        body = {"rule": "contract_range", "reason": "crisis"}
        post_ok(sqlite_api, case_id, "deviations", body)

        answer: Response = sqlite_api.post(f"/cases/{case_id}/deviations", body)

        assert guard_rules(answer) == ["deviation_already_open"]
        assert len(read_case(sqlite_api, case_id)["deviations"]) == 1

    def test_unknown_rule_and_reason_are_422_listing_both(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/deviations", {"rule": "any", "reason": "whim"}
        )

        assert bad_fields(answer) == {"rule", "reason"}

    def test_a_note_with_a_reason_other_than_other_is_422(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        body = {"rule": "contract_range", "reason": "crisis", "note": "why"}

        answer: Response = sqlite_api.post(f"/cases/{case_id}/deviations", body)

        assert bad_fields(answer) == {"note"}


# --- POST /cases/{id}/measures -----------------------------------------------------


class TestMeasures:
    def test_the_first_measure_is_the_baseline_and_later_ones_the_latest(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        post_ok(api, case_id, "measures", BASELINE)
        later = {"instrument": "phq9", "score": 12, "measured_on": TODAY_ISH}

        answer: Response = api.post(f"/cases/{case_id}/measures", later)

        case = assert_case_answer(answer, 200)
        assert case["baseline"] == BASELINE
        assert case["latest_measure"] == later
        assert case["version"] == 3
        assert "baseline_measure_required" not in rules_of(case, "start_middle")

    def test_a_measure_of_an_ended_case_is_409_wrong_phase(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        withdrawn(sqlite_api, case_id)

        answer: Response = sqlite_api.post(f"/cases/{case_id}/measures", BASELINE)

        assert guard_rules(answer) == ["wrong_phase"]

    def test_a_score_outside_the_instrument_and_a_future_date_are_both_listed(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        body = {"instrument": "phq9", "score": 28, "measured_on": FUTURE}

        answer: Response = sqlite_api.post(f"/cases/{case_id}/measures", body)

        assert bad_fields(answer) == {"score", "measured_on"}
        assert read_case(sqlite_api, case_id)["baseline"] is None

    def test_a_future_date_is_listed_beside_a_score_over_the_schema_limit(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        body = {"instrument": "phq9", "score": 300, "measured_on": FUTURE}

        answer: Response = sqlite_api.post(f"/cases/{case_id}/measures", body)

        assert bad_fields(answer) == {"score", "measured_on"}

    def test_an_unknown_instrument_and_a_malformed_date_are_422(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        body = {"instrument": "gad7", "score": 5, "measured_on": 20261101}

        answer: Response = sqlite_api.post(f"/cases/{case_id}/measures", body)

        assert bad_fields(answer) == {"instrument", "measured_on"}


# --- POST /cases/{id}/sessions -----------------------------------------------------


class TestSessions:
    def test_a_counted_session_is_201_with_its_number_and_the_case(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        with_contract(api, case_id)

        answer: Response = api.post(
            f"/cases/{case_id}/sessions", session(modality="video")
        )

        body = assert_case_answer(answer, 201)
        assert set(body) == {"session", "case"}
        assert body["session"]["number"] == 1
        assert body["session"]["phase"] == "beginning"
        assert body["session"]["kind"] == "therapy"
        assert body["session"]["modality"] == "video"
        assert body["session"]["held_on"] == TODAY_ISH
        case = body["case"]
        assert case["sessions_held"] == {**NO_SESSIONS, "beginning": 1, "total": 1}
        assert case["sessions_remaining"] == 15
        assert case["version"] == 3

    def test_an_uncounted_kind_has_no_number_and_counts_toward_nothing(
        self, api: Api
    ) -> None:
        case_id = api.open_case(protocol="ipt-b")

        answer: Response = api.post(
            f"/cases/{case_id}/sessions", session(kind="engagement")
        )

        body = assert_case_answer(answer, 201)
        assert body["session"]["number"] is None
        assert body["session"]["kind"] == "engagement"
        assert body["case"]["sessions_held"] == NO_SESSIONS
        assert body["case"]["version"] == 2

    def test_follow_up_sessions_are_numbered_separately_against_their_contract(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        in_follow_up(api, case_id)

        answer: Response = api.post(f"/cases/{case_id}/sessions", session())

        body = assert_case_answer(answer, 201)
        assert body["session"]["number"] == 1
        assert body["session"]["follow_up"] is True
        held = body["case"]["sessions_held"]
        assert (held["total"], held["follow_up"]) == (4, 1)
        assert body["case"]["sessions_remaining"] == 5

    def test_a_session_over_the_beginning_limit_with_strategies_lists_both_rules(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        for _ in range(3):
            with_session(sqlite_api, case_id)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/sessions", session(strategies=["role_play"])
        )

        assert guard_rules(answer) == [
            "strategies_only_in_middle",
            "beginning_session_limit",
        ]
        assert read_case(sqlite_api, case_id)["sessions_held"]["total"] == 3

    def test_a_bad_session_is_422_listing_every_field(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)
        body = {
            "held_on": "2026-13-01",
            "minutes": 10,
            "modality": "fax",
            "attendees": [],
            "kind": "coaching",
        }

        answer: Response = sqlite_api.post(f"/cases/{case_id}/sessions", body)

        assert bad_fields(answer) == {
            "held_on",
            "minutes",
            "modality",
            "attendees",
            "kind",
        }

    def test_a_future_date_and_aspects_without_their_strategy_are_both_listed(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        body = session(FUTURE, communication_aspects=["tone"])

        answer: Response = sqlite_api.post(f"/cases/{case_id}/sessions", body)

        assert bad_fields(answer) == {"held_on", "communication_aspects"}


# --- POST /cases/{id}/missed-sessions ----------------------------------------------


class TestMissedSessions:
    def test_a_missed_session_is_201_and_counts_toward_nothing(self, api: Api) -> None:
        case_id = api.open_case()
        with_contract(api, case_id)

        answer: Response = api.post(
            f"/cases/{case_id}/missed-sessions",
            {"scheduled_on": TODAY_ISH, "reason": "client_did_not_attend"},
        )

        body = assert_case_answer(answer, 201)
        assert body["session"]["missed"] is True
        assert body["session"]["number"] is None
        assert body["session"]["scheduled_on"] == TODAY_ISH
        assert body["session"]["reason"] == "client_did_not_attend"
        assert body["case"]["sessions_held"] == NO_SESSIONS
        assert body["case"]["sessions_remaining"] == 16
        assert body["case"]["version"] == 3

    def test_a_missed_session_of_a_concluded_case_is_409_wrong_phase(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        concluded_in_remission(sqlite_api, case_id)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/missed-sessions",
            {"scheduled_on": TODAY_ISH, "reason": "client_cancelled"},
        )

        assert guard_rules(answer) == ["wrong_phase"]

    def test_a_bad_date_and_reason_are_422_listing_both(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/missed-sessions",
            {"scheduled_on": "yesterday", "reason": "rain"},
        )

        assert bad_fields(answer) == {"scheduled_on", "reason"}


# --- POST /cases/{id}/corrections --------------------------------------------------


class TestCorrections:
    def test_correcting_a_session_takes_it_out_of_the_counts(self, api: Api) -> None:
        case_id = api.open_case()
        with_contract(api, case_id)
        with_session(api, case_id)

        answer: Response = api.post(
            f"/cases/{case_id}/corrections",
            {"entry": "session", "number": 1, "reason": "did_not_take_place"},
        )

        case = assert_case_answer(answer, 200)
        assert case["sessions_held"] == NO_SESSIONS
        # The voided number is not given again (D50): 15 numbers are left.
        assert case["sessions_remaining"] == 15
        assert "beginning_session_required" in rules_of(case, "start_middle")
        assert history(api, case_id)[-1]["type"] == "SessionEnteredInError"

    def test_correcting_a_measure_makes_the_next_one_the_baseline(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        post_ok(api, case_id, "measures", BASELINE)
        later = {"instrument": "phq9", "score": 15, "measured_on": TODAY_ISH}
        post_ok(api, case_id, "measures", later)

        answer: Response = api.post(
            f"/cases/{case_id}/corrections",
            {
                "entry": "measure",
                "instrument": "phq9",
                "measured_on": BASELINE["measured_on"],
                "reason": "wrong_case",
            },
        )

        case = assert_case_answer(answer, 200)
        assert case["baseline"] == later
        assert case["latest_measure"] == later
        assert history(api, case_id)[-1]["type"] == "MeasureEnteredInError"

    def test_correcting_an_entry_that_does_not_exist_is_409(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/corrections",
            {"entry": "session", "number": 1, "reason": "duplicate_entry"},
        )

        assert guard_rules(answer) == ["entry_not_found"]

    def test_correcting_a_voided_entry_again_is_409(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)
        with_session(sqlite_api, case_id)
        body = {"entry": "session", "number": 1, "reason": "duplicate_entry"}
        post_ok(sqlite_api, case_id, "corrections", body)

        answer: Response = sqlite_api.post(f"/cases/{case_id}/corrections", body)

        assert guard_rules(answer) == ["entry_already_voided"]

    def test_a_measure_correction_without_its_address_lists_both_missing_fields(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/corrections",
            {"entry": "measure", "reason": "wrong_case"},
        )

        assert bad_fields(answer) == {"measured_on", "instrument"}

    def test_an_unknown_entry_and_reason_are_422_listing_both(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/corrections",
            {"entry": "note", "number": 0, "reason": "oops"},
        )

        assert bad_fields(answer) == {"entry", "number", "reason"}


# --- POST /cases/{id}/reassign -----------------------------------------------------


class TestReassign:
    def test_reassigning_answers_the_case_with_the_new_clinician(
        self, api: Api
    ) -> None:
        case_id = api.open_case()

        answer: Response = api.post(
            f"/cases/{case_id}/reassign", {"clinician_id": "t-9"}
        )

        case = assert_case_answer(answer, 200)
        assert case["clinician_id"] == "t-9"
        assert case["version"] == 2

    def test_reassigning_to_the_same_clinician_is_409(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/reassign", {"clinician_id": "t-7"}
        )

        assert guard_rules(answer) == ["clinician_unchanged"]

    def test_a_malformed_clinician_id_and_on_behalf_of_are_422(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/reassign",
            {"clinician_id": "Dr Smith", "on_behalf_of": "x" * 65},
        )

        assert bad_fields(answer) == {"clinician_id", "on_behalf_of"}


# --- POST /cases/{id}/transitions/{name} -------------------------------------------


class TestStartMiddle:
    def test_starting_the_middle_answers_the_case_in_the_middle_phase(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        ready_for_middle(api, case_id)

        answer: Response = api.post(f"/cases/{case_id}/transitions/start_middle")

        case = assert_case_answer(answer, 200)
        assert (case["phase"], case["version"]) == ("middle", 7)
        assert case["sessions_held"] == {**NO_SESSIONS, "beginning": 1, "total": 1}
        assert case["contract"] == {"sessions": 16, "frequency": "weekly"}
        assert case["sessions_remaining"] == 15
        assert case["focus"] == {
            "primary_area": "role_transition",
            "secondary_area": None,
            "dispute_stage": None,
        }
        assert case["baseline"] == case["latest_measure"] == BASELINE
        assert rules_of(case, "start_middle") == ["wrong_phase"]
        assert rules_of(case, "start_end") == [
            "middle_session_required",
            "sessions_left_outside_end_range",
        ]
        assert history(api, case_id)[-1]["type"] == "MiddlePhaseStarted"

    def test_starting_the_middle_of_a_new_case_lists_every_unmet_rule(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(f"/cases/{case_id}/transitions/start_middle")

        assert guard_rules(answer) == [
            "beginning_session_required",
            "baseline_measure_required",
            "inventory_required",
            "focus_required",
            "contract_required",
        ]
        assert read_case(sqlite_api, case_id)["phase"] == "beginning"

    def test_the_refusal_and_the_cases_why_not_agree(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)
        with_inventory(sqlite_api, case_id)
        why_not = rules_of(read_case(sqlite_api, case_id), "start_middle")

        answer: Response = sqlite_api.post(f"/cases/{case_id}/transitions/start_middle")

        assert guard_rules(answer) == why_not


class TestStartEnd:
    def test_starting_the_end_answers_the_case_in_the_end_phase(self, api: Api) -> None:
        case_id = api.open_case()
        ready_for_end(api, case_id)

        answer: Response = api.post(f"/cases/{case_id}/transitions/start_end")

        case = assert_case_answer(answer, 200)
        assert case["phase"] == "end"
        assert case["sessions_held"] == {
            **NO_SESSIONS,
            "beginning": 1,
            "middle": 1,
            "total": 2,
        }
        assert case["contract"] == {"sessions": 4, "frequency": "weekly"}
        assert case["sessions_remaining"] == 2
        assert case["deviations"][0]["used"] is True
        assert rules_of(case, "conclude") == [
            "end_sessions_required",
            "end_measure_required",
        ]

    def test_starting_the_end_too_early_lists_every_unmet_rule(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        in_middle(sqlite_api, case_id)

        answer: Response = sqlite_api.post(f"/cases/{case_id}/transitions/start_end")

        assert guard_rules(answer) == [
            "middle_session_required",
            "sessions_left_outside_end_range",
        ]


class TestConclude:
    def test_concluding_classifies_the_outcome_and_offers_continuation(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        ready_to_conclude(api, case_id, final=8)
        before = read_case(api, case_id)

        answer: Response = api.post(
            f"/cases/{case_id}/transitions/conclude", {"maintenance_discussed": True}
        )

        case = assert_case_answer(answer, 200)
        assert case["phase"] == "concluded"
        assert case["version"] == before["version"] + 2
        assert case["position"] > before["position"]
        assert case["outcome"] == {
            "classification": "response",
            "instrument": "phq9",
            "baseline": 18,
            "final": 8,
            "residual": True,
        }
        offer = case["follow_up_offer"]
        assert set(offer) == {"kind", "offered_at", "automatic"}
        assert (offer["kind"], offer["automatic"]) == ("continuation", True)
        assert case["latest_measure"]["score"] == 8
        assert case["transitions"]["accept_follow_up"]["allowed"] is True
        assert rules_of(case, "close") == ["offer_awaiting_decision"]
        assert event_types(api, case_id)[-2:] == [
            "AcuteTreatmentConcluded",
            "FollowUpOffered",
        ]
        assert history(api, case_id)[-2]["data"]["maintenance_discussed"] is True

    def test_concluding_in_remission_offers_nothing(self, api: Api) -> None:
        case_id = api.open_case()
        ready_to_conclude(api, case_id, final=2)

        answer: Response = api.post(f"/cases/{case_id}/transitions/conclude")

        case = assert_case_answer(answer, 200)
        assert case["outcome"]["classification"] == "remission"
        assert case["outcome"]["residual"] is False
        assert case["follow_up_offer"] is None
        assert case["transitions"]["close"] == {"allowed": True, "reasons": []}

    def test_concluding_without_end_sessions_or_end_measure_lists_both(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        in_end(sqlite_api, case_id)

        answer: Response = sqlite_api.post(f"/cases/{case_id}/transitions/conclude")

        assert guard_rules(answer) == ["end_sessions_required", "end_measure_required"]

    def test_a_non_boolean_maintenance_discussed_is_422(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/transitions/conclude", {"maintenance_discussed": "yes"}
        )

        assert bad_fields(answer) == {"maintenance_discussed"}


class TestClose:
    def test_closing_a_concluded_case_without_an_offer_ends_it(self, api: Api) -> None:
        case_id = api.open_case()
        concluded_in_remission(api, case_id)

        answer: Response = api.post(f"/cases/{case_id}/transitions/close")

        case = assert_case_answer(answer, 200)
        assert case["phase"] == "closed"
        assert not any(t["allowed"] for t in case["transitions"].values())
        closed = history(api, case_id)[-1]
        assert (closed["type"], closed["data"]["disposition"]) == (
            "CaseClosed",
            "completed",
        )

    def test_closing_follow_up_early_with_a_reason_ends_it(self, api: Api) -> None:
        case_id = api.open_case()
        in_follow_up(api, case_id)

        answer: Response = api.post(
            f"/cases/{case_id}/transitions/close", {"reason": "moved"}
        )

        case = assert_case_answer(answer, 200)
        assert case["phase"] == "closed"
        assert case["sessions_held"]["follow_up"] == 0
        closed = history(api, case_id)[-1]["data"]
        assert (closed["disposition"], closed["reason"]) == (
            "follow_up_ended_early",
            "moved",
        )

    def test_closing_follow_up_without_a_session_or_a_reason_is_409(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        in_follow_up(sqlite_api, case_id)

        answer: Response = sqlite_api.post(f"/cases/{case_id}/transitions/close")

        assert guard_rules(answer) == ["follow_up_session_or_reason_required"]
        assert read_case(sqlite_api, case_id)["phase"] == "follow_up"

    def test_closing_while_an_offer_is_open_is_409(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)
        concluded_with_continuation(sqlite_api, case_id)

        answer: Response = sqlite_api.post(f"/cases/{case_id}/transitions/close")

        assert guard_rules(answer) == ["offer_awaiting_decision"]
        assert read_case(sqlite_api, case_id)["phase"] == "concluded"

    def test_closing_a_case_in_the_beginning_is_409_wrong_phase(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(f"/cases/{case_id}/transitions/close")

        assert guard_rules(answer) == ["wrong_phase"]


class TestWithdraw:
    def test_withdrawing_ends_the_case_with_its_reason(self, api: Api) -> None:
        case_id = api.open_case()

        answer: Response = api.post(
            f"/cases/{case_id}/transitions/withdraw",
            {"reason": "other", "note": "emigrated"},
        )

        case = assert_case_answer(answer, 200)
        assert (case["phase"], case["version"]) == ("withdrawn", 2)
        assert not any(t["allowed"] for t in case["transitions"].values())
        assert history(api, case_id)[-1]["data"] == {
            "phase": "withdrawn",
            "reason": "other",
            "note": "emigrated",
            "from_phase": "beginning",
        }

    def test_withdrawing_an_ended_case_is_409_wrong_phase(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        withdrawn(sqlite_api, case_id)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/transitions/withdraw", {"reason": "moved"}
        )

        assert guard_rules(answer) == ["wrong_phase"]

    @pytest.mark.parametrize(
        ("body", "fields"),
        [
            (None, {"reason"}),
            ({"reason": "bored"}, {"reason"}),
            ({"reason": "moved", "note": "far"}, {"note"}),
            ({"reason": "x" * 65, "note": ""}, {"reason", "note"}),
        ],
    )
    def test_a_missing_or_bad_reason_is_422(
        self, sqlite_api: Api, body: dict[str, Any] | None, fields: set[str]
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/transitions/withdraw", body
        )

        assert bad_fields(answer) == fields
        assert read_case(sqlite_api, case_id)["phase"] == "beginning"


class TestTransitionRoute:
    def test_an_unknown_transition_is_404(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(f"/cases/{case_id}/transitions/skip_ahead")

        assert_problem(answer, 404, "not_found")

    @pytest.mark.parametrize(
        ("name", "body", "fields"),
        [
            ("start_middle", {"reason": "moved", "note": "x"}, {"reason", "note"}),
            ("start_end", {"maintenance_discussed": True}, {"maintenance_discussed"}),
            ("conclude", {"reason": "moved"}, {"reason"}),
            (
                "withdraw",
                {"reason": "moved", "maintenance_discussed": True},
                {"maintenance_discussed"},
            ),
        ],
    )
    def test_a_field_the_transition_does_not_take_is_422(
        self, sqlite_api: Api, name: str, body: dict[str, Any], fields: set[str]
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(f"/cases/{case_id}/transitions/{name}", body)

        assert bad_fields(answer) == fields


# --- POST /cases/{id}/follow-up/offer ----------------------------------------------


class TestFollowUpOffer:
    def test_offering_maintenance_after_remission_answers_the_open_offer(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        concluded_in_remission(api, case_id)

        answer: Response = api.post(
            f"/cases/{case_id}/follow-up/offer", {"kind": "maintenance"}
        )

        case = assert_case_answer(answer, 200)
        offer = case["follow_up_offer"]
        assert (offer["kind"], offer["automatic"]) == ("maintenance", False)
        assert rules_of(case, "close") == ["offer_awaiting_decision"]
        assert case["transitions"]["decline_follow_up"]["allowed"] is True

    def test_offering_while_an_offer_is_open_is_409(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)
        concluded_with_continuation(sqlite_api, case_id)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/follow-up/offer", {"kind": "maintenance"}
        )

        assert guard_rules(answer) == ["offer_already_open"]

    def test_offering_before_the_case_is_concluded_is_409_wrong_phase(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/follow-up/offer", {"kind": "continuation"}
        )

        assert guard_rules(answer) == ["wrong_phase"]

    @pytest.mark.parametrize("kind", ["referral", "therapy", None])
    def test_a_kind_other_than_continuation_or_maintenance_is_422(
        self, sqlite_api: Api, kind: str | None
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/follow-up/offer", {"kind": kind}
        )

        assert bad_fields(answer) == {"kind"}


# --- POST /cases/{id}/follow-up/decision -------------------------------------------


class TestFollowUpDecision:
    def test_accepting_continuation_with_a_contract_starts_follow_up(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        concluded_with_continuation(api, case_id)

        answer: Response = api.post(
            f"/cases/{case_id}/follow-up/decision",
            {"accepted": True, "sessions": 6, "frequency": "fortnightly"},
        )

        case = assert_case_answer(answer, 200)
        assert case["phase"] == "follow_up"
        assert case["follow_up_contract"] == {"sessions": 6, "frequency": "fortnightly"}
        assert case["sessions_remaining"] == 6
        assert case["follow_up_offer"] is None
        assert case["contract"] == {"sessions": 4, "frequency": "weekly"}
        assert case["outcome"]["classification"] == "response"
        assert history(api, case_id)[-1]["type"] == "FollowUpAccepted"

    def test_accepting_a_referral_closes_the_case(self, api: Api) -> None:
        case_id = api.open_case()
        concluded_with_referral(api, case_id)

        answer: Response = api.post(
            f"/cases/{case_id}/follow-up/decision", {"accepted": True}
        )

        case = assert_case_answer(answer, 200)
        assert case["phase"] == "closed"
        assert case["follow_up_offer"] is None
        assert case["follow_up_contract"] is None
        accepted, closed = history(api, case_id)[-2:]
        assert (accepted["type"], closed["type"]) == ("FollowUpAccepted", "CaseClosed")
        assert closed["data"]["disposition"] == "referred"

    def test_declining_closes_the_offer_and_allows_closing(self, api: Api) -> None:
        case_id = api.open_case()
        concluded_with_continuation(api, case_id)

        answer: Response = api.post(
            f"/cases/{case_id}/follow-up/decision", {"accepted": False}
        )

        case = assert_case_answer(answer, 200)
        assert case["phase"] == "concluded"
        assert case["follow_up_offer"] is None
        assert case["transitions"]["close"] == {"allowed": True, "reasons": []}
        assert rules_of(case, "decline_follow_up") == ["no_open_offer"]
        assert history(api, case_id)[-1]["type"] == "FollowUpDeclined"

    def test_accepting_continuation_without_a_contract_is_409(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api)
        concluded_with_continuation(sqlite_api, case_id)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/follow-up/decision", {"accepted": True}
        )

        assert guard_rules(answer) == ["follow_up_contract_required"]
        assert read_case(sqlite_api, case_id)["phase"] == "concluded"

    def test_accepting_a_referral_with_a_contract_is_409(self, sqlite_api: Api) -> None:
        case_id = new_case(sqlite_api)
        concluded_with_referral(sqlite_api, case_id)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/follow-up/decision",
            {"accepted": True, "sessions": 4, "frequency": "monthly"},
        )

        assert guard_rules(answer) == ["referral_takes_no_contract"]

    @pytest.mark.parametrize("accepted", [True, False])
    def test_a_decision_without_an_open_offer_is_409(
        self, sqlite_api: Api, accepted: bool
    ) -> None:
        case_id = new_case(sqlite_api)
        concluded_in_remission(sqlite_api, case_id)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/follow-up/decision", {"accepted": accepted}
        )

        assert guard_rules(answer) == ["no_open_offer"]

    @pytest.mark.parametrize(
        ("body", "fields"),
        [
            ({"accepted": "yes"}, {"accepted"}),
            (
                {"accepted": True, "sessions": 0, "frequency": "twice_weekly"},
                {"sessions", "frequency"},
            ),
            ({"accepted": False, "sessions": 4}, {"body"}),
        ],
    )
    def test_a_bad_decision_is_422_listing_every_field(
        self, sqlite_api: Api, body: dict[str, Any], fields: set[str]
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(f"/cases/{case_id}/follow-up/decision", body)

        assert bad_fields(answer) == fields


# --- every command route: unknown and foreign cases, If-Match, Idempotency-Key -----


class TestEveryCommandRoute:
    @pytest.mark.parametrize("name", COMMANDS)
    def test_a_command_for_an_unknown_case_is_404(
        self, sqlite_api: Api, name: str
    ) -> None:
        command = COMMANDS[name]

        answer: Response = sqlite_api.post(
            f"/cases/{uuid.uuid4()}/{command.route}", command.body
        )

        assert_problem(answer, 404, "not_found")

    @pytest.mark.parametrize("name", COMMANDS)
    def test_a_command_for_a_case_of_another_clinic_is_404_and_writes_nothing(
        self, sqlite_api: Api, name: str
    ) -> None:
        command = COMMANDS[name]
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/{command.route}", command.body, who="other_clinician"
        )

        assert_problem(answer, 404, "not_found")
        assert event_types(sqlite_api, case_id) == ["CaseOpened"]

    @pytest.mark.parametrize("name", COMMANDS)
    def test_a_stale_if_match_is_412_and_writes_nothing(
        self, sqlite_api: Api, name: str
    ) -> None:
        command = COMMANDS[name]
        case_id = new_case(sqlite_api)
        post_ok(sqlite_api, case_id, "reassign", {"clinician_id": "t-8"})

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/{command.route}", command.body, **{"If-Match": '"1"'}
        )

        assert_problem(answer, 412, "version_mismatch")
        assert len(history(sqlite_api, case_id)) == 2

    @pytest.mark.parametrize("name", COMMANDS)
    def test_a_key_replays_its_first_answer_and_refuses_another_body(
        self, sqlite_api: Api, name: str
    ) -> None:
        command = COMMANDS[name]
        case_id = prepared(sqlite_api, command)
        path, headers = f"/cases/{case_id}/{command.route}", {"Idempotency-Key": key()}
        first: Response = sqlite_api.post(path, command.body, **headers)
        written = history(sqlite_api, case_id)
        other_body = {**(command.body or {}), "on_behalf_of": "t-99"}

        retry: Response = sqlite_api.post(path, command.body, **headers)
        reused: Response = sqlite_api.post(path, other_body, **headers)

        assert_case_answer(first, command.status)
        assert retry.status_code == first.status_code
        assert retry.json() == first.json()
        assert retry.headers["ETag"] == first.headers["ETag"]
        assert_problem(reused, 422, "idempotency_key_reused")
        assert history(sqlite_api, case_id) == written
        assert written[-1]["command_id"] == headers["Idempotency-Key"]


class TestIfMatch:
    def test_a_stale_if_match_is_412_and_nothing_is_written(self, api: Api) -> None:
        case_id = api.open_case()
        with_inventory(api, case_id)

        answer: Response = api.post(
            f"/cases/{case_id}/reassign", {"clinician_id": "t-9"}, **{"If-Match": '"1"'}
        )

        assert_problem(answer, 412, "version_mismatch")
        case = read_case(api, case_id)
        assert (case["version"], case["clinician_id"]) == (2, "t-7")
        assert len(history(api, case_id)) == 2

    def test_the_etag_of_an_answer_lets_the_next_command_through(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        first: Response = api.post(f"/cases/{case_id}/inventory", inventory())

        answer: Response = api.post(
            f"/cases/{case_id}/reassign",
            {"clinician_id": "t-9"},
            **{"If-Match": first.headers["ETag"]},
        )

        case = assert_case_answer(answer, 200)
        assert first.headers["ETag"] == '"2"'
        assert answer.headers["ETag"] == '"3"'
        assert case["clinician_id"] == "t-9"

    @pytest.mark.parametrize("if_match", ["1", 'W/"1"', '"one"'])
    def test_an_if_match_that_is_not_a_strong_etag_is_400(
        self, sqlite_api: Api, if_match: str
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/reassign",
            {"clinician_id": "t-9"},
            **{"If-Match": if_match},
        )

        assert_problem(answer, 400, "bad_request")
        assert len(history(sqlite_api, case_id)) == 1


class TestIdempotencyKey:
    def test_a_retried_session_returns_the_first_answer_and_writes_nothing(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        with_contract(api, case_id)
        headers = {"Idempotency-Key": "session-1"}
        first: Response = api.post(f"/cases/{case_id}/sessions", session(), **headers)

        retry: Response = api.post(f"/cases/{case_id}/sessions", session(), **headers)

        assert_case_answer(retry, 201)
        assert retry.json() == first.json()
        assert retry.json()["session"]["number"] == 1
        assert retry.headers["ETag"] == first.headers["ETag"] == '"3"'
        assert event_types(api, case_id).count("SessionHeld") == 1

    def test_a_retry_is_answered_from_the_first_answer_after_a_restart(
        self, api: Api, database_url: str
    ) -> None:
        case_id = api.open_case()
        headers = {"Idempotency-Key": "measure-1"}
        first: Response = api.post(f"/cases/{case_id}/measures", BASELINE, **headers)
        restarted = create_app(
            Settings(database_url=database_url, rate_limit_per_second=0)
        )

        with TestClient(restarted, raise_server_exceptions=False) as client:
            retry = client.post(
                f"/cases/{case_id}/measures",
                json=BASELINE,
                headers=api.headers(**headers),
            )

        assert retry.status_code == 200, retry.text
        assert retry.json() == first.json()
        assert event_types(api, case_id) == ["CaseOpened", "SymptomsMeasured"]

    def test_the_same_key_with_another_body_is_422_idempotency_key_reused(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        headers = {"Idempotency-Key": "measure-1"}
        api.post(f"/cases/{case_id}/measures", BASELINE, **headers)

        answer: Response = api.post(
            f"/cases/{case_id}/measures", {**BASELINE, "score": 19}, **headers
        )

        assert_problem(answer, 422, "idempotency_key_reused")
        assert read_case(api, case_id)["latest_measure"] == BASELINE
        assert len(history(api, case_id)) == 2

    def test_a_refused_command_writes_nothing_so_its_retry_is_decided_again(
        self, api: Api
    ) -> None:
        case_id = api.open_case()
        ready_for_middle(api, case_id)
        post_ok(
            api,
            case_id,
            "corrections",
            {
                "entry": "session",
                "number": 1,
                "reason": "duplicate_entry",
            },
        )
        headers = {"Idempotency-Key": "start-middle-1"}
        refused: Response = api.post(
            f"/cases/{case_id}/transitions/start_middle", None, **headers
        )
        refused_again: Response = api.post(
            f"/cases/{case_id}/transitions/start_middle", None, **headers
        )
        with_session(api, case_id)

        answer: Response = api.post(
            f"/cases/{case_id}/transitions/start_middle", None, **headers
        )

        assert guard_rules(refused) == ["beginning_session_required"]
        assert refused_again.json() == refused.json()
        case = assert_case_answer(answer, 200)
        assert case["phase"] == "middle"
        assert history(api, case_id)[-1]["command_id"] == "start-middle-1"

    def test_opening_with_a_used_key_returns_the_first_answer(self, api: Api) -> None:
        headers = {"Idempotency-Key": "open-1"}
        first: Response = api.post("/cases", OPENING, **headers)

        retry: Response = api.post("/cases", OPENING, **headers)

        case = assert_case_answer(retry, 201)
        assert case == first.json()
        assert retry.headers["Location"] == f"/cases/{case['id']}"
        assert event_types(api, case["id"]) == ["CaseOpened"]

    def test_opening_with_a_used_key_and_other_data_is_422(self, api: Api) -> None:
        headers = {"Idempotency-Key": "open-1"}
        first: Response = api.post("/cases", OPENING, **headers)

        answer: Response = api.post(
            "/cases", {**OPENING, "client_ref": "A-2"}, **headers
        )

        assert_problem(answer, 422, "idempotency_key_reused")
        assert api.post("/cases", {**OPENING, "client_ref": "A-2"}).status_code == 201
        assert first.status_code == 201

    def test_keys_are_scoped_to_the_clinic(self, api: Api) -> None:
        headers = {"Idempotency-Key": "open-1"}
        ours: Response = api.post("/cases", OPENING, **headers)

        theirs: Response = api.post("/cases", OPENING, who="other_clinician", **headers)

        case = assert_case_answer(theirs, 201)
        assert case["id"] != ours.json()["id"]
        assert case["clinic_id"] == "clinic-b"

    def test_a_key_used_on_another_case_is_422(self, api: Api) -> None:
        first_case = new_case(api)
        second_case = new_case(api)
        headers = {"Idempotency-Key": key()}
        body = {"clinician_id": "t-9"}
        api.post(f"/cases/{first_case}/reassign", body, **headers)

        answer: Response = api.post(f"/cases/{second_case}/reassign", body, **headers)

        assert_problem(answer, 422, "idempotency_key_reused")
        assert read_case(api, second_case)["clinician_id"] == "t-7"
        assert len(history(api, second_case)) == 1

    def test_a_retry_with_its_if_match_answers_as_the_first_after_the_case_moved_on(
        self, api: Api
    ) -> None:
        case_id = new_case(api)
        headers = {"Idempotency-Key": key(), "If-Match": '"1"'}
        first: Response = api.post(
            f"/cases/{case_id}/reassign", {"clinician_id": "t-9"}, **headers
        )
        api.post(f"/cases/{case_id}/inventory", inventory())

        retry: Response = api.post(
            f"/cases/{case_id}/reassign", {"clinician_id": "t-9"}, **headers
        )

        assert_case_answer(first, 200)
        assert retry.status_code == 200, retry.text
        assert retry.json()["version"] == first.json()["version"] == 2
        assert len(history(api, case_id)) == 3

    @pytest.mark.parametrize("bad", ["has space", "x" * 201, ""])
    def test_a_key_that_is_not_1_to_200_printable_characters_is_400(
        self, sqlite_api: Api, bad: str
    ) -> None:
        case_id = new_case(sqlite_api)

        answer: Response = sqlite_api.post(
            f"/cases/{case_id}/reassign",
            {"clinician_id": "t-9"},
            **{"Idempotency-Key": bad},
        )

        assert_problem(answer, 400, "bad_request")
        assert len(history(sqlite_api, case_id)) == 1


class TestProtocols:
    @pytest.mark.parametrize("who", ["clinician", "auditor", "ops"])
    def test_every_role_lists_every_protocol_version_with_its_parameters(
        self, sqlite_api: Api, who: str
    ) -> None:
        answer: Response = sqlite_api.get("/protocols", who=who)

        assert answer.status_code == 200
        found = {p["id"]: p for p in answer.json()["items"]}
        assert set(found) == {"ipt@1", "ipt-a@1", "fb-ipt@1", "ipt-g@1", "ipt-b@1"}
        assert found["ipt@1"]["contract_sessions"] == {
            "low": 12,
            "high": 16,
            "default": 16,
        }
        assert found["ipt-g@1"]["uncounted_session_kinds"] == [
            "individual_pre_group",
            "individual_mid_group",
            "individual_post_group",
        ]
        assert found["fb-ipt@1"]["parent_session_required_before_middle"] is True

    def test_without_a_token_the_protocols_are_401(self, sqlite_api: Api) -> None:
        answer: Response = sqlite_api.client.get("/protocols")

        assert_problem(answer, 401, "unauthorized")

    def test_a_case_shows_the_parameters_of_its_own_protocol(
        self, sqlite_api: Api
    ) -> None:
        case_id = new_case(sqlite_api, protocol="ipt-b", client_age=52)

        case = read_case(sqlite_api, case_id)

        listed = sqlite_api.get("/protocols").json()["items"]
        assert case["protocol_parameters"] == next(
            p for p in listed if p["id"] == "ipt-b@1"
        )
        assert case["intake_on"] == "2026-08-01"
