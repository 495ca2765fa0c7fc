"""Sessions: which kinds a protocol has, and how many each phase holds (domain.md §4).

Where each kind of session may be recorded is the phase table's (phases.py); these
rules run once the phase allows it.
"""

from __future__ import annotations

from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import RecordMissedSession, RecordSession
from ipt_workflow.domain.errors import Violation
from ipt_workflow.domain.facts import CaseFacts
from ipt_workflow.domain.protocols import SessionKind
from ipt_workflow.domain.rules.opening import dated_from_intake


def record_session(facts: CaseFacts, command: RecordSession) -> list[Violation]:
    """A kind the protocol has; strategies only in the middle; the engagement
    session first; the ipt-g pre-group meeting first; the limit of the phase."""
    if command.kind not in facts.protocol.session_kinds:
        return [
            Violation(
                "session_kind_not_in_protocol",
                f"{facts.protocol.title} has no {command.kind.value} sessions.",
            )
        ]
    v = dated_from_intake(facts, command.held_on, "The session")
    if command.strategies and facts.phase != Phase.middle:
        v.append(
            Violation(
                "strategies_only_in_middle",
                "Middle-phase strategies are recorded only for middle-phase sessions.",
            )
        )
    if not command.counted:
        return v + _engagement(facts, command.kind)
    if facts.protocol.pre_group_meeting_required and not facts.meetings(
        SessionKind.individual_pre_group
    ):
        v.append(
            Violation(
                "pre_group_meeting_required",
                "An individual pre-group meeting must precede the first group session.",
            )
        )
    return v + _phase_limit(facts)


def _engagement(facts: CaseFacts, kind: SessionKind) -> list[Violation]:
    if kind != SessionKind.engagement:
        return []
    if facts.counted_sessions() > 0:
        return [
            Violation(
                "engagement_after_first_session",
                "The engagement session may only precede session 1.",
            )
        ]
    if facts.meetings(SessionKind.engagement):
        return [
            Violation(
                "engagement_already_held", "Only one engagement session may be held."
            )
        ]
    return []


def _phase_limit(facts: CaseFacts) -> list[Violation]:
    """The counted sessions the phase still has room for (domain.md §4 and §7): the
    phase's own limit, and a number within the contract (a voided session's number
    is never given again, so voiding never makes room past the contract)."""
    number = facts.last_session_number + 1
    contract = facts.contract
    end_min = facts.protocol.end_sessions.low
    phase = facts.current_phase
    if phase == Phase.beginning:
        limit = facts.beginning_session_limit
        if facts.counted_sessions(Phase.beginning) >= limit:
            return [
                Violation(
                    "beginning_session_limit",
                    f"The beginning phase allows {limit} sessions: start the middle "
                    "phase, or record a beginning_session_limit deviation.",
                )
            ]
        # Deviations may stretch the beginning, never past the contract: it must
        # leave a middle session and the end phase's minimum. Before a contract is
        # agreed, the largest the protocol allows bounds it, or no contract could be
        # agreed afterwards (domain.md §7: a way forward).
        if contract is None:
            last = facts.protocol.contract_sessions.high - end_min - 1
            if number > last:
                return [
                    _contract_full(
                        f"Without a contract the beginning may hold sessions 1 to "
                        f"{last}: the largest {facts.protocol.title} contract "
                        f"({facts.protocol.contract_sessions.high}) must leave a "
                        "middle session and the end phase. Agree the contract first."
                    )
                ]
        elif number > contract["sessions"] - end_min - 1:
            last = contract["sessions"] - end_min - 1
            return [
                _contract_full(
                    f"A {contract['sessions']}-session contract leaves room for "
                    f"sessions 1 to {last} in the beginning: start the middle phase, "
                    "or renegotiate the contract."
                )
            ]
    elif phase == Phase.middle and contract is not None:
        last = contract["sessions"] - end_min
        if number > last:
            return [
                Violation(
                    "middle_session_limit",
                    f"With a {contract['sessions']}-session contract the middle "
                    f"phase ends by session {last}: start the end phase.",
                )
            ]
    elif phase == Phase.end and contract is not None:
        return _end_limit(facts, number, contract["sessions"])
    elif phase == Phase.follow_up and facts.follow_up_contract is not None:
        agreed = facts.follow_up_contract["sessions"]
        if facts.follow_up_sessions_held >= agreed:
            return [
                Violation(
                    "follow_up_session_limit",
                    f"All {agreed} follow-up sessions are held: close the case.",
                )
            ]
    return []


def _end_limit(facts: CaseFacts, number: int, contracted: int) -> list[Violation]:
    end_max = facts.protocol.end_sessions.high
    v = []
    if number > contracted:
        v.append(
            _contract_full(
                f"Session {number} would be past the {contracted}-session contract "
                "(voided sessions keep their numbers): conclude, or renegotiate."
            )
        )
    if facts.counted_sessions(Phase.end) >= end_max:
        v.append(
            Violation(
                "end_phase_session_limit",
                f"The end phase holds at most {end_max} sessions: conclude.",
            )
        )
    return v


def _contract_full(message: str) -> Violation:
    return Violation("contract_session_limit", message)


def session_number(facts: CaseFacts, command: RecordSession) -> int | None:
    """The number a session gets: the next one of its course, if it counts."""
    if not command.counted:
        return None
    if facts.phase == Phase.follow_up:
        return facts.last_follow_up_number + 1
    return facts.last_session_number + 1


def record_missed_session(
    facts: CaseFacts, command: RecordMissedSession
) -> list[Violation]:
    """A date from the intake on."""
    return dated_from_intake(facts, command.scheduled_on, "The missed session")
