"""The events of the rules across commands (domain.md §7, a correction revises the
outcome and the offer) and of safety (§8: the risk item and relapse)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ipt_workflow.domain.events.base import CaseEvent

if TYPE_CHECKING:
    from ipt_workflow.domain.case import TherapyCase


class OutcomeRevised(CaseEvent):
    """A correction changed the baseline or final, and with it the classification."""

    previous: dict[str, Any]
    outcome: dict[str, Any]
    after_decision: bool
    """The client had already decided on the follow-up the old outcome offered."""

    def apply(self, case: TherapyCase) -> None:
        case.outcome = dict(self.outcome)
        if self.after_decision:
            case.outcome_revised_after_decision = True


class FollowUpOfferRevised(CaseEvent):
    """A revised outcome calls for another offer than the open one (or for none)."""

    previous_kind: str | None
    kind: str | None

    def apply(self, case: TherapyCase) -> None:
        kept = [o for o in case.offers if o["decision"] is not None]
        if self.kind is None:
            case.offers = kept
            return
        offer = {"kind": self.kind, "offered_at": self.timestamp.isoformat()}
        case.offers = [*kept, {**offer, "automatic": True, "decision": None}]


class RiskFlagged(CaseEvent):
    """A measure's risk item (item 9) was above 0: the clinician must follow it up."""

    item: int
    instrument: str
    measured_on: str

    def apply(self, case: TherapyCase) -> None:
        flag = self.pick("item", "instrument", "measured_on")
        case.risk = {**flag, "flagged_at": self.timestamp.isoformat(), "review": None}


class RiskReviewed(CaseEvent):
    """The clinician followed up the open risk flag: who reviewed is the clinician
    the actor acted for, if given, else the actor (the command's docstring)."""

    outcome: str
    note: str | None

    def apply(self, case: TherapyCase) -> None:
        assert case.risk is not None
        review = {"outcome": self.outcome, "reviewed_at": self.timestamp.isoformat()}
        by = self.on_behalf_of or self.recorded_by
        case.risk = {**case.risk, "review": {**review, "by": by}}


class RelapseSuspected(CaseEvent):
    """In follow-up, a measure suggests the depression is coming back."""

    instrument: str
    score: int
    measured_on: str
    reason: str
    """`residual_after_remission` or `at_or_above_baseline`."""

    def apply(self, case: TherapyCase) -> None:
        case.relapse = self.pick("instrument", "score", "measured_on", "reason")
