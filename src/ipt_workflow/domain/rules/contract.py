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
    """No contract yet; a size within the protocol's range, not below the floor."""
    if facts.contract is not None:
        return [
            Violation(
                "contract_exists",
                "A contract is already agreed: renegotiate it, with a reason.",
            )
        ]
    count = contract_size(facts, command)
    v = []
    if count not in facts.protocol.contract_sessions:
        v.append(_outside_range(facts, count))
    return v + _below_floor(facts, count)


def floor(facts: CaseFacts) -> int:
    """The smallest contract that leaves a way forward (domain.md §7): the sessions
    held (by number: a voided number is not given again), a middle session if none
    was held yet, and the end-phase sessions still owed. Once the end phase has
    begun a middle session was held (start_end asks for one), even if it was voided
    since: no middle session can be recorded any more, so none is owed."""
    before_end = facts.phase in (Phase.beginning, Phase.middle)
    middle = 1 if before_end and not facts.counted_sessions(Phase.middle) else 0
    owed = max(0, facts.protocol.end_sessions.low - facts.counted_sessions(Phase.end))
    return facts.last_session_number + middle + owed


def _below_floor(facts: CaseFacts, count: int) -> list[Violation]:
    lowest = floor(facts)
    if count >= lowest:
        return []
    return [
        Violation(
            "contract_below_sessions_owed",
            f"A {count}-session contract leaves no way forward: sessions 1 to "
            f"{facts.last_session_number} are numbered already, and the course "
            f"still needs its middle and end sessions ({lowest} in all).",
        )
    ]


def uses_deviation(facts: CaseFacts, command: RenegotiateContract) -> bool:
    """An open contract_range deviation is used up by the first renegotiation after
    it, whether or not that renegotiation needed it (domain.md §7)."""
    return facts.unused_deviations(DeviationRule.contract_range) > 0


def renegotiate_contract(
    facts: CaseFacts, command: RenegotiateContract
) -> list[Violation]:
    """A contract to change; a size within range (or a deviation's, or unchanged),
    not below the floor, not over the end phase's maximum; a change."""
    contract = facts.contract
    if contract is None:
        return [contract_missing("There is no contract to renegotiate.")]
    v = []
    count = command.sessions
    allowed = (
        count in facts.protocol.contract_sessions
        or count == contract["sessions"]
        or (uses_deviation(facts, command) and count in DEVIATION_CONTRACT_RANGE)
    )
    if not allowed:
        v.append(_outside_range(facts, count))
    v += _below_floor(facts, count)
    end_max = facts.protocol.end_sessions.high
    end_total = facts.counted_sessions(Phase.end) + count - facts.last_session_number
    if facts.phase == Phase.end and end_total > end_max:
        v.append(
            Violation(
                "end_phase_over_maximum",
                f"The end phase may have at most {end_max} sessions; this "
                f"contract would make it {end_total}.",
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
