"""What an integrator expects of any mature HTTP API (issue 14): conditional reads,
marked replays, problem types that resolve, transition routes for every transition a
case names, offline docs, a version, a licence."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from datetime import date
from importlib.metadata import version
from pathlib import Path

from ipt_workflow.api.errors import TITLES
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.courses import Course
from tests.support.api import Api
from tests.support.drivers import OverHttp, unique_ref

ROOT = Path(__file__).parents[2]
OPENING = {"protocol": "ipt", "client_age": 34, "clinician_id": "t-7"}
RESPONSE = Course(baseline=20, final=9, contract=12, today=date(2026, 9, 27))
"""Concludes with a response, so continuation is offered automatically."""


def _opening() -> dict[str, object]:
    return {"client_ref": unique_ref(), **OPENING}


class TestConditionalReads:
    def test_a_read_with_the_current_etag_answers_304_without_a_body(
        self, sqlite_api: Api
    ) -> None:
        case_id = sqlite_api.open_case()

        answer = sqlite_api.client.get(
            f"/cases/{case_id}", headers=sqlite_api.headers(**{"If-None-Match": '"1"'})
        )

        assert answer.status_code == 304
        assert answer.headers["ETag"] == '"1"'
        assert answer.content == b""

    def test_once_the_case_moved_on_the_same_etag_gets_the_case(
        self, sqlite_api: Api
    ) -> None:
        case_id = sqlite_api.open_case()
        sqlite_api.post(f"/cases/{case_id}/reassign", {"clinician_id": "t-9"})

        answer = sqlite_api.client.get(
            f"/cases/{case_id}",
            headers=sqlite_api.headers(**{"If-None-Match": '"1", W/"7"'}),
        )

        assert answer.status_code == 200
        assert answer.json()["clinician_id"] == "t-9"
        assert answer.headers["ETag"] == '"2"'

    def test_a_weak_tag_and_a_star_match_too(self, sqlite_api: Api) -> None:
        case_id = sqlite_api.open_case()

        statuses = [
            sqlite_api.client.get(
                f"/cases/{case_id}", headers=sqlite_api.headers(**{"If-None-Match": v})
            ).status_code
            for v in ('W/"1"', "*", '"0", "1"')
        ]

        assert statuses == [304, 304, 304]

    def test_a_malformed_if_none_match_is_a_bad_request(self, sqlite_api: Api) -> None:
        case_id = sqlite_api.open_case()

        answer = sqlite_api.client.get(
            f"/cases/{case_id}", headers=sqlite_api.headers(**{"If-None-Match": "1"})
        )

        assert answer.status_code == 400
        assert answer.json()["code"] == "bad_request"


class TestIdempotentReplays:
    def test_a_retried_command_is_marked_as_replayed_and_the_first_is_not(
        self, sqlite_api: Api
    ) -> None:
        case_id = sqlite_api.open_case()
        path, body = f"/cases/{case_id}/reassign", {"clinician_id": "t-9"}

        first = sqlite_api.post(path, body, **{"Idempotency-Key": "reassign-1"})
        again = sqlite_api.post(path, body, **{"Idempotency-Key": "reassign-1"})

        assert "Idempotent-Replayed" not in first.headers
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()

    def test_a_retried_opening_is_marked_but_the_open_case_of_a_client_is_not(
        self, sqlite_api: Api
    ) -> None:
        body = _opening()

        first = sqlite_api.post("/cases", body, **{"Idempotency-Key": "open-1"})
        again = sqlite_api.post("/cases", body, **{"Idempotency-Key": "open-1"})
        same_client = sqlite_api.post("/cases", body)

        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert same_client.status_code == 200
        assert "Idempotent-Replayed" not in same_client.headers
        assert "Idempotent-Replayed" not in first.headers


class TestTransitionRoutes:
    def test_every_transition_a_case_lists_has_a_route(self, sqlite_api: Api) -> None:
        case_id = sqlite_api.open_case()
        names = list(sqlite_api.get(f"/cases/{case_id}").json()["transitions"])

        statuses = {
            name: sqlite_api.post(f"/cases/{case_id}/transitions/{name}").status_code
            for name in names
            if name != "withdraw"
        }

        assert "accept_follow_up" in statuses
        assert "decline_follow_up" in statuses
        assert set(statuses.values()) <= {409, 422}, statuses

    def test_accepting_follow_up_by_its_transition_starts_follow_up(
        self, sqlite_api: Api
    ) -> None:
        case_id = OverHttp(sqlite_api.post).drive(RESPONSE, Phase.concluded)

        accepted = sqlite_api.post(
            f"/cases/{case_id}/transitions/accept_follow_up",
            {"sessions": 4, "frequency": "monthly"},
        )

        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["phase"] == "follow_up"
        assert accepted.json()["follow_up_contract"] == {
            "sessions": 4,
            "frequency": "monthly",
        }

    def test_declining_follow_up_by_its_transition_lets_the_case_close(
        self, sqlite_api: Api
    ) -> None:
        case_id = OverHttp(sqlite_api.post).drive(RESPONSE, Phase.concluded)

        declined = sqlite_api.post(f"/cases/{case_id}/transitions/decline_follow_up")

        assert declined.status_code == 200, declined.text
        assert declined.json()["transitions"]["close"]["allowed"] is True

    def test_a_transition_refuses_a_field_it_does_not_take(
        self, sqlite_api: Api
    ) -> None:
        case_id = OverHttp(sqlite_api.post).drive(RESPONSE, Phase.concluded)

        refused = sqlite_api.post(
            f"/cases/{case_id}/transitions/decline_follow_up", {"sessions": 4}
        )

        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "sessions"


class TestProblemTypes:
    def test_the_type_of_a_refusal_resolves_to_a_page_about_its_code(
        self, sqlite_api: Api
    ) -> None:
        case_id = sqlite_api.open_case()
        refused = sqlite_api.post(f"/cases/{case_id}/transitions/start_middle")

        page = sqlite_api.client.get(refused.json()["type"])

        assert refused.status_code == 409
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "guard_failed" in page.text
        assert TITLES["guard_failed"] in page.text

    def test_every_problem_code_has_a_page_listed_on_the_index(
        self, sqlite_api: Api
    ) -> None:
        index = sqlite_api.client.get("/problems").text

        for code in TITLES:
            page = sqlite_api.client.get(f"/problems/{code}")
            assert page.status_code == 200, code
            assert f'href="/problems/{code}"' in index

    def test_an_unknown_code_has_no_page(self, sqlite_api: Api) -> None:
        answer = sqlite_api.client.get("/problems/no_such_code")

        assert answer.status_code == 404
        assert answer.json()["type"] == "/problems/not_found"


class TestOfflineDocs:
    def test_the_interactive_docs_load_every_asset_from_the_service_itself(
        self, sqlite_api: Api
    ) -> None:
        for page in ("/docs", "/redoc"):
            html = sqlite_api.client.get(page).text
            assets = re.findall(r'(?:src|href)="([^"]+)"', html)

            assert assets, page
            assert not re.search(r"https?://", html), page
            for asset in assets:
                assert sqlite_api.client.get(asset).status_code == 200, asset


class TestReleaseFacts:
    def test_the_command_line_and_the_openapi_document_give_the_package_version(
        self, sqlite_api: Api
    ) -> None:
        printed = subprocess.run(
            [sys.executable, "-m", "ipt_workflow.cli.main", "--version"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

        doc = sqlite_api.client.get("/openapi.json").json()

        assert printed.strip() == f"ipt-workflow {version('ipt-workflow')}"
        assert doc["info"]["version"] == version("ipt-workflow")
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        assert project["version"] == version("ipt-workflow")

    def test_the_project_is_mit_licensed_and_says_so_in_its_metadata(self) -> None:
        licence = (ROOT / "LICENSE").read_text()
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

        assert licence.startswith("MIT License")
        assert project["license"] == "MIT"
