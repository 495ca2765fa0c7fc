"""A FHIR bulk export `_since` an instant lists the cases erased after it in the
manifest's `deleted` (FHIR Bulk Data: transaction Bundles of DELETE requests),
with the ids the earlier export gave their resources and nothing of the client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ipt_workflow.api.fhir import RESOURCE_TYPES
from tests.audit.test_bulk_export import finished, kick_off
from tests.erasure.conftest import CLIENT_REF, NOTE, erase, erasure_settings
from tests.erasure.conftest import withdrawn_case as a_withdrawn_case
from tests.support.api import Api, make_api
from tests.support.fhir import fhir_server, r4_errors


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[Api]:
    yield from make_api(
        erasure_settings(database_url, export_dir=str(tmp_path / "exports"))
    )


def export(api: Api, **params: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Run an export to its end: its manifest, and each file's text by its url."""
    started = kick_off(api, **params)
    assert started.status_code == 202, started.text
    done, _ = finished(api, started.headers["Content-Location"])
    assert done.status_code == 200, done.text
    manifest: dict[str, Any] = done.json()
    texts = {}
    for item in [*manifest["output"], *manifest["deleted"]]:
        answer = api.client.get(item["url"], headers=api.headers("auditor"))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/fhir+ndjson")
        assert answer.text.count("\n") == item["count"]
        texts[item["url"]] = answer.text
    return manifest, texts


def references(manifest: dict[str, Any], texts: dict[str, str]) -> set[str]:
    """`Type/id` of every resource in the export's output files."""
    return {
        f"{r['resourceType']}/{r['id']}"
        for item in manifest["output"]
        for r in map(json.loads, texts[item["url"]].splitlines())
    }


def deleted_bundles(
    manifest: dict[str, Any], texts: dict[str, str]
) -> list[dict[str, Any]]:
    assert all(item["type"] == "Bundle" for item in manifest["deleted"])
    return [
        json.loads(line)
        for item in manifest["deleted"]
        for line in texts[item["url"]].splitlines()
    ]


def test_cases_erased_since_are_listed_as_deleted_with_the_ids_they_were_exported_under(
    live: Api,
) -> None:
    case_id = a_withdrawn_case(live)
    before, texts = export(live)
    exported = references(before, texts)
    assert {r.split("/")[0] for r in exported} == {
        "EpisodeOfCare",
        "Condition",
        "CarePlan",
        "Encounter",
        "Observation",
    }
    since = datetime.now(UTC).isoformat()
    assert erase(live, case_id).status_code == 202
    a_withdrawn_case(live, "ZQ-KEEP-ME-3030")  # changed since: exported

    manifest, texts = export(live, _since=since)

    (bundle,) = deleted_bundles(manifest, texts)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "transaction"
    assert {e["request"]["method"] for e in bundle["entry"]} == {"DELETE"}
    urls = {e["request"]["url"] for e in bundle["entry"]}
    assert exported <= urls, exported - urls
    assert {u.split("/")[0] for u in urls} <= set(RESOURCE_TYPES)
    assert not urls & references(manifest, texts), "the kept case's are not deleted"
    everything = json.dumps([manifest, *texts.values()])
    assert CLIENT_REF not in everything
    assert NOTE not in everything


def test_an_erasure_before_since_or_an_export_without_since_lists_no_deletions(
    live: Api,
) -> None:
    case_id = a_withdrawn_case(live)
    assert erase(live, case_id).status_code == 202
    since = datetime.now(UTC).isoformat()

    after, _ = export(live, _since=since)
    whole, _ = export(live)

    assert after["deleted"] == []
    assert whole["deleted"] == []


def test_type_narrows_the_deleted_resources_too(live: Api) -> None:
    case_id = a_withdrawn_case(live)
    since = datetime.now(UTC).isoformat()
    assert erase(live, case_id).status_code == 202

    manifest, texts = export(live, _since=since, _type="EpisodeOfCare")

    (bundle,) = deleted_bundles(manifest, texts)
    assert [e["request"]["url"].split("/")[0] for e in bundle["entry"]] == [
        "EpisodeOfCare"
    ]


@pytest.fixture
def sqlite_live(tmp_path: Path) -> Iterator[Api]:
    url = f"sqlite:///{tmp_path / 'erasure.db'}"
    yield from make_api(erasure_settings(url, export_dir=str(tmp_path / "exports")))


def test_the_deleted_bundle_is_valid_r4_and_a_real_fhir_server_deletes_with_it(
    sqlite_live: Api,
) -> None:
    """Medplum's FHIR router holds what the first export gave; the `deleted` line
    of the next one, sent to it as the transaction it is, removes every one."""
    api = sqlite_live
    case_id = a_withdrawn_case(api)
    before, texts = export(api)
    since = datetime.now(UTC).isoformat()
    assert erase(api, case_id).status_code == 202
    manifest, deleted_texts = export(api, _since=since)
    (bundle,) = deleted_bundles(manifest, deleted_texts)

    assert r4_errors([bundle]) == []
    with fhir_server() as server:
        load = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": r,
                    "request": {
                        "method": "PUT",
                        "url": f"{r['resourceType']}/{r['id']}",
                    },
                }
                for item in before["output"]
                for r in map(json.loads, texts[item["url"]].splitlines())
            ],
        }
        server.transaction(load)
        held = references(before, texts)
        assert all(server.read(ref).status_code == 200 for ref in held)

        server.transaction(bundle)

        gone = {server.read(ref).status_code for ref in held}
        assert gone <= {404, 410}, gone  # either is FHIR's "deleted"
