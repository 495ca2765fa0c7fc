"""A case as HL7 FHIR R4 (4.0.1) resources (research notes §4; docs/fhir.md).

- one EpisodeOfCare for the case, its status from the phase (§4.2);
- a Condition per problem area of the agreed focus, which the episode's
  `diagnosis` and every CarePlan's `addresses` name;
- a CarePlan per contract: the acute contract, each renegotiation (replacing the
  plan before, which is revoked) and an accepted follow-up contract;
- an Encounter per session held (finished, or entered-in-error once voided) and per
  missed session (cancelled);
- an Observation per measure (PHQ-9 total LOINC 44261-6, BDI-II total LOINC
  89209-1, HAM-D-17 and CDRS-R in the project's code system), linked to the
  Encounter of that day and to the episode; and one for the outcome of acute
  treatment (its classification), derived from the baseline and final measures.

Every period is built from the dates the clinic gave (intake, session, missed
session and measure dates), never from the time the server recorded an event.
Every resource carries an identifier of the project's naming system, so a
`transaction` Bundle loads by conditional update and loading it twice changes
nothing. The client is referred to by the clinic's own `client_ref`, as an
identifier: the service holds no Patient resource. Free-text notes are never
exported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote
from uuid import UUID, uuid5

from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.facts import baseline_of, final_of
from ipt_workflow.domain.protocols import PROTOCOLS

FHIR_VERSION = "4.0.1"
MEDIA_TYPE = "application/fhir+json; fhirVersion=4.0"
"""The FHIR version is declared in the media type (FHIR R4 http.html#version)."""

BASE = "https://ipt-workflow.example.org/fhir"
"""Canonical base of the project's code systems, extensions and naming systems
(docs/fhir.md lists each); a deploying organisation may publish them under its own."""

CORE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
DIAGNOSIS_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
EPISODE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare"
"""HL7's core extension naming the episode an Observation belongs to (R4 has no
Observation.episodeOfCare element)."""
PHASE_EXTENSION = f"{BASE}/StructureDefinition/ipt-phase"
MISSED_REASON_EXTENSION = f"{BASE}/StructureDefinition/missed-reason"
RESOURCE_IDS = f"{BASE}/NamingSystem/resource-id"
"""Every exported resource's identifier: a stable id derived from the case."""

CODE_SYSTEMS = {
    "protocol": f"{BASE}/CodeSystem/protocol",
    "contract": f"{BASE}/CodeSystem/contract",
    "session-kind": f"{BASE}/CodeSystem/session-kind",
    "instrument-total": f"{BASE}/CodeSystem/instrument-total",
    "instrument-item": f"{BASE}/CodeSystem/instrument-item",
    "problem-area": f"{BASE}/CodeSystem/problem-area",
    "dispute-stage": f"{BASE}/CodeSystem/dispute-stage",
    "observation": f"{BASE}/CodeSystem/observation",
    "outcome": f"{BASE}/CodeSystem/outcome",
}
"""The project's code systems (docs/fhir.md lists their codes)."""

RESOURCE_TYPES = ("EpisodeOfCare", "Condition", "CarePlan", "Encounter", "Observation")
"""What an export holds, in the order a transaction lists them."""

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
    "hamd17": (CODE_SYSTEMS["instrument-total"], "hamd17", "HAM-D-17 total"),
    "cdrsr": (CODE_SYSTEMS["instrument-total"], "cdrsr", "CDRS-R total score"),
}

RISK_ITEM_CODES: dict[str, tuple[str, str, str]] = {
    "phq9": (
        LOINC,
        "44260-8",
        "Thoughts that you would be better off dead, or of hurting yourself in some "
        "way in the last 2 weeks [PHQ-9 item 9]",
    ),
    "bdi2": (CODE_SYSTEMS["instrument-item"], "bdi2-item9", "BDI-II item 9"),
}
"""The risk item of domain.md §8, exported as an Observation of its own."""

PROBLEM_AREAS = {
    "grief": "Grief",
    "role_dispute": "Role dispute",
    "role_transition": "Role transition",
    "interpersonal_deficits": "Interpersonal deficits",
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

Refer = Callable[[str, UUID], str]
"""How a resource names another: `urn:uuid:<id>` inside a Bundle, `Type/<id>`
in a bulk export's NDJSON files."""


def in_bundle(_kind: str, resource_id: UUID) -> str:
    return f"urn:uuid:{resource_id}"


def by_type(kind: str, resource_id: UUID) -> str:
    return f"{kind}/{resource_id}"


@dataclass(frozen=True)
class Resource:
    """One exported resource: its type, its stable id and its content."""

    kind: str
    id: UUID
    body: dict[str, Any]

    @property
    def identifier(self) -> tuple[str, str]:
        return RESOURCE_IDS, str(self.id)


# --- the dates the clinic gave ----------------------------------------------------


_DAY_FIELDS = {
    "SessionHeld": "held_on",
    "SymptomsMeasured": "measured_on",
    "SessionMissed": "scheduled_on",
}


def intake_day(case: TherapyCase) -> str | None:
    """The case's intake date, when the clinic gave one (domain.md §7)."""
    return case.intake_on or None


@dataclass
class _Plan:
    id: UUID
    kind: str
    sessions: int
    frequency: str
    start: str | None
    replaces: UUID | None = None
    reason: str | None = None
    end: str | None = None
    status: str = "active"


@dataclass
class _Walk:
    """What the events tell beyond the case's current state, dated by the clinic."""

    start: str | None
    day: str | None = None
    """The latest date the clinic gave so far."""
    ended: str | None = None
    plans: list[_Plan] = field(default_factory=list)
    session_clinicians: list[str] = field(default_factory=list)

    def open_plans(self) -> list[_Plan]:
        return [p for p in self.plans if p.status == "active"]

    def end_plans(self, status: str, kind: str | None = None) -> None:
        for plan in self.open_plans():
            if kind is None or plan.kind == kind:
                plan.end, plan.status = self.day or plan.start, status

    def saw(self, day: str) -> None:
        self.day = day if self.day is None else max(self.day, day)


def _walk(case: TherapyCase, events: Sequence[Any]) -> _Walk:
    days = [
        str(getattr(e, _DAY_FIELDS[type(e).__name__]))
        for e in events
        if type(e).__name__ in _DAY_FIELDS
    ]
    walk = _Walk(start=intake_day(case) or (min(days) if days else None))
    if walk.start is not None:
        walk.saw(walk.start)
    clinician = ""
    for n, event in enumerate(events):
        name = type(event).__name__
        plan_id = uuid5(case.id, f"CarePlan/{n}")
        if name in _DAY_FIELDS:
            walk.saw(str(getattr(event, _DAY_FIELDS[name])))
        if name == "CaseOpened" or name == "CaseReassigned":
            clinician = event.clinician_id
        elif name == "SessionHeld":
            walk.session_clinicians.append(clinician)
        elif name == "ContractAgreed":
            walk.plans.append(
                _Plan(plan_id, "acute", event.sessions, event.frequency, walk.day)
            )
        elif name == "ContractRenegotiated":
            before = next((p for p in walk.open_plans() if p.kind == "acute"), None)
            walk.end_plans("revoked", "acute")
            walk.plans.append(
                _Plan(
                    plan_id,
                    "acute",
                    event.sessions,
                    event.frequency,
                    walk.day,
                    replaces=None if before is None else before.id,
                    reason=event.reason,
                )
            )
        elif name == "AcuteTreatmentConcluded":
            walk.end_plans("completed", "acute")
        elif name == "FollowUpAccepted" and event.contract is not None:
            contract = event.contract
            walk.plans.append(
                _Plan(
                    plan_id,
                    event.kind,
                    contract["sessions"],
                    contract["frequency"],
                    walk.day,
                )
            )
        elif name == "CaseClosed":
            walk.ended = walk.day
            walk.end_plans("completed")
        elif name == "CaseWithdrawn":
            walk.ended = walk.day
            walk.end_plans("revoked")
    return walk


def _period(start: str | None, end: str | None) -> dict[str, str]:
    period = {} if start is None else {"start": start}
    if end is not None:
        period["end"] = end if start is None else max(start, end)
    return period


# --- the resources ------------------------------------------------------------------


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return coding


def _phase(phase: str) -> list[dict[str, Any]]:
    return [{"url": PHASE_EXTENSION, "valueCode": phase}]


def _meta(kind: str) -> dict[str, Any]:
    return {"profile": [f"{CORE_PROFILE}{kind}"]}


@dataclass(frozen=True)
class _Context:
    case: TherapyCase
    refer: Refer
    patient: dict[str, Any]
    episode_id: UUID

    def ref(self, kind: str, resource_id: UUID) -> dict[str, str]:
        return {"reference": self.refer(kind, resource_id)}

    @property
    def episode(self) -> dict[str, str]:
        return self.ref("EpisodeOfCare", self.episode_id)

    def clinician(self, value: str) -> dict[str, Any]:
        system = f"{BASE}/clinic/{self.case.clinic_id}/clinician"
        return {"identifier": {"system": system, "value": value}}


def case_resources(
    case: TherapyCase, events: Sequence[Any], refer: Refer = in_bundle
) -> list[Resource]:
    """Every resource of the case, each with its stable id and identifier."""
    walk = _walk(case, events)
    ctx = _Context(
        case=case,
        refer=refer,
        patient={
            "identifier": {
                "system": f"{BASE}/clinic/{case.clinic_id}/client-ref",
                "value": case.client_ref,
            }
        },
        episode_id=uuid5(case.id, "EpisodeOfCare"),
    )
    conditions = list(_conditions(ctx, walk))
    found = [Resource("EpisodeOfCare", ctx.episode_id, _episode(ctx, walk, conditions))]
    found += conditions
    for plan in walk.plans:
        found.append(Resource("CarePlan", plan.id, _care_plan(ctx, plan, conditions)))
    encounters: dict[str, UUID] = {}
    for n, session in enumerate(case.sessions):
        who = walk.session_clinicians[n] if n < len(walk.session_clinicians) else ""
        resource_id = uuid5(case.id, f"Encounter/{n}")
        if not session["voided"]:
            encounters.setdefault(session["held_on"], resource_id)
        found.append(Resource("Encounter", resource_id, _encounter(ctx, session, who)))
    for n, missed in enumerate(case.missed_sessions):
        resource_id = uuid5(case.id, f"Encounter/missed/{n}")
        found.append(Resource("Encounter", resource_id, _missed(ctx, missed)))
    measures: list[UUID] = []
    for n, measure in enumerate(case.measures):
        resource_id = uuid5(case.id, f"Observation/{n}")
        measures.append(resource_id)
        encounter = encounters.get(measure["measured_on"])
        found.append(
            Resource("Observation", resource_id, _observation(ctx, measure, encounter))
        )
        if measure.get("risk_item") is not None:
            item_id = uuid5(case.id, f"Observation/{n}/risk-item")
            found.append(
                Resource("Observation", item_id, _risk_item(ctx, measure, resource_id))
            )
    if case.outcome is not None:
        revised = any(isinstance(e, TherapyCase.OutcomeRevised) for e in events)
        found.append(_outcome(ctx, measures, revised=revised))
    for resource in found:
        system, value = resource.identifier
        resource.body["meta"] = _meta(resource.kind)
        resource.body.setdefault("identifier", []).insert(
            0, {"system": system, "value": value}
        )
        resource.body["id"] = str(resource.id)
    return found


def _conditions(ctx: _Context, walk: _Walk) -> Iterator[Resource]:
    focus = ctx.case.focus
    if focus is None:
        return
    ended = ctx.case.phase in (Phase.closed, Phase.withdrawn)
    # A suspected relapse in follow-up (domain.md §8) is the problem coming back.
    status = "inactive" if ended else "relapse" if ctx.case.relapse else "active"
    for rank in ("primary", "secondary"):
        area = focus[f"{rank}_area"]
        if area is None:
            continue
        condition: dict[str, Any] = {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [_coding(CONDITION_CLINICAL, status)]},
            "verificationStatus": {
                "coding": [_coding(CONDITION_VERIFICATION, "confirmed")]
            },
            "category": [
                {"coding": [_coding(CONDITION_CATEGORY, "problem-list-item")]}
            ],
            "code": {
                "coding": [
                    _coding(CODE_SYSTEMS["problem-area"], area, PROBLEM_AREAS[area])
                ],
                "text": f"IPT {rank} problem area: {PROBLEM_AREAS[area].lower()}",
            },
            "subject": ctx.patient,
        }
        if walk.start is not None:
            condition["onsetDateTime"] = walk.start
        if rank == "primary" and focus.get("dispute_stage"):
            stage = focus["dispute_stage"]
            condition["stage"] = [
                {"summary": {"coding": [_coding(CODE_SYSTEMS["dispute-stage"], stage)]}}
            ]
        yield Resource("Condition", uuid5(ctx.case.id, f"Condition/{rank}"), condition)


def _episode(
    ctx: _Context, walk: _Walk, conditions: Sequence[Resource]
) -> dict[str, Any]:
    case = ctx.case
    protocol = PROTOCOLS[case.protocol_id]
    episode: dict[str, Any] = {
        "resourceType": "EpisodeOfCare",
        "extension": _phase(case.phase),
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{case.id}"}],
        "status": EPISODE_STATUS[case.phase],
        "type": [
            {"coding": [_coding(CODE_SYSTEMS["protocol"], protocol.id, protocol.title)]}
        ],
        "patient": ctx.patient,
        "managingOrganization": {
            "identifier": {"system": f"{BASE}/clinic", "value": case.clinic_id}
        },
        "careManager": ctx.clinician(case.clinician_id),
    }
    if period := _period(walk.start, walk.ended):
        episode["period"] = period
    if walk.ended is not None and walk.start is not None:
        episode["statusHistory"] = [
            {"status": "active", "period": _period(walk.start, walk.ended)}
        ]
    if conditions:
        episode["diagnosis"] = [
            {
                "condition": ctx.ref("Condition", c.id),
                "role": {"coding": [_coding(DIAGNOSIS_ROLE, "CC", "Chief complaint")]},
                "rank": rank,
            }
            for rank, c in enumerate(conditions, start=1)
        ]
    return episode


def _care_plan(
    ctx: _Context, plan: _Plan, conditions: Sequence[Resource]
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "status": plan.status,
        "intent": "plan",
        "category": [{"coding": [_coding(CODE_SYSTEMS["contract"], plan.kind)]}],
        "title": f"IPT {plan.kind} contract: {plan.sessions} sessions, "
        f"{plan.frequency.replace('_', ' ')}",
        "subject": ctx.patient,
        "supportingInfo": [ctx.episode],
        "activity": [
            {
                "detail": {
                    "code": {
                        "coding": [_coding(CODE_SYSTEMS["session-kind"], "therapy")]
                    },
                    "status": ACTIVITY_STATUS.get(plan.status, "stopped"),
                    "scheduledTiming": {
                        "repeat": {"count": plan.sessions, **TIMING[plan.frequency]}
                    },
                }
            }
        ],
    }
    if period := _period(plan.start, plan.end):
        resource["period"] = period
    if conditions:
        resource["addresses"] = [ctx.ref("Condition", c.id) for c in conditions]
    if plan.replaces is not None:
        resource["replaces"] = [ctx.ref("CarePlan", plan.replaces)]
    if plan.reason is not None:
        resource["description"] = f"Renegotiated; reason code: {plan.reason}"
    return resource


def _encounter(
    ctx: _Context, session: Mapping[str, Any], clinician: str
) -> dict[str, Any]:
    code, display = CLASSES[session["modality"]]
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "extension": _phase(session["phase"]),
        "status": "entered-in-error" if session["voided"] else "finished",
        "class": _coding(ACT_CODE, code, display),
        "type": [{"coding": [_coding(CODE_SYSTEMS["session-kind"], session["kind"])]}],
        "subject": ctx.patient,
        "episodeOfCare": [ctx.episode],
        "period": {"start": session["held_on"], "end": session["held_on"]},
        "length": {
            "value": session["minutes"],
            "unit": "min",
            "system": UCUM,
            "code": "min",
        },
    }
    if clinician:
        resource["participant"] = [{"individual": ctx.clinician(clinician)}]
    if session["number"] is not None:
        series = "follow-up" if session["follow_up"] else "acute"
        resource["identifier"] = [
            {
                "system": f"{BASE}/case/{ctx.case.id}/session-number/{series}",
                "value": str(session["number"]),
            }
        ]
    return resource


def _missed(ctx: _Context, missed: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "extension": [
            *_phase(missed["phase"]),
            {"url": MISSED_REASON_EXTENSION, "valueCode": missed["reason"]},
        ],
        "status": "cancelled",
        "class": _coding(ACT_CODE, "AMB", "ambulatory"),
        "type": [{"coding": [_coding(CODE_SYSTEMS["session-kind"], "therapy")]}],
        "subject": ctx.patient,
        "episodeOfCare": [ctx.episode],
        "period": {"start": missed["scheduled_on"], "end": missed["scheduled_on"]},
    }


def _observation(
    ctx: _Context, measure: Mapping[str, Any], encounter: UUID | None
) -> dict[str, Any]:
    system, code, text = INSTRUMENT_CODES[measure["instrument"]]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "extension": [
            *_phase(measure["phase"]),
            {"url": EPISODE_EXTENSION, "valueReference": ctx.episode},
        ],
        "status": "entered-in-error" if measure["voided"] else "final",
        "category": [{"coding": [_coding(OBSERVATION_CATEGORY, "survey", "Survey")]}],
        "code": {"coding": [_coding(system, code)], "text": text},
        "subject": ctx.patient,
        "effectiveDateTime": measure["measured_on"],
        "valueQuantity": {
            "value": measure["score"],
            "unit": "{score}",
            "system": UCUM,
            "code": "{score}",
        },
    }
    if encounter is not None:
        resource["encounter"] = ctx.ref("Encounter", encounter)
    return resource


def _index_of(rows: Sequence[Any], row: object) -> int | None:
    return next((n for n, r in enumerate(rows) if r is row), None)


def _risk_item(
    ctx: _Context, measure: Mapping[str, Any], total: UUID
) -> dict[str, Any]:
    """Item 9 of the measure whose total is `total`: a panel member of it."""
    system, code, text = RISK_ITEM_CODES[measure["instrument"]]
    return {
        "resourceType": "Observation",
        "extension": [
            *_phase(measure["phase"]),
            {"url": EPISODE_EXTENSION, "valueReference": ctx.episode},
        ],
        "status": "entered-in-error" if measure["voided"] else "final",
        "category": [{"coding": [_coding(OBSERVATION_CATEGORY, "survey", "Survey")]}],
        "code": {"coding": [_coding(system, code)], "text": text},
        "subject": ctx.patient,
        "effectiveDateTime": measure["measured_on"],
        "valueInteger": measure["risk_item"],
        "derivedFrom": [ctx.ref("Observation", total)],
    }


def _outcome(
    ctx: _Context, measures: Sequence[UUID], *, revised: bool = False
) -> Resource:
    """The outcome of acute treatment: its classification, from which measures;
    `amended` once a correction revised it (domain.md §7)."""
    case = ctx.case
    outcome = dict(case.outcome or {})
    rows = case.measures
    baseline = _index_of(rows, baseline_of(rows))
    final = _index_of(rows, final_of(rows))
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "extension": [{"url": EPISODE_EXTENSION, "valueReference": ctx.episode}],
        "status": "amended" if revised else "final",
        "category": [{"coding": [_coding(OBSERVATION_CATEGORY, "survey", "Survey")]}],
        "code": {
            "coding": [_coding(CODE_SYSTEMS["observation"], "acute-outcome")],
            "text": "Outcome of acute IPT",
        },
        "subject": ctx.patient,
        "valueCodeableConcept": {
            "coding": [_coding(CODE_SYSTEMS["outcome"], outcome["classification"])]
        },
        "component": [
            {
                "code": {"coding": [_coding(CODE_SYSTEMS["observation"], "residual")]},
                "valueBoolean": bool(outcome["residual"]),
            }
        ],
    }
    derived = [n for n in (baseline, final) if n is not None]
    if derived:
        resource["derivedFrom"] = [
            ctx.ref("Observation", measures[n]) for n in dict.fromkeys(derived)
        ]
    if final is not None:
        resource["effectiveDateTime"] = case.measures[final]["measured_on"]
    return Resource("Observation", uuid5(case.id, "Observation/outcome"), resource)


# --- bundles ------------------------------------------------------------------------


_PLAN_EVENTS = {"ContractAgreed", "ContractRenegotiated", "FollowUpAccepted"}
_OUTCOME_EVENTS = {"AcuteTreatmentConcluded", "OutcomeRevised"}


def erased_references(case_id: UUID, event_types: Sequence[str]) -> list[str]:
    """Every `Type/id` the resources of an erased case may have had in an export.

    After erasure only the types of its events are known (their envelopes), so this
    is the ids `case_resources` gives, by the same scheme, for every resource such
    events can yield: a few (a risk item, a secondary problem area, a plan of a
    follow-up without contract) may never have existed. A DELETE of those changes
    nothing.
    """
    count = {t: event_types.count(t) for t in set(event_types)}
    found = [("EpisodeOfCare", uuid5(case_id, "EpisodeOfCare"))]
    if "FocusAgreed" in count:
        found += [
            ("Condition", uuid5(case_id, f"Condition/{rank}"))
            for rank in ("primary", "secondary")
        ]
    found += [
        ("CarePlan", uuid5(case_id, f"CarePlan/{n}"))
        for n, kind in enumerate(event_types)
        if kind in _PLAN_EVENTS
    ]
    found += [
        ("Encounter", uuid5(case_id, f"Encounter/{n}"))
        for n in range(count.get("SessionHeld", 0))
    ]
    found += [
        ("Encounter", uuid5(case_id, f"Encounter/missed/{n}"))
        for n in range(count.get("SessionMissed", 0))
    ]
    for n in range(count.get("SymptomsMeasured", 0)):
        found.append(("Observation", uuid5(case_id, f"Observation/{n}")))
        found.append(("Observation", uuid5(case_id, f"Observation/{n}/risk-item")))
    if _OUTCOME_EVENTS & set(count):
        found.append(("Observation", uuid5(case_id, "Observation/outcome")))
    return [by_type(kind, resource_id) for kind, resource_id in found]


def deleted_bundle(references: Sequence[str]) -> dict[str, Any]:
    """A bulk export's `deleted` line: a transaction Bundle of DELETE requests."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": r}} for r in references],
    }


def conditional_url(resource: Resource) -> str:
    """The conditional update that finds the resource again by its identifier."""
    system, value = resource.identifier
    return f"{resource.kind}?identifier={quote(f'{system}|{value}', safe=':/')}"


def fhir_bundle(
    case: TherapyCase,
    events: Sequence[Any],
    *,
    timestamp: datetime,
    kind: Literal["collection", "transaction"] = "collection",
) -> dict[str, Any]:
    """The case and its history as a FHIR R4 Bundle.

    A `transaction` Bundle's entries are conditional updates by identifier, so a
    FHIR server creates each resource once and loading it again changes nothing.
    """
    entries = []
    for resource in case_resources(case, events):
        entry: dict[str, Any] = {
            "fullUrl": in_bundle(resource.kind, resource.id),
            "resource": resource.body,
        }
        if kind == "transaction":
            # The server assigns its own ids; the identifier finds the resource.
            del resource.body["id"]
            entry["request"] = {"method": "PUT", "url": conditional_url(resource)}
        entries.append(entry)
    return {
        "resourceType": "Bundle",
        "id": str(uuid5(case.id, f"Bundle/{kind}/{case.version}")),
        "meta": _meta("Bundle"),
        "type": kind,
        "timestamp": timestamp.isoformat(timespec="seconds"),
        "entry": entries,
    }


# --- what the service offers -------------------------------------------------------

BULK_DATA = "http://hl7.org/fhir/uv/bulkdata"


def capability_statement(software_version: str, date: str) -> dict[str, Any]:
    """The CapabilityStatement of GET /fhir/metadata: what the export offers."""
    resources = [
        {
            "type": kind,
            "profile": f"{CORE_PROFILE}{kind}",
            "documentation": "Exported per case (GET /cases/{id}/fhir) and in bulk "
            "(GET /fhir/$export); not searchable here.",
        }
        for kind in RESOURCE_TYPES
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "ipt-workflow",
        "kind": "instance",
        "instantiates": [f"{BULK_DATA}/CapabilityStatement/bulk-data"],
        "software": {"name": "ipt-workflow", "version": software_version},
        "implementation": {
            "description": "IPT case records as HL7 FHIR R4: an EpisodeOfCare per "
            "case, Conditions for its focus, CarePlans for its contracts, "
            "Encounters for its sessions, Observations for its measures and "
            "outcome. Code systems and extensions under " + BASE + "."
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Send Authorization: Bearer <token> of the auditor "
                "role (a clinician's token reads its cases' Bundles).",
                "security": {
                    "service": [
                        {
                            "coding": [
                                _coding(
                                    "http://terminology.hl7.org/CodeSystem/"
                                    "restful-security-service",
                                    "OAuth",
                                )
                            ],
                            "text": "Bearer tokens made by `ipt-workflow keys add`",
                        }
                    ]
                },
                "resource": resources,
                "operation": [
                    {
                        "name": "export",
                        "definition": f"{BULK_DATA}/OperationDefinition/export",
                        "documentation": "System-level export of the cases of the "
                        "token's clinics: GET /fhir/$export with Prefer: "
                        "respond-async; _since, _type and _outputFormat "
                        "(application/fhir+ndjson) are supported.",
                    }
                ],
            }
        ],
    }
