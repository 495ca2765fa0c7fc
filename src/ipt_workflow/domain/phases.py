"""The one table of phases: the transitions and their guards, and where every other
command may run (domain.md §2 and the "allowed in" column of §4).

The aggregate asks this module whether a command may run in the case's phase and,
for a transition, which phase it leads to; then it records the event itself.
Replaying events never runs the machine. Each transition has one guard that returns
*every* unmet rule, so a refusal and the case's "why not" always agree.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any

from statemachine import StateChart
from statemachine.exceptions import TransitionNotAllowed
from statemachine.states import States

from ipt_workflow.domain import commands as c
from ipt_workflow.domain.codes import (
    ACUTE_PHASES,
    FINAL_PHASES,
    NON_FINAL_PHASES,
    Phase,
    Transition,
)
from ipt_workflow.domain.commands import Command, RecordSession
from ipt_workflow.domain.errors import GuardFailed, Violation
from ipt_workflow.domain.facts import CaseFacts
from ipt_workflow.domain.protocols import SessionKind
from ipt_workflow.domain.rules import follow_up, transitions

ACUTE = frozenset(ACUTE_PHASES)

ALLOWED_IN: Mapping[type[Command], frozenset[Phase]] = MappingProxyType(
    {
        c.RecordInventory: frozenset({Phase.beginning}),
        c.AgreeFocus: frozenset({Phase.beginning}),
        c.ChangeDisputeStage: ACUTE,
        c.AgreeContract: frozenset({Phase.beginning}),
        c.RenegotiateContract: ACUTE,
        c.RecordDeviation: ACUTE,
        c.RecordMeasure: NON_FINAL_PHASES,
        c.RecordRiskReview: NON_FINAL_PHASES,
        c.RecordMissedSession: ACUTE | {Phase.follow_up},
        c.CorrectEntry: NON_FINAL_PHASES,
        c.Reassign: NON_FINAL_PHASES,
        c.OfferFollowUp: frozenset({Phase.concluded}),
    }
)
"""Where each command that is not a transition may run."""

SESSION_PHASES: Mapping[SessionKind, frozenset[Phase]] = MappingProxyType(
    {
        SessionKind.therapy: ACUTE | {Phase.follow_up},
        SessionKind.engagement: frozenset({Phase.beginning}),
        SessionKind.individual_pre_group: frozenset({Phase.beginning}),
        SessionKind.individual_mid_group: frozenset({Phase.middle, Phase.end}),
        SessionKind.individual_post_group: frozenset({Phase.end, Phase.concluded}),
    }
)
"""Where each kind of session may be recorded (uncounted kinds: §3 of domain.md)."""

SESSION_SUBJECTS: Mapping[SessionKind, str] = MappingProxyType(
    {
        SessionKind.therapy: "A session",
        SessionKind.engagement: "An engagement session",
        SessionKind.individual_pre_group: "An individual pre-group meeting",
        SessionKind.individual_mid_group: "An individual mid-group meeting",
        SessionKind.individual_post_group: "An individual post-group meeting",
    }
)

TRANSITIONS: Mapping[type[Command], Transition] = MappingProxyType(
    {
        c.StartMiddle: Transition.start_middle,
        c.StartEnd: Transition.start_end,
        c.Conclude: Transition.conclude,
        c.AcceptFollowUp: Transition.accept_follow_up,
        c.DeclineFollowUp: Transition.decline_follow_up,
        c.Close: Transition.close,
        c.Withdraw: Transition.withdraw,
    }
)
"""The command that makes each transition."""

TRANSITION_COMMANDS: Mapping[Transition, type[Command]] = MappingProxyType(
    {t: c for c, t in TRANSITIONS.items()}
)

Guard = Callable[[CaseFacts, Any], list[Violation]]

GUARDS: Mapping[Transition, Guard] = MappingProxyType(
    {
        Transition.start_middle: transitions.start_middle,
        Transition.start_end: transitions.start_end,
        Transition.conclude: transitions.conclude,
        Transition.accept_follow_up: follow_up.accept_follow_up,
        Transition.decline_follow_up: follow_up.decline_follow_up,
        Transition.close: follow_up.close,
        Transition.withdraw: transitions.withdraw,
    }
)
"""Each transition's one guard: every unmet rule, given the command (None: why-not
asks for a caller who will send a complete, valid command)."""


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

    def check_guard(self, event: Any, facts: CaseFacts, command: Command) -> None:
        violations = GUARDS[Transition(str(event))](facts, command)
        if violations:
            raise GuardFailed(violations)

    def referral_offered(self, facts: CaseFacts) -> bool:
        return follow_up.referral_offered(facts)


class _Probe:
    """A throwaway model: the machine moves this, never the aggregate."""

    def __init__(self, phase: str) -> None:
        self.phase = phase


def _machine(phase: str) -> PhaseMachine:
    if phase not in PhaseMachine.states_map:
        raise ValueError(f"unknown phase {phase!r}")
    return PhaseMachine(model=_Probe(phase), state_field="phase")


@functools.cache
def sources(transition: Transition) -> tuple[Phase, ...]:
    """The phases a transition may start from, in the order of the phase table."""
    return tuple(
        Phase(state.value)
        for state in PhaseMachine.states
        if transition.value in state.transitions.unique_events
    )


def wrong_phase(subject: str, allowed: Collection[Phase], phase: str) -> Violation:
    """The one wording for "not in this phase"."""
    names = [p.value.replace("_", "-") for p in Phase if p in allowed]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    where = phase.replace("_", "-")
    state = where if phase in FINAL_PHASES else f"in the {where} phase"
    return Violation(
        "wrong_phase",
        f"{subject} is possible only in the {listed} phase; the case is {state}.",
    )


def _subject(name: str) -> str:
    return name.replace("_", " ").capitalize()


def refusal(facts: CaseFacts, command: Command) -> list[Violation]:
    """Why a command that is not a transition may not run in the case's phase."""
    if isinstance(command, RecordSession):
        return _session_refusal(facts, command)
    allowed = ALLOWED_IN[type(command)]
    if facts.current_phase in allowed:
        return []
    return [wrong_phase(_subject(command.name), allowed, facts.phase)]


def _session_refusal(facts: CaseFacts, command: RecordSession) -> list[Violation]:
    allowed = SESSION_PHASES[command.kind]
    if facts.current_phase in allowed:
        return []
    if not facts.is_final and command.kind not in facts.protocol.session_kinds:
        return []  # the protocol's rule says why: it has no such sessions at all
    return [wrong_phase(SESSION_SUBJECTS[command.kind], allowed, facts.phase)]


def decide(facts: CaseFacts, command: Command) -> Phase:
    """The phase a transition command leads to from the case's phase, or GuardFailed."""
    transition = TRANSITIONS[type(command)]
    if transition.value not in _events_from(facts.phase):
        raise GuardFailed([_transition_refused(transition, facts.phase)])
    machine = _machine(facts.phase)
    try:
        machine.send(transition.value, facts=facts, command=command)
    except TransitionNotAllowed:
        raise GuardFailed([_transition_refused(transition, facts.phase)]) from None
    return Phase(machine.model.phase)


def _transition_refused(transition: Transition, phase: str) -> Violation:
    return wrong_phase(_subject(transition.value), sources(transition), phase)


@functools.cache
def _events_from(phase: str) -> frozenset[str]:
    """The transitions the table declares from a phase, before any guard is asked.

    Building a machine costs more than the rest of a case's view (issue 12's
    profile); what it allows from a phase is a fact of the table, so it is asked once.
    """
    return frozenset(e.id for e in _machine(phase).allowed_events)


def why_not(facts: CaseFacts) -> dict[Transition, list[Violation]]:
    """For every transition, every reason it may not happen now (empty: allowed)."""
    allowed = _events_from(facts.phase)
    return {
        t: GUARDS[t](facts, None)
        if t.value in allowed
        else [_transition_refused(t, facts.phase)]
        for t in Transition
    }
