"""Sessions: which kinds a protocol has, and how many each phase holds (domain.md §4).

Where each kind of session may be recorded is the phase table's (phases.py); these
rules run once the phase allows it.
"""

from __future__ import annotations

from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import RecordSession
from ipt_workflow.domain.errors import Violation
from ipt_workflow.domain.facts import CaseFacts
from ipt_workflow.domain.protocols import SessionKind


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
    v = []
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
    """The counted sessions the phase still has room for (domain.md §4, limits)."""
    position = facts.counted_sessions() + 1
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
        # leave a middle session and the end phase's minimum.
        if contract is not None and position > contract["sessions"] - end_min - 1:
            return [
                _contract_full(
                    f"A {contract['sessions']}-session contract leaves room for "
                    f"{contract['sessions'] - end_min - 1} beginning sessions: start "
                    "the middle phase, or renegotiate the contract."
                )
            ]
    elif phase == Phase.middle and contract is not None:
        last = contract["sessions"] - end_min
        if position > last:
            return [
                Violation(
                    "middle_session_limit",
                    f"With a {contract['sessions']}-session contract the middle "
                    f"phase ends by session {last}: start the end phase.",
                )
            ]
    elif phase == Phase.end and contract is not None:
        if position > contract["sessions"]:
            return [
                _contract_full(
                    f"All {contract['sessions']} contracted sessions are held: "
                    "conclude, or renegotiate the contract."
                )
            ]
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


def _contract_full(message: str) -> Violation:
    return Violation("contract_session_limit", message)


def session_number(facts: CaseFacts, command: RecordSession) -> int | None:
    """The number a session gets: the next one of its course, if it counts."""
    if not command.counted:
        return None
    if facts.phase == Phase.follow_up:
        return facts.last_follow_up_number + 1
    return facts.last_session_number + 1
