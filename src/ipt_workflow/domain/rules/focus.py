"""The interpersonal inventory and the focus (domain.md §4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ipt_workflow.domain.commands import AgreeFocus, ChangeDisputeStage, RecordInventory
from ipt_workflow.domain.errors import Violation
from ipt_workflow.domain.facts import CaseFacts
from ipt_workflow.domain.protocols import ProblemArea


def inventory_recorded(facts: CaseFacts) -> list[Violation]:
    """The interpersonal inventory is recorded (the focus and the middle need it)."""
    if facts.inventory is not None:
        return []
    return [
        Violation(
            "inventory_required", "The interpersonal inventory must be recorded first."
        )
    ]


def agree_focus(facts: CaseFacts, command: AgreeFocus) -> list[Violation]:
    """One primary area the protocol works on, a secondary only with a reason, grief
    only after a death, a role dispute with its stage, and the client's agreement."""
    v = inventory_recorded(facts)
    primary, secondary = command.primary_area, command.secondary_area
    areas = [a for a in (primary, secondary) if a is not None]
    for area in areas:
        if area not in facts.protocol.problem_areas:
            v.append(
                Violation(
                    "problem_area_not_in_protocol",
                    f"{facts.protocol.title} does not work on {area.value}.",
                )
            )
    if secondary is not None and secondary == primary:
        v.append(
            Violation(
                "secondary_area_repeats_primary",
                "The secondary area must differ from the primary area.",
            )
        )
    if secondary is not None and command.secondary_reason is None:
        v.append(
            Violation(
                "secondary_reason_required", "A secondary problem area needs a reason."
            )
        )
    if secondary is None and command.secondary_reason is not None:
        v.append(
            Violation(
                "secondary_reason_without_area",
                "A reason for a secondary area was given without the area.",
            )
        )
    if facts.inventory is not None:
        v += _grief_holds(areas, facts.inventory["relationships"])
    if ProblemArea.role_dispute in areas and command.dispute_stage is None:
        v.append(
            Violation(
                "dispute_stage_required",
                "A role dispute needs its stage: renegotiation, impasse or "
                "dissolution.",
            )
        )
    if ProblemArea.role_dispute not in areas and command.dispute_stage is not None:
        v.append(
            Violation(
                "dispute_stage_without_role_dispute",
                "A dispute stage applies only to a role dispute focus.",
            )
        )
    if not command.client_agreed:
        v.append(
            Violation(
                "client_agreement_required", "The client must agree to the focus."
            )
        )
    return v


def change_dispute_stage(
    facts: CaseFacts, command: ChangeDisputeStage
) -> list[Violation]:
    """The focus is a role dispute, and the stage is a new one."""
    focus = facts.focus
    if focus is None or ProblemArea.role_dispute not in (
        focus["primary_area"],
        focus["secondary_area"],
    ):
        return [
            Violation(
                "focus_not_role_dispute",
                "A dispute stage can change only when the focus is a role dispute.",
            )
        ]
    if focus["dispute_stage"] == command.stage:
        return [
            Violation(
                "dispute_stage_unchanged",
                f"The dispute is already at the {command.stage.value} stage.",
            )
        ]
    return []


def focus_agreed(facts: CaseFacts) -> list[Violation]:
    """A focus is agreed (the middle phase needs it)."""
    if facts.focus is not None:
        return []
    return [Violation("focus_required", "A focus (problem area) must be agreed.")]


def record_inventory(facts: CaseFacts, command: RecordInventory) -> list[Violation]:
    """A new inventory still holds the agreed focus (domain.md §7)."""
    if facts.focus is None:
        return []
    rows = [r.as_dict() for r in command.relationships]
    return _grief_holds(_areas(facts.focus), rows, replacing=True)


def focus_holds(facts: CaseFacts) -> list[Violation]:
    """The agreed focus holds on the current inventory (the middle phase needs it)."""
    if facts.focus is None or facts.inventory is None:
        return []
    return _grief_holds(_areas(facts.focus), facts.inventory["relationships"])


def _areas(focus: Mapping[str, Any]) -> list[str]:
    return [a for a in (focus["primary_area"], focus["secondary_area"]) if a]


def _grief_holds(
    areas: Sequence[str],
    relationships: Sequence[Mapping[str, Any]],
    *,
    replacing: bool = False,
) -> list[Violation]:
    if ProblemArea.grief not in areas or any(r["deceased"] for r in relationships):
        return []
    message = (
        "Grief is a focus only after a death: mark the relationship as deceased "
        "in the inventory, or choose role transition."
    )
    if replacing:
        message = (
            "The agreed focus is grief, which needs a relationship marked deceased: "
            "this inventory has none. Keep the deceased relationship, or agree "
            "another focus first."
        )
    return [Violation("grief_needs_deceased_relationship", message)]
