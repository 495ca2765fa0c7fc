"""Outcome classification and the follow-up rule of domain.md §5."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from ipt_workflow.domain.protocols import INSTRUMENTS, Instrument

OutcomeClass = StrEnum(
    "OutcomeClass",
    "remission response partial_response no_response",
)


FollowUpKind = StrEnum("FollowUpKind", "continuation maintenance referral")


MAINTENANCE_AFTER_PRIOR_EPISODES = 3


@dataclass(frozen=True)
class Outcome:
    """The classified result of acute treatment."""

    classification: OutcomeClass
    instrument: Instrument
    baseline: int
    final: int
    residual: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "classification": str(self.classification),
            "instrument": str(self.instrument),
            "baseline": self.baseline,
            "final": self.final,
            "residual": self.residual,
        }


def reduction(instrument: Instrument, baseline: int, final: int) -> Fraction:
    """r = (baseline - final) / (baseline - floor); 0 when the baseline is the floor.

    Exact arithmetic, so the 0.50 and 0.25 boundaries are never lost to rounding.
    """
    span = baseline - INSTRUMENTS[instrument].floor
    if span == 0:
        return Fraction(0)
    return Fraction(baseline - final, span)


def classify(instrument: Instrument, baseline: int, final: int) -> Outcome:
    """The outcome class for a baseline and a final score on one instrument."""
    spec = INSTRUMENTS[instrument]
    residual = not spec.in_remission(final)
    if not residual:
        cls = OutcomeClass.remission
    else:
        r = reduction(instrument, baseline, final)
        if r >= Fraction(1, 2):
            cls = OutcomeClass.response
        elif r >= Fraction(1, 4):
            cls = OutcomeClass.partial_response
        else:
            cls = OutcomeClass.no_response
    return Outcome(cls, instrument, baseline, final, residual)


def automatic_offer(outcome: Outcome, prior_episodes: int) -> FollowUpKind | None:
    """The follow-up offered when acute treatment concludes, if any."""
    if outcome.classification in (OutcomeClass.response, OutcomeClass.partial_response):
        return FollowUpKind.continuation
    if outcome.classification is OutcomeClass.no_response:
        return FollowUpKind.referral
    if prior_episodes >= MAINTENANCE_AFTER_PRIOR_EPISODES:
        return FollowUpKind.maintenance
    return None
