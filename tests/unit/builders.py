"""Builders of TherapyCase aggregates in a given state, in memory, on a fixed day.

Each builder drives a case through the aggregate's own commands, the way a clinic
would, so a state built here is a state the rules allow. Every command gets a
fresh CommandContext (and so a fresh command id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from ipt_workflow.domain import events
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    Command,
    CommandContext,
    CommandResult,
    Conclude,
    OpenCase,
)
from ipt_workflow.domain.courses import Course
from ipt_workflow.domain.errors import GuardFailed, InvalidInput

TODAY = date(2026, 3, 2)
TOMORROW = TODAY + timedelta(days=1)
DAY_AFTER_TOMORROW = TODAY + timedelta(days=2)

PROTOCOL_NAMES = ("ipt", "ipt-a", "fb-ipt", "ipt-g", "ipt-b")


@dataclass(frozen=True)
class Spec:
    """The version-1 parameters of one protocol, as domain.md §3 states them."""

    name: str
    typical_age: int
    default_contract: int
    beginning_max: int
    end_min: int
    end_max: int

    @property
    def middle_last(self) -> int:
        """The last session number the middle phase takes at the default contract."""
        return self.default_contract - self.end_min


SPECS = {
    spec.name: spec
    for spec in (
        Spec("ipt", 34, default_contract=16, beginning_max=3, end_min=2, end_max=3),
        Spec("ipt-a", 15, default_contract=12, beginning_max=4, end_min=2, end_max=3),
        Spec("fb-ipt", 9, default_contract=14, beginning_max=5, end_min=2, end_max=3),
        Spec("ipt-g", 41, default_contract=20, beginning_max=5, end_min=2, end_max=5),
        Spec("ipt-b", 52, default_contract=8, beginning_max=2, end_min=2, end_max=2),
    )
}


def ctx(
    command_id: str | None = None, on_behalf_of: str | None = None
) -> CommandContext:
    """A command context for today, with a fresh command id unless one is given."""
    if command_id is None:
        return CommandContext(
            recorded_by="actor-1", today=TODAY, on_behalf_of=on_behalf_of
        )
    return CommandContext(
        recorded_by="actor-1",
        today=TODAY,
        command_id=command_id,
        on_behalf_of=on_behalf_of,
    )


def course(protocol: str = "ipt", **details: Any) -> Course:
    """The sample course of `protocol`, given on TODAY."""
    return Course(protocol, today=TODAY, **details)


def run(case: TherapyCase, *commands: Command) -> CommandResult:
    """Give the case each command in turn, each with a fresh context."""
    result = None
    for command in commands:
        result = case.handle(ctx(), command)
    assert result is not None
    return result


def open_case(
    protocol: str = "ipt",
    age: int | None = None,
    prior_episodes: int = 0,
    intake_on: date | None = None,
) -> TherapyCase:
    """A case just opened under `protocol`, for a client of a suitable age (its
    intake on `intake_on`, by default the day it is opened)."""
    opening = course(protocol, age=age, prior_episodes=prior_episodes).opening()
    if intake_on is not None:
        opening = OpenCase.parse(
            today=TODAY, **{**opening.params(), "intake_on": intake_on}
        )
    return TherapyCase.open(ctx(), opening)


def relationship(role: str = "partner", **flags: Any) -> dict[str, Any]:
    return {"role": role, "closeness": 1, **flags}


def record_inventory(case: TherapyCase, deceased: bool = False) -> CommandResult:
    return run(case, course(case.protocol_id).inventory(deceased))


def agree_focus(
    case: TherapyCase, area: str = "role_transition", **details: Any
) -> CommandResult:
    return run(case, course(case.protocol_id).focus(area, **details))


def measure(
    case: TherapyCase, score: int, instrument: str | None = None, on: date = TODAY
) -> CommandResult:
    return run(case, course(case.protocol_id).measure(score, instrument, on))


def session(
    case: TherapyCase,
    kind: str = "therapy",
    attendees: Sequence[str] = ("client",),
    strategies: Sequence[str] = (),
    communication_aspects: Sequence[str] = (),
    held_on: date = TODAY,
    minutes: int = 50,
) -> CommandResult:
    command = course(case.protocol_id).session(
        held_on=held_on,
        minutes=minutes,
        attendees=list(attendees),
        kind=kind,
        strategies=list(strategies),
        communication_aspects=list(communication_aspects),
    )
    return run(case, command)


def sessions(case: TherapyCase, count: int, **details: Any) -> list[int | None]:
    """Hold `count` sessions; the numbers the case gave them."""
    return [session(case, **details).session_number for _ in range(count)]


def sessions_until_refused(
    case: TherapyCase, **details: Any
) -> tuple[list[int | None], list[str]]:
    """Hold sessions until the case refuses one: the numbers it gave, and the
    rules of the refusal."""
    numbers: list[int | None] = []
    for _ in range(40):
        try:
            numbers.append(session(case, **details).session_number)
        except GuardFailed as refused:
            return numbers, rules_of(refused)
    raise AssertionError("the case never refused a session")


def first_session(case: TherapyCase) -> CommandResult:
    """The first counted session, with what the protocol needs around it."""
    return run(case, *course(case.protocol_id).first_session())


def driven(
    to: Phase, protocol: str = "ipt", prior_episodes: int = 0, **details: Any
) -> TherapyCase:
    """A case brought to phase `to` by the sample course's commands."""
    plan = course(protocol, prior_episodes=prior_episodes, **details)
    case = TherapyCase.open(ctx(), plan.opening())
    run(case, *plan.commands(to))
    return case


def beginning_ready(
    protocol: str = "ipt",
    baseline: int | None = None,
    instrument: str | None = None,
    prior_episodes: int = 0,
    contract: int | None = None,
) -> TherapyCase:
    """A case in the beginning phase that meets every rule of start_middle."""
    plan = course(
        protocol,
        baseline=baseline,
        instrument=instrument,
        prior_episodes=prior_episodes,
        contract=contract,
    )
    case = TherapyCase.open(ctx(), plan.opening())
    run(case, *plan.beginning_ready())
    return case


def in_middle(protocol: str = "ipt", **details: Any) -> TherapyCase:
    """A case just moved to the middle phase, with one beginning session held."""
    return driven(Phase.middle, protocol, **details)


def in_end(protocol: str = "ipt", **details: Any) -> TherapyCase:
    """A case just moved to the end phase, the middle phase held to its limit."""
    return driven(Phase.end, protocol, **details)


def ready_to_conclude(
    protocol: str = "ipt",
    baseline: int | None = None,
    final: int | None = None,
    instrument: str | None = None,
    prior_episodes: int = 0,
) -> TherapyCase:
    """A case in the end phase with its minimum sessions and a final measure."""
    plan = course(
        protocol,
        baseline=baseline,
        final=final,
        instrument=instrument,
        prior_episodes=prior_episodes,
    )
    case = TherapyCase.open(ctx(), plan.opening())
    *before, conclude = plan.commands(Phase.concluded)
    assert isinstance(conclude, Conclude)
    run(case, *before)
    return case


def concluded(
    protocol: str = "ipt",
    baseline: int | None = None,
    final: int | None = None,
    instrument: str | None = None,
    prior_episodes: int = 0,
) -> TherapyCase:
    """A concluded case. phq9 20 → 8 is a response: a continuation offer is open."""
    case = ready_to_conclude(protocol, baseline, final, instrument, prior_episodes)
    run(case, Conclude.parse())
    return case


def concluded_in_remission(protocol: str = "ipt") -> TherapyCase:
    """A concluded case in remission after no prior episodes: no offer is open."""
    return concluded(protocol, baseline=20, final=3)


def concluded_with_referral(protocol: str = "ipt") -> TherapyCase:
    """A concluded case with no response: a referral is offered."""
    return concluded(protocol, baseline=20, final=18)


def in_follow_up(protocol: str = "ipt", follow_up_sessions: int = 4) -> TherapyCase:
    """A case whose client accepted continuation IPT for `follow_up_sessions`."""
    case = concluded(protocol)
    run(case, AcceptFollowUp.parse(sessions=follow_up_sessions, frequency="monthly"))
    return case


def closed(protocol: str = "ipt") -> TherapyCase:
    return driven(Phase.closed, protocol, final=3)


def withdrawn(protocol: str = "ipt") -> TherapyCase:
    return driven(Phase.withdrawn, protocol)


def recorded(case: TherapyCase) -> tuple[int, int]:
    """What a case has recorded so far: pending events and version."""
    return len(case.pending_events), case.version


def new_events(case: TherapyCase) -> list[Any]:
    """Collect the case's pending events (each one of the case's own events)."""
    found = []
    for event in case.collect_events():
        assert isinstance(event, events.CaseEvent)
        found.append(event)
    return found


def names(events: Sequence[object]) -> list[str]:
    return [type(e).__name__ for e in events]


def rules_of(refused: GuardFailed) -> list[str]:
    """The rule codes of a refusal, in its order."""
    return [v.rule for v in refused.violations]


def fields_of(invalid: InvalidInput) -> list[str]:
    """The fields named by a bad-input refusal, in its order."""
    return [e.field for e in invalid.errors]


def refusal(case: TherapyCase, command: Command) -> tuple[list[str], bool]:
    """The rule codes a refused command names, and whether it recorded nothing."""
    before = recorded(case)
    with pytest.raises(GuardFailed) as refused:
        case.handle(ctx(), command)
    return rules_of(refused.value), recorded(case) == before
