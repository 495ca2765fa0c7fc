"""The TherapyCase aggregate: one client's course of IPT at one clinic.

Every command decides first (bad input, then the rules, collecting every
violation) and only then records its events; a refused command records nothing.
Event `apply` methods only assign, since they run again on every replay.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from ipt_workflow.domain import machine
from ipt_workflow.domain.codes import (
    AttachmentStyle,
    Attendee,
    CloseReason,
    CommunicationAspect,
    CommunicationStyle,
    CorrectedEntry,
    CorrectionReason,
    DeviationReason,
    DeviationRule,
    Disposition,
    DisputeStage,
    FollowUpFrequency,
    Frequency,
    MissedReason,
    Modality,
    RelationshipRole,
    RenegotiationReason,
    SecondaryAreaReason,
    Strategy,
    WithdrawalReason,
)
from ipt_workflow.domain.inputs import Input, as_list, required
from ipt_workflow.domain.machine import (
    ACUTE_PHASES,
    FINAL_PHASES,
    Phase,
    Transition,
    TransitionInput,
)
from ipt_workflow.domain.measures import FollowUpKind, automatic_offer, classify
from ipt_workflow.domain.protocols import (
    DEVIATION_CONTRACT_RANGE,
    INSTRUMENTS,
    PROTOCOLS,
    Instrument,
    IntRange,
    ProblemArea,
    Protocol,
    SessionKind,
    find_protocol,
)
from ipt_workflow.domain.rules import CommandIdReused, GuardFailed, Violation

AGE = IntRange(0, 130)
PRIOR_EPISODES = IntRange(0, 99)
CLOSENESS = IntRange(1, 3)
RELATIONSHIPS = IntRange(1, 50)
MINUTES = IntRange(20, 120)
CONTRACT_INPUT = IntRange(1, 104)
FOLLOW_UP_SESSIONS = IntRange(1, 104)

NON_FINAL = frozenset(Phase) - FINAL_PHASES
ACUTE = frozenset(ACUTE_PHASES)

# Where the commands that are not transitions may be given (domain.md §4).
# Transitions are the phase machine's business, not this table's.
ALLOWED_IN: Mapping[str, frozenset[Phase]] = {
    "record_inventory": frozenset({Phase.beginning}),
    "agree_focus": frozenset({Phase.beginning}),
    "change_dispute_stage": ACUTE,
    "agree_contract": frozenset({Phase.beginning}),
    "renegotiate_contract": ACUTE,
    "record_deviation": ACUTE,
    "record_measure": NON_FINAL,
    "record_session": ACUTE | {Phase.follow_up, Phase.concluded},
    "record_missed_session": ACUTE | {Phase.follow_up},
    "correct_entry": NON_FINAL,
    "reassign": NON_FINAL,
    "offer_follow_up": frozenset({Phase.concluded}),
}

# Where the kinds that count toward nothing may be recorded.
UNCOUNTED_KIND_PHASES: Mapping[SessionKind, frozenset[Phase]] = {
    SessionKind.engagement: frozenset({Phase.beginning}),
    SessionKind.individual_pre_group: frozenset({Phase.beginning}),
    SessionKind.individual_mid_group: frozenset({Phase.middle, Phase.end}),
    SessionKind.individual_post_group: frozenset({Phase.end, Phase.concluded}),
}


@dataclass(frozen=True)
class CommandContext:
    """Who issues a command, on whose behalf, under which id, and what day it is."""

    recorded_by: str
    today: date
    command_id: str = field(default_factory=lambda: uuid4().hex)
    on_behalf_of: str | None = None


@dataclass(frozen=True)
class CommandResult:
    """What a command did: the case version after it, and its session number."""

    version: int
    replayed: bool = False
    session_number: int | None = None


def command_digest(name: str, params: Mapping[str, Any]) -> str:
    """A fingerprint of a command, to tell a retry from another command."""
    text = json.dumps({"command": name, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class TherapyCase(Aggregate):
    """One client's course of IPT, from opening to closing or withdrawal."""

    # --- events -------------------------------------------------------------

    class Event(Aggregate.Event):
        """Every fact about a case records who, for whom, and which command."""

        recorded_by: str
        on_behalf_of: str | None
        command_id: str
        command_digest: str

        def mutate(self, aggregate: Any) -> Any:
            case = super().mutate(aggregate)
            assert case is not None
            case.applied_commands[self.command_id] = {
                "digest": self.command_digest,
                "version": self.originator_version,
                "session_number": self.session_number(),
            }
            return case

        def session_number(self) -> int | None:
            return None

    class CaseOpened(Event, Aggregate.Created):
        clinic_id: str
        client_ref: str
        protocol: str
        client_age: int
        prior_episodes: int
        clinician_id: str
        phase: str

        def apply(self, case: TherapyCase) -> None:
            case.clinic_id = self.clinic_id
            case.client_ref = self.client_ref
            case.protocol_id = self.protocol
            case.client_age = self.client_age
            case.prior_episodes = self.prior_episodes
            case.clinician_id = self.clinician_id
            case.phase = self.phase

    class InterpersonalInventoryRecorded(Event):
        relationships: list[dict[str, Any]]
        attachment_style: str | None
        communication_style: str | None

        def apply(self, case: TherapyCase) -> None:
            case.inventory = {
                "relationships": [dict(r) for r in self.relationships],
                "attachment_style": self.attachment_style,
                "communication_style": self.communication_style,
            }

    class FocusAgreed(Event):
        primary_area: str
        secondary_area: str | None
        secondary_reason: str | None
        secondary_note: str | None
        dispute_stage: str | None

        def apply(self, case: TherapyCase) -> None:
            case.focus = {
                "primary_area": self.primary_area,
                "secondary_area": self.secondary_area,
                "secondary_reason": self.secondary_reason,
                "dispute_stage": self.dispute_stage,
            }

    class DisputeStageChanged(Event):
        stage: str
        previous_stage: str | None

        def apply(self, case: TherapyCase) -> None:
            assert case.focus is not None
            case.focus = {**case.focus, "dispute_stage": self.stage}

    class ContractAgreed(Event):
        sessions: int
        frequency: str

        def apply(self, case: TherapyCase) -> None:
            case.contract = {"sessions": self.sessions, "frequency": self.frequency}

    class ContractRenegotiated(Event):
        sessions: int
        frequency: str
        previous_sessions: int
        reason: str
        note: str | None
        deviation_used: bool

        def apply(self, case: TherapyCase) -> None:
            case.contract = {"sessions": self.sessions, "frequency": self.frequency}
            if self.deviation_used:
                case.deviations = [
                    {**d, "used": True}
                    if d["rule"] == DeviationRule.contract_range and not d["used"]
                    else d
                    for d in case.deviations
                ]

    class ProtocolDeviationRecorded(Event):
        rule: str
        reason: str
        note: str | None
        phase: str

        def apply(self, case: TherapyCase) -> None:
            case.deviations = [
                *case.deviations,
                {
                    "rule": self.rule,
                    "reason": self.reason,
                    "note": self.note,
                    "phase": self.phase,
                    "recorded_at": self.timestamp.isoformat(),
                    "used": False,
                },
            ]

    class SymptomsMeasured(Event):
        instrument: str
        score: int
        measured_on: str
        phase: str

        def apply(self, case: TherapyCase) -> None:
            case.measures = [
                *case.measures,
                {
                    "instrument": self.instrument,
                    "score": self.score,
                    "measured_on": self.measured_on,
                    "phase": self.phase,
                    "voided": False,
                },
            ]

    class SessionHeld(Event):
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
            case.sessions = [
                *case.sessions,
                {
                    "number": self.number,
                    "follow_up": self.follow_up,
                    "kind": self.kind,
                    "phase": self.phase,
                    "held_on": self.held_on,
                    "minutes": self.minutes,
                    "modality": self.modality,
                    "attendees": list(self.attendees),
                    "strategies": list(self.strategies),
                    "communication_aspects": list(self.communication_aspects),
                    "voided": False,
                },
            ]
            if self.number is not None and self.follow_up:
                case.last_follow_up_number = self.number
            elif self.number is not None:
                case.last_session_number = self.number

        def session_number(self) -> int | None:
            return self.number

    class SessionMissed(Event):
        scheduled_on: str
        reason: str
        note: str | None
        phase: str

        def apply(self, case: TherapyCase) -> None:
            case.missed_sessions = [
                *case.missed_sessions,
                {
                    "scheduled_on": self.scheduled_on,
                    "reason": self.reason,
                    "phase": self.phase,
                },
            ]

    class SessionEnteredInError(Event):
        number: int
        follow_up: bool
        reason: str
        note: str | None

        def apply(self, case: TherapyCase) -> None:
            case.sessions = [
                {**s, "voided": True}
                if s["number"] == self.number and s["follow_up"] == self.follow_up
                else s
                for s in case.sessions
            ]

    class MeasureEnteredInError(Event):
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

    class CaseReassigned(Event):
        clinician_id: str
        previous_clinician_id: str

        def apply(self, case: TherapyCase) -> None:
            case.clinician_id = self.clinician_id

    class PhaseEvent(Event):
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

        def apply(self, case: TherapyCase) -> None:
            super().apply(case)
            case.outcome = dict(self.outcome)
            case.maintenance_discussed = self.maintenance_discussed

    class FollowUpOffered(Event):
        kind: str
        automatic: bool

        def apply(self, case: TherapyCase) -> None:
            case.offers = [
                *case.offers,
                {
                    "kind": self.kind,
                    "offered_at": self.timestamp.isoformat(),
                    "automatic": self.automatic,
                    "decision": None,
                },
            ]

    class FollowUpAccepted(PhaseEvent):
        kind: str
        contract: dict[str, Any] | None

        def apply(self, case: TherapyCase) -> None:
            super().apply(case)
            case.offers = [
                *case.offers[:-1],
                {**case.offers[-1], "decision": "accepted"},
            ]
            case.follow_up_contract = (
                None if self.contract is None else dict(self.contract)
            )

    class FollowUpDeclined(Event):
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
            case.ending = {"disposition": self.disposition, "reason": self.reason}

    class CaseWithdrawn(PhaseEvent):
        reason: str
        note: str | None
        from_phase: str

        def apply(self, case: TherapyCase) -> None:
            super().apply(case)
            case.ending = {"disposition": "withdrawn", "reason": self.reason}

    # --- state ----------------------------------------------------------------

    def __init__(self) -> None:
        # JSON-plain state only: snapshots copy __dict__ (style.md §7).
        self.clinic_id = ""
        self.client_ref = ""
        self.protocol_id = ""
        self.client_age = 0
        self.prior_episodes = 0
        self.clinician_id = ""
        self.phase: str = Phase.beginning.value
        self.inventory: dict[str, Any] | None = None
        self.focus: dict[str, Any] | None = None
        self.contract: dict[str, Any] | None = None
        self.deviations: list[dict[str, Any]] = []
        self.sessions: list[dict[str, Any]] = []
        self.missed_sessions: list[dict[str, Any]] = []
        self.measures: list[dict[str, Any]] = []
        self.last_session_number = 0
        self.last_follow_up_number = 0
        self.outcome: dict[str, Any] | None = None
        self.maintenance_discussed = False
        self.offers: list[dict[str, Any]] = []
        self.follow_up_contract: dict[str, Any] | None = None
        self.ending: dict[str, Any] | None = None
        self.applied_commands: dict[str, dict[str, Any]] = {}

    # --- queries ---------------------------------------------------------------

    @property
    def protocol(self) -> Protocol:
        return PROTOCOLS[self.protocol_id]

    @property
    def is_final(self) -> bool:
        return self.phase in FINAL_PHASES

    def _counted(self, follow_up: bool = False) -> list[dict[str, Any]]:
        return [
            s
            for s in self.sessions
            if s["number"] is not None
            and not s["voided"]
            and s["follow_up"] == follow_up
        ]

    def counted_sessions(self, phase: Phase | None = None) -> int:
        """Counted acute sessions, in one phase or in all."""
        return sum(1 for s in self._counted() if phase is None or s["phase"] == phase)

    @property
    def follow_up_sessions_held(self) -> int:
        return len(self._counted(follow_up=True))

    def parent_sessions(self) -> list[dict[str, Any]]:
        """Counted acute sessions attended by a parent."""
        return [s for s in self._counted() if Attendee.parent in s["attendees"]]

    def meetings(self, kind: SessionKind) -> list[dict[str, Any]]:
        """Sessions of a kind that counts toward nothing, not voided."""
        return [s for s in self.sessions if s["kind"] == kind and not s["voided"]]

    @property
    def acute_sessions_remaining(self) -> int | None:
        if self.contract is None:
            return None
        return int(self.contract["sessions"]) - self.counted_sessions()

    @property
    def sessions_remaining(self) -> int | None:
        if self.phase == Phase.follow_up and self.follow_up_contract is not None:
            return (
                int(self.follow_up_contract["sessions"]) - self.follow_up_sessions_held
            )
        return self.acute_sessions_remaining

    def _valid_measures(self) -> list[dict[str, Any]]:
        return [m for m in self.measures if not m["voided"]]

    @property
    def baseline(self) -> dict[str, Any] | None:
        valid = self._valid_measures()
        return valid[0] if valid else None

    @property
    def latest_measure(self) -> dict[str, Any] | None:
        valid = self._valid_measures()
        return valid[-1] if valid else None

    @property
    def final_measure(self) -> dict[str, Any] | None:
        """The last measure taken in the end phase with the baseline's instrument."""
        baseline = self.baseline
        if baseline is None:
            return None
        in_end = [
            m
            for m in self._valid_measures()[1:]
            if m["phase"] == Phase.end and m["instrument"] == baseline["instrument"]
        ]
        return in_end[-1] if in_end else None

    @property
    def follow_up_offer(self) -> dict[str, Any] | None:
        """The open offer, awaiting the client's decision (none once the case ends)."""
        if self.offers and self.offers[-1]["decision"] is None and not self.is_final:
            return {k: self.offers[-1][k] for k in ("kind", "offered_at", "automatic")}
        return None

    def unused_deviations(self, rule: DeviationRule) -> int:
        return sum(1 for d in self.deviations if d["rule"] == rule and not d["used"])

    @property
    def beginning_session_limit(self) -> int:
        extra = sum(
            1
            for d in self.deviations
            if d["rule"] == DeviationRule.beginning_session_limit
        )
        return self.protocol.beginning_sessions.high + extra

    def why_not(self) -> dict[Transition, list[Violation]]:
        """Every transition with every reason it may not happen now (empty: allowed)."""
        return machine.why_not(self)

    # --- opening ----------------------------------------------------------------

    @classmethod
    def open(
        cls,
        ctx: CommandContext,
        *,
        clinic_id: str,
        client_ref: str,
        protocol: str,
        client_age: int,
        clinician_id: str,
        prior_episodes: int = 0,
        case_id: UUID | None = None,
    ) -> TherapyCase:
        """Open a case under a protocol; the client's age must suit the protocol."""
        params = {
            "clinic_id": clinic_id,
            "client_ref": client_ref,
            "protocol": protocol,
            "client_age": client_age,
            "clinician_id": clinician_id,
            "prior_episodes": prior_episodes,
        }
        inp = Input()
        inp.identifier("clinic_id", clinic_id)
        inp.identifier("client_ref", client_ref)
        inp.identifier("clinician_id", clinician_id)
        age = inp.integer("client_age", client_age, AGE)
        inp.integer("prior_episodes", prior_episodes, PRIOR_EPISODES)
        found = find_protocol(protocol) if isinstance(protocol, str) else None
        if found is None:
            inp.fail("protocol", f"unknown protocol; known: {', '.join(PROTOCOLS)}")
        inp.check()
        assert found is not None and age is not None
        if age not in found.age:
            raise GuardFailed(
                [
                    Violation(
                        "age_outside_protocol",
                        f"{found.title} is for clients aged {found.age}; "
                        f"this client is {age}.",
                    )
                ]
            )
        return cls._create(
            cls.CaseOpened,
            id=case_id or uuid4(),
            **_meta(ctx, "open_case", params),
            clinic_id=clinic_id,
            client_ref=client_ref,
            protocol=found.id,
            client_age=age,
            prior_episodes=prior_episodes,
            clinician_id=clinician_id,
            phase=Phase.beginning.value,
        )

    # --- commands --------------------------------------------------------------

    def record_inventory(
        self,
        ctx: CommandContext,
        relationships: Sequence[Mapping[str, Any]],
        attachment_style: str | None = None,
        communication_style: str | None = None,
    ) -> CommandResult:
        """Record the interpersonal inventory; a later one replaces it."""
        params = {
            "relationships": [dict(r) for r in relationships]
            if isinstance(relationships, list | tuple)
            else relationships,
            "attachment_style": attachment_style,
            "communication_style": communication_style,
        }
        if (done := self._replayed(ctx, "record_inventory", params)) is not None:
            return done
        inp = Input()
        rows: list[dict[str, Any]] = []
        if not isinstance(relationships, list | tuple) or len(relationships) not in (
            RELATIONSHIPS
        ):
            inp.fail("relationships", f"must list {RELATIONSHIPS} relationships")
        else:
            for i, rel in enumerate(relationships):
                rows.append(_relationship(inp, f"relationships[{i}]", rel))
        attachment = inp.optional_code(
            "attachment_style", attachment_style, AttachmentStyle
        )
        comms = inp.optional_code(
            "communication_style", communication_style, CommunicationStyle
        )
        inp.check()
        self._refuse_if(self._phase_violations("record_inventory"))
        self._record(
            ctx,
            "record_inventory",
            params,
            self.InterpersonalInventoryRecorded,
            relationships=rows,
            attachment_style=attachment and attachment.value,
            communication_style=comms and comms.value,
        )
        return self._result(ctx)

    def agree_focus(
        self,
        ctx: CommandContext,
        primary_area: str,
        client_agreed: bool,
        secondary_area: str | None = None,
        secondary_reason: str | None = None,
        dispute_stage: str | None = None,
        note: str | None = None,
    ) -> CommandResult:
        """Agree the focus: one primary problem area, with the client's agreement."""
        params = {
            "primary_area": primary_area,
            "client_agreed": client_agreed,
            "secondary_area": secondary_area,
            "secondary_reason": secondary_reason,
            "dispute_stage": dispute_stage,
            "note": note,
        }
        if (done := self._replayed(ctx, "agree_focus", params)) is not None:
            return done
        inp = Input()
        primary = inp.code("primary_area", primary_area, ProblemArea)
        secondary = inp.optional_code("secondary_area", secondary_area, ProblemArea)
        reason, note = inp.optional_reason(
            "secondary_reason", secondary_reason, SecondaryAreaReason, note
        )
        stage = inp.optional_code("dispute_stage", dispute_stage, DisputeStage)
        agreed = inp.flag("client_agreed", client_agreed)
        inp.check()
        assert primary is not None
        v = self._phase_violations("agree_focus")
        if not v:
            v = self._focus_violations(primary, secondary, reason, stage, agreed)
        self._refuse_if(v)
        self._record(
            ctx,
            "agree_focus",
            params,
            self.FocusAgreed,
            primary_area=primary.value,
            secondary_area=secondary and secondary.value,
            secondary_reason=reason and reason.value,
            secondary_note=note,
            dispute_stage=stage and stage.value,
        )
        return self._result(ctx)

    def _focus_violations(
        self,
        primary: ProblemArea,
        secondary: ProblemArea | None,
        reason: SecondaryAreaReason | None,
        stage: DisputeStage | None,
        agreed: bool,
    ) -> list[Violation]:
        v = []
        if self.inventory is None:
            v.append(
                Violation(
                    "inventory_required",
                    "The interpersonal inventory must be recorded before the focus.",
                )
            )
        areas = [a for a in (primary, secondary) if a is not None]
        for area in areas:
            if area not in self.protocol.problem_areas:
                v.append(
                    Violation(
                        "problem_area_not_in_protocol",
                        f"{self.protocol.title} does not work on {area.value}.",
                    )
                )
        if secondary is not None and secondary == primary:
            v.append(
                Violation(
                    "secondary_area_repeats_primary",
                    "The secondary area must differ from the primary area.",
                )
            )
        if secondary is not None and reason is None:
            v.append(
                Violation(
                    "secondary_reason_required",
                    "A secondary problem area needs a reason.",
                )
            )
        if secondary is None and reason is not None:
            v.append(
                Violation(
                    "secondary_reason_without_area",
                    "A reason for a secondary area was given without the area.",
                )
            )
        deceased = self.inventory is not None and any(
            r["deceased"] for r in self.inventory["relationships"]
        )
        if ProblemArea.grief in areas and self.inventory is not None and not deceased:
            v.append(
                Violation(
                    "grief_needs_deceased_relationship",
                    "Grief is a focus only after a death: mark the relationship as "
                    "deceased in the inventory, or choose role transition.",
                )
            )
        if ProblemArea.role_dispute in areas and stage is None:
            v.append(
                Violation(
                    "dispute_stage_required",
                    "A role dispute needs its stage: renegotiation, impasse or "
                    "dissolution.",
                )
            )
        if ProblemArea.role_dispute not in areas and stage is not None:
            v.append(
                Violation(
                    "dispute_stage_without_role_dispute",
                    "A dispute stage applies only to a role dispute focus.",
                )
            )
        if not agreed:
            v.append(
                Violation(
                    "client_agreement_required",
                    "The client must agree to the focus.",
                )
            )
        return v

    def change_dispute_stage(self, ctx: CommandContext, stage: str) -> CommandResult:
        """Record that a role dispute moved to another stage."""
        params = {"stage": stage}
        if (done := self._replayed(ctx, "change_dispute_stage", params)) is not None:
            return done
        inp = Input()
        new = inp.code("stage", stage, DisputeStage)
        inp.check()
        assert new is not None
        v = self._phase_violations("change_dispute_stage")
        focus = self.focus
        if not v and (
            focus is None
            or ProblemArea.role_dispute
            not in (focus["primary_area"], focus["secondary_area"])
        ):
            v = [
                Violation(
                    "focus_not_role_dispute",
                    "A dispute stage can change only when the focus is a role dispute.",
                )
            ]
        if not v and focus is not None and focus["dispute_stage"] == new:
            v = [
                Violation(
                    "dispute_stage_unchanged",
                    f"The dispute is already at the {new.value} stage.",
                )
            ]
        self._refuse_if(v)
        self._record(
            ctx,
            "change_dispute_stage",
            params,
            self.DisputeStageChanged,
            stage=new.value,
            previous_stage=focus["dispute_stage"] if focus else None,
        )
        return self._result(ctx)

    def agree_contract(
        self,
        ctx: CommandContext,
        sessions: int | None = None,
        frequency: str = "weekly",
    ) -> CommandResult:
        """Agree the treatment contract: how many sessions, how often."""
        params = {"sessions": sessions, "frequency": frequency}
        if (done := self._replayed(ctx, "agree_contract", params)) is not None:
            return done
        inp = Input()
        count = (
            self.protocol.default_contract_sessions
            if sessions is None
            else inp.integer("sessions", sessions, CONTRACT_INPUT)
        )
        freq = inp.code("frequency", frequency, Frequency)
        inp.check()
        assert count is not None and freq is not None
        v = self._phase_violations("agree_contract")
        if not v and self.contract is not None:
            v.append(
                Violation(
                    "contract_exists",
                    "A contract is already agreed: renegotiate it, with a reason.",
                )
            )
        if not v and count not in self.protocol.contract_sessions:
            v.append(self._outside_contract_range(count))
        needed = self.counted_sessions() + 1 + self.protocol.end_sessions.low
        if not v and count < needed:
            v.append(
                Violation(
                    "contract_below_sessions_owed",
                    f"{self.counted_sessions()} sessions are held already: the "
                    f"contract needs at least {needed}, for a middle session and "
                    "the end phase.",
                )
            )
        self._refuse_if(v)
        self._record(
            ctx,
            "agree_contract",
            params,
            self.ContractAgreed,
            sessions=count,
            frequency=freq.value,
        )
        return self._result(ctx)

    def renegotiate_contract(
        self,
        ctx: CommandContext,
        sessions: int,
        reason: str,
        frequency: str | None = None,
        note: str | None = None,
    ) -> CommandResult:
        """Change the agreed number of sessions (or their frequency), with a reason."""
        params = {
            "sessions": sessions,
            "reason": reason,
            "frequency": frequency,
            "note": note,
        }
        if (done := self._replayed(ctx, "renegotiate_contract", params)) is not None:
            return done
        inp = Input()
        count = inp.integer("sessions", sessions, CONTRACT_INPUT)
        code, note = inp.reason("reason", reason, RenegotiationReason, note)
        freq = inp.optional_code("frequency", frequency, Frequency)
        inp.check()
        assert count is not None and code is not None
        v = self._phase_violations("renegotiate_contract")
        if not v and self.contract is None:
            v = [Violation("contract_required", "There is no contract to renegotiate.")]
        if v:
            self._refuse_if(v)
        assert self.contract is not None
        new_freq = freq.value if freq else self.contract["frequency"]
        deviation_used = False
        if count not in self.protocol.contract_sessions:
            if (
                self.unused_deviations(DeviationRule.contract_range)
                and count in DEVIATION_CONTRACT_RANGE
            ):
                deviation_used = True
            else:
                v.append(self._outside_contract_range(count))
        held = self.counted_sessions()
        end_held = self.counted_sessions(Phase.end)
        owed = held + max(0, self.protocol.end_sessions.low - end_held)
        if count < owed:
            v.append(
                Violation(
                    "contract_below_sessions_owed",
                    f"The contract cannot be smaller than the {held} sessions held "
                    f"plus the end-phase sessions still owed ({owed} in all).",
                )
            )
        end_max = self.protocol.end_sessions.high
        if self.phase == Phase.end and end_held + (count - held) > end_max:
            v.append(
                Violation(
                    "end_phase_over_maximum",
                    f"The end phase may have at most {end_max} sessions; this "
                    f"contract would make it {end_held + count - held}.",
                )
            )
        if (
            count == self.contract["sessions"]
            and new_freq == self.contract["frequency"]
        ):
            v.append(
                Violation(
                    "contract_unchanged",
                    "The new contract is the same as the current one.",
                )
            )
        self._refuse_if(v)
        self._record(
            ctx,
            "renegotiate_contract",
            params,
            self.ContractRenegotiated,
            sessions=count,
            frequency=new_freq,
            previous_sessions=self.contract["sessions"],
            reason=code.value,
            note=note,
            deviation_used=deviation_used,
        )
        return self._result(ctx)

    def _outside_contract_range(self, count: int) -> Violation:
        allowed = self.protocol.contract_sessions
        return Violation(
            "contract_outside_range",
            f"{self.protocol.title} contracts are {allowed} sessions, not {count}; "
            f"a recorded contract_range deviation allows {DEVIATION_CONTRACT_RANGE}.",
        )

    def record_deviation(
        self, ctx: CommandContext, rule: str, reason: str, note: str | None = None
    ) -> CommandResult:
        """Record a deliberate departure from a protocol limit, with a reason."""
        params = {"rule": rule, "reason": reason, "note": note}
        if (done := self._replayed(ctx, "record_deviation", params)) is not None:
            return done
        inp = Input()
        which = inp.code("rule", rule, DeviationRule)
        code, note = inp.reason("reason", reason, DeviationReason, note)
        inp.check()
        assert which is not None and code is not None
        v = self._phase_violations("record_deviation")
        beginning_only = which is DeviationRule.beginning_session_limit
        if not v and beginning_only and self.phase != Phase.beginning:
            v.append(
                Violation(
                    "deviation_not_applicable",
                    "An extra beginning session can be allowed only in the "
                    "beginning phase.",
                )
            )
        open_range = self.unused_deviations(DeviationRule.contract_range)
        if not v and which is DeviationRule.contract_range and open_range:
            v.append(
                Violation(
                    "deviation_already_open",
                    "A contract_range deviation is already recorded and not yet "
                    "used by a renegotiation.",
                )
            )
        self._refuse_if(v)
        self._record(
            ctx,
            "record_deviation",
            params,
            self.ProtocolDeviationRecorded,
            rule=which.value,
            reason=code.value,
            note=note,
            phase=self.phase,
        )
        return self._result(ctx)

    def record_measure(
        self, ctx: CommandContext, instrument: str, score: int, measured_on: date | str
    ) -> CommandResult:
        """Record a symptom score; the first one is the baseline."""
        params = {
            "instrument": instrument,
            "score": score,
            "measured_on": str(measured_on),
        }
        if (done := self._replayed(ctx, "record_measure", params)) is not None:
            return done
        inp = Input()
        which = inp.code("instrument", instrument, Instrument)
        if which is not None:
            inp.integer("score", score, INSTRUMENTS[which].scores)
        day = inp.past_date("measured_on", measured_on, ctx.today)
        inp.check()
        assert which is not None and day is not None
        self._refuse_if(self._phase_violations("record_measure"))
        self._record(
            ctx,
            "record_measure",
            params,
            self.SymptomsMeasured,
            instrument=which.value,
            score=score,
            measured_on=day,
            phase=self.phase,
        )
        return self._result(ctx)

    def record_session(
        self,
        ctx: CommandContext,
        held_on: date | str,
        minutes: int,
        modality: str,
        attendees: Sequence[str],
        kind: str = "therapy",
        strategies: Sequence[str] = (),
        communication_aspects: Sequence[str] = (),
    ) -> CommandResult:
        """Record a session held; counted sessions get the next number."""
        params = {
            "held_on": str(held_on),
            "minutes": minutes,
            "modality": modality,
            "attendees": list(attendees)
            if isinstance(attendees, list | tuple)
            else attendees,
            "kind": kind,
            "strategies": list(strategies)
            if isinstance(strategies, list | tuple)
            else strategies,
            "communication_aspects": list(communication_aspects)
            if isinstance(communication_aspects, list | tuple)
            else communication_aspects,
        }
        if (done := self._replayed(ctx, "record_session", params)) is not None:
            return done
        inp = Input()
        day = inp.past_date("held_on", held_on, ctx.today)
        inp.integer("minutes", minutes, MINUTES)
        mode = inp.code("modality", modality, Modality)
        who = inp.codes("attendees", attendees, Attendee)
        if isinstance(attendees, list | tuple) and not attendees:
            inp.fail("attendees", "must name at least one attendee")
        which = inp.code("kind", kind, SessionKind)
        used = inp.codes("strategies", strategies, Strategy)
        aspects = inp.codes(
            "communication_aspects", communication_aspects, CommunicationAspect
        )
        if aspects and Strategy.communication_analysis not in used:
            inp.fail(
                "communication_aspects",
                "aspects belong to communication analysis, which is not among the "
                "strategies",
            )
        inp.check()
        assert day is not None and mode is not None and which is not None
        self._refuse_if(self._session_violations(which, bool(used)))
        counted = which == SessionKind.therapy
        follow_up = self.phase == Phase.follow_up
        number = None
        if counted:
            number = (
                self.last_follow_up_number if follow_up else self.last_session_number
            ) + 1
        self._record(
            ctx,
            "record_session",
            params,
            self.SessionHeld,
            number=number,
            follow_up=follow_up,
            kind=which.value,
            phase=self.phase,
            held_on=day,
            minutes=minutes,
            modality=mode.value,
            attendees=as_list(who),
            strategies=as_list(used),
            communication_aspects=as_list(aspects),
        )
        return self._result(ctx)

    def _session_violations(
        self, kind: SessionKind, strategies: bool
    ) -> list[Violation]:
        phase = Phase(self.phase)
        post_group_after = (
            kind == SessionKind.individual_post_group and phase == Phase.concluded
        )
        if not post_group_after:
            if wrong := self._phase_violations("record_session"):
                return wrong
            if phase == Phase.concluded:
                return [
                    _wrong_phase("record_session", phase, "Only a post-group meeting")
                ]
        if kind not in self.protocol.session_kinds:
            return [
                Violation(
                    "session_kind_not_in_protocol",
                    f"{self.protocol.title} has no {kind.value} sessions.",
                )
            ]
        v = []
        if strategies and phase != Phase.middle:
            v.append(
                Violation(
                    "strategies_only_in_middle",
                    "Middle-phase strategies are recorded only for middle-phase "
                    "sessions.",
                )
            )
        if kind != SessionKind.therapy:
            return v + self._meeting_violations(kind, phase)
        if self.protocol.pre_group_meeting_required and not self.meetings(
            SessionKind.individual_pre_group
        ):
            v.append(
                Violation(
                    "pre_group_meeting_required",
                    "An individual pre-group meeting must precede the first group "
                    "session.",
                )
            )
        v.extend(self._session_limit_violations(phase))
        return v

    def _meeting_violations(self, kind: SessionKind, phase: Phase) -> list[Violation]:
        if phase not in UNCOUNTED_KIND_PHASES[kind]:
            names = " or ".join(
                p.value for p in Phase if p in UNCOUNTED_KIND_PHASES[kind]
            )
            return [
                Violation(
                    "wrong_phase",
                    f"A {kind.value} meeting is recorded only in the {names} phase; "
                    f"the case is in the {phase.value} phase.",
                )
            ]
        if kind == SessionKind.engagement:
            if self.counted_sessions() > 0:
                return [
                    Violation(
                        "engagement_after_first_session",
                        "The engagement session may only precede session 1.",
                    )
                ]
            if self.meetings(SessionKind.engagement):
                return [
                    Violation(
                        "engagement_already_held",
                        "Only one engagement session may be held.",
                    )
                ]
        return []

    def _session_limit_violations(self, phase: Phase) -> list[Violation]:
        position = self.counted_sessions() + 1
        contract = self.contract
        if phase == Phase.beginning:
            limit = self.beginning_session_limit
            if self.counted_sessions(Phase.beginning) >= limit:
                return [
                    Violation(
                        "beginning_session_limit",
                        f"The beginning phase allows {limit} sessions: start the "
                        "middle phase, or record a beginning_session_limit deviation.",
                    )
                ]
            # Deviations may stretch the beginning, never past the contract: it
            # must leave a middle session and the end phase's minimum.
            if contract is not None:
                last = contract["sessions"] - self.protocol.end_sessions.low - 1
                if position > last:
                    return [
                        Violation(
                            "contract_session_limit",
                            f"A {contract['sessions']}-session contract leaves room "
                            f"for {last} beginning sessions: start the middle phase, "
                            "or renegotiate the contract.",
                        )
                    ]
        elif phase == Phase.middle and contract is not None:
            last = contract["sessions"] - self.protocol.end_sessions.low
            if position > last:
                return [
                    Violation(
                        "middle_session_limit",
                        f"With a {contract['sessions']}-session contract the middle "
                        f"phase ends by session {last}: start the end phase.",
                    )
                ]
        elif phase == Phase.end and contract is not None:
            if position > contract["sessions"]:
                return [
                    Violation(
                        "contract_session_limit",
                        f"All {contract['sessions']} contracted sessions are held: "
                        "conclude, or renegotiate the contract.",
                    )
                ]
        elif phase == Phase.follow_up and self.follow_up_contract is not None:
            agreed = self.follow_up_contract["sessions"]
            if self.follow_up_sessions_held >= agreed:
                return [
                    Violation(
                        "follow_up_session_limit",
                        f"All {agreed} follow-up sessions are held: close the case.",
                    )
                ]
        return []

    def record_missed_session(
        self,
        ctx: CommandContext,
        scheduled_on: date | str,
        reason: str,
        note: str | None = None,
    ) -> CommandResult:
        """Record a session that did not take place; it counts toward nothing."""
        params = {"scheduled_on": str(scheduled_on), "reason": reason, "note": note}
        if (done := self._replayed(ctx, "record_missed_session", params)) is not None:
            return done
        inp = Input()
        day = inp.past_date("scheduled_on", scheduled_on, ctx.today)
        code, note = inp.reason("reason", reason, MissedReason, note)
        inp.check()
        assert day is not None and code is not None
        self._refuse_if(self._phase_violations("record_missed_session"))
        self._record(
            ctx,
            "record_missed_session",
            params,
            self.SessionMissed,
            scheduled_on=day,
            reason=code.value,
            note=note,
            phase=self.phase,
        )
        return self._result(ctx)

    def correct_entry(
        self,
        ctx: CommandContext,
        entry: str,
        reason: str,
        number: int | None = None,
        measured_on: date | str | None = None,
        instrument: str | None = None,
        note: str | None = None,
    ) -> CommandResult:
        """Mark a session or measure as entered in error; it no longer counts."""
        params = {
            "entry": entry,
            "reason": reason,
            "number": number,
            "measured_on": None if measured_on is None else str(measured_on),
            "instrument": instrument,
            "note": note,
        }
        if (done := self._replayed(ctx, "correct_entry", params)) is not None:
            return done
        inp = Input()
        which = inp.code("entry", entry, CorrectedEntry)
        code, note = inp.reason("reason", reason, CorrectionReason, note)
        day, measured = None, None
        if which is CorrectedEntry.measure:
            required(inp, [("measured_on", measured_on), ("instrument", instrument)])
            if measured_on is not None:
                day = inp.past_date("measured_on", measured_on, ctx.today)
            if instrument is not None:
                measured = inp.code("instrument", instrument, Instrument)
        elif which is not None:
            required(inp, [("number", number)])
            if number is not None:
                inp.integer("number", number, IntRange(1, 10_000))
        inp.check()
        assert which is not None and code is not None
        self._refuse_if(self._phase_violations("correct_entry"))
        meta = {"reason": code.value, "note": note}
        if which is CorrectedEntry.measure:
            assert day is not None and measured is not None
            index = self._find_measure(measured, day)
            self._record(
                ctx,
                "correct_entry",
                params,
                self.MeasureEnteredInError,
                index=index,
                instrument=measured.value,
                measured_on=day,
                **meta,
            )
        else:
            follow_up = which is CorrectedEntry.follow_up_session
            assert number is not None
            self._find_session(number, follow_up)
            self._record(
                ctx,
                "correct_entry",
                params,
                self.SessionEnteredInError,
                number=number,
                follow_up=follow_up,
                **meta,
            )
        return self._result(ctx)

    def _find_measure(self, instrument: Instrument, day: str) -> int:
        matches = [
            i
            for i, m in enumerate(self.measures)
            if m["instrument"] == instrument and m["measured_on"] == day
        ]
        live = [i for i in matches if not self.measures[i]["voided"]]
        if live:
            return live[-1]
        if matches:
            raise GuardFailed(
                [Violation("entry_already_voided", "That measure is already voided.")]
            )
        raise GuardFailed(
            [
                Violation(
                    "entry_not_found",
                    f"No {instrument.value} measure was recorded on {day}.",
                )
            ]
        )

    def _find_session(self, number: int, follow_up: bool) -> None:
        course = "follow-up session" if follow_up else "session"
        for s in self.sessions:
            if s["number"] == number and s["follow_up"] == follow_up:
                if s["voided"]:
                    raise GuardFailed(
                        [
                            Violation(
                                "entry_already_voided",
                                f"{course.capitalize()} {number} is already voided.",
                            )
                        ]
                    )
                return
        raise GuardFailed(
            [Violation("entry_not_found", f"There is no {course} number {number}.")]
        )

    def reassign(self, ctx: CommandContext, clinician_id: str) -> CommandResult:
        """Hand the case to another clinician."""
        params = {"clinician_id": clinician_id}
        if (done := self._replayed(ctx, "reassign", params)) is not None:
            return done
        inp = Input()
        inp.identifier("clinician_id", clinician_id)
        inp.check()
        v = self._phase_violations("reassign")
        if not v and clinician_id == self.clinician_id:
            v = [
                Violation(
                    "clinician_unchanged",
                    "The case is already assigned to this clinician.",
                )
            ]
        self._refuse_if(v)
        self._record(
            ctx,
            "reassign",
            params,
            self.CaseReassigned,
            clinician_id=clinician_id,
            previous_clinician_id=self.clinician_id,
        )
        return self._result(ctx)

    # --- transitions --------------------------------------------------------------

    def start_middle(self, ctx: CommandContext) -> CommandResult:
        """Move from the beginning to the middle phase."""
        if (done := self._replayed(ctx, "start_middle", {})) is not None:
            return done
        phase = machine.decide(self, Transition.start_middle, TransitionInput())
        self._record(
            ctx, "start_middle", {}, self.MiddlePhaseStarted, phase=phase.value
        )
        return self._result(ctx)

    def start_end(self, ctx: CommandContext) -> CommandResult:
        """Move from the middle to the end (termination) phase."""
        if (done := self._replayed(ctx, "start_end", {})) is not None:
            return done
        phase = machine.decide(self, Transition.start_end, TransitionInput())
        self._record(ctx, "start_end", {}, self.EndPhaseStarted, phase=phase.value)
        return self._result(ctx)

    def conclude(
        self, ctx: CommandContext, maintenance_discussed: bool = False
    ) -> CommandResult:
        """End acute treatment: classify the outcome and offer follow-up if due."""
        params = {"maintenance_discussed": maintenance_discussed}
        if (done := self._replayed(ctx, "conclude", params)) is not None:
            return done
        inp = Input()
        inp.flag("maintenance_discussed", maintenance_discussed)
        inp.check()
        phase = machine.decide(self, Transition.conclude, TransitionInput())
        baseline, final = self.baseline, self.final_measure
        assert baseline is not None and final is not None
        outcome = classify(
            Instrument(baseline["instrument"]), baseline["score"], final["score"]
        )
        offer = automatic_offer(outcome, self.prior_episodes)
        self._record(
            ctx,
            "conclude",
            params,
            self.AcuteTreatmentConcluded,
            phase=phase.value,
            outcome=outcome.as_dict(),
            maintenance_discussed=maintenance_discussed,
        )
        if offer is not None:
            self._record(
                ctx,
                "conclude",
                params,
                self.FollowUpOffered,
                kind=offer.value,
                automatic=True,
            )
        return self._result(ctx)

    def offer_follow_up(self, ctx: CommandContext, kind: str) -> CommandResult:
        """Offer continuation or maintenance IPT after acute treatment."""
        params = {"kind": kind}
        if (done := self._replayed(ctx, "offer_follow_up", params)) is not None:
            return done
        inp = Input()
        which = inp.code("kind", kind, FollowUpKind)
        if which is FollowUpKind.referral:
            inp.fail("kind", "only continuation or maintenance can be offered")
        inp.check()
        assert which is not None
        v = self._phase_violations("offer_follow_up")
        if not v and self.follow_up_offer is not None:
            v = [
                Violation(
                    "offer_already_open",
                    "A follow-up offer is already awaiting the client's decision.",
                )
            ]
        self._refuse_if(v)
        self._record(
            ctx,
            "offer_follow_up",
            params,
            self.FollowUpOffered,
            kind=which.value,
            automatic=False,
        )
        return self._result(ctx)

    def accept_follow_up(
        self,
        ctx: CommandContext,
        sessions: int | None = None,
        frequency: str | None = None,
    ) -> CommandResult:
        """Record that the client accepted the offer; a referral closes the case."""
        params = {"sessions": sessions, "frequency": frequency}
        if (done := self._replayed(ctx, "accept_follow_up", params)) is not None:
            return done
        inp = Input()
        if sessions is not None:
            inp.integer("sessions", sessions, FOLLOW_UP_SESSIONS)
        freq = inp.optional_code("frequency", frequency, FollowUpFrequency)
        if (sessions is None) != (frequency is None):
            inp.fail("sessions" if sessions is None else "frequency", "is required")
        inp.check()
        contract = (
            None
            if sessions is None or freq is None
            else {"sessions": sessions, "frequency": freq.value}
        )
        offer = self.follow_up_offer
        if (
            contract is not None
            and offer is not None
            and offer["kind"] == FollowUpKind.referral
        ):
            raise GuardFailed(
                [
                    Violation(
                        "referral_takes_no_contract",
                        "A referral elsewhere takes no follow-up contract.",
                    )
                ]
            )
        phase = machine.decide(
            self,
            Transition.accept_follow_up,
            TransitionInput(follow_up_contract=contract is not None),
        )
        assert offer is not None
        if phase == Phase.closed:
            self._record(
                ctx,
                "accept_follow_up",
                params,
                self.FollowUpAccepted,
                phase=Phase.concluded.value,
                kind=offer["kind"],
                contract=None,
            )
            self._record(
                ctx,
                "accept_follow_up",
                params,
                self.CaseClosed,
                phase=phase.value,
                disposition=Disposition.referred.value,
                reason=None,
                note=None,
            )
        else:
            self._record(
                ctx,
                "accept_follow_up",
                params,
                self.FollowUpAccepted,
                phase=phase.value,
                kind=offer["kind"],
                contract=contract,
            )
        return self._result(ctx)

    def decline_follow_up(self, ctx: CommandContext) -> CommandResult:
        """Record that the client declined the open offer."""
        if (done := self._replayed(ctx, "decline_follow_up", {})) is not None:
            return done
        machine.decide(self, Transition.decline_follow_up, TransitionInput())
        offer = self.follow_up_offer
        assert offer is not None
        self._record(
            ctx, "decline_follow_up", {}, self.FollowUpDeclined, kind=offer["kind"]
        )
        return self._result(ctx)

    def close(
        self, ctx: CommandContext, reason: str | None = None, note: str | None = None
    ) -> CommandResult:
        """Close a concluded case, or end follow-up."""
        params = {"reason": reason, "note": note}
        if (done := self._replayed(ctx, "close", params)) is not None:
            return done
        inp = Input()
        code, note = inp.optional_reason("reason", reason, CloseReason, note)
        inp.check()
        phase = machine.decide(
            self, Transition.close, TransitionInput(reason=code and code.value)
        )
        self._record(
            ctx,
            "close",
            params,
            self.CaseClosed,
            phase=phase.value,
            disposition=self._disposition().value,
            reason=code and code.value,
            note=note,
        )
        return self._result(ctx)

    def _disposition(self) -> Disposition:
        if self.phase == Phase.follow_up:
            if self.follow_up_sessions_held:
                return Disposition.follow_up_completed
            return Disposition.follow_up_ended_early
        if self.offers and self.offers[-1]["decision"] == "declined":
            return Disposition.follow_up_declined
        return Disposition.completed

    def withdraw(
        self, ctx: CommandContext, reason: str, note: str | None = None
    ) -> CommandResult:
        """End the case early, from any phase that is not final."""
        params = {"reason": reason, "note": note}
        if (done := self._replayed(ctx, "withdraw", params)) is not None:
            return done
        inp = Input()
        code, note = inp.reason("reason", reason, WithdrawalReason, note)
        inp.check()
        assert code is not None
        phase = machine.decide(
            self, Transition.withdraw, TransitionInput(reason=code.value)
        )
        self._record(
            ctx,
            "withdraw",
            params,
            self.CaseWithdrawn,
            phase=phase.value,
            reason=code.value,
            note=note,
            from_phase=self.phase,
        )
        return self._result(ctx)

    # --- helpers ------------------------------------------------------------------

    def _replayed(
        self, ctx: CommandContext, name: str, params: Mapping[str, Any]
    ) -> CommandResult | None:
        """The earlier result if this command id was applied already, else None."""
        seen = self.applied_commands.get(ctx.command_id)
        if seen is None:
            return None
        if seen["digest"] != command_digest(name, params):
            raise CommandIdReused(ctx.command_id)
        return CommandResult(
            version=seen["version"],
            replayed=True,
            session_number=seen["session_number"],
        )

    def _phase_violations(self, command: str) -> list[Violation]:
        phase = Phase(self.phase)
        if phase in ALLOWED_IN[command]:
            return []
        return [_wrong_phase(command, phase)]

    def _refuse_if(self, violations: list[Violation]) -> None:
        if violations:
            raise GuardFailed(violations)

    def _record(
        self,
        ctx: CommandContext,
        name: str,
        params: Mapping[str, Any],
        event_class: type[TherapyCase.Event],
        **facts: Any,
    ) -> None:
        self.trigger_event(event_class, **_meta(ctx, name, params), **facts)

    def _result(self, ctx: CommandContext) -> CommandResult:
        entry = self.applied_commands[ctx.command_id]
        return CommandResult(
            version=self.version, session_number=entry["session_number"]
        )


def _meta(ctx: CommandContext, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "recorded_by": ctx.recorded_by,
        "on_behalf_of": ctx.on_behalf_of,
        "command_id": ctx.command_id,
        "command_digest": command_digest(name, params),
    }


def _wrong_phase(command: str, phase: Phase, subject: str | None = None) -> Violation:
    allowed = ALLOWED_IN[command]
    names = ", ".join(p.value for p in Phase if p in allowed)
    what = subject or command.replace("_", " ").capitalize()
    return Violation(
        "wrong_phase",
        f"{what} is possible only in these phases: {names}; the case is "
        f"{'' if phase in FINAL_PHASES else 'in the '}{phase.value.replace('_', '-')}"
        f"{'' if phase in FINAL_PHASES else ' phase'}.",
    )


def _relationship(inp: Input, at: str, rel: object) -> dict[str, Any]:
    if not isinstance(rel, Mapping):
        inp.fail(at, "must be an object")
        return {}
    unknown = set(rel) - {
        "role",
        "closeness",
        "supportive",
        "conflict",
        "changed_at_onset",
        "deceased",
    }
    for name in sorted(unknown):
        inp.fail(f"{at}.{name}", "is not a field of a relationship")
    role = inp.code(f"{at}.role", rel.get("role"), RelationshipRole)
    closeness = inp.integer(f"{at}.closeness", rel.get("closeness"), CLOSENESS)
    flags = {
        name: inp.flag(f"{at}.{name}", rel.get(name, False))
        for name in ("supportive", "conflict", "changed_at_onset", "deceased")
    }
    return {"role": role and role.value, "closeness": closeness, **flags}
