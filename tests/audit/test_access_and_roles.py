"""Who may use the auditor routes, and the access log of every read of a case."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from ipt_workflow.composition.builders import access_log_path
from tests.audit.conftest import raw, url_of
from tests.support.api import Api, drive_to_middle

WHO = ("clinician", "auditor", "ops", "other_clinician", "other_auditor")

# route -> who gets what; api.md: the role is checked before the case is looked up.
CASE_ROUTES: dict[str, dict[str, int]] = {
    "/cases/{id}/replay?version=1": {
        "clinician": 403,
        "auditor": 200,
        "ops": 403,
        "other_clinician": 403,
        "other_auditor": 404,
    },
    "/cases/{id}/verify": {
        "clinician": 403,
        "auditor": 200,
        "ops": 403,
        "other_clinician": 403,
        "other_auditor": 404,
    },
    "/cases/{id}/fhir": {
        "clinician": 200,
        "auditor": 200,
        "ops": 403,
        "other_clinician": 404,
        "other_auditor": 404,
    },
    "/cases/{id}/history": {
        "clinician": 200,
        "auditor": 200,
        "ops": 403,
        "other_clinician": 404,
        "other_auditor": 404,
    },
}
LIST_ROUTES: dict[str, dict[str, int]] = {
    "/events": {
        "clinician": 403,
        "auditor": 200,
        "ops": 403,
        "other_clinician": 403,
        "other_auditor": 200,
    },
    "/audit/access": {
        "clinician": 403,
        "auditor": 200,
        "ops": 403,
        "other_clinician": 403,
        "other_auditor": 200,
    },
}


def status(api: Api, path: str, who: str | None) -> int:
    headers = {} if who is None else api.headers(who)
    code: int = api.client.get(path, headers=headers).status_code
    return code


class TestRoles:
    @pytest.mark.parametrize("route", sorted(CASE_ROUTES))
    def test_each_case_route_answers_each_role_as_api_md_says(
        self, sqlite_audit_api: Api, route: str
    ) -> None:
        case_id = sqlite_audit_api.open_case()
        path = route.replace("{id}", case_id)

        answers = {who: status(sqlite_audit_api, path, who) for who in WHO}

        assert answers == CASE_ROUTES[route]
        assert status(sqlite_audit_api, path, None) == 401

    @pytest.mark.parametrize("route", sorted(CASE_ROUTES))
    def test_a_forbidden_role_gets_403_whatever_the_case_id(
        self, sqlite_audit_api: Api, route: str
    ) -> None:
        path = route.replace("{id}", str(uuid4()))

        answers = {who: status(sqlite_audit_api, path, who) for who in WHO}

        assert answers["ops"] == 403
        assert {answers[w] for w in WHO if CASE_ROUTES[route][w] != 403} == {404}

    @pytest.mark.parametrize("route", sorted(LIST_ROUTES))
    def test_each_list_route_answers_each_role_as_api_md_says(
        self, sqlite_audit_api: Api, route: str
    ) -> None:
        answers = {who: status(sqlite_audit_api, route, who) for who in WHO}

        assert answers == LIST_ROUTES[route]
        assert status(sqlite_audit_api, route, None) == 401

    def test_a_forbidden_answer_is_problem_json(self, sqlite_audit_api: Api) -> None:
        answer = sqlite_audit_api.get("/events", "ops")

        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "forbidden"


def reads(api: Api, case_id: str) -> None:
    """Every kind of read of a case, by a clinician and an auditor."""
    for path, who in [
        (f"/cases/{case_id}", "clinician"),
        (f"/cases/{case_id}/history", "clinician"),
        (f"/cases/{case_id}/fhir", "clinician"),
        (f"/cases/{case_id}", "auditor"),
        (f"/cases/{case_id}/history", "auditor"),
        (f"/cases/{case_id}/replay?version=1", "auditor"),
        (f"/cases/{case_id}/verify", "auditor"),
        (f"/cases/{case_id}/fhir", "auditor"),
    ]:
        assert api.client.get(path, headers=api.headers(who)).status_code == 200


def access(api: Api, who: str = "auditor", **params: Any) -> dict[str, Any]:
    answer = api.get("/audit/access", who, **params)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


class TestAccessLog:
    def test_every_read_of_a_case_is_recorded_with_who_when_and_which_route(
        self, audit_api: Api
    ) -> None:
        case_id = audit_api.open_case("ZQ-SECRET-REF-4471")
        drive_to_middle(audit_api, case_id)

        reads(audit_api, case_id)

        items = access(audit_api)["items"]
        assert [(i["actor"], i["role"], i["route"]) for i in items] == [
            ("clinician-actor", "clinician", "/cases/{case_id}"),
            ("clinician-actor", "clinician", "/cases/{case_id}/history"),
            ("clinician-actor", "clinician", "/cases/{case_id}/fhir"),
            ("auditor-actor", "auditor", "/cases/{case_id}"),
            ("auditor-actor", "auditor", "/cases/{case_id}/history"),
            ("auditor-actor", "auditor", "/cases/{case_id}/replay"),
            ("auditor-actor", "auditor", "/cases/{case_id}/verify"),
            ("auditor-actor", "auditor", "/cases/{case_id}/fhir"),
        ]
        assert {i["case_id"] for i in items} == {case_id}
        assert [i["at"] for i in items] == sorted(i["at"] for i in items)
        assert "ZQ-SECRET-REF-4471" not in repr(access_rows(audit_api))

    def test_refused_reads_and_commands_are_not_recorded(
        self, sqlite_audit_api: Api
    ) -> None:
        api = sqlite_audit_api
        case_id = api.open_case()
        drive_to_middle(api, case_id)

        api.get(f"/cases/{case_id}", "other_clinician")
        api.get(f"/cases/{case_id}/replay", "clinician", version=1)
        api.get(f"/cases/{case_id}/replay", "auditor", version=99)
        api.get("/events", "other_auditor")

        assert access(api)["items"] == []

    def test_it_can_be_filtered_by_case_and_actor_and_read_in_pages(
        self, sqlite_audit_api: Api
    ) -> None:
        api = sqlite_audit_api
        first, second = api.open_case("A-1"), api.open_case("A-2")
        reads(api, first)
        reads(api, second)

        by_case = access(api, case_id=second)["items"]
        by_actor = access(api, actor="clinician-actor")["items"]
        pages, after = [], 0
        while True:
            page = access(api, after=after, limit=3)
            pages.append(page["items"])
            if "next_after" not in page:  # the last page
                break
            after = page["next_after"]

        assert len(by_case) == 8
        assert {i["case_id"] for i in by_case} == {second}
        assert len(by_actor) == 6
        assert {i["role"] for i in by_actor} == {"clinician"}
        assert [len(p) for p in pages] == [3, 3, 3, 3, 3, 1]
        ids = [i["id"] for p in pages for i in p]
        assert ids == sorted(set(ids))

    def test_an_auditor_sees_only_reads_of_its_clinics_cases(
        self, sqlite_audit_api: Api
    ) -> None:
        api = sqlite_audit_api
        reads(api, api.open_case())

        theirs = access(api, "other_auditor")

        assert theirs == {"items": []}


def access_rows(api: Api) -> list[tuple[Any, ...]]:
    """The access log's rows, read straight from storage."""
    url = url_of(api)
    if url.startswith("sqlite"):
        settings = api.client.app.state.services.settings  # type: ignore[attr-defined]
        path = Path(access_log_path(settings))
        return [(b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*")),)]
    return raw(url, "SELECT * FROM access_log")


def test_on_sqlite_the_access_log_is_a_file_of_its_own(sqlite_audit_api: Api) -> None:
    api = sqlite_audit_api
    reads(api, api.open_case())

    tables = raw(url_of(api), "SELECT name FROM sqlite_master WHERE type='table'")

    assert ("access_log",) not in tables
    assert b"/cases/{case_id}/fhir" in access_rows(api)[0][0]
