"""The commands of the course week by week: measures, sessions held or missed, their
corrections, the risk review and a change of clinician (domain.md §4-§5, §7-§8)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ipt_workflow.domain.codes import (
    Attendee,
    CommunicationAspect,
    CorrectedEntry,
    CorrectionReason,
    MissedReason,
    Modality,
    RiskReviewOutcome,
    Strategy,
)
from ipt_workflow.domain.commands.base import Command
from ipt_workflow.domain.inputs import (
    aspects,
    code,
    codes_of,
    given,
    identifier,
    note_for,
    optional,
    past_date,
    required_when,
    risk_item_of,
    score_of,
    within,
)
from ipt_workflow.domain.protocols import (
    Instrument,
    SessionKind,
)
from ipt_workflow.domain.values import (
    MINUTES,
    SESSION_NUMBER,
    Replacement,
    replacement,
)


@dataclass(frozen=True, kw_only=True)
class RecordMeasure(Command):
    instrument: Instrument = given(code(Instrument))
    score: int = given(score_of("instrument"))
    measured_on: str = given(past_date)
    """`YYYY-MM-DD`"""
    risk_item: int | None = given(optional(risk_item_of("instrument")), None)
    """PHQ-9 / BDI-II item 9 (thoughts of self-harm), 0 to 3."""
    added = ("risk_item",)


@dataclass(frozen=True, kw_only=True)
class RecordSession(Command):
    held_on: str = given(past_date)
    minutes: int = given(within(MINUTES))
    modality: Modality = given(code(Modality))
    attendees: tuple[Attendee, ...] = given(codes_of(Attendee, at_least_one=True))
    kind: SessionKind = given(code(SessionKind), SessionKind.therapy)
    strategies: tuple[Strategy, ...] = given(codes_of(Strategy), ())
    communication_aspects: tuple[CommunicationAspect, ...] = given(aspects, ())

    @property
    def counted(self) -> bool:
        return self.kind == SessionKind.therapy


@dataclass(frozen=True, kw_only=True)
class RecordMissedSession(Command):
    scheduled_on: str = given(past_date)
    reason: MissedReason = given(code(MissedReason))
    note: str | None = given(note_for("reason"), None)


SESSIONS = (CorrectedEntry.session, CorrectedEntry.follow_up_session)
MEETINGS: Mapping[CorrectedEntry, SessionKind] = {
    CorrectedEntry.engagement: SessionKind.engagement,
    CorrectedEntry.pre_group: SessionKind.individual_pre_group,
    CorrectedEntry.mid_group: SessionKind.individual_mid_group,
    CorrectedEntry.post_group: SessionKind.individual_post_group,
}


@dataclass(frozen=True, kw_only=True)
class CorrectEntry(Command):
    entry: CorrectedEntry = given(code(CorrectedEntry))
    reason: CorrectionReason = given(code(CorrectionReason))
    note: str | None = given(note_for("reason"), None)
    number: int | None = given(
        required_when("entry", SESSIONS, within(SESSION_NUMBER)), None
    )
    """A session's number (sessions)."""
    measured_on: str | None = given(
        required_when("entry", [CorrectedEntry.measure], past_date), None
    )
    """A measure's date and instrument (measures)."""
    instrument: Instrument | None = given(
        required_when("entry", [CorrectedEntry.measure], code(Instrument)), None
    )
    held_on: str | None = given(required_when("entry", MEETINGS, past_date), None)
    """An uncounted meeting's date (engagement, pre_group, mid_group, post_group)."""
    replacement: Replacement | None = given(replacement, None)
    """A measure's right value, recorded in its place in the same save."""
    added = ("held_on", "replacement")

    @property
    def meeting_kind(self) -> SessionKind | None:
        """The kind of uncounted meeting this corrects, if it corrects one."""
        return MEETINGS.get(self.entry)


@dataclass(frozen=True, kw_only=True)
class RecordRiskReview(Command):
    """A clinician followed up a risk flag (who: the actor, or on whose behalf)."""

    outcome: RiskReviewOutcome = given(code(RiskReviewOutcome))
    note: str | None = given(note_for("outcome"), None)


@dataclass(frozen=True, kw_only=True)
class Reassign(Command):
    clinician_id: str = given(identifier)
