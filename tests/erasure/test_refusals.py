"""Erasure where it must not happen is refused with a clear problem and changes
nothing; legal holds; who may ask; cases written before per-case keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.codes import Phase
from tests.erasure.conftest import (
    COURSE,
    app_of,
    decrypted_payloads,
    erase,
    settings_of,
    withdrawn_case,
)
from tests.support.api import Api
from tests.support.drivers import OverHttp, ThroughApplication


def unchanged(api: Api, case_id: str, before: dict[str, Any]) -> None:
    """The case still reads as it did, with no event more."""
    assert api.get(f"/cases/{case_id}").json() == before


def refused_rules(answer: Any) -> list[str]:
    assert answer.status_code == 409, answer.text
    body = answer.json()
    assert body["code"] == "guard_failed"
    assert answer.headers["content-type"] == "application/problem+json"
    return [v["rule"] for v in body["violations"]]


def hold(api: Api, case_id: str, method: str = "POST") -> Any:
    return api.client.request(
        method,
        f"/cases/{case_id}/legal-hold",
        json={"reason": "MATTER-2026-114"},
        headers=api.headers("admin"),
    )


class TestRefusals:
    def test_an_open_case_is_not_erased(self, sqlite_erasure_api: Api) -> None:
        api = sqlite_erasure_api
        case_id = OverHttp(api.post).open(COURSE, "OPEN-1", "t-7")
        before = api.get(f"/cases/{case_id}").json()

        answer = erase(api, case_id)

        assert refused_rules(answer) == ["erasure.case_open"]
        unchanged(api, case_id, before)

    def test_before_retention_ends_only_a_data_subject_request_erases(
        self, sqlite_erasure_api: Api
    ) -> None:
        api = sqlite_erasure_api
        case_id = withdrawn_case(api)
        before = api.get(f"/cases/{case_id}").json()

        answer = erase(api, case_id, basis="retention_expired")

        assert refused_rules(answer) == ["erasure.retention_not_over"]
        assert before["retention_until"] in answer.json()["violations"][0]["message"]
        unchanged(api, case_id, before)
        assert erase(api, case_id).status_code == 202

    def test_a_legal_hold_refuses_erasure_until_it_is_lifted(
        self, sqlite_erasure_api: Api
    ) -> None:
        api = sqlite_erasure_api
        case_id = withdrawn_case(api)

        placed = hold(api, case_id)
        before = api.get(f"/cases/{case_id}").json()
        answer = erase(api, case_id)

        assert placed.status_code == 200, placed.text
        assert placed.json()["legal_hold"]["reason"] == "MATTER-2026-114"
        assert before["legal_hold"]["placed_by"] == "admin-actor"
        assert refused_rules(answer) == ["erasure.legal_hold"]
        unchanged(api, case_id, before)
        assert refused_rules(hold(api, case_id)) == ["legal_hold.placed"]
        assert hold(api, case_id, "DELETE").json()["legal_hold"] is None
        assert erase(api, case_id).status_code == 202
        assert refused_rules(hold(api, case_id)) == ["case.erased"]


class TestAfterErasure:
    def test_an_erased_case_refuses_commands_and_its_client_may_come_back(
        self, sqlite_erasure_api: Api
    ) -> None:
        api = sqlite_erasure_api
        case_id = withdrawn_case(api, "RETURNING-1")
        assert erase(api, case_id).status_code == 202
        before = api.get(f"/cases/{case_id}").json()

        measure = api.post(
            f"/cases/{case_id}/measures",
            {"instrument": "phq9", "score": 9, "measured_on": "2026-10-01"},
        )
        reopened = api.post(
            "/cases",
            {
                "client_ref": "RETURNING-1",
                "protocol": "ipt",
                "client_age": 34,
                "clinician_id": "t-7",
            },
        )

        assert refused_rules(measure) == ["case.erased"]
        unchanged(api, case_id, before)
        assert reopened.status_code == 201, reopened.text
        assert reopened.json()["id"] != case_id

    def test_bad_input_is_named_and_changes_nothing(
        self, sqlite_erasure_api: Api
    ) -> None:
        api = sqlite_erasure_api
        case_id = withdrawn_case(api)
        before = api.get(f"/cases/{case_id}").json()
        path = f"/cases/{case_id}/erasure"

        bad_basis = api.post(path, {"basis": "bored", "reason": "X-1"}, "admin")
        prose = api.post(
            path,
            {"basis": "data_subject_request", "reason": "client Jane asked"},
            "admin",
        )
        extra = api.post(
            path,
            {"basis": "data_subject_request", "reason": "X-1", "client_ref": "A"},
            "admin",
        )

        for answer in (bad_basis, prose, extra):
            assert answer.status_code == 422, answer.text
            assert answer.json()["code"] == "validation_failed"
        assert {e["field"] for e in bad_basis.json()["errors"]} == {"basis"}
        assert {e["field"] for e in prose.json()["errors"]} == {"reason"}
        unchanged(api, case_id, before)


class TestWhoMayAsk:
    def test_only_an_admin_of_the_case_s_clinic_may_erase_or_hold(
        self, sqlite_erasure_api: Api
    ) -> None:
        api = sqlite_erasure_api
        case_id = withdrawn_case(api)
        before = api.get(f"/cases/{case_id}").json()
        body = {"basis": "data_subject_request", "reason": "DSR-1"}

        for who in ("clinician", "auditor", "ops"):
            for path in ("erasure", "legal-hold"):
                answer = api.post(f"/cases/{case_id}/{path}", body, who)
                assert answer.status_code == 403, (who, path, answer.text)
            assert api.get(f"/cases/{case_id}/retention", who).status_code == 403
        foreign = api.post(f"/cases/{case_id}/erasure", body, "other_admin")
        no_token = api.client.post(f"/cases/{case_id}/erasure", json=body)

        assert foreign.status_code == 404
        assert no_token.status_code == 401
        unchanged(api, case_id, before)
        status = api.get(f"/cases/{case_id}/retention", "admin").json()
        assert status["erasure_supported"] is True
        assert status["retention_until"] == before["retention_until"]
        assert "client_ref" not in status


class TestCasesWrittenBeforeDataKeys:
    def test_an_old_case_keeps_working_and_says_it_cannot_be_shredded(
        self, sqlite_erasure_api: Api
    ) -> None:
        api = sqlite_erasure_api
        settings = settings_of(api)
        old = _old_release_application(settings)
        try:
            driver = ThroughApplication(old, "clinic-a", actor="clinician-actor")
            old_id = str(driver.open(COURSE, "OLD-CLIENT-77", "t-7"))
        finally:
            old.close()
        # It still takes commands, over HTTP, in the old format.
        OverHttp(api.post).run(old_id, *COURSE.commands(Phase.withdrawn))
        before = api.get(f"/cases/{old_id}").json()

        status = api.get(f"/cases/{old_id}/retention", "admin").json()
        answer = erase(api, old_id)

        assert before["client_ref"] == "OLD-CLIENT-77"
        assert status["erasure_supported"] is False
        assert answer.status_code == 409
        assert answer.json()["code"] == "erasure_unsupported"
        unchanged(api, old_id, before)
        assert any("OLD-CLIENT-77" in p for p in decrypted_payloads(settings))
        assert app_of(api).case_keys is not None


def _old_release_application(settings: Settings) -> CaseApplication:
    """The application as the release before data keys wrote: the ring alone."""
    env = settings.eventsourcing_env()
    env.pop("CASE_KEYS_URL")
    return CaseApplication(env=env)


def test_erasure_routes_keep_the_problem_format_for_an_unknown_case(
    sqlite_erasure_api: Api,
) -> None:
    answer = erase(sqlite_erasure_api, "00000000-0000-4000-8000-000000000000")

    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


def test_a_clinic_s_retention_policy_is_configured_and_checked_at_start(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    settings = Settings(
        database_url=url, retention_clinics='{"clinic-b": {"years_after_end": 10}}'
    )

    assert settings.retention_policy("clinic-b").years_after_end == 10
    assert settings.retention_policy("clinic-a").years_after_end == 7
    for bad in (
        "{",
        '{"clinic-b": {"years": 10}}',
        '{"clinic-b": {"minor_until_age": -1}}',
    ):
        with pytest.raises(ValidationError, match=r"retention_clinics"):
            Settings(database_url=url, retention_clinics=bad)
