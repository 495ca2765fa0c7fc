"""The events of domain.md §7 and §8 in the FHIR export: a risk item is an
Observation of PHQ-9 item 9 (LOINC 44260-8), a revised outcome is `amended`, and a
suspected relapse in follow-up puts the focus Conditions in `relapse`. The bundle
still validates (R4B models here, R4 and a real FHIR server in test_fhir_loading)."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    AgreeContract,
    Command,
    Conclude,
    CorrectEntry,
    RecordMeasure,
    RecordRiskReview,
    StartEnd,
    StartMiddle,
)
from tests.audit.conftest import COURSE, TODAY, august, full_course
from tests.audit.test_fhir import bundle_of, resources
from tests.support.api import Api
from tests.support.drivers import OverHttp, case_of
from tests.support.fhir import FhirServer, fhir_server, r4_errors

LOINC = "http://loinc.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def phq9(score: int, day: int, risk_item: int | None = None) -> RecordMeasure:
    return RecordMeasure.parse(
        instrument="phq9",
        score=score,
        measured_on=august(day),
        risk_item=risk_item,
        today=TODAY,
    )


def course_with_risk_revision_and_relapse(api: Api) -> str:
    """PHQ-9 20 with item 9 at 2 (reviewed), a final of 9 corrected to 12 after
    conclude (response → partial response), continuation accepted, and a follow-up
    score back at the baseline."""
    c = COURSE
    commands: list[Command] = [
        c.inventory(),
        c.focus(),
        AgreeContract.parse(sessions=12, frequency="weekly"),
        phq9(20, 1, risk_item=2),
        RecordRiskReview.parse(outcome="safety_plan_made"),
        c.session(held_on=august(2)),
        StartMiddle.parse(),
        *(c.session(held_on=august(day)) for day in range(3, 12)),
        StartEnd.parse(),
        c.session(held_on=august(20)),
        c.session(held_on=august(27)),
        phq9(9, 27, risk_item=0),
        Conclude.parse(maintenance_discussed=True),
        CorrectEntry.parse(
            entry="measure",
            instrument="phq9",
            measured_on="2026-08-27",
            reason="wrong_details",
            replacement={"score": 12, "measured_on": "2026-08-27"},
            today=TODAY,
        ),
        AcceptFollowUp.parse(sessions=4, frequency="monthly"),
        phq9(21, 28),
    ]
    http = OverHttp(api.post)
    case_id = api.open_case("FHIR-RISK-1")
    for command in commands:
        http.run(case_id, command)
    return case_id


@pytest.fixture
def bundle(sqlite_audit_api: Api) -> dict[str, Any]:
    case_id = course_with_risk_revision_and_relapse(sqlite_audit_api)
    answer = sqlite_audit_api.get(f"/cases/{case_id}", "clinician")
    assert answer.status_code == 200, answer.text
    case = case_of(answer.json())
    # The course did what its name says, or nothing below means anything.
    assert case["outcome"]["classification"] == "partial_response"
    assert case["relapse"] is not None
    return bundle_of(sqlite_audit_api, case_id)


def coded(resource: dict[str, Any], system: str, code: str) -> bool:
    return any(
        c["system"] == system and c["code"] == code for c in resource["code"]["coding"]
    )


class TestRiskItem:
    def test_each_recorded_risk_item_is_an_observation_of_phq9_item_9(
        self, bundle: dict[str, Any]
    ) -> None:
        observations = resources(bundle, "Observation")
        items = [o for o in observations if coded(o, LOINC, "44260-8")]
        totals = {
            o["valueQuantity"]["value"]: o
            for o in observations
            if coded(o, LOINC, "44261-6") and o["status"] == "final"
        }
        by_url = {e["resource"]["id"]: e["fullUrl"] for e in bundle["entry"]}

        assert sorted(i["valueInteger"] for i in items) == [0, 2]
        (flagged,) = [i for i in items if i["valueInteger"] == 2]
        assert flagged["effectiveDateTime"] == "2026-08-01"
        assert flagged["derivedFrom"] == [{"reference": by_url[totals[20]["id"]]}]

    def test_a_measure_without_a_risk_item_exports_none(
        self, bundle: dict[str, Any]
    ) -> None:
        observations = resources(bundle, "Observation")
        items = [o for o in observations if coded(o, LOINC, "44260-8")]
        totals = [o for o in observations if coded(o, LOINC, "44261-6")]
        # four totals (20, 9 voided, its replacement 12, the follow-up 21), two items
        assert len(totals) == 4
        assert len(items) == 2


class TestRevisedOutcome:
    def test_a_revised_outcome_is_amended_and_derived_from_the_replacement(
        self, bundle: dict[str, Any]
    ) -> None:
        observations = resources(bundle, "Observation")
        (outcome,) = [o for o in observations if "valueCodeableConcept" in o]
        by_url = {e["resource"]["id"]: e["fullUrl"] for e in bundle["entry"]}
        final = [
            o
            for o in observations
            if coded(o, LOINC, "44261-6") and o["valueQuantity"]["value"] == 12
        ]

        assert outcome["status"] == "amended"
        assert outcome["valueCodeableConcept"]["coding"][0]["code"] == (
            "partial_response"
        )
        assert {"reference": by_url[final[0]["id"]]} in outcome["derivedFrom"]

    def test_an_outcome_never_revised_stays_final(self, sqlite_audit_api: Api) -> None:
        case_id, _ = full_course(sqlite_audit_api)

        observations = resources(bundle_of(sqlite_audit_api, case_id), "Observation")
        (outcome,) = [o for o in observations if "valueCodeableConcept" in o]
        assert outcome["status"] == "final"


class TestRelapse:
    def test_a_suspected_relapse_puts_the_focus_condition_in_relapse(
        self, bundle: dict[str, Any]
    ) -> None:
        (condition,) = resources(bundle, "Condition")

        (status,) = condition["clinicalStatus"]["coding"]
        assert (status["system"], status["code"]) == (CLINICAL, "relapse")


class TestStillValid:
    def test_the_bundle_validates_as_r4b_and_r4(self, bundle: dict[str, Any]) -> None:
        Bundle.model_validate(bundle)
        for entry in bundle["entry"]:
            get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(
                entry["resource"]
            )
        assert r4_errors(e["resource"] for e in bundle["entry"]) == []

    def test_a_real_fhir_server_loads_the_transaction(
        self, sqlite_audit_api: Api
    ) -> None:
        case_id = course_with_risk_revision_and_relapse(sqlite_audit_api)
        answer = sqlite_audit_api.client.get(
            f"/cases/{case_id}/fhir",
            headers=sqlite_audit_api.headers("auditor"),
            params={"type": "transaction"},
        )
        assert answer.status_code == 200, answer.text
        server: FhirServer
        with fhir_server() as server:
            result = server.transaction(answer.json())
            items = server.search("Observation", code=f"{LOINC}|44260-8")

        assert result["type"] == "transaction-response"
        assert sorted(i["valueInteger"] for i in items) == [0, 2]
