"""The phase machine: the one table of phases, transitions and their guards.

The aggregate asks this machine whether a transition may happen and which phase it
leads to, then records the event itself. Replaying events never runs the machine.
Each transition has one guard that returns *every* unmet rule, so a refusal and the
case's "why not" always agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from statemachine import StateChart
from statemachine.exceptions import TransitionNotAllowed
from statemachine.states import States

from ipt_workflow.domain.measures import FollowUpKind
from ipt_workflow.domain.rules import GuardFailed, Violation

if TYPE_CHECKING:
    from ipt_workflow.domain.case import TherapyCase


class Phase(StrEnum):
    beginning = "beginning"
    middle = "middle"
    end = "end"
    concluded = "concluded"
    follow_up = "follow_up"
    closed = "closed"
    withdrawn = "withdrawn"


FINAL_PHASES = frozenset({Phase.closed, Phase.withdrawn})
ACUTE_PHASES = (Phase.beginning, Phase.middle, Phase.end)


class Transition(StrEnum):
    start_middle = "start_middle"
    start_end = "start_end"
    conclude = "conclude"
    accept_follow_up = "accept_follow_up"
    decline_follow_up = "decline_follow_up"
    close = "close"
    withdraw = "withdraw"


@dataclass(frozen=True)
class TransitionInput:
    """What the caller sends with a transition that its guard reads.

    The why-not view passes no input: it answers for a caller who will send a
    complete, valid body, so only the case's own state can refuse.
    """

    reason: str | None = None
    follow_up_contract: bool = False


Guard = Callable[["TherapyCase", TransitionInput | None], list[Violation]]


def _start_middle(case: TherapyCase, _: TransitionInput | None) -> list[Violation]:
    """A counted beginning session, a baseline measure, the inventory, the focus and
    the contract; for fb-ipt, a session attended by a parent."""
    v = []
    if case.counted_sessions(Phase.beginning) == 0:
        v.append(
            Violation(
                "beginning_session_required",
                "At least one counted session must be held in the beginning phase.",
            )
        )
    if case.baseline is None:
        v.append(
            Violation(
                "baseline_measure_required",
                "A baseline symptom measure must be recorded before the middle phase.",
            )
        )
    if case.inventory is None:
        v.append(
            Violation(
                "inventory_required",
                "The interpersonal inventory must be recorded.",
            )
        )
    if case.focus is None:
        v.append(Violation("focus_required", "A focus (problem area) must be agreed."))
    if case.contract is None:
        v.append(Violation("contract_required", "A treatment contract must be agreed."))
    if (
        case.protocol.parent_session_required_before_middle
        and not case.parent_sessions()
    ):
        v.append(
            Violation(
                "parent_session_required",
                f"{case.protocol.title} needs a session attended by a parent "
                "before the middle phase.",
            )
        )
    return v


def _start_end(case: TherapyCase, _: TransitionInput | None) -> list[Violation]:
    """A counted middle session; the sessions left in the contract are within the
    end phase's range."""
    v = []
    if case.counted_sessions(Phase.middle) == 0:
        v.append(
            Violation(
                "middle_session_required",
                "At least one counted session must be held in the middle phase.",
            )
        )
    left = case.acute_sessions_remaining
    end_range = case.protocol.end_sessions
    if left is not None and left not in end_range:
        v.append(
            Violation(
                "sessions_left_outside_end_range",
                f"The end phase must have {end_range} sessions; the contract "
                f"leaves {left}. Renegotiate the contract or hold more middle "
                "sessions first.",
            )
        )
    return v


def _conclude(case: TherapyCase, _: TransitionInput | None) -> list[Violation]:
    """The end phase's minimum sessions held; a measure taken in the end phase with the
    baseline's instrument."""
    v = []
    held, needed = case.counted_sessions(Phase.end), case.protocol.end_sessions.low
    if held < needed:
        v.append(
            Violation(
                "end_sessions_required",
                f"The end phase needs at least {needed} sessions; {held} held.",
            )
        )
    if case.final_measure is None:
        instrument = case.baseline["instrument"] if case.baseline else "baseline"
        v.append(
            Violation(
                "end_measure_required",
                f"A {instrument} measure (the baseline's instrument) must be "
                "recorded during the end phase.",
            )
        )
    return v


def _accept_follow_up(
    case: TherapyCase, given: TransitionInput | None
) -> list[Violation]:
    """An open offer; for continuation or maintenance, a follow-up contract. Accepting
    a referral closes the case."""
    offer = case.follow_up_offer
    if offer is None:
        return [_no_open_offer()]
    needs_contract = offer["kind"] != FollowUpKind.referral
    if given is not None and needs_contract and not given.follow_up_contract:
        return [
            Violation(
                "follow_up_contract_required",
                f"Accepting {offer['kind']} needs a follow-up contract "
                "(sessions and frequency).",
            )
        ]
    return []


def _decline_follow_up(case: TherapyCase, _: TransitionInput | None) -> list[Violation]:
    """An open offer."""
    return [] if case.follow_up_offer is not None else [_no_open_offer()]


def _close(case: TherapyCase, given: TransitionInput | None) -> list[Violation]:
    """From concluded: no open offer. From follow-up: a follow-up session held, or a
    reason."""
    if case.phase == Phase.concluded and case.follow_up_offer is not None:
        return [
            Violation(
                "offer_awaiting_decision",
                f"A {case.follow_up_offer['kind']} offer is open: record the "
                "client's decision before closing.",
            )
        ]
    if (
        case.phase == Phase.follow_up
        and given is not None
        and case.follow_up_sessions_held == 0
        and given.reason is None
    ):
        return [
            Violation(
                "follow_up_session_or_reason_required",
                "No follow-up session has been held: give a reason to close.",
            )
        ]
    return []


def _withdraw(_case: TherapyCase, _: TransitionInput | None) -> list[Violation]:
    """A withdrawal reason (checked as input); allowed from every phase not final."""
    return []


def _no_open_offer() -> Violation:
    return Violation("no_open_offer", "There is no open follow-up offer.")


GUARDS: Mapping[Transition, Guard] = MappingProxyType(
    {
        Transition.start_middle: _start_middle,
        Transition.start_end: _start_end,
        Transition.conclude: _conclude,
        Transition.accept_follow_up: _accept_follow_up,
        Transition.decline_follow_up: _decline_follow_up,
        Transition.close: _close,
        Transition.withdraw: _withdraw,
    }
)


class PhaseMachine(StateChart["_Probe"]):
    """The phases of an IPT case and the seven transitions between them."""

    allow_event_without_transition = False
    catch_errors_as_events = False
    enable_self_transition_entries = False
    atomic_configuration_update = True

    _ = States.from_enum(
        Phase,
        initial=Phase.beginning,
        final=[Phase.closed, Phase.withdrawn],
        use_enum_instance=False,
    )

    start_middle = _.beginning.to(_.middle, validators="check_guard")
    start_end = _.middle.to(_.end, validators="check_guard")
    conclude = _.end.to(_.concluded, validators="check_guard")
    accept_follow_up = _.concluded.to(
        _.follow_up, validators="check_guard", unless="referral_offered"
    ) | _.concluded.to(_.closed, validators="check_guard", cond="referral_offered")
    decline_follow_up = _.concluded.to.itself(validators="check_guard")
    close = _.concluded.to(_.closed, validators="check_guard") | _.follow_up.to(
        _.closed, validators="check_guard"
    )
    withdraw = (
        _.beginning.to(_.withdrawn, validators="check_guard")
        | _.middle.to(_.withdrawn, validators="check_guard")
        | _.end.to(_.withdrawn, validators="check_guard")
        | _.concluded.to(_.withdrawn, validators="check_guard")
        | _.follow_up.to(_.withdrawn, validators="check_guard")
    )

    def check_guard(
        self, event: Any, case: TherapyCase, given: TransitionInput | None = None
    ) -> None:
        violations = GUARDS[Transition(str(event))](case, given)
        if violations:
            raise GuardFailed(violations)

    def referral_offered(self, case: TherapyCase) -> bool:
        offer = case.follow_up_offer
        return offer is not None and offer["kind"] == FollowUpKind.referral


class _Probe:
    """A throwaway model: the machine moves this, never the aggregate."""

    def __init__(self, phase: str) -> None:
        self.phase = phase


def _machine(phase: str) -> PhaseMachine:
    if phase not in PhaseMachine.states_map:
        raise ValueError(f"unknown phase {phase!r}")
    return PhaseMachine(model=_Probe(phase), state_field="phase")


def sources(transition: Transition) -> tuple[Phase, ...]:
    """The phases a transition may start from, in the order of the phase table."""
    return tuple(
        Phase(state.value)
        for state in PhaseMachine.states
        if transition.value in state.transitions.unique_events
    )


def _wrong_phase(transition: Transition, phase: str) -> Violation:
    names = " or ".join(p.value.replace("_", "-") for p in sources(transition))
    label = transition.value.replace("_", " ").capitalize()
    where = phase.replace("_", "-")
    state = where if phase in FINAL_PHASES else f"in the {where} phase"
    return Violation(
        "wrong_phase",
        f"{label} is possible only in the {names} phase; the case is {state}.",
    )


def decide(case: TherapyCase, transition: Transition, given: TransitionInput) -> Phase:
    """The phase `transition` leads to from the case's phase, or GuardFailed."""
    machine = _machine(case.phase)
    if transition.value not in {e.id for e in machine.allowed_events}:
        raise GuardFailed([_wrong_phase(transition, case.phase)])
    try:
        machine.send(transition.value, case=case, given=given)
    except TransitionNotAllowed:
        raise GuardFailed([_wrong_phase(transition, case.phase)]) from None
    return Phase(machine.model.phase)


def why_not(case: TherapyCase) -> dict[Transition, list[Violation]]:
    """For every transition, every reason it may not happen now (empty: allowed)."""
    allowed = {e.id for e in _machine(case.phase).allowed_events}
    return {
        t: GUARDS[t](case, None)
        if t.value in allowed
        else [_wrong_phase(t, case.phase)]
        for t in Transition
    }
