"""A case's FHIR export loads into a real FHIR server, and loading it again changes
nothing; every resource validates against the R4 models (fhir.resources 6.4) and
the R4B ones (fhir.resources 8); periods come from the clinic's dates."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from fhir.resources.R4B import get_fhir_model_class

from ipt_workflow.api.fhir import case_resources
from tests.audit.conftest import app_of, full_course
from tests.audit.test_fhir import bundle_of, resources
from tests.support.api import INTAKE_ON, Api
from tests.support.fhir import FhirServer, fhir_server, r4_errors

KINDS = ("EpisodeOfCare", "Condition", "CarePlan", "Encounter", "Observation")


@pytest.fixture(scope="module")
def server() -> Iterator[FhirServer]:
    with fhir_server() as running:
        yield running


def transaction_of(api: Api, case_id: str) -> dict[str, Any]:
    answer = api.client.get(
        f"/cases/{case_id}/fhir",
        headers=api.headers("auditor"),
        params={"type": "transaction"},
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def stored(server: FhirServer, identifier_system: str) -> dict[str, dict[str, Any]]:
    """Every resource the server holds with one of our identifiers, by that value,
    without the server's own bookkeeping (meta)."""
    found = {}
    for kind in KINDS:
        for resource in server.search(kind):
            ours = [
                i for i in resource["identifier"] if i["system"] == identifier_system
            ]
            (identifier,) = ours
            found[identifier["value"]] = {
                k: v for k, v in resource.items() if k != "meta"
            }
    return found


class TestTransactionBundle:
    def test_every_entry_is_a_conditional_update_by_its_identifier(
        self, sqlite_audit_api: Api
    ) -> None:
        case_id, _ = full_course(sqlite_audit_api)

        bundle = transaction_of(sqlite_audit_api, case_id)

        assert bundle["type"] == "transaction"
        for entry in bundle["entry"]:
            resource, request = entry["resource"], entry["request"]
            identifier = resource["identifier"][0]
            assert "id" not in resource
            assert request["method"] == "PUT"
            kind, _, query = request["url"].partition("?")
            assert kind == resource["resourceType"]
            assert query == (
                f"identifier={identifier['system']}%7C{identifier['value']}"
            )

    def test_loading_a_full_course_twice_creates_each_resource_once_and_changes_nothing(
        self, sqlite_audit_api: Api, server: FhirServer
    ) -> None:
        case_id, _ = full_course(sqlite_audit_api, "LOAD-1")
        bundle = transaction_of(sqlite_audit_api, case_id)
        system = bundle["entry"][0]["resource"]["identifier"][0]["system"]

        first = server.transaction(bundle)
        after_first = stored(server, system)
        again = server.transaction(transaction_of(sqlite_audit_api, case_id))
        after_again = stored(server, system)

        assert first["type"] == "transaction-response"
        assert {e["response"]["status"][:3] for e in first["entry"]} == {"201"}
        assert {e["response"]["status"][:3] for e in again["entry"]} == {"200"}
        assert len(after_first) == len(bundle["entry"])
        assert after_again == after_first

    def test_on_the_server_observations_name_their_episode_and_the_day_s_encounter(
        self, sqlite_audit_api: Api, server: FhirServer
    ) -> None:
        case_id, _ = full_course(sqlite_audit_api, "LOAD-2")
        bundle = transaction_of(sqlite_audit_api, case_id)
        server.transaction(bundle)
        episode_value = bundle["entry"][0]["resource"]["identifier"][0]["value"]
        (episode,) = [
            r
            for r in server.search("EpisodeOfCare")
            if r["identifier"][0]["value"] == episode_value
        ]

        ours = [
            o
            for o in server.search("Observation")
            if o["extension"][-1]["valueReference"]["reference"]
            == f"EpisodeOfCare/{episode['id']}"
        ]

        assert len(ours) == 4  # three measures and the outcome, all of the episode
        with_encounter = [o for o in ours if "encounter" in o]
        # Only the measure of 2026-08-27 was taken on a day with a session.
        assert [o["effectiveDateTime"] for o in with_encounter] == ["2026-08-27"]
        encounter = server.read(with_encounter[0]["encounter"]["reference"])
        assert encounter.status_code == 200
        assert encounter.json()["period"]["start"] == "2026-08-27"
        assert encounter.json()["episodeOfCare"][0]["reference"] == (
            f"EpisodeOfCare/{episode['id']}"
        )


class TestValidation:
    def test_every_resource_of_both_bundle_types_validates_as_r4_and_r4b(
        self, sqlite_audit_api: Api
    ) -> None:
        case_id, _ = full_course(sqlite_audit_api)
        bundles = [
            bundle_of(sqlite_audit_api, case_id),
            transaction_of(sqlite_audit_api, case_id),
        ]

        problems = r4_errors(
            [*bundles, *(e["resource"] for b in bundles for e in b["entry"])]
        )

        assert problems == []
        for bundle in bundles:
            get_fhir_model_class("Bundle").model_validate(bundle)
            for entry in bundle["entry"]:
                kind = entry["resource"]["resourceType"]
                get_fhir_model_class(kind).model_validate(entry["resource"])

    def test_the_r4_validator_refuses_what_r4_does_not_allow(self) -> None:
        # An Observation without its code: the validator can say no.
        problems = r4_errors([{"resourceType": "Observation", "status": "final"}])

        assert [kind for kind, _ in problems] == ["Observation"]

    def test_each_resource_declares_its_r4_profile(self, sqlite_audit_api: Api) -> None:
        case_id, _ = full_course(sqlite_audit_api)

        bundle = bundle_of(sqlite_audit_api, case_id)

        kinds = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
        assert set(kinds) == set(KINDS)
        for entry in bundle["entry"]:
            kind = entry["resource"]["resourceType"]
            assert entry["resource"]["meta"]["profile"] == [
                f"http://hl7.org/fhir/StructureDefinition/{kind}"
            ]


class TestClinicalContent:
    def test_periods_are_the_clinic_s_dates_not_the_recording_times(
        self, sqlite_audit_api: Api
    ) -> None:
        # full_course records everything on 2026-11-25 about sessions of August and
        # September 2026.
        case_id, _ = full_course(sqlite_audit_api)

        bundle = bundle_of(sqlite_audit_api, case_id)

        (episode,) = resources(bundle, "EpisodeOfCare")
        assert episode["period"] == {"start": "2026-08-01", "end": "2026-09-27"}
        days = [e["period"]["start"] for e in resources(bundle, "Encounter")]
        assert all(episode["period"]["start"] <= d <= "2026-09-27" for d in days)
        for plan in resources(bundle, "CarePlan"):
            assert "2026-08-01" <= plan["period"]["start"] <= "2026-09-27"
            assert plan["period"].get("end", "9999") >= plan["period"]["start"]
        assert "created" not in resources(bundle, "CarePlan")[0]

    def test_the_focus_is_a_condition_the_plans_address_and_the_episode_names(
        self, sqlite_audit_api: Api
    ) -> None:
        case_id, _ = full_course(sqlite_audit_api)

        bundle = bundle_of(sqlite_audit_api, case_id)

        (condition,) = resources(bundle, "Condition")
        url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is condition)
        assert condition["code"]["coding"][0]["code"] == "role_transition"
        assert condition["clinicalStatus"]["coding"][0]["code"] == "inactive"
        for plan in resources(bundle, "CarePlan"):
            assert plan["addresses"] == [{"reference": url}]
        (episode,) = resources(bundle, "EpisodeOfCare")
        assert episode["diagnosis"][0]["condition"] == {"reference": url}

    def test_the_outcome_classification_is_an_observation_derived_from_its_measures(
        self, sqlite_audit_api: Api
    ) -> None:
        case_id, _ = full_course(sqlite_audit_api)

        bundle = bundle_of(sqlite_audit_api, case_id)

        urls = {id(e["resource"]): e["fullUrl"] for e in bundle["entry"]}
        observations = resources(bundle, "Observation")
        (outcome,) = [o for o in observations if "valueCodeableConcept" in o]
        assert outcome["valueCodeableConcept"]["coding"][0]["code"] == "response"
        by_score = {
            o["valueQuantity"]["value"]: urls[id(o)]
            for o in observations
            if "valueQuantity" in o
        }
        assert outcome["derivedFrom"] == [
            {"reference": by_score[20]},
            {"reference": by_score[9]},
        ]
        assert outcome["effectiveDateTime"] == "2026-08-27"


class TestIntakeDate:
    def test_a_case_with_an_intake_date_starts_its_episode_on_that_day(
        self, sqlite_audit_api: Api
    ) -> None:
        case_id, _ = full_course(sqlite_audit_api)
        app = app_of(sqlite_audit_api)
        case = app.get_case(UUID(case_id))
        events = app.case_events(case.id)
        assert case.intake_on == INTAKE_ON.isoformat()  # before the case was opened

        found = case_resources(case, events)

        (episode,) = [r.body for r in found if r.kind == "EpisodeOfCare"]
        assert episode["period"] == {"start": "2026-08-01", "end": "2026-09-27"}
        plans = [r.body for r in found if r.kind == "CarePlan"]
        assert plans[0]["period"]["start"] == "2026-08-01"
