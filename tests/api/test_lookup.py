"""GET /cases: a client's cases through the keyed index (ended ones too), and the
cases of a clinic listed newest first by clinician and phase, a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ipt_workflow.api.app import create_app
from ipt_workflow.composition.builders import build_key_store
from ipt_workflow.composition.settings import Settings
from ipt_workflow.storage.keys import make_key
from tests.support.api import ROLES, Api
from tests.support.drivers import unique_ref

SUMMARY_FIELDS = {"id", "phase", "protocol", "clinician_id", "opened_at", "ended_at"}


@pytest.fixture
def live(database_url: str) -> Iterator[Api]:
    """The API with its read models running in-process, a token per role and an
    auditor of every clinic."""
    settings = Settings(
        database_url=database_url, run_projections=True, rate_limit_per_second=0
    )
    store = build_key_store(settings)
    tokens = {}
    roles = {**ROLES, "every_auditor": ("auditor", ["*"])}
    for name, (role, clinics) in roles.items():
        key, token = make_key(role, clinics, f"{name}-actor")  # type: ignore[arg-type]
        store.add(key, token)
        tokens[name] = token
    store.close()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client, tokens)


def open_case(
    api: Api, client_ref: str, clinician_id: str = "t-7", who: str = "clinician"
) -> dict[str, Any]:
    body = {
        "client_ref": client_ref,
        "protocol": "ipt",
        "client_age": 34,
        "clinician_id": clinician_id,
    }
    answer = api.post("/cases", body, who=who)
    assert answer.status_code == 201, answer.text
    case: dict[str, Any] = answer.json()
    return case


def withdraw(api: Api, case_id: str) -> int:
    answer = api.post(f"/cases/{case_id}/transitions/withdraw", {"reason": "moved"})
    assert answer.status_code == 200, answer.text
    return int(answer.headers["X-Position"])


def cases(api: Api, who: str = "clinician", **query: Any) -> Any:
    return api.client.get("/cases", headers=api.headers(who), params=query)


class TestByClientRef:
    def test_a_client_s_ended_cases_are_found_beside_the_open_one_newest_first(
        self, live: Api
    ) -> None:
        ref = unique_ref()
        first = open_case(live, ref)["id"]
        withdraw(live, first)
        second = open_case(live, ref, clinician_id="t-8")["id"]
        open_case(live, unique_ref())  # another client's case

        answer = cases(live, client_ref=ref)

        assert answer.status_code == 200, answer.text
        items = answer.json()["items"]
        assert [i["id"] for i in items] == [second, first]
        assert [i["phase"] for i in items] == ["beginning", "withdrawn"]
        assert items[0]["ended_at"] is None
        assert items[1]["ended_at"] > items[1]["opened_at"]
        assert items[0]["clinician_id"] == "t-8"
        assert set(items[0]) == SUMMARY_FIELDS
        assert "next_after" not in answer.json()

    def test_the_lookup_reads_the_index_and_the_client_s_cases_and_nothing_else(
        self, live: Api
    ) -> None:
        ref = unique_ref()
        mine = {open_case(live, ref)["id"]}
        for _ in range(3):
            open_case(live, unique_ref())
        app = live.client.app.state.services.cases  # type: ignore[attr-defined]
        index_id = app.reference_id("clinic-a", ref)
        loaded: list[str] = []
        original = app.repository.get

        def get(aggregate_id: Any, *args: Any, **kwargs: Any) -> Any:
            loaded.append(str(aggregate_id))
            return original(aggregate_id, *args, **kwargs)

        app.repository.get = get
        try:
            answer = cases(live, client_ref=ref)
        finally:
            app.repository.get = original

        assert {i["id"] for i in answer.json()["items"]} == mine
        assert set(loaded) == {str(index_id), *mine}

    def test_another_clinic_s_client_of_the_same_ref_is_not_found(
        self, live: Api
    ) -> None:
        ref = unique_ref()
        open_case(live, ref, who="other_clinician")

        mine = cases(live, client_ref=ref)
        theirs = cases(live, "other_clinician", client_ref=ref)
        elsewhere = cases(live, client_ref=ref, clinic_id="clinic-b")

        assert mine.json()["items"] == []
        assert len(theirs.json()["items"]) == 1
        assert elsewhere.status_code == 200
        assert elsewhere.json()["items"] == []

    def test_an_auditor_of_every_clinic_names_the_clinic(self, live: Api) -> None:
        ref = unique_ref()
        case_id = open_case(live, ref)["id"]

        unnamed = cases(live, "every_auditor", client_ref=ref)
        named = cases(live, "every_auditor", client_ref=ref, clinic_id="clinic-a")

        assert unnamed.status_code == 422
        assert unnamed.json()["errors"][0]["field"] == "clinic_id"
        assert [i["id"] for i in named.json()["items"]] == [case_id]

    def test_each_case_found_is_recorded_in_the_access_log(self, live: Api) -> None:
        ref = unique_ref()
        first = open_case(live, ref)["id"]
        withdraw(live, first)
        second = open_case(live, ref)["id"]

        cases(live, "auditor", client_ref=ref)
        log = live.get("/audit/access", who="auditor", limit=1000).json()["items"]

        found = {(e["case_id"], e["route"], e["actor"]) for e in log}
        assert (first, "/cases", "auditor-actor") in found
        assert (second, "/cases", "auditor-actor") in found


class TestListing:
    def test_cases_are_listed_newest_first_a_page_at_a_time(self, live: Api) -> None:
        opened = [open_case(live, unique_ref(), clinician_id="t-lst") for _ in range(5)]
        position = opened[-1]["position"]

        pages, after = [], None
        while True:
            query: dict[str, Any] = {"clinician_id": "t-lst", "limit": 2}
            query |= {"min_position": position}
            if after is not None:
                query["after"] = after
            answer = cases(live, **query)
            assert answer.status_code == 200, answer.text
            pages.append([i["id"] for i in answer.json()["items"]])
            after = answer.json().get("next_after")
            if after is None:
                break

        assert pages == [
            [opened[4]["id"], opened[3]["id"]],
            [opened[2]["id"], opened[1]["id"]],
            [opened[0]["id"]],
        ]

    def test_the_phase_filter_keeps_only_cases_in_that_phase(self, live: Api) -> None:
        kept = open_case(live, unique_ref(), clinician_id="t-ph")["id"]
        ended = open_case(live, unique_ref(), clinician_id="t-ph")["id"]
        position = withdraw(live, ended)

        withdrawn = cases(
            live, clinician_id="t-ph", phase="withdrawn", min_position=position
        ).json()["items"]
        beginning = cases(
            live, clinician_id="t-ph", phase="beginning", min_position=position
        ).json()["items"]

        assert [i["id"] for i in withdrawn] == [ended]
        assert withdrawn[0]["ended_at"] is not None
        assert [i["id"] for i in beginning] == [kept]

    def test_a_clinician_lists_only_its_clinic_s_cases(self, live: Api) -> None:
        mine = open_case(live, unique_ref(), clinician_id="t-sc")
        theirs = open_case(
            live, unique_ref(), clinician_id="t-sc", who="other_clinician"
        )
        position = max(mine["position"], theirs["position"])

        listed = cases(live, clinician_id="t-sc", min_position=position).json()
        every = cases(
            live, "every_auditor", clinician_id="t-sc", min_position=position
        ).json()

        assert [i["id"] for i in listed["items"]] == [mine["id"]]
        assert {i["id"] for i in every["items"]} == {mine["id"], theirs["id"]}


class TestRefusals:
    @pytest.mark.parametrize(
        "query",
        [
            {"after": "not-a-cursor"},
            {"phase": "middlish"},
            {"limit": 0},
            {"limit": 1001},
            {"client_ref": "has spaces"},
        ],
    )
    def test_a_bad_query_is_422_naming_the_field(
        self, live: Api, query: dict[str, Any]
    ) -> None:
        answer = cases(live, **query)

        assert answer.status_code == 422
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["errors"][0]["field"] == next(iter(query))

    def test_ops_may_not_list_cases_and_a_missing_token_is_401(self, live: Api) -> None:
        ops = cases(live, "ops")
        anonymous = live.client.get("/cases")

        assert (ops.status_code, ops.json()["code"]) == (403, "forbidden")
        assert anonymous.status_code == 401
