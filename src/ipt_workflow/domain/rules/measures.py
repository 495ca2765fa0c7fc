"""Symptom measures, the outcome of acute treatment, its revision, and relapse
(domain.md §5, §7 and §8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import RecordMeasure, RecordRiskReview
from ipt_workflow.domain.errors import Violation
from ipt_workflow.domain.facts import CaseFacts
from ipt_workflow.domain.measures import (
    FollowUpKind,
    Outcome,
    OutcomeClass,
    automatic_offer,
    classify,
)
from ipt_workflow.domain.protocols import INSTRUMENTS, Instrument, IntRange
from ipt_workflow.domain.rules.opening import dated_from_intake

AGES: dict[Instrument, IntRange] = {
    Instrument.cdrsr: IntRange(6, 17),
    Instrument.phq9: IntRange(12, 130),
    Instrument.bdi2: IntRange(12, 130),
    Instrument.hamd17: IntRange(12, 130),
}
"""Who each instrument is validated for (domain.md §8)."""

RELAPSE_AT: dict[Instrument, int] = {Instrument.cdrsr: 40}
"""Where a score after remission suggests relapse, if not the residual range
(research notes R19: CDRS-R relapse at 40 or more)."""


def record_measure(facts: CaseFacts, command: RecordMeasure) -> list[Violation]:
    """An instrument for the client's age; a date from the intake on."""
    v = instrument_fits(facts, command.instrument)
    v += dated_from_intake(facts, command.measured_on, "The measure")
    return v


def instrument_fits(facts: CaseFacts, instrument: Instrument) -> list[Violation]:
    """The instrument is validated for the client's age at intake."""
    ages = AGES[instrument]
    if facts.client_age in ages:
        return []
    span = f"{ages.low} and over" if ages.high >= 120 else str(ages)
    return [
        Violation(
            "instrument_not_for_age",
            f"{INSTRUMENTS[instrument].title} is for clients aged {span}; this "
            f"client was {facts.client_age} at intake.",
        )
    ]


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


@dataclass(frozen=True)
class Revision:
    """What a correction after conclude changes: the outcome, and the open offer."""

    outcome: dict[str, Any]
    after_decision: bool
    offer: tuple[str | None, str | None] | None
    """(the open offer's kind, the kind it becomes) when the offer changes."""


def revision(facts: CaseFacts) -> Revision | None:
    """After conclude: the revision the current measures call for, if any (§7)."""
    if facts.outcome is None:
        return None
    now = outcome_of(facts)
    if now is None or now.classification == facts.outcome["classification"]:
        return None
    decided = facts.phase == Phase.follow_up or any(
        o["decision"] is not None for o in facts.offers
    )
    if decided:
        return Revision(now.as_dict(), after_decision=True, offer=None)
    wanted = offer_after(facts, now)
    open_offer = facts.follow_up_offer
    kind = open_offer["kind"] if open_offer else None
    if wanted is None and open_offer is not None and not open_offer["automatic"]:
        return Revision(now.as_dict(), after_decision=False, offer=None)
    change = None if wanted == kind else (kind, wanted and wanted.value)
    return Revision(now.as_dict(), after_decision=False, offer=change)


def relapse(facts: CaseFacts, command: RecordMeasure) -> str | None:
    """In follow-up: why this measure suggests relapse, if it does (§8)."""
    baseline = facts.baseline
    if facts.phase != Phase.follow_up or facts.outcome is None or baseline is None:
        return None
    if command.instrument != baseline["instrument"]:
        return None
    remitted = facts.outcome["classification"] == OutcomeClass.remission
    spec = INSTRUMENTS[command.instrument]
    threshold = RELAPSE_AT.get(command.instrument, spec.remission_max + 1)
    if remitted and command.score >= threshold:
        return "residual_after_remission"
    if command.score >= baseline["score"]:
        return "at_or_above_baseline"
    return None


def record_risk_review(facts: CaseFacts, command: RecordRiskReview) -> list[Violation]:
    """A risk flag that nobody has followed up yet."""
    if facts.risk is not None and facts.risk["review"] is None:
        return []
    return [
        Violation(
            "no_open_risk_flag",
            "There is no risk flag awaiting review: a review follows a measure whose "
            "risk item was above 0.",
        )
    ]
