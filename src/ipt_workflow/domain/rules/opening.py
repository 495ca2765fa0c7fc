"""Opening a case, its intake date, and who holds it (domain.md §4 open case and
reassign; §7 dates)."""

from __future__ import annotations

from datetime import date, timedelta

from ipt_workflow.domain.commands import OpenCase, Reassign
from ipt_workflow.domain.errors import Violation
from ipt_workflow.domain.facts import CaseFacts


def open_case(command: OpenCase) -> list[Violation]:
    """The client's age suits the protocol."""
    protocol = command.resolved
    if command.client_age in protocol.age:
        return []
    return [
        Violation(
            "age_outside_protocol",
            f"{protocol.title} is for clients aged {protocol.age}; "
            f"this client is {command.client_age}.",
        )
    ]


def reassign(facts: CaseFacts, command: Reassign) -> list[Violation]:
    """Another clinician than the one the case is assigned to."""
    if command.clinician_id != facts.clinician_id:
        return []
    return [
        Violation(
            "clinician_unchanged", "The case is already assigned to this clinician."
        )
    ]


INTAKE_GRACE = timedelta(days=30)
"""How long before intake a session or measure may be dated (domain.md §7)."""


def dated_from_intake(facts: CaseFacts, day: str, what: str) -> list[Violation]:
    """A session or measure is dated no more than 30 days before the intake."""
    earliest = date.fromisoformat(facts.intake_on) - INTAKE_GRACE
    if date.fromisoformat(day) >= earliest:
        return []
    return [
        Violation(
            "dated_before_intake",
            f"{what} is dated {day}, more than 30 days before this course's intake "
            f"on {facts.intake_on}; correct the date, or the case's intake date.",
        )
    ]
