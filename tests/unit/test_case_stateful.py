"""Random command sequences against one TherapyCase, checked after every step.

A hypothesis state machine opens a case under one of the five version-1 protocols
and fires every command of domain.md §4 at it: valid ones (a progress rule drives
courses towards the end of treatment and follow-up) and invalid ones (wrong phase,
out-of-range counts, unknown kinds, reused command ids). After every step:

1. the phase is a state of the phase machine, and a change of phase is a
   transition the machine declares from the previous phase;
2. counted sessions never exceed the limits that were active (§4);
3. the case folded back from its saved events equals the live case;
4. a refused command (or a replayed retry) changed nothing;
5. "why not" agrees with what a transition command does (decision D4);
6. acute session numbers are 1, 2, 3, ... in recording order, never reused
   (decision D3), and the outcome at conclude follows §5;
7. the outcome shown always equals the classification of the current baseline and
   final, computed here from the measures (§5, §7: earliest-dated beginning measure,
   latest-dated end measure on its instrument); a correction that changes the class
   records OutcomeRevised, an open offer follows the current class, and a class
   changed after the client's decision is marked so;
8. no phase holds more counted sessions than its maximum (beginning: the limit with
   its deviations; middle: by number; end: the protocol's end maximum; acute: the
   contract; follow-up: its contract), and nothing is dated more than 30 days
   before the intake;
9. there is no dead end: from every phase that is not final, commands other than
   withdraw bring a copy of the case to its next phase (a bounded plan that
   answers each reason the case gives, see `way_forward`);
10. risk flags, their reviews, suspected relapse and termination tasks are what §8
    says for the commands that were accepted.

Cases are opened with an intake date up to 430 days back (the dated commands go back
400 days), so dated commands are mostly accepted and now and then refused.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from hypothesis import Phase as HypothesisPhase
from hypothesis import event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ipt_workflow.api.views import case_view
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import (
    AttachmentStyle,
    Attendee,
    CloseReason,
    CommunicationAspect,
    CommunicationStyle,
    CorrectionReason,
    DeviationReason,
    DeviationRule,
    DisputeStage,
    FollowUpFrequency,
    Frequency,
    MissedReason,
    Modality,
    Phase,
    RelationshipRole,
    RenegotiationReason,
    RiskReviewOutcome,
    SecondaryAreaReason,
    Strategy,
    TerminationTask,
    Transition,
    WithdrawalReason,
)
from ipt_workflow.domain.commands import (
    Command,
    CommandContext,
    CommandResult,
    OpenCase,
)
from ipt_workflow.domain.errors import (
    CommandIdReused,
    DomainError,
    GuardFailed,
    InvalidInput,
    Violation,
)
from ipt_workflow.domain.phases import GUARDS, PhaseMachine, sources
from ipt_workflow.domain.protocols import (
    INSTRUMENTS,
    PROTOCOLS,
    Instrument,
    ProblemArea,
    Protocol,
    SessionKind,
)

TODAY = date(2026, 11, 25)
COMMANDS = {c.name: c for c in Command.__subclasses__()}
"""Every command the case accepts, by the name of its aggregate method."""
CLINICIANS = ("t-7", "t-8", "t-9")
OTHER_CLINICIAN = "t-never-assigned"
"""Used only by retries that reuse a command id for another command."""

PHASES = frozenset(str(state.value) for state in PhaseMachine.states)

# (from, transition, to) for every transition the phase machine declares.
DECLARED: frozenset[tuple[str, str, str]] = frozenset(
    (str(t.source.value), str(event_), str(t.target.value))
    for state in PhaseMachine.states
    for t in state.transitions
    for event_ in t.events
)

# §5 and §8, written out again so the aggregate is checked against the text itself.
REMISSION_MAX = {"phq9": 4, "hamd17": 7, "bdi2": 13, "cdrsr": 28}
FLOOR = {"phq9": 0, "hamd17": 0, "bdi2": 0, "cdrsr": 17}
RELAPSE_AFTER_REMISSION = {"phq9": 5, "hamd17": 8, "bdi2": 14, "cdrsr": 40}
RISK_INSTRUMENTS = ("phq9", "bdi2")
AGE_OF = {"phq9": (12, 130), "bdi2": (12, 130), "hamd17": (12, 130), "cdrsr": (6, 17)}
INTAKE_GRACE = timedelta(days=30)
TASKS = [str(t.value) for t in TerminationTask]
MEETING_ENTRIES = {
    SessionKind.engagement: "engagement",
    SessionKind.individual_pre_group: "pre_group",
    SessionKind.individual_mid_group: "mid_group",
    SessionKind.individual_post_group: "post_group",
}

PROTOCOL_IDS = ("ipt@1", "ipt-a@1", "fb-ipt@1", "ipt-g@1", "ipt-b@1")
TRANSITION_METHODS = frozenset(t.value for t in Transition)


def _codes(enum: type[Any]) -> list[str]:
    return [str(member.value) for member in enum]


def _some(values: Sequence[str]) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.sampled_from(values))


days_ago = st.integers(0, 400).map(lambda n: TODAY - timedelta(days=n))

relationship = st.fixed_dictionaries(
    {
        "role": st.sampled_from(_codes(RelationshipRole)),
        "closeness": st.integers(1, 3),
    },
    optional={
        "supportive": st.booleans(),
        "conflict": st.booleans(),
        "changed_at_onset": st.booleans(),
        "deceased": st.booleans(),
    },
)

scored = st.sampled_from(list(INSTRUMENTS.values())).flatmap(
    lambda spec: st.tuples(
        st.just(spec.instrument.value),
        st.integers(spec.scores.low, spec.scores.high),
    )
)

contract_counts = st.one_of(
    st.integers(4, 22),
    st.integers(1, 30),
    st.sampled_from([0, 105]),  # bad input: outside 1-104
)

# Weighted towards the transitions that move a course forward; withdraw is rare.
WEIGHTED_TRANSITIONS = (
    [Transition.start_middle] * 3
    + [Transition.start_end] * 3
    + [Transition.conclude] * 3
    + [Transition.accept_follow_up] * 3
    + [Transition.decline_follow_up] * 2
    + [Transition.close] * 2
    + [Transition.withdraw]
)


@dataclass(frozen=True)
class Snapshot:
    """Everything a refused command must leave as it was."""

    version: int
    pending: tuple[object, ...]
    state: bytes
    """The pickled state (a deep copy, cheaper than copy.deepcopy)."""


def snapshot(case: TherapyCase) -> Snapshot:
    return Snapshot(
        version=case.version,
        pending=tuple(case.pending_events),
        state=pickle.dumps(_state(case)),
    )


def _state(case: TherapyCase) -> dict[str, Any]:
    return {k: v for k, v in case.__dict__.items() if k != "_pending_events"}


@dataclass(frozen=True)
class Sent:
    """A command the case applied: what to send again to retry it."""

    name: str
    kwargs: dict[str, Any]
    command_id: str
    result: CommandResult


@dataclass
class Attempt:
    """One command sent during the current step, and what came of it."""

    name: str
    kwargs: dict[str, Any]
    phase_before: str
    phase_after: str
    before: Snapshot
    after: Snapshot | None = None
    error: DomainError | None = None
    result: CommandResult | None = None
    why_not: list[Violation] | None = None
    """For a transition sent with a complete, valid body: why-not just before."""
    retry_of: Sent | None = None
    same_command: bool = True
    middle_number: tuple[int, int] | None = None
    """For a counted middle session: (its number, contract − end minimum)."""
    expected_number: int | None = None
    expected_outcome: tuple[str, str | None] | None = None
    offer_after: str | None = None
    """For conclude: the kind of the offer open right after it."""
    outcome_after: str | None = None
    """For conclude: the classification right after it (a later correction in the
    same step may revise it, §7)."""
    new_session: dict[str, Any] | None = None
    class_before: str | None = None
    """The class the measures gave just before the command (once concluded)."""
    class_after: str | None = None
    recorded: list[str] | None = None
    """The names of the events an accepted command recorded."""
    relapse_expected: bool | None = None
    """For a measure in follow-up: does §8 call it a suspected relapse?"""


def baseline_and_final(
    case: TherapyCase,
) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """The baseline and the final by §7, computed here from the measures."""
    live = sorted(
        ((m["measured_on"], i, m) for i, m in enumerate(case.measures)),
        key=lambda t: (t[0], t[1]),
    )
    dated = [m for _, _, m in live if not m["voided"]]
    pool = [m for m in dated if m["phase"] == Phase.beginning] or dated
    if not pool:
        return None, None
    base = pool[0]
    finals = [
        m
        for m in dated
        if m["phase"] == Phase.end
        and m["instrument"] == base["instrument"]
        and m is not base
    ]
    return base, (finals[-1] if finals else None)


def classify(instrument: str, b: int, f: int) -> str:
    if f <= REMISSION_MAX[instrument]:
        return "remission"
    span = b - FLOOR[instrument]
    r = Fraction(b - f, span) if span else Fraction(0)
    if r >= Fraction(1, 2):
        return "response"
    if r >= Fraction(1, 4):
        return "partial_response"
    return "no_response"


def automatic(cls: str, prior_episodes: int) -> str | None:
    """The offer §5 makes for a class."""
    if cls == "remission":
        return "maintenance" if prior_episodes >= 3 else None
    return "referral" if cls == "no_response" else "continuation"


def current_class(case: TherapyCase) -> str | None:
    base, final = baseline_and_final(case)
    if base is None or final is None:
        return None
    return classify(base["instrument"], base["score"], final["score"])


def expected_outcome(case: TherapyCase) -> tuple[str, str | None] | None:
    """(class, automatic offer) per §5, from the measures as they are now."""
    cls = current_class(case)
    return None if cls is None else (cls, automatic(cls, case.prior_episodes))


def fitting(age: int) -> list[Instrument]:
    """The instruments §8 allows at this age."""
    return [i for i in Instrument if AGE_OF[i.value][0] <= age <= AGE_OF[i.value][1]]


class WayForward:
    """A bounded plan that brings a copy of a case to its next phase, answering
    each reason the case gives with the command a clinic would send (never
    withdraw). If it gets stuck, the case is at a dead end (or the plan is too
    simple: its log says which, step by step)."""

    STEPS = 60

    def __init__(self, case: TherapyCase) -> None:
        self.case: TherapyCase = pickle.loads(pickle.dumps(case))
        self.protocol: Protocol = self.case.protocol
        self.log: list[str] = []

    def run(self) -> bool:
        start = self.case.phase
        step = getattr(self, f"_{start}")
        for _ in range(self.STEPS):
            if self.case.phase != start:
                return True
            if not step():
                return False
        return False

    # --- sending, and what the case says ------------------------------------------

    def send(self, name: str, **raw: Any) -> list[str] | None:
        """The rules that refused the command, or None if it was accepted."""
        command = COMMANDS[name].parse(today=TODAY, **raw)
        ctx = CommandContext(
            recorded_by="planner", today=TODAY, command_id=f"plan-{len(self.log)}"
        )
        try:
            self.case.handle(ctx, command)
        except GuardFailed as refused:
            rules = [v.rule for v in refused.violations]
            self.log.append(f"{name}({raw}) refused: {rules}")
            return rules
        self.log.append(f"{name}({raw}) ok: phase={self.case.phase}")
        return None

    def reasons(self, t: Transition) -> list[str]:
        return [v.rule for v in GUARDS[t](self.case, None)]

    # --- the commands a plan uses -------------------------------------------------

    def floor(self) -> int:
        """The lowest contract §7 allows now, computed here."""
        acute = counted(self.case)
        before_end = self.case.phase in (Phase.beginning, Phase.middle)
        held_middle = any(s["phase"] == Phase.middle for s in acute)
        middle = 1 if before_end and not held_middle else 0
        end_held = sum(1 for s in acute if s["phase"] == Phase.end)
        owed: int = max(0, self.protocol.end_sessions.low - end_held)
        last: int = self.case.last_session_number
        return last + middle + owed

    def contract_of(self, count: int) -> bool:
        """Agree, or renegotiate to, `count` sessions (at least the floor), with a
        contract_range deviation if it is outside the protocol's range."""
        count = max(count, self.floor())
        case = self.case
        if case.contract is None:
            allowed = self.protocol.contract_sessions
            count = max(count, allowed.low)
            if count > allowed.high:
                self.log.append(f"no contract of {count} can be agreed")
                return False
            return self.send("agree_contract", sessions=count) is None
        if count not in self.protocol.contract_sessions and not (
            case.unused_deviations(DeviationRule.contract_range)
        ):
            self.send("record_deviation", rule="contract_range", reason="crisis")
        refused = self.send(
            "renegotiate_contract", sessions=count, reason="slow_progress"
        )
        return refused is None

    def session(self) -> bool:
        """A counted session; if refused, what it needs first."""
        case, name = self.case, self.protocol.name
        if self.protocol.pre_group_meeting_required and not case.meetings(
            SessionKind.individual_pre_group
        ):
            return self.meeting(SessionKind.individual_pre_group)
        attendees = ["group"] if name == "ipt-g" else ["client"]
        if name in ("fb-ipt", "ipt-a"):
            attendees = ["client", "parent"]
        refused = self.send(
            "record_session",
            held_on=TODAY,
            minutes=50,
            modality="in_person",
            attendees=attendees,
        )
        if refused is None:
            return True
        number = case.last_session_number + 1
        end_min = self.protocol.end_sessions.low
        if "beginning_session_limit" in refused:
            return (
                self.send(
                    "record_deviation",
                    rule="beginning_session_limit",
                    reason="crisis",
                )
                is None
            )
        if "contract_session_limit" in refused and case.phase == Phase.beginning:
            return self.contract_of(number + end_min + 1)
        if "middle_session_limit" in refused:
            return self.contract_of(number + end_min)
        if "contract_session_limit" in refused:
            return self.contract_of(number)
        return False

    def meeting(self, kind: SessionKind) -> bool:
        refused = self.send(
            "record_session",
            held_on=TODAY,
            minutes=50,
            modality="in_person",
            attendees=["client"],
            kind=kind.value,
        )
        return refused is None

    def measure(self) -> bool:
        base, _ = baseline_and_final(self.case)
        if base is None:
            instrument = fitting(self.case.client_age)[0]
        else:
            instrument = Instrument(base["instrument"])
        spec = INSTRUMENTS[instrument]
        score = (spec.scores.low + spec.scores.high) // 2
        refused = self.send(
            "record_measure",
            instrument=instrument.value,
            score=score,
            measured_on=TODAY,
        )
        return refused is None

    # --- one step from each phase -------------------------------------------------

    def _beginning(self) -> bool:
        why = self.reasons(Transition.start_middle)
        if not why:
            return self.send("start_middle") is None
        if {"inventory_required", "grief_needs_deceased_relationship"} & set(why):
            mother = {"role": "mother", "closeness": 1, "deceased": True}
            return self.send("record_inventory", relationships=[mother]) is None
        if "focus_required" in why:
            focus = {"primary_area": "role_transition", "client_agreed": True}
            return self.send("agree_focus", **focus) is None
        if "contract_required" in why:
            return self.contract_of(self.protocol.contract_sessions.low)
        if "baseline_measure_required" in why:
            return self.measure()
        if {"beginning_session_required", "parent_session_required"} & set(why):
            return self.session()
        return False

    def _middle(self) -> bool:
        why = self.reasons(Transition.start_end)
        if not why:
            return self.send("start_end") is None
        if "middle_session_required" in why:
            return self.session()
        if "sessions_left_outside_end_range" in why:
            contract = self.case.contract
            assert contract is not None
            last = self.case.last_session_number
            if contract["sessions"] - last > self.protocol.end_sessions.high:
                return self.session()
            return self.contract_of(last + self.protocol.end_sessions.low)
        return False

    def _end(self) -> bool:
        why = self.reasons(Transition.conclude)
        if not why:
            return self.send("conclude") is None
        if "end_sessions_required" in why:
            return self.session()
        if "end_measure_required" in why:
            return self.measure()
        return False

    def _concluded(self) -> bool:
        offer = self.case.follow_up_offer
        if offer is None:
            return self.send("close") is None
        if offer["kind"] == "referral":
            return self.send("accept_follow_up") is None
        return self.send("accept_follow_up", sessions=1, frequency="monthly") is None

    def _follow_up(self) -> bool:
        return self.send("close", reason="no_longer_needed") is None


def boundaries(instrument: Instrument, baseline: int) -> list[int]:
    """Final scores on and next to the edges of §5's classes, for this baseline."""
    spec = INSTRUMENTS[instrument]
    edges = {spec.remission_max, spec.remission_max + 1}
    span = baseline - spec.floor
    for share in (Fraction(1, 2), Fraction(1, 4)):
        cut = baseline - span * share  # r == share exactly at this final score
        edges |= {math.floor(cut), math.ceil(cut), math.floor(cut) - 1}
    return sorted(e for e in edges if spec.scores.low <= e <= spec.scores.high)


def _call(name: str, kwargs: dict[str, Any], ctx: CommandContext) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"case.{name}(ctx({ctx.command_id!r}), {args})"


def _refusal(error: DomainError) -> str:
    if isinstance(error, GuardFailed):
        return "GuardFailed " + ", ".join(v.rule for v in error.violations)
    if isinstance(error, InvalidInput):
        return "InvalidInput " + ", ".join(e.field for e in error.errors)
    return type(error).__name__


def counted(case: TherapyCase, *, follow_up: bool = False) -> list[Mapping[str, Any]]:
    """Sessions of the counted kind, not voided (computed here, not by the case)."""
    return [
        s
        for s in case.sessions
        if s["kind"] == SessionKind.therapy
        and not s["voided"]
        and s["follow_up"] == follow_up
    ]


class CaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.app: Application[UUID] = Application()
        self._case: TherapyCase | None = None
        self.attempts: list[Attempt] = []
        self.sent: list[Sent] = []
        self.next_id = 0
        self.last_number = {False: 0, True: 0}
        self.visited: set[str] = set()
        self.targets: dict[Phase, int] = {}
        self.risk: dict[str, Any] | None = None
        """The latest risk flag the commands raised, and whether it was reviewed."""
        self.decided_class: str | None = None
        """The class when the client first decided on an offer."""
        self.forward_checked_at: int | None = None
        self.views = 0

    @property
    def case(self) -> TherapyCase:
        assert self._case is not None
        return self._case

    @property
    def protocol(self) -> Protocol:
        return self.case.protocol

    # --- sending commands -------------------------------------------------------

    def _new_step(self) -> None:
        self.attempts = []

    def _ctx(self, command_id: str | None = None) -> CommandContext:
        if command_id is None:
            self.next_id += 1
            command_id = f"cmd-{self.next_id}"
        return CommandContext(
            recorded_by="clinician-a",
            today=TODAY,
            command_id=command_id,
            on_behalf_of="t-7",
        )

    def send(
        self,
        name: str,
        kwargs: dict[str, Any],
        *,
        why_not: list[Violation] | None = None,
        retry_of: Sent | None = None,
        same_command: bool = True,
    ) -> CommandResult | None:
        """Send one command; record the attempt for the invariants to judge."""
        case = self.case
        ctx = self._ctx(None if retry_of is None else retry_of.command_id)
        attempt = Attempt(
            name=name,
            kwargs=kwargs,
            phase_before=case.phase,
            phase_after=case.phase,
            before=snapshot(case),
            why_not=why_not,
            retry_of=retry_of,
            same_command=same_command,
        )
        if name == "conclude":
            attempt.expected_outcome = expected_outcome(case)
        if case.outcome is not None:
            attempt.class_before = current_class(case)
        if name == "record_measure" and case.phase == Phase.follow_up:
            attempt.relapse_expected = self.relapse_expected(kwargs)
        contract = case.contract
        pending = len(case.pending_events)
        self.attempts.append(attempt)
        try:
            command = COMMANDS[name].parse(today=TODAY, **kwargs)
            result: CommandResult = case.handle(ctx, command)
        except DomainError as refused:
            note(f"{_call(name, kwargs, ctx)}  # {_refusal(refused)}")
            attempt.error = refused
            attempt.after = snapshot(case)
            attempt.phase_after = case.phase
            return None
        attempt.result = result
        attempt.phase_after = case.phase
        self.visited.add(case.phase)
        note(f"{_call(name, kwargs, ctx)}  # ok: phase={case.phase}, {result}")
        if retry_of is not None:
            attempt.after = snapshot(case)
            return result
        self.sent.append(Sent(name, kwargs, ctx.command_id, result))
        attempt.recorded = [type(e).__name__ for e in case.pending_events[pending:]]
        if attempt.class_before is not None:
            attempt.class_after = current_class(case)
        for name_ in ("OutcomeRevised", "FollowUpOfferRevised", "RelapseSuspected"):
            if name_ in attempt.recorded:
                event(f"recorded {name_}")
        self.track(attempt)
        if name == "conclude":
            offer = case.follow_up_offer
            attempt.offer_after = None if offer is None else str(offer["kind"])
            assert case.outcome is not None
            attempt.outcome_after = str(case.outcome["classification"])
        if name == "record_session":
            new = case.sessions[-1]
            attempt.new_session = dict(new)
            if new["kind"] == SessionKind.therapy:
                follow_up = bool(new["follow_up"])
                self.last_number[follow_up] += 1
                attempt.expected_number = self.last_number[follow_up]
                if attempt.phase_before == Phase.middle and contract is not None:
                    attempt.middle_number = (
                        int(new["number"]),
                        contract["sessions"] - self.protocol.end_sessions.low,
                    )
        return result

    def relapse_expected(self, kwargs: Mapping[str, Any]) -> bool:
        """§8: would this follow-up measure suggest a relapse?"""
        base, _ = baseline_and_final(self.case)
        cls = current_class(self.case)
        instrument, score = kwargs["instrument"], kwargs["score"]
        if base is None or cls is None or instrument != base["instrument"]:
            return False
        if not isinstance(score, int) or isinstance(score, bool):
            return False
        threshold = RELAPSE_AFTER_REMISSION[instrument]
        return (cls == "remission" and score >= threshold) or score >= base["score"]

    def track(self, attempt: Attempt) -> None:
        """What §8 and §7 expect after an accepted command, kept independently."""
        kwargs = attempt.kwargs
        if attempt.name == "record_measure" and kwargs.get("risk_item"):
            self.risk = {
                "item": kwargs["risk_item"],
                "instrument": kwargs["instrument"],
                "measured_on": kwargs["measured_on"].isoformat(),
                "reviewed": False,
            }
        if attempt.name == "record_risk_review":
            assert self.risk is not None and not self.risk["reviewed"]
            self.risk = {**self.risk, "reviewed": True}
        decided = attempt.name in ("accept_follow_up", "decline_follow_up")
        if decided and self.decided_class is None:
            self.decided_class = current_class(self.case)

    def transition(self, t: Transition, data: st.DataObject) -> CommandResult | None:
        """Send a transition with a complete, valid body (D4), checked against
        why-not."""
        case = self.case
        why = list(case.why_not()[t])
        kwargs: dict[str, Any]
        if t == Transition.conclude:
            kwargs = {
                "maintenance_discussed": data.draw(st.booleans()),
                "termination_tasks": data.draw(
                    st.lists(st.sampled_from(TASKS), unique=True, max_size=5)
                ),
            }
        elif t == Transition.accept_follow_up:
            offer = case.follow_up_offer
            if offer is not None and offer["kind"] == "referral":
                kwargs = {"sessions": None, "frequency": None}
            else:
                kwargs = {
                    "sessions": data.draw(st.integers(1, 4)),
                    "frequency": data.draw(st.sampled_from(_codes(FollowUpFrequency))),
                }
        elif t == Transition.close:
            reason = data.draw(_some(_codes(CloseReason)))
            if case.phase == Phase.follow_up and reason is None:
                reason = CloseReason.no_longer_needed.value
            kwargs = {"reason": reason, "note": None}
        elif t == Transition.withdraw:
            kwargs = {
                "reason": data.draw(st.sampled_from(_codes(WithdrawalReason))),
                "note": None,
            }
        else:
            kwargs = {}
        return self.send(t.value, kwargs, why_not=why)

    # --- building blocks of a course ------------------------------------------

    def _attendees(self, data: st.DataObject) -> list[str]:
        name = self.protocol.name
        if name in ("ipt-a", "fb-ipt"):
            return data.draw(st.sampled_from([["client"], ["client", "parent"]]))
        if name == "ipt-g":
            return ["group"]
        return ["client"]

    def valid_session(self, data: st.DataObject) -> CommandResult | None:
        """A session that suits the protocol and the current phase."""
        case = self.case
        kwargs: dict[str, Any] = {
            "held_on": data.draw(days_ago),
            "minutes": data.draw(st.integers(20, 120)),
            "modality": data.draw(st.sampled_from(_codes(Modality))),
            "attendees": self._attendees(data),
            "kind": SessionKind.therapy.value,
            "strategies": [],
            "communication_aspects": [],
        }
        pre_group = self.protocol.pre_group_meeting_required
        if pre_group and not case.meetings(SessionKind.individual_pre_group):
            kwargs["kind"] = SessionKind.individual_pre_group.value
            kwargs["attendees"] = ["client"]
        elif pre_group and case.phase == Phase.concluded:
            kwargs["kind"] = SessionKind.individual_post_group.value
            kwargs["attendees"] = ["client"]
        elif (
            self.protocol.parent_session_required_before_middle
            and case.phase == Phase.beginning
            and not case.parent_sessions()
        ):
            kwargs["attendees"] = ["client", "parent"]
        if case.phase == Phase.middle and kwargs["kind"] == SessionKind.therapy:
            used = data.draw(
                st.lists(st.sampled_from(_codes(Strategy)), unique=True, max_size=3)
            )
            kwargs["strategies"] = used
            if Strategy.communication_analysis in used:
                kwargs["communication_aspects"] = data.draw(
                    st.lists(
                        st.sampled_from(_codes(CommunicationAspect)),
                        unique=True,
                        max_size=2,
                    )
                )
        return self.send("record_session", kwargs)

    def valid_measure(self, data: st.DataObject, *, final: bool) -> None:
        """A baseline (a high score), or a final score, often on a §5 boundary."""
        case = self.case
        baseline = case.baseline
        if baseline is not None:
            instrument = Instrument(baseline["instrument"])
        else:
            instrument = data.draw(st.sampled_from(fitting(case.client_age)))
        spec = INSTRUMENTS[instrument]
        low, high = spec.scores.low, spec.scores.high
        if not final or baseline is None:
            score = data.draw(st.integers((low + high) // 3, high))
        else:
            edges = st.sampled_from(boundaries(instrument, baseline["score"]))
            score = data.draw(st.one_of(edges, edges, st.integers(low, high)))
        kwargs: dict[str, Any] = {
            "instrument": instrument.value,
            "score": score,
            "measured_on": data.draw(st.one_of(st.just(TODAY), days_ago)),
        }
        if instrument.value in RISK_INSTRUMENTS:
            kwargs["risk_item"] = data.draw(st.sampled_from([None, None, 0, 1, 3]))
        self.send("record_measure", kwargs)

    def renegotiate_to_fit(self, data: st.DataObject, low: int, high: int) -> None:
        """Renegotiate to the last session number plus between low and high more
        (a voided number is not given again, §7)."""
        case = self.case
        want = case.last_session_number + data.draw(st.integers(low, max(low, high)))
        if want not in self.protocol.contract_sessions and not case.unused_deviations(
            DeviationRule.contract_range
        ):
            self.send(
                "record_deviation",
                {
                    "rule": "contract_range",
                    "reason": "clinical_judgement",
                    "note": None,
                },
            )
        self.send(
            "renegotiate_contract",
            {
                "sessions": want,
                "reason": "slow_progress",
                "frequency": None,
                "note": None,
            },
        )

    def replace_a_measure(
        self, data: st.DataObject, reason: str = "wrong_details"
    ) -> None:
        """A measure's correction with its right value (§7): often the baseline or
        the final, with its own date or a day near it (or, now and then, a score
        out of the instrument's range: bad input)."""
        case = self.case
        base, final = baseline_and_final(case)
        known = [(m["instrument"], m["measured_on"]) for m in case.measures]
        used = [(m["instrument"], m["measured_on"]) for m in (base, final) if m]
        guess = st.tuples(
            st.sampled_from(_codes(Instrument)), days_ago.map(date.isoformat)
        )
        choices = [st.sampled_from(x) for x in (used, used, known) if x] + [guess]
        instrument, on = data.draw(st.one_of(*choices))
        spec = INSTRUMENTS[Instrument(instrument)]
        score = data.draw(st.integers(spec.scores.low, spec.scores.high + 1))
        day = date.fromisoformat(on)
        moved = st.integers(-3, 3).map(lambda n: day + timedelta(days=n))
        replaced_on = data.draw(st.one_of(st.just(day), moved, days_ago))
        self.send(
            "correct_entry",
            {
                "entry": "measure",
                "reason": reason,
                "measured_on": on,
                "instrument": instrument,
                "replacement": {"score": score, "measured_on": replaced_on},
                "note": None,
            },
        )

    def follow_up_measure(self, data: st.DataObject) -> None:
        """A measure in follow-up with the baseline's instrument, often near the
        scores §8 calls a suspected relapse."""
        base, _ = baseline_and_final(self.case)
        if base is None:
            return
        instrument = base["instrument"]
        spec = INSTRUMENTS[Instrument(instrument)]
        near = [
            RELAPSE_AFTER_REMISSION[instrument] - 1,
            RELAPSE_AFTER_REMISSION[instrument],
            base["score"] - 1,
            base["score"],
        ]
        score = data.draw(
            st.one_of(
                st.sampled_from([n for n in near if n in spec.scores]),
                st.integers(spec.scores.low, spec.scores.high),
            )
        )
        kwargs: dict[str, Any] = {
            "instrument": instrument,
            "score": score,
            "measured_on": data.draw(st.one_of(st.just(TODAY), days_ago)),
        }
        if instrument in RISK_INSTRUMENTS:
            kwargs["risk_item"] = data.draw(st.sampled_from([None, 0, 2]))
        self.send("record_measure", kwargs)

    def target(self, data: st.DataObject, phase: Phase, low: int, high: int) -> int:
        """How many sessions this course aims to hold in a phase, drawn once.

        One more than the phase allows now and then, so the limit is probed.
        """
        if phase not in self.targets:
            self.targets[phase] = data.draw(st.integers(low, max(low, high)))
        return self.targets[phase]

    def probe_refused_transition(self, data: st.DataObject) -> None:
        """A transition why-not refuses: it must be refused, for the same reasons."""
        t = data.draw(st.sampled_from(list(Transition)))
        if self.case.why_not()[t]:
            self.transition(t, data)

    def advance_once(self, data: st.DataObject) -> None:
        """The next command a clinician would send to move the course on."""
        case, protocol = self.case, self.protocol
        phase = case.phase
        if data.draw(st.integers(0, 4)) == 0:
            self.probe_refused_transition(data)
        if phase == Phase.beginning:
            self.advance_beginning(data)
        elif phase == Phase.middle:
            assert case.contract is not None
            left = case.contract["sessions"] - case.last_session_number
            ends = protocol.end_sessions
            held = sum(1 for s in counted(case) if s["phase"] == Phase.middle)
            aim = self.target(data, Phase.middle, 1, left - ends.low + 1)
            if held == 0 or held < aim:
                if self.valid_session(data) is None:
                    self.targets[Phase.middle] = 0
                    if held == 0:  # no room for a middle session at all
                        self.renegotiate_to_fit(data, ends.low + 1, ends.high + 1)
            elif left in ends:
                self.transition(Transition.start_end, data)
            elif left > ends.high:
                self.valid_session(data)
            else:
                self.renegotiate_to_fit(data, ends.low, ends.high)
        elif phase == Phase.end:
            ends = protocol.end_sessions
            held = sum(1 for s in counted(case) if s["phase"] == Phase.end)
            aim = self.target(data, Phase.end, ends.low, ends.high + 1)
            if held < max(aim, ends.low):
                if self.valid_session(data) is None:
                    self.targets[Phase.end] = 0
                    if held < ends.low:  # the contract is used up
                        self.renegotiate_to_fit(data, ends.low - held, ends.high - held)
            elif case.final_measure is None:
                self.valid_measure(data, final=True)
            else:
                self.transition(Transition.conclude, data)
        elif phase in (Phase.concluded, Phase.follow_up) and not data.draw(
            st.integers(0, 3)
        ):
            # A clinician finds an entry was wrong after conclude: the outcome is
            # revised (§7), and the offer with it.
            self.replace_a_measure(data)
        elif phase == Phase.concluded:
            offer = case.follow_up_offer
            if offer is not None:
                choice = data.draw(
                    st.sampled_from(
                        [Transition.accept_follow_up] * 3
                        + [Transition.decline_follow_up]
                    )
                )
                self.transition(choice, data)
            elif data.draw(st.booleans()):
                kind = data.draw(st.sampled_from(["continuation", "maintenance"]))
                self.send("offer_follow_up", {"kind": kind})
            else:
                self.transition(Transition.close, data)
        elif phase == Phase.follow_up:
            contract = case.follow_up_contract
            assert contract is not None
            held = len(counted(case, follow_up=True))
            # Now and then one session more than agreed, to probe the limit; and
            # follow-up measures, which may suggest a relapse (§8).
            pick = data.draw(st.integers(0, 7 if held < contract["sessions"] else 1))
            if pick >= 6:
                self.follow_up_measure(data)
            elif pick:
                self.valid_session(data)
            else:
                self.transition(Transition.close, data)

    def advance_beginning(self, data: st.DataObject) -> None:
        case, protocol = self.case, self.protocol
        if case.inventory is None:
            rels = data.draw(st.lists(relationship, min_size=1, max_size=3))
            self.send(
                "record_inventory",
                {
                    "relationships": rels,
                    "attachment_style": None,
                    "communication_style": None,
                },
            )
        elif case.baseline is None:
            self.valid_measure(data, final=False)
        elif case.focus is None:
            deceased = any(r["deceased"] for r in case.inventory["relationships"])
            areas = ["role_transition", "interpersonal_deficits", "role_dispute"]
            primary = data.draw(st.sampled_from(areas + ["grief"] * deceased))
            stage = "impasse" if primary == "role_dispute" else None
            self.send(
                "agree_focus",
                {
                    "primary_area": primary,
                    "client_agreed": True,
                    "secondary_area": None,
                    "secondary_reason": None,
                    "dispute_stage": stage,
                    "note": None,
                },
            )
        elif case.contract is None:
            sessions = data.draw(
                st.one_of(
                    st.none(),
                    st.integers(
                        protocol.contract_sessions.low,
                        protocol.contract_sessions.high,
                    ),
                )
            )
            self.send("agree_contract", {"sessions": sessions, "frequency": "weekly"})
        else:
            held = sum(1 for s in counted(case) if s["phase"] == Phase.beginning)
            aim = self.target(
                data, Phase.beginning, 1, case.beginning_session_limit + 1
            )
            if held < aim or case.why_not()[Transition.start_middle]:
                if self.valid_session(data) is None:
                    self.targets[Phase.beginning] = 0
            else:
                self.transition(Transition.start_middle, data)

    # --- rules ------------------------------------------------------------------

    @initialize(
        opening=st.sampled_from(PROTOCOL_IDS).flatmap(
            lambda ref: st.tuples(
                st.just(ref),
                st.integers(PROTOCOLS[ref].age.low, PROTOCOLS[ref].age.high),
                st.integers(0, 5),
            )
        ),
        # Mostly before the earliest date the commands use (400 days back), so a
        # dated command is accepted often; now and then the opening day itself.
        intake=st.one_of(st.integers(300, 430), st.just(0), st.none()),
    )
    def open_case(self, opening: tuple[str, int, int], intake: int | None) -> None:
        ref, age, prior = opening
        intake_on = None if intake is None else TODAY - timedelta(days=intake)
        self._case = TherapyCase.open(
            self._ctx(),
            OpenCase.parse(
                clinic_id="clinic-1",
                client_ref="client-1",
                protocol=ref,
                client_age=age,
                clinician_id=CLINICIANS[0],
                prior_episodes=prior,
                intake_on=intake_on,
                today=TODAY,
            ),
        )
        self._new_step()
        note(
            f"case = TherapyCase.open(ctx('cmd-1'), protocol={ref!r}, "
            f"client_age={age}, prior_episodes={prior}, intake_on={intake_on}, "
            "clinician_id='t-7', ...)"
        )
        event(f"protocol {ref}")

    # Progress gets several rules (rules are picked about evenly, and one rule
    # among twenty would rarely get a course past the middle phase in 40 steps).
    # Each takes a single argument, which also sorts them first among the rules.
    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        self._new_step()
        for _ in range(data.draw(st.integers(1, 10))):
            self.advance_once(data)

    @rule(data=st.data())
    def advance_more(self, data: st.DataObject) -> None:
        self.advance(data)

    @rule(data=st.data())
    def advance_further(self, data: st.DataObject) -> None:
        self.advance(data)

    @rule(data=st.data())
    def advance_still(self, data: st.DataObject) -> None:
        self.advance(data)

    @rule(data=st.data())
    def record_valid_session(self, data: st.DataObject) -> None:
        self._new_step()
        self.valid_session(data)

    @rule(
        data=st.data(),
        times=st.integers(1, 20),
        reason=st.sampled_from(_codes(DeviationReason)),
    )
    def allow_and_hold_extra_beginning_sessions(
        self, data: st.DataObject, times: int, reason: str
    ) -> None:
        """What a beginning_session_limit deviation is for: hold sessions until
        the limit refuses one, allow one more, hold it; and again.

        Repeated often enough, this reaches the size of the contract.
        """
        self._new_step()
        self.hold_until_refused(data)
        for _ in range(times):
            self.send(
                "record_deviation",
                {"rule": "beginning_session_limit", "reason": reason, "note": None},
            )
            if self.case.phase != Phase.beginning:
                break
            self.hold_until_refused(data)

    def hold_until_refused(self, data: st.DataObject) -> None:
        for _ in range(12):
            if self.valid_session(data) is None:
                break

    @rule(
        rels=st.lists(relationship, min_size=1, max_size=4),
        attachment=_some(_codes(AttachmentStyle)),
        communication=_some(_codes(CommunicationStyle)),
    )
    def record_inventory(
        self,
        rels: list[dict[str, Any]],
        attachment: str | None,
        communication: str | None,
    ) -> None:
        self._new_step()
        self.send(
            "record_inventory",
            {
                "relationships": rels,
                "attachment_style": attachment,
                "communication_style": communication,
            },
        )

    @rule(
        primary=st.sampled_from(_codes(ProblemArea)),
        secondary=st.one_of(st.none(), st.none(), st.sampled_from(_codes(ProblemArea))),
        reason=_some(_codes(SecondaryAreaReason)),
        stage=_some(_codes(DisputeStage)),
        agreed=st.sampled_from([True, True, True, False]),
    )
    def agree_focus(
        self,
        primary: str,
        secondary: str | None,
        reason: str | None,
        stage: str | None,
        agreed: bool,
    ) -> None:
        self._new_step()
        self.send(
            "agree_focus",
            {
                "primary_area": primary,
                "client_agreed": agreed,
                "secondary_area": secondary,
                "secondary_reason": reason,
                "dispute_stage": stage,
                "note": "linked to the move" if reason == "other" else None,
            },
        )

    @rule(stage=st.sampled_from(_codes(DisputeStage)))
    def change_dispute_stage(self, stage: str) -> None:
        self._new_step()
        self.send("change_dispute_stage", {"stage": stage})

    @rule(
        sessions=st.one_of(st.none(), contract_counts),
        frequency=st.sampled_from(_codes(Frequency)),
    )
    def agree_contract(self, sessions: int | None, frequency: str) -> None:
        self._new_step()
        self.send("agree_contract", {"sessions": sessions, "frequency": frequency})

    @rule(
        sessions=contract_counts,
        reason=st.sampled_from(_codes(RenegotiationReason)),
        frequency=_some(_codes(Frequency)),
    )
    def renegotiate_contract(
        self, sessions: int, reason: str, frequency: str | None
    ) -> None:
        self._new_step()
        self.send(
            "renegotiate_contract",
            {
                "sessions": sessions,
                "reason": reason,
                "frequency": frequency,
                "note": None,
            },
        )

    @rule(data=st.data(), more=st.integers(0, 4))
    def renegotiate_near_the_floor(self, data: st.DataObject, more: int) -> None:
        """A contract of the last session number plus 0 to 4: on and around the
        lowest §7 allows, with a deviation when outside the protocol's range."""
        self._new_step()
        case = self.case
        if case.contract is None:
            return
        want = case.last_session_number + more
        in_range = want in self.protocol.contract_sessions
        if not in_range and not case.unused_deviations(DeviationRule.contract_range):
            self.send(
                "record_deviation",
                {"rule": "contract_range", "reason": "crisis", "note": None},
            )
        frequency = data.draw(_some(_codes(Frequency)))
        self.send(
            "renegotiate_contract",
            {
                "sessions": want,
                "reason": "clinical_progress",
                "frequency": frequency,
                "note": None,
            },
        )

    @rule(
        deviation=st.sampled_from(_codes(DeviationRule)),
        reason=st.sampled_from(_codes(DeviationReason)),
    )
    def record_deviation(self, deviation: str, reason: str) -> None:
        self._new_step()
        note = "agreed in supervision" if reason == "other" else None
        self.send(
            "record_deviation", {"rule": deviation, "reason": reason, "note": note}
        )

    @rule(
        measure=scored,
        on=days_ago,
        # Item 9 of the PHQ-9 and BDI-II; on another instrument, or 4, bad input.
        risk_item=st.sampled_from([None, None, None, 0, 1, 2, 3, 4]),
    )
    def record_measure(
        self, measure: tuple[str, int], on: date, risk_item: int | None
    ) -> None:
        self._new_step()
        instrument, score = measure
        kwargs: dict[str, Any] = {
            "instrument": instrument,
            "score": score,
            "measured_on": on,
        }
        if risk_item is not None:
            kwargs["risk_item"] = risk_item
        self.send("record_measure", kwargs)

    @rule(
        outcome=st.sampled_from(_codes(RiskReviewOutcome)),
        noted=st.booleans(),
    )
    def record_risk_review(self, outcome: str, noted: bool) -> None:
        self._new_step()
        note_ = "seen with the GP" if noted and outcome == "other" else None
        self.send("record_risk_review", {"outcome": outcome, "note": note_})

    @rule(
        kind=st.sampled_from(_codes(SessionKind)),
        attendees=st.lists(
            st.sampled_from(_codes(Attendee)), min_size=1, max_size=3, unique=True
        ),
        strategies=st.lists(st.sampled_from(_codes(Strategy)), max_size=2, unique=True),
        aspects=st.one_of(
            st.just([]),
            st.lists(
                st.sampled_from(_codes(CommunicationAspect)), max_size=2, unique=True
            ),
        ),
        minutes=st.one_of(st.integers(20, 120), st.sampled_from([19, 121])),
        modality=st.sampled_from(_codes(Modality)),
        on=days_ago,
    )
    def record_session(
        self,
        kind: str,
        attendees: list[str],
        strategies: list[str],
        aspects: list[str],
        minutes: int,
        modality: str,
        on: date,
    ) -> None:
        self._new_step()
        self.send(
            "record_session",
            {
                "held_on": on,
                "minutes": minutes,
                "modality": modality,
                "attendees": attendees,
                "kind": kind,
                "strategies": strategies,
                "communication_aspects": aspects,
            },
        )

    @rule(on=days_ago, reason=st.sampled_from(_codes(MissedReason)))
    def record_missed_session(self, on: date, reason: str) -> None:
        self._new_step()
        self.send(
            "record_missed_session",
            {"scheduled_on": on, "reason": reason, "note": None},
        )

    @rule(
        data=st.data(),
        follow_up=st.booleans(),
        reason=st.sampled_from(_codes(CorrectionReason)),
    )
    def correct_session(
        self, data: st.DataObject, follow_up: bool, reason: str
    ) -> None:
        self._new_step()
        numbers = [
            s["number"]
            for s in self.case.sessions
            if s["number"] is not None and s["follow_up"] == follow_up
        ]
        guess = st.integers(1, 20)
        number = data.draw(
            st.one_of(st.sampled_from(numbers), guess) if numbers else guess
        )
        self.send(
            "correct_entry",
            {
                "entry": "follow_up_session" if follow_up else "session",
                "reason": reason,
                "number": number,
                "measured_on": None,
                "instrument": None,
                "note": None,
            },
        )

    @rule(data=st.data(), reason=st.sampled_from(_codes(CorrectionReason)))
    def correct_measure(self, data: st.DataObject, reason: str) -> None:
        self._new_step()
        known = [(m["instrument"], m["measured_on"]) for m in self.case.measures]
        guess = st.tuples(
            st.sampled_from(_codes(Instrument)), days_ago.map(date.isoformat)
        )
        instrument, on = data.draw(
            st.one_of(st.sampled_from(known), guess) if known else guess
        )
        self.send(
            "correct_entry",
            {
                "entry": "measure",
                "reason": reason,
                "number": None,
                "measured_on": on,
                "instrument": instrument,
                "note": None,
            },
        )

    @rule(data=st.data(), reason=st.sampled_from(_codes(CorrectionReason)))
    def correct_measure_with_replacement(
        self, data: st.DataObject, reason: str
    ) -> None:
        self._new_step()
        self.replace_a_measure(data, reason)

    @rule(data=st.data(), reason=st.sampled_from(_codes(CorrectionReason)))
    def correct_meeting(self, data: st.DataObject, reason: str) -> None:
        """An uncounted meeting entered in error, addressed by its date (§7)."""
        self._new_step()
        known = [
            (MEETING_ENTRIES[SessionKind(s["kind"])], s["held_on"])
            for s in self.case.sessions
            if s["number"] is None
        ]
        guess = st.tuples(
            st.sampled_from(list(MEETING_ENTRIES.values())),
            days_ago.map(date.isoformat),
        )
        entry, on = data.draw(
            st.one_of(st.sampled_from(known), guess) if known else guess
        )
        self.send(
            "correct_entry",
            {"entry": entry, "reason": reason, "held_on": on, "note": None},
        )

    @rule(clinician=st.sampled_from(CLINICIANS))
    def reassign(self, clinician: str) -> None:
        self._new_step()
        self.send("reassign", {"clinician_id": clinician})

    @rule(kind=st.sampled_from(["continuation", "maintenance", "referral", "booster"]))
    def offer_follow_up(self, kind: str) -> None:
        self._new_step()
        self.send("offer_follow_up", {"kind": kind})

    @rule(data=st.data(), t=st.sampled_from(WEIGHTED_TRANSITIONS))
    def send_transition(self, data: st.DataObject, t: Transition) -> None:
        self._new_step()
        self.transition(t, data)

    @rule(
        which=st.sampled_from(
            [
                "close_bare",
                "close_note",
                "accept_bare",
                "accept_contract",
                "accept_half",
            ],
        )
    )
    def send_transition_with_incomplete_body(self, which: str) -> None:
        """Bodies D4 does not promise anything for: only invariants 1-4 apply."""
        self._new_step()
        bodies: dict[str, tuple[str, dict[str, Any]]] = {
            "close_bare": ("close", {"reason": None, "note": None}),
            "close_note": ("close", {"reason": None, "note": "moved away"}),
            "accept_bare": ("accept_follow_up", {"sessions": None, "frequency": None}),
            "accept_contract": (
                "accept_follow_up",
                {"sessions": 4, "frequency": "monthly"},
            ),
            "accept_half": ("accept_follow_up", {"sessions": 4, "frequency": None}),
        }
        name, kwargs = bodies[which]
        self.send(name, kwargs)

    @rule(data=st.data(), same=st.booleans())
    def retry_with_reused_command_id(self, data: st.DataObject, same: bool) -> None:
        self._new_step()
        if not self.sent:
            return
        original: Sent = data.draw(st.sampled_from(self.sent))
        if same:
            self.send(original.name, original.kwargs, retry_of=original)
            return
        others = [
            s
            for s in self.sent
            if (s.name, s.kwargs) != (original.name, original.kwargs)
        ]
        name: str = "reassign"
        kwargs: dict[str, Any] = {"clinician_id": OTHER_CLINICIAN}
        use_other: bool = data.draw(st.booleans())
        if others and use_other:
            other: Sent = data.draw(st.sampled_from(others))
            name, kwargs = other.name, other.kwargs
        self.send(name, kwargs, retry_of=original, same_command=False)

    # --- invariants -------------------------------------------------------------

    @invariant()
    def phase_changes_only_by_declared_transitions(self) -> None:
        assert self.case.phase in PHASES
        for a in self.attempts:
            assert a.phase_after in PHASES
            if a.phase_after == a.phase_before:
                continue
            assert a.name in TRANSITION_METHODS, (
                f"{a.name} moved the case {a.phase_before} → {a.phase_after}"
            )
            t = Transition(a.name)
            assert a.phase_before in sources(t), (a.name, a.phase_before)
            assert (a.phase_before, t.value, a.phase_after) in DECLARED, (
                f"{t.value}: {a.phase_before} → {a.phase_after} is not declared"
            )
        self.visited.add(self.case.phase)
        for phase in sorted(self.visited):
            event(f"reached {phase}")

    @invariant()
    def counted_sessions_within_active_limits(self) -> None:
        case, protocol = self.case, self.protocol
        acute = counted(case)
        extra = sum(
            1
            for d in case.deviations
            if d["rule"] == DeviationRule.beginning_session_limit
        )
        beginning = [s for s in acute if s["phase"] == Phase.beginning]
        assert len(beginning) <= protocol.beginning_sessions.high + extra, (
            f"{len(beginning)} beginning sessions with {extra} deviations"
        )
        if case.contract is not None:
            contracted = case.contract["sessions"]
            assert len(acute) <= contracted, f"{len(acute)} sessions, {case.contract}"
            numbers = [
                s["number"]
                for s in case.sessions
                if not s["follow_up"] and s["number"] is not None
            ]
            assert max(numbers, default=0) <= contracted, (numbers, case.contract)
        end = [s for s in acute if s["phase"] == Phase.end]
        assert len(end) <= protocol.end_sessions.high, f"{len(end)} end sessions"
        for a in self.attempts:
            if a.middle_number is not None:
                number, last = a.middle_number
                assert number <= last, f"middle session {number} > {last}"
        if case.follow_up_contract is not None:
            held = len(counted(case, follow_up=True))
            assert held <= case.follow_up_contract["sessions"], (
                f"{held} follow-up sessions, contract {case.follow_up_contract}"
            )
        else:
            assert not counted(case, follow_up=True)

    @invariant()
    def nothing_is_dated_more_than_30_days_before_the_intake(self) -> None:
        case = self.case
        earliest = (date.fromisoformat(case.intake_on) - INTAKE_GRACE).isoformat()
        days = [m["measured_on"] for m in case.measures]
        days += [s["held_on"] for s in case.sessions]
        days += [m["scheduled_on"] for m in case.missed_sessions]
        assert all(day >= earliest for day in days), (case.intake_on, sorted(days))

    @invariant()
    def the_outcome_shown_is_the_one_the_current_measures_give(self) -> None:
        case = self.case
        if case.outcome is None:
            return
        cls = current_class(case)
        base, final = baseline_and_final(case)
        assert cls is not None and base is not None and final is not None, (
            "a concluded case lost its baseline or final",
            case.measures,
        )
        assert case.outcome["classification"] == cls
        if self.visited_concluded_view():
            shown = case_view(case, None)["outcome"]
            assert shown is not None
            assert (shown["classification"], shown["baseline"], shown["final"]) == (
                cls,
                base["score"],
                final["score"],
            )
        for a in self.attempts:
            if a.class_before is None or a.recorded is None:
                continue
            revised = "OutcomeRevised" in a.recorded
            changed = a.class_before != a.class_after
            assert revised == changed, (a.name, a.class_before, a.class_after)

    def visited_concluded_view(self) -> bool:
        """Reading the full view costs a why-not: once every few steps is enough."""
        self.views += 1
        return self.views % 3 == 1

    @invariant()
    def an_open_offer_follows_the_current_outcome(self) -> None:
        case = self.case
        cls = current_class(case)
        if case.outcome is None or cls is None or case.phase != Phase.concluded:
            return
        if any(o["decision"] is not None for o in case.offers):
            if self.decided_class is not None and cls != self.decided_class:
                assert case.outcome_revised_after_decision
            return
        wanted = automatic(cls, case.prior_episodes)
        offer = case.follow_up_offer
        if wanted is not None:
            assert offer is not None and offer["kind"] == wanted, (cls, offer)
        else:
            assert offer is None or not offer["automatic"], (cls, offer)

    @invariant()
    def safety_and_the_end_phase_follow_section_8(self) -> None:
        case = self.case
        if self.risk is None:
            assert case.risk is None
        else:
            assert case.risk is not None
            flag = {k: case.risk[k] for k in ("item", "instrument", "measured_on")}
            assert flag == {k: self.risk[k] for k in flag}
            assert (case.risk["review"] is not None) == self.risk["reviewed"]
        for a in self.attempts:
            final = a.phase_before in (Phase.closed, Phase.withdrawn)
            review = a.name == "record_risk_review" and a.retry_of is None
            if review and not final and isinstance(a.error, GuardFailed):
                assert [v.rule for v in a.error.violations] == ["no_open_risk_flag"]
                assert self.risk is None or self.risk["reviewed"]
            if a.recorded is None or a.retry_of is not None:
                continue
            if a.name == "record_measure":
                flagged = bool(a.kwargs.get("risk_item"))
                assert ("RiskFlagged" in a.recorded) == flagged, a.recorded
                relapse = bool(a.relapse_expected)
                assert ("RelapseSuspected" in a.recorded) == relapse, (a.kwargs,)
            if a.name == "conclude":
                done = set(a.kwargs["termination_tasks"])
                if a.kwargs["maintenance_discussed"]:
                    done.add("maintenance_discussed")
                assert case.termination_tasks == [t for t in TASKS if t in done]
                assert case.maintenance_discussed == ("maintenance_discussed" in done)

    @invariant()
    def a_case_that_is_not_final_always_has_a_way_forward(self) -> None:
        case = self.case
        if case.is_final or self.forward_checked_at == case.version:
            return
        self.forward_checked_at = case.version
        plan = WayForward(case)
        reached = plan.run()
        event(f"way forward from {case.phase}: {len(plan.log)} commands")
        assert reached, (
            "no way forward from " + case.phase + ":\n" + "\n".join(plan.log)
        )

    @invariant()
    def refused_commands_and_replays_change_nothing(self) -> None:
        for a in self.attempts:
            if a.retry_of is not None and a.same_command:
                assert a.error is None, f"retry of {a.name} refused: {a.error!r}"
                assert a.result is not None and a.result.replayed
                assert a.result.version == a.retry_of.result.version
                assert a.result.session_number == a.retry_of.result.session_number
            elif a.retry_of is not None:
                assert isinstance(a.error, CommandIdReused), (a.name, a.error)
            else:
                assert not isinstance(a.error, CommandIdReused)
                assert a.result is None or not a.result.replayed
            if a.error is not None or a.retry_of is not None:
                assert a.after is not None
                assert a.after.version == a.before.version
                assert a.after.pending == a.before.pending
                assert a.after.state == a.before.state or (
                    pickle.loads(a.after.state) == pickle.loads(a.before.state)
                ), f"{a.name} changed the state"
                assert a.phase_after == a.phase_before

    @invariant()
    def why_not_agrees_with_the_command(self) -> None:
        for a in self.attempts:
            if a.why_not is None:
                continue
            if not a.why_not:
                assert a.error is None, (
                    f"why-not allowed {a.name} in {a.phase_before}, "
                    f"but it was refused: {a.error!r}"
                )
            else:
                assert isinstance(a.error, GuardFailed), (
                    f"why-not refused {a.name} ({[v.rule for v in a.why_not]}), "
                    f"but it gave {a.error!r}"
                )
                assert [v.rule for v in a.error.violations] == [
                    v.rule for v in a.why_not
                ]
                assert list(a.error.violations) == a.why_not

    @invariant()
    def session_numbers_follow_recording_order(self) -> None:
        for follow_up in (False, True):
            numbered = [s for s in self.case.sessions if s["follow_up"] == follow_up]
            numbers = [s["number"] for s in numbered if s["number"] is not None]
            assert numbers == list(range(1, len(numbers) + 1)), numbers
            assert numbers == [] or numbers[-1] == self.last_number[follow_up]
            for s in numbered:
                assert (s["number"] is not None) == (s["kind"] == SessionKind.therapy)
        for a in self.attempts:
            if a.new_session is not None and a.result is not None:
                assert a.result.session_number == a.new_session["number"]
                assert a.new_session["number"] == a.expected_number

    @invariant()
    def outcome_follows_the_measures(self) -> None:
        for a in self.attempts:
            if a.name != "conclude" or a.error is not None or a.retry_of is not None:
                continue
            assert a.expected_outcome is not None
            cls, offer = a.expected_outcome
            assert a.outcome_after == cls
            assert a.offer_after == offer

    @invariant()
    def saved_events_rebuild_the_same_case(self) -> None:
        case = self.case
        self.app.save(case)
        assert not case.pending_events
        rebuilt: TherapyCase = self.app.repository.get(case.id)
        assert isinstance(rebuilt, TherapyCase)
        assert _state(rebuilt) == _state(case)


CaseMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    # The explain phase replays a failure many times over; the notes already
    # print every command of the minimal sequence.
    phases=[p for p in HypothesisPhase if p is not HypothesisPhase.explain],
)
TestCaseStateMachine = CaseMachine.TestCase
