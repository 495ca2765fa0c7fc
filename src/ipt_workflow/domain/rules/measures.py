"""Symptom measures and the outcome of acute treatment (domain.md §5)."""

from __future__ import annotations

from ipt_workflow.domain.facts import CaseFacts
from ipt_workflow.domain.measures import (
    FollowUpKind,
    Outcome,
    automatic_offer,
    classify,
)
from ipt_workflow.domain.protocols import Instrument


def outcome_of(facts: CaseFacts) -> Outcome | None:
    """The classification the case's baseline and final measures give, if both exist."""
    baseline, final = facts.baseline, facts.final_measure
    if baseline is None or final is None:
        return None
    return classify(
        Instrument(baseline["instrument"]), baseline["score"], final["score"]
    )


def offer_after(facts: CaseFacts, outcome: Outcome) -> FollowUpKind | None:
    """The follow-up that concluding with this outcome offers, if any."""
    return automatic_offer(outcome, facts.prior_episodes)
