"""The TherapyCase aggregate: one client's course of IPT at one clinic.

The aggregate and its events. Each command method takes a parsed command value
(commands/), asks the phase table (phases.py) and the rules (rules/) whether it
may run, collecting every violation, and only then records its events; a refused
command records nothing. Event `apply` methods only assign, since they run again on
every replay.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from ipt_workflow.domain import events, phases
from ipt_workflow.domain.codes import (
    CorrectedEntry,
    Disposition,
    Phase,
    Transition,
)
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    AgreeContract,
    AgreeFocus,
    ChangeDisputeStage,
    Close,
    Command,
    CommandContext,
    CommandResult,
    Conclude,
    CorrectEntry,
    DecideFollowUp,
    DeclineFollowUp,
    OfferFollowUp,
    OpenCase,
    Reassign,
    RecordDeviation,
    RecordInventory,
    RecordMeasure,
    RecordMissedSession,
    RecordRiskReview,
    RecordSession,
    RenegotiateContract,
    SetContract,
    StartEnd,
    StartMiddle,
    Withdraw,
)
from ipt_workflow.domain.erasure import EraseCase, LiftLegalHold, PlaceLegalHold
from ipt_workflow.domain.errors import CommandIdReused, GuardFailed, Violation
from ipt_workflow.domain.facts import CaseFacts
from ipt_workflow.domain.protocols import SessionKind
from ipt_workflow.domain.rules import (
    contract,
    corrections,
    erasure,
    focus,
    follow_up,
    measures,
    opening,
    sessions,
)

C = TypeVar("C", bound=Command)
Rule = Callable[[CaseFacts, C], list[Violation]]
Record = Callable[..., None]
"""Records one event of the command being run: `record(EventClass, **facts)`."""
Method = Callable[["TherapyCase", CommandContext, C], CommandResult]


class _Decided(Protocol):
    def __call__(
        self, decided: Callable[[TherapyCase, Record, C], None]
    ) -> Method[C]: ...


def _command(*rules: Rule[Any]) -> _Decided:
    """A command that is not a transition: the phase table, then `rules`, must
    allow it before the method records its events. A command id the case has
    applied already returns its first result instead."""

    def wrap(decided: Callable[[TherapyCase, Record, C], None]) -> Method[C]:
        @functools.wraps(decided)
        def run(case: TherapyCase, ctx: CommandContext, command: C) -> CommandResult:
            if (done := case._replayed(ctx, command)) is not None:
                return done
            violations = phases.refusal(case, command)
            for rule in rules:
                violations = violations or rule(case, command)
            _refuse_if(violations)
            decided(case, functools.partial(case._record, ctx, command), command)
            return case._result(ctx)

        return run

    return wrap


def _transition(decided: Callable[[TherapyCase, Record, C, Phase], None]) -> Method[C]:
    """A transition: the phase machine decides, with its guard, where it leads; the
    method records the events of getting there."""

    @functools.wraps(decided)
    def run(case: TherapyCase, ctx: CommandContext, command: C) -> CommandResult:
        if (done := case._replayed(ctx, command)) is not None:
            return done
        phase = phases.decide(case, command)
        decided(case, functools.partial(case._record, ctx, command), command, phase)
        return case._result(ctx)

    return run


class TherapyCase(CaseFacts, Aggregate):
    """One client's course of IPT, from opening to closing or withdrawal."""

    # --- events: declared in events/, named and stored as nested here ----------

    Event = events.CaseEvent
    CaseOpened = events.CaseOpened
    InterpersonalInventoryRecorded = events.InterpersonalInventoryRecorded
    FocusAgreed = events.FocusAgreed
    DisputeStageChanged = events.DisputeStageChanged
    ContractAgreed = events.ContractAgreed
    ContractRenegotiated = events.ContractRenegotiated
    ProtocolDeviationRecorded = events.ProtocolDeviationRecorded
    SymptomsMeasured = events.SymptomsMeasured
    SessionHeld = events.SessionHeld
    SessionMissed = events.SessionMissed
    SessionEnteredInError = events.SessionEnteredInError
    MeasureEnteredInError = events.MeasureEnteredInError
    CaseReassigned = events.CaseReassigned
    PhaseEvent = events.PhaseEvent
    MiddlePhaseStarted = events.MiddlePhaseStarted
    EndPhaseStarted = events.EndPhaseStarted
    AcuteTreatmentConcluded = events.AcuteTreatmentConcluded
    FollowUpOffered = events.FollowUpOffered
    FollowUpAccepted = events.FollowUpAccepted
    FollowUpDeclined = events.FollowUpDeclined
    CaseClosed = events.CaseClosed
    CaseWithdrawn = events.CaseWithdrawn
    OutcomeRevised = events.OutcomeRevised
    FollowUpOfferRevised = events.FollowUpOfferRevised
    RiskFlagged = events.RiskFlagged
    RiskReviewed = events.RiskReviewed
    RelapseSuspected = events.RelapseSuspected
    LegalHoldPlaced = events.LegalHoldPlaced
    LegalHoldLifted = events.LegalHoldLifted
    CaseErased = events.CaseErased

    # --- state ----------------------------------------------------------------

    def __init__(self) -> None:
        # JSON-plain state only: snapshots copy __dict__ (style.md §7).
        self.clinic_id = ""
        self.client_ref = ""
        self.protocol_id = ""
        self.client_age = 0
        self.prior_episodes = 0
        self.clinician_id = ""
        self.phase = Phase.beginning.value
        self.inventory = None
        self.focus = None
        self.contract = None
        self.deviations = []
        self.sessions = []
        self.missed_sessions = []
        self.measures = []
        self.last_session_number = 0
        self.last_follow_up_number = 0
        self.outcome = None
        self.maintenance_discussed = False
        self.offers = []
        self.follow_up_contract = None
        self.ending = None
        self.intake_on = ""
        self.termination_tasks = []
        self.risk = None
        self.relapse = None
        self.outcome_revised_after_decision = False
        self.ended_at: str | None = None
        self.legal_hold: dict[str, str] | None = None
        self.erasure: dict[str, str | None] | None = None
        self.applied_commands: dict[str, dict[str, Any]] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> TherapyCase:
        # The library copies the cached case for every command. The state is plain
        # data (above), which pickle copies several times faster (issue 12).
        copied: TherapyCase = pickle.loads(pickle.dumps(self, pickle.HIGHEST_PROTOCOL))
        return copied

    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A snapshot of the first release: the state it had no fields for yet."""
        created = state["_created_on"].date().isoformat()
        state.update(intake_on=created, risk=None, relapse=None)
        discussed = state["maintenance_discussed"]
        state["termination_tasks"] = ["maintenance_discussed"] if discussed else []
        state["outcome_revised_after_decision"] = False
        state["measures"] = [{**m, "risk_item": None} for m in state["measures"]]
        if state["inventory"] is not None:
            inventory = state["inventory"]
            rows = inventory["relationships"]
            inventory["relationships"] = [
                {"current": True, "communication_style": None, **r} for r in rows
            ]
            inventory["support_sources"] = []

    def why_not(self) -> dict[Transition, list[Violation]]:
        """Every transition with every reason it may not happen now (empty: allowed)."""
        if erased := erasure.erased_refusal(self.erased):
            return {t: list(erased) for t in Transition}
        return phases.why_not(self)

    def handle(self, ctx: CommandContext, command: Command) -> CommandResult:
        """Run any command on the case: the method named after it. An erased
        case refuses every command, retries of earlier ones too."""
        _refuse_if(erasure.erased_refusal(self.erased))
        method: Callable[[CommandContext, Any], CommandResult] = getattr(
            self, command.name
        )
        return method(ctx, command)

    # --- opening ----------------------------------------------------------------

    @classmethod
    def open(
        cls, ctx: CommandContext, command: OpenCase, case_id: UUID | None = None
    ) -> TherapyCase:
        """Open a case under a protocol; the client's age must suit the protocol."""
        _refuse_if(opening.open_case(command))
        return cls._create(
            cls.CaseOpened,
            id=case_id or uuid4(),
            **_meta(ctx, command),
            clinic_id=command.clinic_id,
            client_ref=command.client_ref,
            protocol=command.resolved.id,
            client_age=command.client_age,
            prior_episodes=command.prior_episodes,
            clinician_id=command.clinician_id,
            phase=Phase.beginning.value,
            intake_on=command.intake_on or ctx.today.isoformat(),
        )

    @_command(opening.reassign)
    def reassign(self, record: Record, command: Reassign) -> None:
        """Hand the case to another clinician."""
        record(
            self.CaseReassigned,
            clinician_id=command.clinician_id,
            previous_clinician_id=self.clinician_id,
        )

    # --- the beginning: inventory, focus, contract ------------------------------

    @_command(focus.record_inventory)
    def record_inventory(self, record: Record, command: RecordInventory) -> None:
        """Record the interpersonal inventory; a later one replaces it."""
        record(
            self.InterpersonalInventoryRecorded,
            relationships=[r.as_dict() for r in command.relationships],
            attachment_style=_value(command.attachment_style),
            communication_style=_value(command.communication_style),
            support_sources=[s.value for s in command.support_sources],
        )

    @_command(focus.agree_focus)
    def agree_focus(self, record: Record, command: AgreeFocus) -> None:
        """Agree the focus: one primary problem area, with the client's agreement."""
        record(
            self.FocusAgreed,
            primary_area=command.primary_area.value,
            secondary_area=_value(command.secondary_area),
            secondary_reason=_value(command.secondary_reason),
            secondary_note=command.note,
            dispute_stage=_value(command.dispute_stage),
        )

    @_command(focus.change_dispute_stage)
    def change_dispute_stage(self, record: Record, command: ChangeDisputeStage) -> None:
        """Record that a role dispute moved to another stage."""
        previous = self.focus["dispute_stage"] if self.focus else None
        record(
            self.DisputeStageChanged,
            stage=command.stage.value,
            previous_stage=previous,
        )

    def set_contract(self, ctx: CommandContext, command: SetContract) -> CommandResult:
        """Agree the contract or, once one is agreed, renegotiate it (with a reason)."""
        if self.contract is None and command.reason is None:
            return self.agree_contract(ctx, command.as_agreement())
        return self.renegotiate_contract(ctx, command.as_renegotiation())

    @_command(contract.agree_contract)
    def agree_contract(self, record: Record, command: AgreeContract) -> None:
        """Agree the treatment contract: how many sessions, how often."""
        record(
            self.ContractAgreed,
            sessions=contract.contract_size(self, command),
            frequency=command.frequency.value,
        )

    @_command(contract.renegotiate_contract)
    def renegotiate_contract(
        self, record: Record, command: RenegotiateContract
    ) -> None:
        """Change the agreed number of sessions (or their frequency), with a reason."""
        assert self.contract is not None
        record(
            self.ContractRenegotiated,
            sessions=command.sessions,
            frequency=_value(command.frequency) or self.contract["frequency"],
            previous_sessions=self.contract["sessions"],
            reason=command.reason.value,
            note=command.note,
            deviation_used=contract.uses_deviation(self, command),
        )

    @_command(contract.record_deviation)
    def record_deviation(self, record: Record, command: RecordDeviation) -> None:
        """Record a deliberate departure from a protocol limit, with a reason."""
        record(
            self.ProtocolDeviationRecorded,
            rule=command.rule.value,
            reason=command.reason.value,
            note=command.note,
            phase=self.phase,
        )

    # --- sessions and measures ------------------------------------------------------

    @_command(measures.record_measure)
    def record_measure(self, record: Record, command: RecordMeasure) -> None:
        """Record a symptom score (the earliest of the beginning is the baseline),
        with a risk flag when its risk item is above 0 and, in follow-up, a suspected
        relapse when it points to one."""
        relapse = measures.relapse(self, command)
        record(
            self.SymptomsMeasured,
            instrument=command.instrument.value,
            score=command.score,
            measured_on=command.measured_on,
            phase=self.phase,
            risk_item=command.risk_item,
            replaces=None,
        )
        if command.risk_item:
            record(
                self.RiskFlagged,
                item=command.risk_item,
                instrument=command.instrument.value,
                measured_on=command.measured_on,
            )
        if relapse is not None:
            record(
                self.RelapseSuspected,
                instrument=command.instrument.value,
                score=command.score,
                measured_on=command.measured_on,
                reason=relapse,
            )

    @_command(measures.record_risk_review)
    def record_risk_review(self, record: Record, command: RecordRiskReview) -> None:
        """Record that the clinician followed up the open risk flag."""
        outcome = command.outcome.value
        record(self.RiskReviewed, outcome=outcome, note=command.note)

    @_command(sessions.record_session)
    def record_session(self, record: Record, command: RecordSession) -> None:
        """Record a session held; counted sessions get the next number."""
        record(
            self.SessionHeld,
            number=sessions.session_number(self, command),
            follow_up=self.phase == Phase.follow_up,
            kind=command.kind.value,
            phase=self.phase,
            held_on=command.held_on,
            minutes=command.minutes,
            modality=command.modality.value,
            attendees=[a.value for a in command.attendees],
            strategies=[s.value for s in command.strategies],
            communication_aspects=[a.value for a in command.communication_aspects],
        )

    @_command(sessions.record_missed_session)
    def record_missed_session(
        self, record: Record, command: RecordMissedSession
    ) -> None:
        """Record a session that did not take place; it counts toward nothing."""
        record(
            self.SessionMissed,
            scheduled_on=command.scheduled_on,
            reason=command.reason.value,
            note=command.note,
            phase=self.phase,
        )

    @_command(corrections.correct_entry)
    def correct_entry(self, record: Record, command: CorrectEntry) -> None:
        """Mark an entry as made in error (it no longer counts); a measure may be
        replaced in the same save, and after conclude the outcome is revised."""
        why = {"reason": command.reason.value, "note": command.note}
        index = corrections.entry_index(self, command)
        if command.instrument is None or command.measured_on is None:
            follow_up = command.entry == CorrectedEntry.follow_up_session
            kind = command.meeting_kind or SessionKind.therapy
            record(
                self.SessionEnteredInError,
                number=command.number,
                follow_up=follow_up,
                kind=kind.value,
                held_on=command.held_on,
                index=index,
                **why,
            )
            return
        assert index is not None
        voided = self.measures[index]
        record(
            self.MeasureEnteredInError,
            index=index,
            instrument=command.instrument.value,
            measured_on=command.measured_on,
            **why,
        )
        if command.replacement is not None:
            record(
                self.SymptomsMeasured,
                instrument=command.instrument.value,
                score=command.replacement.score,
                measured_on=command.replacement.measured_on,
                phase=voided["phase"],
                risk_item=None,
                replaces=index,
            )
        self._revise(record)

    def _revise(self, record: Record) -> None:
        """Classify again when a correction changed the baseline or final (§7)."""
        revision = measures.revision(self)
        if revision is None:
            return
        record(
            self.OutcomeRevised,
            previous=dict(self.outcome or {}),
            outcome=revision.outcome,
            after_decision=revision.after_decision,
        )
        if revision.offer is not None:
            previous, kind = revision.offer
            record(self.FollowUpOfferRevised, previous_kind=previous, kind=kind)

    # --- transitions and follow-up ----------------------------------------------------

    @_transition
    def start_middle(self, record: Record, _: StartMiddle, phase: Phase) -> None:
        """Move from the beginning to the middle phase."""
        record(self.MiddlePhaseStarted, phase=phase.value)

    @_transition
    def start_end(self, record: Record, _: StartEnd, phase: Phase) -> None:
        """Move from the middle to the end (termination) phase."""
        record(self.EndPhaseStarted, phase=phase.value)

    @_transition
    def conclude(self, record: Record, command: Conclude, phase: Phase) -> None:
        """End acute treatment: classify the outcome and offer follow-up if due."""
        outcome = measures.outcome_of(self)
        assert outcome is not None, "the conclude guard asks for both measures"
        offer = measures.offer_after(self, outcome)
        record(
            self.AcuteTreatmentConcluded,
            phase=phase.value,
            outcome=outcome.as_dict(),
            maintenance_discussed=command.discussed_maintenance,
            termination_tasks=command.tasks,
        )
        if offer is not None:
            record(self.FollowUpOffered, kind=offer.value, automatic=True)

    @_command(follow_up.offer_follow_up)
    def offer_follow_up(self, record: Record, command: OfferFollowUp) -> None:
        """Offer continuation or maintenance IPT after acute treatment."""
        kind = command.kind.value
        record(self.FollowUpOffered, kind=kind, automatic=False)

    def decide_follow_up(
        self, ctx: CommandContext, command: DecideFollowUp
    ) -> CommandResult:
        """Record the client's decision on the open offer."""
        if command.accepted:
            return self.accept_follow_up(ctx, command.as_acceptance())
        return self.decline_follow_up(ctx, DeclineFollowUp())

    @_transition
    def accept_follow_up(
        self, record: Record, command: AcceptFollowUp, phase: Phase
    ) -> None:
        """Record that the client accepted the offer; a referral closes the case."""
        assert self.follow_up_offer is not None
        kind = self.follow_up_offer["kind"]
        if phase != Phase.closed:
            contract = command.contract
            record(
                self.FollowUpAccepted,
                phase=phase,
                kind=kind,
                contract=contract,
            )
            return
        record(
            self.FollowUpAccepted,
            phase=Phase.concluded.value,
            kind=kind,
            contract=None,
        )
        record(
            self.CaseClosed,
            phase=phase.value,
            disposition=Disposition.referred.value,
            reason=None,
            note=None,
        )

    @_transition
    def decline_follow_up(self, record: Record, _: DeclineFollowUp, __: Phase) -> None:
        """Record that the client declined the open offer."""
        assert self.follow_up_offer is not None
        kind = self.follow_up_offer["kind"]
        record(self.FollowUpDeclined, kind=kind)

    @_transition
    def close(self, record: Record, command: Close, phase: Phase) -> None:
        """Close a concluded case, or end follow-up."""
        record(
            self.CaseClosed,
            phase=phase.value,
            disposition=follow_up.disposition(self, command).value,
            reason=_value(command.reason),
            note=command.note,
        )

    @_transition
    def withdraw(self, record: Record, command: Withdraw, phase: Phase) -> None:
        """End the case early, from any phase that is not final."""
        record(
            self.CaseWithdrawn,
            phase=phase.value,
            reason=command.reason.value,
            note=command.note,
            from_phase=self.phase,
        )

    # --- retention and erasure -------------------------------------------------------

    # Snapshots taken before these attributes existed lack them.
    @property
    def ended_on(self) -> date | None:
        """The day the case ended (None: open, or not known from an old snapshot)."""
        ended = self.__dict__.get("ended_at")
        return None if ended is None else datetime.fromisoformat(ended).date()

    @property
    def held(self) -> dict[str, str] | None:
        found: dict[str, str] | None = self.__dict__.get("legal_hold")
        return found

    @property
    def erased(self) -> dict[str, str | None] | None:
        """The erasure receipt, if the case was erased."""
        found: dict[str, str | None] | None = self.__dict__.get("erasure")
        return found

    def place_legal_hold(
        self, ctx: CommandContext, command: PlaceLegalHold
    ) -> CommandResult:
        """Suspend the retention period: the case may not be erased."""
        if (done := self._replayed(ctx, command)) is not None:
            return done
        _refuse_if(
            erasure.erased_refusal(self.erased)
            or erasure.hold_refusal(self._holds, True)
        )
        self._record(ctx, command, self.LegalHoldPlaced, reason=command.reason)
        return self._result(ctx)

    def lift_legal_hold(
        self, ctx: CommandContext, command: LiftLegalHold
    ) -> CommandResult:
        """End a legal hold; the retention period applies again."""
        if (done := self._replayed(ctx, command)) is not None:
            return done
        _refuse_if(
            erasure.erased_refusal(self.erased)
            or erasure.hold_refusal(self._holds, False)
        )
        self._record(ctx, command, self.LegalHoldLifted, reason=command.reason)
        return self._result(ctx)

    def erase_case(
        self, ctx: CommandContext, command: EraseCase, until: date | None
    ) -> CommandResult:
        """Record the erasure receipt and forget every fact about the client.

        `until` is the case's retention date under its clinic's policy. Erasing an
        erased case again changes nothing.
        """
        if (done := self._replayed(ctx, command)) is not None:
            return done
        if self.erased is not None:
            return CommandResult(version=self.version, replayed=True)
        _refuse_if(erasure.erasure_refusal(self._holds, command, ctx.today, until))
        self._record(
            ctx,
            command,
            self.CaseErased,
            clinic_id=self.clinic_id,
            phase=self.phase,
            basis=command.basis.value,
            reason=command.reason,
            retention_until=None if until is None else until.isoformat(),
        )
        return self._result(ctx)

    @property
    def _holds(self) -> _HoldFacts:
        return _HoldFacts(self.is_final, self.held)

    # --- helpers ------------------------------------------------------------------

    def _replayed(self, ctx: CommandContext, command: Command) -> CommandResult | None:
        """The earlier result if this command id was applied already, else None."""
        seen = self.applied_commands.get(ctx.command_id)
        if seen is None:
            return None
        if seen["digest"] != command.digest():
            raise CommandIdReused(ctx.command_id)
        return CommandResult(
            version=seen["version"],
            replayed=True,
            session_number=seen["session_number"],
        )

    def _record(
        self,
        ctx: CommandContext,
        command: Command,
        event_class: type[events.CaseEvent],
        **facts: Any,
    ) -> None:
        self.trigger_event(event_class, **_meta(ctx, command), **facts)

    def _result(self, ctx: CommandContext) -> CommandResult:
        entry = self.applied_commands[ctx.command_id]
        return CommandResult(
            version=self.version, session_number=entry["session_number"]
        )


def _meta(ctx: CommandContext, command: Command) -> dict[str, Any]:
    return {
        "recorded_by": ctx.recorded_by,
        "on_behalf_of": ctx.on_behalf_of,
        "command_id": ctx.command_id,
        "command_digest": command.digest(),
    }


@dataclass(frozen=True)
class _HoldFacts:
    is_final: bool
    legal_hold: dict[str, str] | None


def _refuse_if(violations: list[Violation]) -> None:
    if violations:
        raise GuardFailed(violations)


def _value(code: Any) -> Any:
    """A code's value, or None."""
    return None if code is None else code.value
