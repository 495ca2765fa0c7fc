"""Who may use which case route (api.md, Roles): every route by every caller.

The matrix below is the specification: one row per route, one answer per caller.
Without a valid token: 401. A role that may not use a route: 403, before the case is
looked up, so whatever the id. A case of a clinic the token does not cover: 404.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from httpx import Response

from ipt_workflow.api.routes import cases, subscriptions
from tests.api.test_endpoints import (
    COMMANDS,
    OPENING,
    assert_case_answer,
    assert_problem,
    history,
    new_case,
    shared_sqlite_api,
)
from tests.support.api import Api

CALLERS = (
    "no_token",
    "unknown_token",
    "clinician",
    "auditor",
    "ops",
    "other_clinician",
    "admin",
)
"""Columns of the matrix; `clinician`, `auditor` and `admin` are of clinic-a, where
the cases are; `other_clinician` is of clinic-b; `ops` covers every clinic."""

CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found"}


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str
    answers: tuple[int, int, int, int, int, int, int]
    """The status each of CALLERS gets, in order."""

    @property
    def has_case(self) -> bool:
        return "{id}" in self.path


# The answers of a row, in the order of CALLERS:
#          no token, unknown token, clinician, auditor, ops, other clinician, admin
OPEN = (401, 401, 201, 403, 403, 201, 403)
"""Opening: the other clinic's clinician opens a case of its own clinic."""
READ = (401, 401, 200, 200, 403, 404, 403)
"""Reads of a case: clinicians and auditors of its clinic; never ops or admins."""
COMMAND = (401, 401, 200, 403, 403, 404, 403)
"""Commands: clinicians of the case's clinic only."""
RECORD = (401, 401, 201, 403, 403, 404, 403)
"""Commands that record a (missed) session answer 201."""

MATRIX = (
    Row("open-case", "POST", "/cases", OPEN),
    Row("read-case", "GET", "/cases/{id}", READ),
    Row("history", "GET", "/cases/{id}/history", READ),
    Row("inventory", "POST", "/cases/{id}/inventory", COMMAND),
    Row("focus", "POST", "/cases/{id}/focus", COMMAND),
    Row("dispute-stage", "POST", "/cases/{id}/dispute-stage", COMMAND),
    Row("contract", "POST", "/cases/{id}/contract", COMMAND),
    Row("contract-renegotiation", "POST", "/cases/{id}/contract", COMMAND),
    Row("deviations", "POST", "/cases/{id}/deviations", COMMAND),
    Row("measures", "POST", "/cases/{id}/measures", COMMAND),
    Row("sessions", "POST", "/cases/{id}/sessions", RECORD),
    Row("missed-sessions", "POST", "/cases/{id}/missed-sessions", RECORD),
    Row("corrections", "POST", "/cases/{id}/corrections", COMMAND),
    Row("reassign", "POST", "/cases/{id}/reassign", COMMAND),
    Row("risk-reviews", "POST", "/cases/{id}/risk-reviews", COMMAND),
    Row("start_middle", "POST", "/cases/{id}/transitions/start_middle", COMMAND),
    Row("start_end", "POST", "/cases/{id}/transitions/start_end", COMMAND),
    Row("conclude", "POST", "/cases/{id}/transitions/conclude", COMMAND),
    Row("close", "POST", "/cases/{id}/transitions/close", COMMAND),
    Row("withdraw", "POST", "/cases/{id}/transitions/withdraw", COMMAND),
    Row(
        "accept_follow_up",
        "POST",
        "/cases/{id}/transitions/accept_follow_up",
        COMMAND,
    ),
    Row(
        "decline_follow_up",
        "POST",
        "/cases/{id}/transitions/decline_follow_up",
        COMMAND,
    ),
    Row("follow-up-offer", "POST", "/cases/{id}/follow-up/offer", COMMAND),
    Row("follow-up-decision", "POST", "/cases/{id}/follow-up/decision", COMMAND),
)


def cells(*statuses: int) -> list[Any]:
    """The (row, caller) cells of the matrix whose answer is one of `statuses`."""
    return [
        pytest.param(row, caller, id=f"{row.name}-{caller}")
        for row in MATRIX
        for caller, status in zip(CALLERS, row.answers, strict=True)
        if status in statuses
    ]


def expected(row: Row, caller: str) -> int:
    return row.answers[CALLERS.index(caller)]


@dataclass(frozen=True)
class Target:
    """What a row's request is about: a case of clinic-a (or a new client) and a
    body that the clinician of clinic-a would see succeed."""

    row: Row
    case_id: str | None
    body: dict[str, Any] | None

    def path(self, case_id: str | None = None) -> str:
        return self.row.path.replace("{id}", case_id or self.case_id or "")


def target(api: Api, row: Row) -> Target:
    """A case of clinic-a in the state where the row's command succeeds."""
    if not row.has_case:
        client = {**OPENING, "client_ref": f"M-{uuid.uuid4().hex[:16]}"}
        return Target(row, None, client)
    case_id = new_case(api)
    command = COMMANDS.get(row.name)
    if command is None:
        return Target(row, case_id, None)
    command.arrange(api, case_id)
    return Target(row, case_id, command.body)


def call(api: Api, to: Target, caller: str, case_id: str | None = None) -> Response:
    """The row's request as `caller` makes it (on another case id if given)."""
    if caller == "no_token":
        headers = {}
    elif caller == "unknown_token":
        headers = {"Authorization": f"Bearer unknown-{uuid.uuid4().hex}"}
    else:
        headers = api.headers(caller)
    answer: Response = api.client.request(
        to.row.method, to.path(case_id), json=to.body, headers=headers
    )
    return answer


def assert_refused(answer: Response, status: int) -> None:
    assert_problem(answer, status, CODES[status])
    if status == 401:
        assert answer.headers["WWW-Authenticate"] == "Bearer"


def written(api: Api, to: Target) -> list[dict[str, Any]]:
    return [] if to.case_id is None else history(api, to.case_id)


def assert_nothing_written(api: Api, to: Target, before: list[dict[str, Any]]) -> None:
    """The case's history is as it was; or no case was opened for the client."""
    if to.case_id is not None:
        assert history(api, to.case_id) == before
    else:
        assert api.post("/cases", to.body).status_code == 201


@pytest.fixture(scope="module")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """This module's SQLite API (shared; the conftest one is per test)."""
    yield from shared_sqlite_api(tmp_path_factory)


class TestMatrix:
    def test_the_matrix_has_a_row_for_every_route_of_the_case_router(self) -> None:
        served = {
            (method, route.path.replace("{case_id}", "{id}"))
            for route in cases.router.routes
            if isinstance(route, APIRoute)
            for method in route.methods or ()
        }
        transitions = {
            f"/cases/{{id}}/transitions/{name.value}" for name in cases.TransitionName
        }
        generic = ("POST", "/cases/{id}/transitions/{name}")

        rows = {(row.method, row.path) for row in MATRIX}

        assert generic in served
        assert rows == (served - {generic}) | {("POST", t) for t in transitions}
        assert {row.name for row in MATRIX} >= set(COMMANDS)


class TestWithoutAValidToken:
    @pytest.mark.parametrize(("row", "caller"), cells(401))
    def test_a_caller_without_a_valid_token_is_401_with_a_bearer_challenge(
        self, sqlite_api: Api, row: Row, caller: str
    ) -> None:
        to = target(sqlite_api, row)
        before = written(sqlite_api, to)

        answers = [call(sqlite_api, to, caller)]
        if row.has_case:
            answers.append(call(sqlite_api, to, caller, str(uuid.uuid4())))

        for answer in answers:
            assert_refused(answer, 401)
        assert_nothing_written(sqlite_api, to, before)

    @pytest.mark.parametrize("scheme", ["Basic", "Token", ""])
    def test_a_scheme_other_than_bearer_is_401(
        self, sqlite_api: Api, scheme: str
    ) -> None:
        case_id = new_case(sqlite_api)
        token = sqlite_api.tokens["clinician"]

        answer: Response = sqlite_api.client.get(
            f"/cases/{case_id}", headers={"Authorization": f"{scheme} {token}"}
        )

        assert_refused(answer, 401)


class TestRoles:
    @pytest.mark.parametrize(("row", "caller"), cells(403))
    def test_a_role_that_may_not_use_the_route_is_403_whatever_the_id(
        self, sqlite_api: Api, row: Row, caller: str
    ) -> None:
        to = target(sqlite_api, row)
        before = written(sqlite_api, to)

        answers = [call(sqlite_api, to, caller)]
        if row.has_case:
            answers.append(call(sqlite_api, to, caller, str(uuid.uuid4())))
            answers.append(call(sqlite_api, to, caller, "not-a-uuid"))

        for answer in answers:
            assert_refused(answer, 403)
        assert_nothing_written(sqlite_api, to, before)

    @pytest.mark.parametrize(("row", "caller"), cells(200, 201))
    def test_a_role_that_may_use_the_route_gets_its_answer(
        self, sqlite_api: Api, row: Row, caller: str
    ) -> None:
        to = target(sqlite_api, row)

        answer = call(sqlite_api, to, caller)

        assert answer.status_code == expected(row, caller), answer.text
        if row.name == "history":
            assert answer.json()["items"][0]["type"] == "CaseOpened"
        else:
            body = assert_case_answer(answer, expected(row, caller))
            case = body.get("case", body)
            home = "clinic-b" if caller == "other_clinician" else "clinic-a"
            assert case["clinic_id"] == home
            if to.case_id is None:
                assert answer.headers["Location"] == f"/cases/{case['id']}"
            else:
                assert case["id"] == to.case_id


class TestClinics:
    @pytest.mark.parametrize(("row", "caller"), cells(404))
    def test_a_case_of_a_clinic_the_token_does_not_cover_is_404(
        self, sqlite_api: Api, row: Row, caller: str
    ) -> None:
        to = target(sqlite_api, row)
        before = written(sqlite_api, to)

        answer = call(sqlite_api, to, caller)
        unknown = call(sqlite_api, to, caller, str(uuid.uuid4()))

        assert_refused(answer, 404)
        assert answer.json() == unknown.json()
        assert_nothing_written(sqlite_api, to, before)

    @pytest.mark.parametrize(
        "row", [row for row in MATRIX if row.method == "GET"], ids=lambda r: r.name
    )
    def test_an_auditor_of_another_clinic_gets_404_for_a_read(
        self, sqlite_api: Api, row: Row
    ) -> None:
        to = target(sqlite_api, row)

        answer = call(sqlite_api, to, "other_auditor")

        assert_refused(answer, 404)


# --- the webhook routes (api.md, "Added in the second round") ------------------------

SUBSCRIBERS = (
    "no_token",
    "unknown_token",
    "clinician",
    "auditor",
    "ops",
    "admin",
    "other_admin",
)
"""`admin` is of clinic-a, where the subscription is; `other_admin` of clinic-b."""
PUBLIC_URL = "https://93.184.215.14/hook"
"""An address literal: no DNS is asked, and no dispatcher runs here to call it."""


@dataclass(frozen=True)
class SubscriptionRow:
    name: str
    method: str
    path: str
    answers: tuple[int, int, int, int, int, int, int]

    def body(self) -> dict[str, Any] | None:
        if self.name == "create":
            return {"url": PUBLIC_URL, "event_types": ["*"]}
        if self.name == "redeliver":
            return {"from_position": 0}
        return None


ADMIN_ONLY = (401, 401, 403, 403, 403, 200, 200)
OF_ITS_CLINIC = (401, 401, 403, 403, 403, 200, 404)
SUBSCRIPTION_MATRIX = (
    SubscriptionRow(
        "create", "POST", "/subscriptions", (401, 401, 403, 403, 403, 201, 201)
    ),
    SubscriptionRow("list", "GET", "/subscriptions", ADMIN_ONLY),
    SubscriptionRow("read", "GET", "/subscriptions/{id}", OF_ITS_CLINIC),
    SubscriptionRow(
        "deliveries", "GET", "/subscriptions/{id}/deliveries", OF_ITS_CLINIC
    ),
    SubscriptionRow(
        "redeliver",
        "POST",
        "/subscriptions/{id}/redeliver",
        (401, 401, 403, 403, 403, 202, 404),
    ),
    SubscriptionRow(
        "delete", "DELETE", "/subscriptions/{id}", (401, 401, 403, 403, 403, 204, 404)
    ),
    SubscriptionRow(
        "status", "GET", "/webhooks/status", (401, 401, 403, 403, 200, 200, 200)
    ),
)


def subscription_cells() -> list[Any]:
    return [
        pytest.param(row, caller, status, id=f"{row.name}-{caller}")
        for row in SUBSCRIPTION_MATRIX
        for caller, status in zip(SUBSCRIBERS, row.answers, strict=True)
    ]


class TestSubscriptionMatrix:
    def test_the_matrix_has_a_row_for_every_webhook_route(self) -> None:
        served = {
            (method, route.path.replace("{subscription_id}", "{id}"))
            for router in (subscriptions.router, subscriptions.status_router)
            for route in router.routes
            if isinstance(route, APIRoute)
            for method in route.methods or ()
        }

        assert {(row.method, row.path) for row in SUBSCRIPTION_MATRIX} == served

    @pytest.mark.parametrize(("row", "caller", "status"), subscription_cells())
    def test_each_caller_gets_its_answer_for_each_webhook_route(
        self, sqlite_api: Api, row: SubscriptionRow, caller: str, status: int
    ) -> None:
        created = sqlite_api.post(
            "/subscriptions", {"url": PUBLIC_URL, "event_types": ["*"]}, who="admin"
        )
        assert created.status_code == 201, created.text
        sub_id = created.json()["id"]
        targets = [sub_id] if "{id}" not in row.path else [sub_id, str(uuid.uuid4())]
        if caller == "no_token":
            headers = {}
        elif caller == "unknown_token":
            headers = {"Authorization": f"Bearer unknown-{uuid.uuid4().hex}"}
        else:
            headers = sqlite_api.headers(caller)

        answers = [
            sqlite_api.client.request(
                row.method,
                row.path.replace("{id}", target),
                json=row.body(),
                headers=headers,
            )
            for target in targets
        ]

        assert answers[0].status_code == status, answers[0].text
        if status in CODES:
            for answer in answers:
                assert_refused(answer, status)
        elif len(answers) > 1:
            assert_refused(answers[1], 404)  # an unknown id, once the role may
        still = sqlite_api.get(f"/subscriptions/{sub_id}", who="admin")
        # The module shares one store, and a clinic holds at most 25 subscriptions.
        for who in ("admin", "other_admin"):
            for mine in sqlite_api.get("/subscriptions", who=who).json()["items"]:
                sqlite_api.client.delete(
                    f"/subscriptions/{mine['id']}", headers=sqlite_api.headers(who)
                )
        assert still.status_code == (
            404 if row.name == "delete" and status == 204 else 200
        )
