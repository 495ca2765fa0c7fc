"""The treatment contract, its renegotiation, and deviations (domain.md §4)."""

from __future__ import annotations

from ipt_workflow.domain.codes import DeviationRule, Phase
from ipt_workflow.domain.commands import (
    AgreeContract,
    RecordDeviation,
    RenegotiateContract,
)
from ipt_workflow.domain.errors import Violation
from ipt_workflow.domain.facts import CaseFacts
from ipt_workflow.domain.protocols import DEVIATION_CONTRACT_RANGE


def contract_size(facts: CaseFacts, command: AgreeContract) -> int:
    """The sessions agreed: as asked, or the protocol's default."""
    if command.sessions is None:
        return facts.protocol.default_contract_sessions
    return command.sessions


def agree_contract(facts: CaseFacts, command: AgreeContract) -> list[Violation]:
    """No contract yet; a size within the protocol's range that leaves room for a
    middle session and the end phase."""
    if facts.contract is not None:
        return [
            Violation(
                "contract_exists",
                "A contract is already agreed: renegotiate it, with a reason.",
            )
        ]
    count = contract_size(facts, command)
    if count not in facts.protocol.contract_sessions:
        return [_outside_range(facts, count)]
    held = facts.counted_sessions()
    needed = held + 1 + facts.protocol.end_sessions.low
    if count < needed:
        return [
            Violation(
                "contract_below_sessions_owed",
                f"{held} sessions are held already: the contract needs at least "
                f"{needed}, for a middle session and the end phase.",
            )
        ]
    return []


def uses_deviation(facts: CaseFacts, command: RenegotiateContract) -> bool:
    """Does this renegotiation need (and so use up) a contract_range deviation?"""
    return (
        command.sessions not in facts.protocol.contract_sessions
        and facts.unused_deviations(DeviationRule.contract_range) > 0
        and command.sessions in DEVIATION_CONTRACT_RANGE
    )


def renegotiate_contract(
    facts: CaseFacts, command: RenegotiateContract
) -> list[Violation]:
    """A contract to change; a size within range (or a deviation's), not below the
    sessions held and still owed, not over the end phase's maximum; a change."""
    contract = facts.contract
    if contract is None:
        return [contract_missing("There is no contract to renegotiate.")]
    v = []
    count = command.sessions
    if count not in facts.protocol.contract_sessions and not uses_deviation(
        facts, command
    ):
        v.append(_outside_range(facts, count))
    held = facts.counted_sessions()
    end_held = facts.counted_sessions(Phase.end)
    owed = held + max(0, facts.protocol.end_sessions.low - end_held)
    if count < owed:
        v.append(
            Violation(
                "contract_below_sessions_owed",
                f"The contract cannot be smaller than the {held} sessions held "
                f"plus the end-phase sessions still owed ({owed} in all).",
            )
        )
    end_max = facts.protocol.end_sessions.high
    if facts.phase == Phase.end and end_held + (count - held) > end_max:
        v.append(
            Violation(
                "end_phase_over_maximum",
                f"The end phase may have at most {end_max} sessions; this "
                f"contract would make it {end_held + count - held}.",
            )
        )
    frequency = command.frequency or contract["frequency"]
    if count == contract["sessions"] and frequency == contract["frequency"]:
        v.append(
            Violation(
                "contract_unchanged", "The new contract is the same as the current one."
            )
        )
    return v


def contract_missing(message: str) -> Violation:
    return Violation("contract_required", message)


def contract_agreed(facts: CaseFacts) -> list[Violation]:
    """A contract is agreed (the middle phase needs it)."""
    if facts.contract is not None:
        return []
    return [contract_missing("A treatment contract must be agreed.")]


def _outside_range(facts: CaseFacts, count: int) -> Violation:
    allowed = facts.protocol.contract_sessions
    return Violation(
        "contract_outside_range",
        f"{facts.protocol.title} contracts are {allowed} sessions, not {count}; "
        f"a recorded contract_range deviation allows {DEVIATION_CONTRACT_RANGE}.",
    )


def record_deviation(facts: CaseFacts, command: RecordDeviation) -> list[Violation]:
    """An extra beginning session only in the beginning; one open contract_range
    deviation at a time."""
    if (
        command.rule is DeviationRule.beginning_session_limit
        and facts.phase != Phase.beginning
    ):
        return [
            Violation(
                "deviation_not_applicable",
                "An extra beginning session can be allowed only in the beginning "
                "phase.",
            )
        ]
    if command.rule is DeviationRule.contract_range and facts.unused_deviations(
        DeviationRule.contract_range
    ):
        return [
            Violation(
                "deviation_already_open",
                "A contract_range deviation is already recorded and not yet used by "
                "a renegotiation.",
            )
        ]
    return []
