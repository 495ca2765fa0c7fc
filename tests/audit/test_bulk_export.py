"""GET /fhir/$export: FHIR Bulk Data kick-off, status and NDJSON files of the cases
of the auditor's clinics, on both back ends; and GET /fhir/metadata."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from ipt_workflow.composition.settings import Settings
from tests.support.api import Api, drive_to_middle, make_api
from tests.support.fhir import r4_errors

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = Settings(
        database_url=database_url,
        run_projections=True,
        rate_limit_per_second=0,
        export_dir=str(tmp_path / "exports"),
    )
    yield from make_api(settings)


def kick_off(api: Api, who: str = "auditor", **params: str) -> Any:
    return api.client.get(
        "/fhir/$export", headers=api.headers(who, **ASYNC), params=params
    )


def finished(api: Api, location: str, who: str = "auditor") -> tuple[Any, list[str]]:
    """Poll until the export is done: the last answer and every X-Progress seen."""
    progress: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = api.client.get(location, headers=api.headers(who))
        if answer.status_code != 202:
            return answer, progress
        progress.append(answer.headers["X-Progress"])
        assert int(answer.headers["Retry-After"]) > 0
        time.sleep(0.1)
    raise AssertionError("the export did not finish in 60 s")


def exported(api: Api, **params: str) -> dict[str, list[dict[str, Any]]]:
    """Run an export to its end: the resources of each file, by type."""
    started = kick_off(api, **params)
    assert started.status_code == 202, started.text
    done, _ = finished(api, started.headers["Content-Location"])
    assert done.status_code == 200, done.text
    files = {}
    for output in done.json()["output"]:
        answer = api.client.get(output["url"], headers=api.headers("auditor"))
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [json.loads(line) for line in answer.text.splitlines()]
        assert len(lines) == output["count"]
        files[output["type"]] = lines
    return files


def episodes_of(files: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {
        i["value"]
        for e in files.get("EpisodeOfCare", [])
        for i in e["identifier"]
        if i["system"] == "urn:ietf:rfc:3986"
    }


class TestKickOffAndStatus:
    def test_an_export_is_accepted_polled_and_lists_a_file_per_resource_type(
        self, live: Api
    ) -> None:
        case_id = live.open_case("BULK-1")
        drive_to_middle(live, case_id)

        started = kick_off(live)
        done, _ = finished(live, started.headers["Content-Location"])

        assert started.status_code == 202
        assert started.content == b""
        manifest = done.json()
        assert manifest["requiresAccessToken"] is True
        assert manifest["request"].endswith("/fhir/$export")
        assert manifest["error"] == []
        assert {o["type"] for o in manifest["output"]} == {
            "EpisodeOfCare",
            "Condition",
            "CarePlan",
            "Encounter",
            "Observation",
        }
        assert "Expires" in done.headers

    def test_the_files_hold_the_clinic_s_cases_only_valid_with_references_that_resolve(
        self, live: Api
    ) -> None:
        mine = live.open_case("BULK-2")
        drive_to_middle(live, mine)
        theirs = live.post(
            "/cases",
            {
                "client_ref": "BULK-3",
                "protocol": "ipt",
                "client_age": 30,
                "clinician_id": "t-1",
            },
            who="other_clinician",
        ).json()["id"]

        files = exported(live)

        assert episodes_of(files) == {f"urn:uuid:{mine}"}
        assert f"urn:uuid:{theirs}" not in json.dumps(files)
        everything = [r for kind in files.values() for r in kind]
        ids = {f"{r['resourceType']}/{r['id']}" for r in everything}
        references = {ref for r in everything for ref in _references(r)}
        assert references and references <= ids
        assert r4_errors(everything) == []
        for resource in everything:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)

    def test_every_exported_case_is_recorded_in_the_access_log(self, live: Api) -> None:
        case_id = live.open_case("BULK-4")

        exported(live)

        log = live.get("/audit/access", who="auditor", limit=1000).json()["items"]
        assert {(e["case_id"], e["route"]) for e in log} >= {(case_id, "/fhir/$export")}

    def test_since_keeps_only_cases_changed_after_it(self, live: Api) -> None:
        early = live.open_case("BULK-5")
        since = datetime.now(UTC).isoformat()
        late = live.open_case("BULK-6")

        files = exported(live, _since=since)

        assert episodes_of(files) == {f"urn:uuid:{late}"}
        assert f"urn:uuid:{early}" not in json.dumps(files)

    def test_a_change_after_an_export_is_in_the_next_one_since_its_transaction_time(
        self, live: Api
    ) -> None:
        first = kick_off(live)
        done, _ = finished(live, first.headers["Content-Location"])
        late = live.open_case("BULK-9")

        files = exported(live, _since=done.json()["transactionTime"])

        assert f"urn:uuid:{late}" in episodes_of(files)

    def test_type_narrows_the_export_to_those_resource_types(self, live: Api) -> None:
        case_id = live.open_case("BULK-7")
        drive_to_middle(live, case_id)

        files = exported(live, _type="Observation,Encounter")

        assert set(files) == {"Observation", "Encounter"}


class TestRefusals:
    def test_a_kick_off_without_prefer_respond_async_is_a_bad_request(
        self, live: Api
    ) -> None:
        answer = live.client.get("/fhir/$export", headers=live.headers("auditor"))

        assert answer.status_code == 400
        assert answer.json()["code"] == "bad_request"

    @pytest.mark.parametrize(
        "query",
        [
            {"_type": "Patient"},
            {"_outputFormat": "text/csv"},
            {"_since": "yesterday"},
            {"_since": "2026-01-01T00:00:00"},
        ],
    )
    def test_a_bad_parameter_is_422_naming_it(
        self, live: Api, query: dict[str, str]
    ) -> None:
        answer = kick_off(live, **query)

        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == next(iter(query))

    @pytest.mark.parametrize("who", ["clinician", "ops"])
    def test_only_auditors_may_export(self, live: Api, who: str) -> None:
        answer = kick_off(live, who)

        assert answer.status_code == 403

    def test_another_token_can_neither_poll_nor_download_an_export(
        self, live: Api
    ) -> None:
        live.open_case("BULK-8")
        started = kick_off(live)
        location = started.headers["Content-Location"]
        done, _ = finished(live, location)
        url = done.json()["output"][0]["url"]

        other_poll = live.client.get(location, headers=live.headers("other_auditor"))
        other_file = live.client.get(url, headers=live.headers("other_auditor"))

        assert other_poll.status_code == 404
        assert other_file.status_code == 404

    def test_a_cancelled_export_is_gone(self, live: Api) -> None:
        started = kick_off(live)
        location = started.headers["Content-Location"]

        cancelled = live.client.delete(location, headers=live.headers("auditor"))
        poll = live.client.get(location, headers=live.headers("auditor"))

        assert cancelled.status_code == 202
        assert poll.status_code == 404

    def test_when_the_server_runs_as_many_exports_as_it_allows_a_kick_off_is_429(
        self, live: Api
    ) -> None:
        exports = live.client.app.state.services.exports  # type: ignore[attr-defined]
        exports.max_running = 0

        answer = kick_off(live)

        assert answer.status_code == 429
        assert answer.json()["code"] == "rate_limited"
        assert int(answer.headers["Retry-After"]) > 0


class TestCapabilityStatement:
    def test_metadata_needs_no_token_and_validates_as_r4_and_r4b(
        self, live: Api
    ) -> None:
        answer = live.client.get("/fhir/metadata")

        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/fhir+json")
        statement = answer.json()
        assert statement["fhirVersion"] == "4.0.1"
        assert r4_errors([statement]) == []
        get_fhir_model_class("CapabilityStatement").model_validate(statement)
        (rest,) = statement["rest"]
        assert [o["name"] for o in rest["operation"]] == ["export"]
        assert {r["type"] for r in rest["resource"]} == {
            "EpisodeOfCare",
            "Condition",
            "CarePlan",
            "Encounter",
            "Observation",
        }


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "reference" and isinstance(inner, str):
                yield inner
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def test_an_export_folder_that_cannot_be_written_is_503_not_500(
    database_url: str, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    settings = Settings(
        database_url=database_url,
        run_projections=True,
        rate_limit_per_second=0,
        export_dir=str(blocked / "exports"),
    )
    for api in make_api(settings):
        answer = kick_off(api)

        assert answer.status_code == 503
        assert answer.json()["code"] == "unavailable"
