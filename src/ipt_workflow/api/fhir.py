"""A case as an HL7 FHIR R4 Bundle (research notes §4).

- one EpisodeOfCare for the case, its status from the phase (§4.2);
- a CarePlan per contract: the acute contract, each renegotiation (replacing the
  plan before, which is revoked) and an accepted follow-up contract;
- an Encounter per session held (finished, or entered-in-error once voided) and per
  missed session (cancelled);
- an Observation per measure: PHQ-9 total LOINC 44261-6, BDI-II total LOINC 89209-1,
  HAM-D-17 and CDRS-R in a local code system (no LOINC code is confirmed for them).

The client is referred to by the clinic's own `client_ref`, as an identifier: the
service holds no Patient resource. Free-text notes are never exported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.protocols import PROTOCOLS

BASE = "https://ipt-workflow.example.org/fhir"
"""Canonical base of the service's own code systems, extensions and identifiers."""

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PHASE_EXTENSION = f"{BASE}/StructureDefinition/ipt-phase"
MISSED_REASON_EXTENSION = f"{BASE}/StructureDefinition/missed-reason"

EPISODE_STATUS: dict[str, str] = {
    Phase.beginning: "active",
    Phase.middle: "active",
    Phase.end: "active",
    Phase.concluded: "active",
    Phase.follow_up: "active",
    Phase.closed: "finished",
    Phase.withdrawn: "cancelled",
}
"""EpisodeOfCare.status by phase: the case is one episode until it ends (D24)."""

INSTRUMENT_CODES: dict[str, tuple[str, str, str]] = {
    "phq9": (LOINC, "44261-6", "PHQ-9 total score"),
    "bdi2": (LOINC, "89209-1", "BDI-II total score"),
    "hamd17": (f"{BASE}/CodeSystem/instrument-total", "hamd17", "HAM-D-17 total"),
    "cdrsr": (f"{BASE}/CodeSystem/instrument-total", "cdrsr", "CDRS-R total score"),
}

CLASSES = {
    "in_person": ("AMB", "ambulatory"),
    "video": ("VR", "virtual"),
    "telephone": ("VR", "virtual"),
}

TIMING = {
    "weekly": {"frequency": 1, "period": 1, "periodUnit": "wk"},
    "twice_weekly": {"frequency": 2, "period": 1, "periodUnit": "wk"},
    "fortnightly": {"frequency": 1, "period": 2, "periodUnit": "wk"},
    "monthly": {"frequency": 1, "period": 1, "periodUnit": "mo"},
}

ACTIVITY_STATUS = {"active": "in-progress", "completed": "completed"}


@dataclass
class _Plan:
    id: UUID
    kind: str
    sessions: int
    frequency: str
    start: str
    replaces: UUID | None = None
    reason: str | None = None
    end: str | None = None
    status: str = "active"


@dataclass
class _Walk:
    """What the events tell beyond the case's current state."""

    opened: str = ""
    ended: str | None = None
    plans: list[_Plan] = field(default_factory=list)
    session_clinicians: list[str] = field(default_factory=list)

    def open_plans(self) -> list[_Plan]:
        return [p for p in self.plans if p.status == "active"]

    def end_plans(self, at: str, status: str, kind: str | None = None) -> None:
        for plan in self.open_plans():
            if kind is None or plan.kind == kind:
                plan.end, plan.status = at, status


def _time(event: Any) -> str:
    stamp: datetime = event.timestamp
    return stamp.isoformat(timespec="seconds")


def _walk(case: TherapyCase, events: Sequence[Any]) -> _Walk:
    walk = _Walk()
    clinician = ""
    for n, event in enumerate(events):
        name, at = type(event).__name__, _time(event)
        plan_id = uuid5(case.id, f"CarePlan/{n}")
        if name == "CaseOpened":
            walk.opened, clinician = at, event.clinician_id
        elif name == "CaseReassigned":
            clinician = event.clinician_id
        elif name == "SessionHeld":
            walk.session_clinicians.append(clinician)
        elif name == "ContractAgreed":
            walk.plans.append(
                _Plan(plan_id, "acute", event.sessions, event.frequency, at)
            )
        elif name == "ContractRenegotiated":
            before = next((p for p in walk.open_plans() if p.kind == "acute"), None)
            walk.end_plans(at, "revoked", "acute")
            walk.plans.append(
                _Plan(
                    plan_id,
                    "acute",
                    event.sessions,
                    event.frequency,
                    at,
                    replaces=None if before is None else before.id,
                    reason=event.reason,
                )
            )
        elif name == "AcuteTreatmentConcluded":
            walk.end_plans(at, "completed", "acute")
        elif name == "FollowUpAccepted" and event.contract is not None:
            contract = event.contract
            walk.plans.append(
                _Plan(
                    plan_id, event.kind, contract["sessions"], contract["frequency"], at
                )
            )
        elif name == "CaseClosed":
            walk.ended = at
            walk.end_plans(at, "completed")
        elif name == "CaseWithdrawn":
            walk.ended = at
            walk.end_plans(at, "revoked")
    return walk


def _urn(resource_id: UUID) -> str:
    return f"urn:uuid:{resource_id}"


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return coding


def _phase(phase: str) -> list[dict[str, Any]]:
    return [{"url": PHASE_EXTENSION, "valueCode": phase}]


def fhir_bundle(
    case: TherapyCase, events: Sequence[Any], *, timestamp: datetime
) -> dict[str, Any]:
    """The case and its history as a FHIR R4 Bundle of type `collection`."""
    walk = _walk(case, events)
    patient = {
        "identifier": {
            "system": f"{BASE}/clinic/{case.clinic_id}/client-ref",
            "value": case.client_ref,
        }
    }
    episode_id = uuid5(case.id, "EpisodeOfCare")
    episode_ref = {"reference": _urn(episode_id)}

    def clinician(value: str) -> dict[str, Any]:
        system = f"{BASE}/clinic/{case.clinic_id}/clinician"
        return {"identifier": {"system": system, "value": value}}

    resources: list[tuple[UUID, dict[str, Any]]] = [
        (episode_id, _episode(case, walk, episode_id, patient, clinician))
    ]
    for plan in walk.plans:
        resources.append((plan.id, _care_plan(plan, patient, episode_ref)))
    for n, session in enumerate(case.sessions):
        at = walk.session_clinicians[n] if n < len(walk.session_clinicians) else ""
        resource_id = uuid5(case.id, f"Encounter/{n}")
        resources.append(
            (
                resource_id,
                _encounter(
                    case, session, resource_id, patient, episode_ref, clinician(at)
                ),
            )
        )
    for n, missed in enumerate(case.missed_sessions):
        resource_id = uuid5(case.id, f"Encounter/missed/{n}")
        resources.append(
            (resource_id, _missed(missed, resource_id, patient, episode_ref))
        )
    for n, measure in enumerate(case.measures):
        resource_id = uuid5(case.id, f"Observation/{n}")
        resources.append((resource_id, _observation(measure, resource_id, patient)))
    return {
        "resourceType": "Bundle",
        "id": str(uuid5(case.id, f"Bundle/{case.version}")),
        "type": "collection",
        "timestamp": timestamp.isoformat(timespec="seconds"),
        "entry": [
            {"fullUrl": _urn(resource_id), "resource": resource}
            for resource_id, resource in resources
        ],
    }


def _episode(
    case: TherapyCase,
    walk: _Walk,
    episode_id: UUID,
    patient: Mapping[str, Any],
    clinician: Any,
) -> dict[str, Any]:
    status = EPISODE_STATUS[case.phase]
    period = {"start": walk.opened}
    history = []
    if walk.ended is not None:
        period["end"] = walk.ended
        history.append(
            {"status": "active", "period": {"start": walk.opened, "end": walk.ended}}
        )
    protocol = PROTOCOLS[case.protocol_id]
    episode: dict[str, Any] = {
        "resourceType": "EpisodeOfCare",
        "id": str(episode_id),
        "extension": _phase(case.phase),
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": _urn(case.id)}],
        "status": status,
        "type": [
            {
                "coding": [
                    _coding(f"{BASE}/CodeSystem/protocol", protocol.id, protocol.title)
                ]
            }
        ],
        "patient": patient,
        "managingOrganization": {
            "identifier": {"system": f"{BASE}/clinic", "value": case.clinic_id}
        },
        "period": period,
        "careManager": clinician(case.clinician_id),
    }
    if history:
        episode["statusHistory"] = history
    return episode


def _care_plan(
    plan: _Plan, patient: Mapping[str, Any], episode_ref: dict[str, Any]
) -> dict[str, Any]:
    period = {"start": plan.start}
    if plan.end is not None:
        period["end"] = plan.end
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": str(plan.id),
        "status": plan.status,
        "intent": "plan",
        "category": [{"coding": [_coding(f"{BASE}/CodeSystem/contract", plan.kind)]}],
        "title": f"IPT {plan.kind} contract: {plan.sessions} sessions, "
        f"{plan.frequency.replace('_', ' ')}",
        "subject": patient,
        "period": period,
        "created": plan.start,
        "supportingInfo": [episode_ref],
        "activity": [
            {
                "detail": {
                    "code": {
                        "coding": [
                            _coding(f"{BASE}/CodeSystem/session-kind", "therapy")
                        ]
                    },
                    "status": ACTIVITY_STATUS.get(plan.status, "stopped"),
                    "scheduledTiming": {
                        "repeat": {"count": plan.sessions, **TIMING[plan.frequency]}
                    },
                }
            }
        ],
    }
    if plan.replaces is not None:
        resource["replaces"] = [{"reference": _urn(plan.replaces)}]
    if plan.reason is not None:
        resource["description"] = f"Renegotiated; reason code: {plan.reason}"
    return resource


def _encounter(
    case: TherapyCase,
    session: Mapping[str, Any],
    resource_id: UUID,
    patient: dict[str, Any],
    episode_ref: dict[str, Any],
    clinician: dict[str, Any],
) -> dict[str, Any]:
    code, display = CLASSES[session["modality"]]
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(resource_id),
        "extension": _phase(session["phase"]),
        "status": "entered-in-error" if session["voided"] else "finished",
        "class": _coding(ACT_CODE, code, display),
        "type": [
            {"coding": [_coding(f"{BASE}/CodeSystem/session-kind", session["kind"])]}
        ],
        "subject": patient,
        "episodeOfCare": [episode_ref],
        "period": {"start": session["held_on"], "end": session["held_on"]},
        "length": {
            "value": session["minutes"],
            "unit": "min",
            "system": UCUM,
            "code": "min",
        },
    }
    if clinician["identifier"]["value"]:
        resource["participant"] = [{"individual": clinician}]
    if session["number"] is not None:
        series = "follow-up" if session["follow_up"] else "acute"
        resource["identifier"] = [
            {
                "system": f"{BASE}/case/{case.id}/session-number/{series}",
                "value": str(session["number"]),
            }
        ]
    return resource


def _missed(
    missed: Mapping[str, Any],
    resource_id: UUID,
    patient: dict[str, Any],
    episode_ref: dict[str, Any],
) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": str(resource_id),
        "extension": [
            *_phase(missed["phase"]),
            {"url": MISSED_REASON_EXTENSION, "valueCode": missed["reason"]},
        ],
        "status": "cancelled",
        "class": _coding(ACT_CODE, "AMB", "ambulatory"),
        "type": [{"coding": [_coding(f"{BASE}/CodeSystem/session-kind", "therapy")]}],
        "subject": patient,
        "episodeOfCare": [episode_ref],
        "period": {"start": missed["scheduled_on"], "end": missed["scheduled_on"]},
    }


def _observation(
    measure: Mapping[str, Any], resource_id: UUID, patient: dict[str, Any]
) -> dict[str, Any]:
    system, code, text = INSTRUMENT_CODES[measure["instrument"]]
    return {
        "resourceType": "Observation",
        "id": str(resource_id),
        "extension": _phase(measure["phase"]),
        "status": "entered-in-error" if measure["voided"] else "final",
        "category": [{"coding": [_coding(OBSERVATION_CATEGORY, "survey", "Survey")]}],
        "code": {"coding": [_coding(system, code)], "text": text},
        "subject": patient,
        "effectiveDateTime": measure["measured_on"],
        "valueQuantity": {
            "value": measure["score"],
            "unit": "{score}",
            "system": UCUM,
            "code": "{score}",
        },
    }
