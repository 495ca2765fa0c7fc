"""GET /cases/{id}/fhir: an HL7 FHIR Bundle that validates, its statuses following
the case's phase (research notes §4)."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from tests.audit.conftest import full_course, ok
from tests.support.api import Api, drive_to_middle

LOINC = "http://loinc.org"

# The R4 status value sets (research notes §4.1): the models check structure only.
STATUSES = {
    "EpisodeOfCare": {
        "planned",
        "waitlist",
        "active",
        "onhold",
        "finished",
        "cancelled",
        "entered-in-error",
    },
    "CarePlan": {
        "draft",
        "active",
        "on-hold",
        "revoked",
        "completed",
        "entered-in-error",
        "unknown",
    },
    "Encounter": {
        "planned",
        "arrived",
        "triaged",
        "in-progress",
        "onleave",
        "finished",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    "Observation": {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
}
ACTIVITY_STATUSES = {
    "not-started",
    "scheduled",
    "in-progress",
    "on-hold",
    "completed",
    "cancelled",
    "stopped",
    "unknown",
    "entered-in-error",
}


def bundle_of(api: Api, case_id: str, who: str = "auditor") -> dict[str, Any]:
    answer = api.get(f"/cases/{case_id}/fhir", who)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    found: dict[str, Any] = answer.json()
    return found


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind
    ]


def episode_status(api: Api, case_id: str) -> str:
    (episode,) = resources(bundle_of(api, case_id), "EpisodeOfCare")
    status: str = episode["status"]
    return status


class TestValidation:
    def test_the_bundle_of_a_full_course_validates_as_fhir_r4b(
        self, sqlite_audit_api: Api
    ) -> None:
        case_id, _ = full_course(sqlite_audit_api)

        bundle = bundle_of(sqlite_audit_api, case_id)
        Bundle.model_validate(bundle)
        for entry in bundle["entry"]:
            model = get_fhir_model_class(entry["resource"]["resourceType"])
            model.model_validate(entry["resource"])
            kind = entry["resource"]["resourceType"]
            if kind != "Condition":  # statuses are codeable concepts there
                assert entry["resource"]["status"] in STATUSES[kind]
        for plan in resources(bundle, "CarePlan"):
            assert plan["activity"][0]["detail"]["status"] in ACTIVITY_STATUSES

        kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
        assert bundle["type"] == "collection"
        assert kinds.count("EpisodeOfCare") == 1
        assert kinds.count("CarePlan") == 4  # agreed, renegotiated twice, follow-up
        assert kinds.count("Encounter") == 15
        assert kinds.count("Observation") == 4  # three measures and the outcome
        assert kinds.count("Condition") == 1

    def test_references_resolve_inside_the_bundle(self, sqlite_audit_api: Api) -> None:
        case_id, _ = full_course(sqlite_audit_api)

        bundle = bundle_of(sqlite_audit_api, case_id)

        urls = {e["fullUrl"] for e in bundle["entry"]}
        refs = [
            ref["reference"]
            for r in resources(bundle, "Encounter")
            for ref in r["episodeOfCare"]
        ] + [
            ref["reference"]
            for r in resources(bundle, "CarePlan")
            for ref in r.get("replaces", []) + r["supportingInfo"]
        ]
        assert refs
        assert set(refs) <= urls

    def test_the_bundle_holds_no_free_text_notes(self, sqlite_audit_api: Api) -> None:
        case_id = sqlite_audit_api.open_case("N-1")
        ok(
            sqlite_audit_api,
            f"/cases/{case_id}/transitions/withdraw",
            {"reason": "other", "note": "ZQ-PRIVATE-NOTE-915"},
        )

        text = sqlite_audit_api.get(f"/cases/{case_id}/fhir", "auditor").text

        assert "ZQ-PRIVATE-NOTE-915" not in text


class TestStatuses:
    def test_the_episode_is_active_through_the_course_and_finished_when_closed(
        self, sqlite_audit_api: Api
    ) -> None:
        api = sqlite_audit_api
        case_id = api.open_case()
        seen = [episode_status(api, case_id)]
        drive_to_middle(api, case_id)
        seen.append(episode_status(api, case_id))

        closed_id, phases = full_course(api, "B-7")

        assert seen == ["active", "active"]
        assert phases[-1] == "closed"
        assert episode_status(api, closed_id) == "finished"

    def test_a_withdrawn_case_is_a_cancelled_episode(
        self, sqlite_audit_api: Api
    ) -> None:
        api = sqlite_audit_api
        case_id = api.open_case()
        drive_to_middle(api, case_id)
        ok(api, f"/cases/{case_id}/transitions/withdraw", {"reason": "moved"})

        bundle = bundle_of(api, case_id)

        (episode,) = resources(bundle, "EpisodeOfCare")
        (plan,) = resources(bundle, "CarePlan")
        assert episode["status"] == "cancelled"
        assert episode["statusHistory"][0]["status"] == "active"
        assert "end" in episode["period"]
        assert plan["status"] == "revoked"
        assert plan["activity"][0]["detail"]["status"] == "stopped"

    def test_the_phase_is_carried_as_an_extension(self, sqlite_audit_api: Api) -> None:
        api = sqlite_audit_api
        case_id = api.open_case()
        drive_to_middle(api, case_id)

        (episode,) = resources(bundle_of(api, case_id), "EpisodeOfCare")

        assert episode["extension"][0]["valueCode"] == "middle"

    def test_contracts_are_care_plans_and_a_renegotiation_replaces_the_plan(
        self, sqlite_audit_api: Api
    ) -> None:
        api = sqlite_audit_api
        case_id = api.open_case()
        drive_to_middle(api, case_id)
        active = resources(bundle_of(api, case_id), "CarePlan")
        ok(
            api,
            f"/cases/{case_id}/contract",
            {"sessions": 14, "frequency": "weekly", "reason": "scheduling"},
        )

        old, new = resources(bundle_of(api, case_id), "CarePlan")

        assert [p["status"] for p in active] == ["active"]
        assert old["status"] == "revoked"
        assert new["status"] == "active"
        assert new["replaces"] == [{"reference": f"urn:uuid:{old['id']}"}]
        assert new["activity"][0]["detail"]["scheduledTiming"]["repeat"]["count"] == 14
        assert old["period"]["end"] == new["period"]["start"]

    def test_after_a_full_course_every_plan_is_completed_or_revoked(
        self, sqlite_audit_api: Api
    ) -> None:
        case_id, _ = full_course(sqlite_audit_api)

        plans = resources(bundle_of(sqlite_audit_api, case_id), "CarePlan")

        assert [
            (p["status"], p["category"][0]["coding"][0]["code"]) for p in plans
        ] == [
            ("revoked", "acute"),
            ("revoked", "acute"),
            ("completed", "acute"),
            ("completed", "continuation"),
        ]

    def test_sessions_are_encounters_with_their_status_class_and_period(
        self, sqlite_audit_api: Api
    ) -> None:
        case_id, _ = full_course(sqlite_audit_api)

        encounters = resources(bundle_of(sqlite_audit_api, case_id), "Encounter")

        statuses = [e["status"] for e in encounters]
        assert statuses.count("finished") == 13
        assert statuses.count("entered-in-error") == 1
        assert statuses.count("cancelled") == 1
        video = [e for e in encounters if e["class"]["code"] == "VR"]
        assert len(video) == 9
        first = encounters[0]
        assert first["class"]["code"] == "AMB"
        assert first["period"] == {"start": "2026-08-02", "end": "2026-08-02"}
        assert first["length"]["value"] == 50
        assert first["identifier"][1]["value"] == "1"  # after the resource id

    def test_measures_are_observations_with_loinc_codes_where_they_exist(
        self, sqlite_audit_api: Api
    ) -> None:
        api = sqlite_audit_api
        case_id = api.open_case()
        drive_to_middle(api, case_id)
        ok(
            api,
            f"/cases/{case_id}/measures",
            {"instrument": "hamd17", "score": 15, "measured_on": "2026-10-03"},
        )
        ok(
            api,
            f"/cases/{case_id}/corrections",
            {
                "entry": "measure",
                "instrument": "hamd17",
                "measured_on": "2026-10-03",
                "reason": "wrong_details",
            },
        )
        ok(
            api,
            f"/cases/{case_id}/measures",
            {"instrument": "bdi2", "score": 22, "measured_on": "2026-10-04"},
        )

        observations = resources(bundle_of(api, case_id), "Observation")

        codes = [
            (o["code"]["coding"][0]["system"], o["code"]["coding"][0]["code"])
            for o in observations
        ]
        assert codes[0] == (LOINC, "44261-6")
        assert codes[1][0] != LOINC
        assert codes[2] == (LOINC, "89209-1")
        assert [o["status"] for o in observations] == [
            "final",
            "entered-in-error",
            "final",
        ]
        assert observations[0]["valueQuantity"]["value"] == 18
        assert observations[0]["effectiveDateTime"] == "2026-10-01"


class TestAccess:
    def test_a_clinician_of_the_clinic_may_export_and_others_may_not(
        self, sqlite_audit_api: Api
    ) -> None:
        api = sqlite_audit_api
        case_id = api.open_case()

        answers = {
            who: api.get(f"/cases/{case_id}/fhir", who).status_code
            for who in (
                "clinician",
                "auditor",
                "ops",
                "other_clinician",
                "other_auditor",
            )
        }

        assert answers == {
            "clinician": 200,
            "auditor": 200,
            "ops": 403,
            "other_clinician": 404,
            "other_auditor": 404,
        }
