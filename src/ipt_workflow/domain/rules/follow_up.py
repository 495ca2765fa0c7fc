"""Follow-up after acute treatment: the offer, the client's decision, the close
(domain.md §4 and §5)."""

from __future__ import annotations

from ipt_workflow.domain.codes import CloseReason, Disposition, Phase
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    Close,
    DeclineFollowUp,
    OfferFollowUp,
)
from ipt_workflow.domain.errors import Violation
from ipt_workflow.domain.facts import CaseFacts
from ipt_workflow.domain.measures import FollowUpKind


def referral_offered(facts: CaseFacts) -> bool:
    """Is the open offer a referral elsewhere? (Accepting one closes the case.)"""
    offer = facts.follow_up_offer
    return offer is not None and offer["kind"] == FollowUpKind.referral


def offer_follow_up(facts: CaseFacts, command: OfferFollowUp) -> list[Violation]:
    """No offer is open already."""
    if facts.follow_up_offer is None:
        return []
    return [
        Violation(
            "offer_already_open",
            "A follow-up offer is already awaiting the client's decision.",
        )
    ]


def accept_follow_up(
    facts: CaseFacts, command: AcceptFollowUp | None
) -> list[Violation]:
    """An open offer; for continuation or maintenance, a follow-up contract, and
    none for a referral. Accepting a referral closes the case."""
    offer = facts.follow_up_offer
    if offer is None:
        return [_no_open_offer()]
    if command is None:
        return []
    if referral_offered(facts) and command.contract is not None:
        return [
            Violation(
                "referral_takes_no_contract",
                "A referral elsewhere takes no follow-up contract.",
            )
        ]
    if not referral_offered(facts) and command.contract is None:
        return [
            Violation(
                "follow_up_contract_required",
                f"Accepting {offer['kind']} needs a follow-up contract "
                "(sessions and frequency).",
            )
        ]
    return []


def decline_follow_up(
    facts: CaseFacts, command: DeclineFollowUp | None
) -> list[Violation]:
    """An open offer."""
    return [] if facts.follow_up_offer is not None else [_no_open_offer()]


def close(facts: CaseFacts, command: Close | None) -> list[Violation]:
    """From concluded: no open offer. From follow-up: a follow-up session held, or a
    reason."""
    offer = facts.follow_up_offer
    if facts.phase == Phase.concluded and offer is not None:
        return [
            Violation(
                "offer_awaiting_decision",
                f"A {offer['kind']} offer is open: record the client's decision "
                "before closing.",
            )
        ]
    if (
        facts.phase == Phase.follow_up
        and command is not None
        and facts.follow_up_sessions_held == 0
        and command.reason is None
    ):
        return [
            Violation(
                "follow_up_session_or_reason_required",
                "No follow-up session has been held: give a reason to close.",
            )
        ]
    return []


def disposition(facts: CaseFacts, command: Close) -> Disposition:
    """How a closed case ended: a follow-up is completed only when every session of
    its contract was held or the reason is `completed` (domain.md §7)."""
    if facts.phase == Phase.follow_up:
        contract = facts.follow_up_contract
        all_held = (
            contract is not None
            and facts.follow_up_sessions_held >= contract["sessions"]
        )
        if all_held or command.reason == CloseReason.completed:
            return Disposition.follow_up_completed
        return Disposition.follow_up_ended_early
    if facts.offer_declined:
        return Disposition.follow_up_declined
    return Disposition.completed


def _no_open_offer() -> Violation:
    return Violation("no_open_offer", "There is no open follow-up offer.")
