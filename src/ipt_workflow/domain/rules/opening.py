"""Opening a case, and who holds it (domain.md §4: open case, reassign)."""

from __future__ import annotations

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
