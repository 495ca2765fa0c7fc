"""The events of a course of IPT: opening, the Beginning's inventory, focus and
contract, sessions and measures, their corrections, and the phase changes to the
close (domain.md §1-§6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from ipt_workflow.domain.codes import DeviationRule
from ipt_workflow.domain.events.base import CaseEvent

if TYPE_CHECKING:
    from ipt_workflow.domain.case import TherapyCase


class CaseOpened(CaseEvent, Aggregate.Created):
    clinic_id: str
    client_ref: str
    protocol: str
    client_age: int
    prior_episodes: int
    clinician_id: str
    phase: str
    intake_on: str

    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """Before intake_on, a course began on the day its case was opened."""
        state["intake_on"] = state["timestamp"].date().isoformat()

    def apply(self, case: TherapyCase) -> None:
        case.clinic_id, case.client_ref = self.clinic_id, self.client_ref
        case.protocol_id, case.client_age = self.protocol, self.client_age
        case.prior_episodes = self.prior_episodes
        case.clinician_id, case.phase = self.clinician_id, self.phase
        case.intake_on = self.intake_on


class InterpersonalInventoryRecorded(CaseEvent):
    relationships: list[dict[str, Any]]
    attachment_style: str | None
    communication_style: str | None
    support_sources: list[str]

    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["support_sources"] = []

    def apply(self, case: TherapyCase) -> None:
        rows = [
            {"current": True, "communication_style": None, **r}
            for r in self.relationships
        ]
        case.inventory = {
            "relationships": rows,
            **self.pick("attachment_style", "communication_style", "support_sources"),
        }


class FocusAgreed(CaseEvent):
    primary_area: str
    secondary_area: str | None
    secondary_reason: str | None
    secondary_note: str | None
    dispute_stage: str | None

    def apply(self, case: TherapyCase) -> None:
        case.focus = self.pick(
            "primary_area", "secondary_area", "secondary_reason", "dispute_stage"
        )


class DisputeStageChanged(CaseEvent):
    stage: str
    previous_stage: str | None

    def apply(self, case: TherapyCase) -> None:
        assert case.focus is not None
        case.focus = {**case.focus, "dispute_stage": self.stage}


class ContractAgreed(CaseEvent):
    sessions: int
    frequency: str

    def apply(self, case: TherapyCase) -> None:
        case.contract = self.pick("sessions", "frequency")


class ContractRenegotiated(CaseEvent):
    sessions: int
    frequency: str
    previous_sessions: int
    reason: str
    note: str | None
    deviation_used: bool

    def apply(self, case: TherapyCase) -> None:
        case.contract = self.pick("sessions", "frequency")
        if self.deviation_used:
            case.deviations = [
                {**d, "used": True}
                if d["rule"] == DeviationRule.contract_range and not d["used"]
                else d
                for d in case.deviations
            ]


class ProtocolDeviationRecorded(CaseEvent):
    rule: str
    reason: str
    note: str | None
    phase: str

    def apply(self, case: TherapyCase) -> None:
        row = self.pick("rule", "reason", "note", "phase")
        row |= {"recorded_at": self.timestamp.isoformat(), "used": False}
        case.deviations = [*case.deviations, row]


class SymptomsMeasured(CaseEvent):
    instrument: str
    score: int
    measured_on: str
    phase: str
    risk_item: int | None
    replaces: int | None
    """The index of the measure this one replaces (a correction), if any."""

    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["risk_item"] = state["replaces"] = None

    def apply(self, case: TherapyCase) -> None:
        row = self.pick("instrument", "score", "measured_on", "phase", "risk_item")
        case.measures = [*case.measures, {**row, "voided": False}]


class SessionHeld(CaseEvent):
    number: int | None
    follow_up: bool
    kind: str
    phase: str
    held_on: str
    minutes: int
    modality: str
    attendees: list[str]
    strategies: list[str]
    communication_aspects: list[str]

    def apply(self, case: TherapyCase) -> None:
        row = self.pick(
            "number", "follow_up", "kind", "phase", "held_on", "minutes",
            "modality", "attendees", "strategies", "communication_aspects",
        )  # fmt: skip
        case.sessions = [*case.sessions, {**row, "voided": False}]
        if self.number is not None and self.follow_up:
            case.last_follow_up_number = self.number
        elif self.number is not None:
            case.last_session_number = self.number

    def session_number(self) -> int | None:
        return self.number


class SessionMissed(CaseEvent):
    scheduled_on: str
    reason: str
    note: str | None
    phase: str

    def apply(self, case: TherapyCase) -> None:
        row = self.pick("scheduled_on", "reason", "phase")
        case.missed_sessions = [*case.missed_sessions, row]


class SessionEnteredInError(CaseEvent):
    number: int | None
    """A counted session's number; None for an uncounted meeting (see `index`)."""
    follow_up: bool
    reason: str
    note: str | None
    kind: str
    held_on: str | None
    index: int | None
    """Where the voided meeting is among the case's sessions."""

    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """Before meetings could be corrected, only counted sessions were."""
        state.update(kind="therapy", held_on=None, index=None)

    def apply(self, case: TherapyCase) -> None:
        case.sessions = [
            {**s, "voided": True} if self._is(i, s) else s
            for i, s in enumerate(case.sessions)
        ]

    def _is(self, index: int, session: Mapping[str, Any]) -> bool:
        if self.index is not None:
            return index == self.index
        return bool(
            session["number"] == self.number and session["follow_up"] == self.follow_up
        )


class MeasureEnteredInError(CaseEvent):
    index: int
    instrument: str
    measured_on: str
    reason: str
    note: str | None

    def apply(self, case: TherapyCase) -> None:
        case.measures = [
            {**m, "voided": True} if i == self.index else m
            for i, m in enumerate(case.measures)
        ]


class CaseReassigned(CaseEvent):
    clinician_id: str
    previous_clinician_id: str

    def apply(self, case: TherapyCase) -> None:
        case.clinician_id = self.clinician_id


class PhaseEvent(CaseEvent):
    """An event that moves the case to another phase."""

    phase: str

    def apply(self, case: TherapyCase) -> None:
        case.phase = self.phase


class MiddlePhaseStarted(PhaseEvent):
    pass


class EndPhaseStarted(PhaseEvent):
    pass


class AcuteTreatmentConcluded(PhaseEvent):
    outcome: dict[str, Any]
    maintenance_discussed: bool
    termination_tasks: list[str]

    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        discussed = state["maintenance_discussed"]
        state["termination_tasks"] = ["maintenance_discussed"] if discussed else []

    def apply(self, case: TherapyCase) -> None:
        super().apply(case)
        case.outcome = dict(self.outcome)
        case.maintenance_discussed = self.maintenance_discussed
        case.termination_tasks = list(self.termination_tasks)


class FollowUpOffered(CaseEvent):
    kind: str
    automatic: bool

    def apply(self, case: TherapyCase) -> None:
        offer = self.pick("kind", "automatic")
        offer |= {"offered_at": self.timestamp.isoformat(), "decision": None}
        case.offers = [*case.offers, offer]


class FollowUpAccepted(PhaseEvent):
    kind: str
    contract: dict[str, Any] | None

    def apply(self, case: TherapyCase) -> None:
        super().apply(case)
        case.offers = [
            *case.offers[:-1],
            {**case.offers[-1], "decision": "accepted"},
        ]
        case.follow_up_contract = self.contract and dict(self.contract)


class FollowUpDeclined(CaseEvent):
    kind: str

    def apply(self, case: TherapyCase) -> None:
        case.offers = [
            *case.offers[:-1],
            {**case.offers[-1], "decision": "declined"},
        ]


class CaseClosed(PhaseEvent):
    disposition: str
    reason: str | None
    note: str | None

    def apply(self, case: TherapyCase) -> None:
        super().apply(case)
        case.ending = self.pick("disposition", "reason")
        case.ended_at = self.timestamp.isoformat()


class CaseWithdrawn(PhaseEvent):
    reason: str
    note: str | None
    from_phase: str

    def apply(self, case: TherapyCase) -> None:
        super().apply(case)
        case.ending = {"disposition": "withdrawn", "reason": self.reason}
        case.ended_at = self.timestamp.isoformat()


def _decided(offers: Sequence[Mapping[str, Any]], decision: str) -> list[Any]:
    """The offers, with the client's decision on the last one."""
    return [*offers[:-1], {**offers[-1], "decision": decision}]
