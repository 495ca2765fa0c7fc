"""The guards of the acute course's transitions (domain.md §4): start middle, start
end, conclude, and withdraw. The follow-up transitions' guards are in follow_up."""

from __future__ import annotations

from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import Conclude, StartEnd, StartMiddle, Withdraw
from ipt_workflow.domain.errors import Violation
from ipt_workflow.domain.facts import CaseFacts
from ipt_workflow.domain.rules.contract import contract_agreed
from ipt_workflow.domain.rules.focus import (
    focus_agreed,
    focus_holds,
    inventory_recorded,
)


def start_middle(facts: CaseFacts, command: StartMiddle | None) -> list[Violation]:
    """A counted beginning session, a baseline measure, the inventory, the focus and
    the contract; for fb-ipt, a session attended by a parent."""
    v = _session_held_in(facts, Phase.beginning)
    if facts.baseline is None:
        v.append(
            Violation(
                "baseline_measure_required",
                "A baseline symptom measure must be recorded before the middle phase.",
            )
        )
    v += inventory_recorded(facts) + focus_agreed(facts) + focus_holds(facts)
    v += contract_agreed(facts)
    if (
        facts.protocol.parent_session_required_before_middle
        and not facts.parent_sessions()
    ):
        v.append(
            Violation(
                "parent_session_required",
                f"{facts.protocol.title} needs a session attended by a parent "
                "before the middle phase.",
            )
        )
    return v


def start_end(facts: CaseFacts, command: StartEnd | None) -> list[Violation]:
    """A counted middle session; the sessions left in the contract are within the
    end phase's range."""
    v = _session_held_in(facts, Phase.middle)
    left = facts.acute_sessions_remaining
    end_range = facts.protocol.end_sessions
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


def conclude(facts: CaseFacts, command: Conclude | None) -> list[Violation]:
    """The end phase's minimum sessions held; a measure taken in the end phase with
    the baseline's instrument."""
    v = []
    held, needed = facts.counted_sessions(Phase.end), facts.protocol.end_sessions.low
    if held < needed:
        v.append(
            Violation(
                "end_sessions_required",
                f"The end phase needs at least {needed} sessions; {held} held.",
            )
        )
    if facts.final_measure is None:
        instrument = facts.baseline["instrument"] if facts.baseline else "baseline"
        v.append(
            Violation(
                "end_measure_required",
                f"A {instrument} measure (the baseline's instrument) must be "
                "recorded during the end phase.",
            )
        )
    return v


def withdraw(facts: CaseFacts, command: Withdraw | None) -> list[Violation]:
    """A withdrawal reason (checked as input); allowed from every phase not final."""
    return []


def _session_held_in(facts: CaseFacts, phase: Phase) -> list[Violation]:
    """A counted session held in `phase` (the next phase needs one)."""
    if facts.counted_sessions(phase):
        return []
    message = f"At least one counted session must be held in the {phase.value} phase."
    if phase == Phase.beginning:
        return [Violation("beginning_session_required", message)]
    return [Violation("middle_session_required", message)]
