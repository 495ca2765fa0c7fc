"""Request and response bodies of the HTTP API (api.md), with an example per body.

The schemas give clinic systems enums, ranges and examples in the OpenAPI document
and refuse malformed bodies early; the domain checks every value again, so a rule
never depends on this layer alone.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ipt_workflow.domain.codes import (
    AttachmentStyle,
    Attendee,
    CloseReason,
    CommunicationAspect,
    CommunicationStyle,
    CorrectedEntry,
    CorrectionReason,
    DeviationReason,
    DeviationRule,
    DisputeStage,
    FollowUpFrequency,
    Frequency,
    MissedReason,
    Modality,
    RelationshipRole,
    RenegotiationReason,
    SecondaryAreaReason,
    Strategy,
    WithdrawalReason,
)
from ipt_workflow.domain.commands import (
    AGE,
    CLOSENESS,
    CONTRACT_SESSIONS,
    FOLLOW_UP_SESSIONS,
    MINUTES,
    PRIOR_EPISODES,
    RELATIONSHIPS,
    SESSION_NUMBER,
)
from ipt_workflow.domain.inputs import (
    DATE_GRACE,
    IDENTIFIER_CHARACTERS,
    IDENTIFIER_LENGTH,
    NOTE_LENGTH,
    aspects_problem,
)
from ipt_workflow.domain.measures import FollowUpKind, OutcomeClass
from ipt_workflow.domain.protocols import (
    INSTRUMENTS,
    LATEST,
    PROTOCOLS,
    Instrument,
    IntRange,
    ProblemArea,
    SessionKind,
)

Identifier = Annotated[
    str,
    StringConstraints(
        min_length=IDENTIFIER_LENGTH.low,
        max_length=IDENTIFIER_LENGTH.high,
        pattern=f"^{IDENTIFIER_CHARACTERS}+$",
    ),
]
ALL_SCORES = IntRange(
    min(i.scores.low for i in INSTRUMENTS.values()),
    max(i.scores.high for i in INSTRUMENTS.values()),
)
Note = Annotated[
    str,
    StringConstraints(
        min_length=NOTE_LENGTH.low,
        max_length=NOTE_LENGTH.high,
        pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$",
    ),
]


def _known_protocol(value: str) -> str:
    if value not in PROTOCOLS and value not in LATEST:
        raise ValueError(
            f"unknown protocol; known: {', '.join(sorted([*PROTOCOLS, *LATEST]))}"
        )
    return value


ProtocolRef = Annotated[
    str, StringConstraints(min_length=1, max_length=32), AfterValidator(_known_protocol)
]


def _iso_date(value: object) -> object:
    # JSON has no date type: only a `YYYY-MM-DD` string is a date here, never a
    # number, nor a numeric string that pydantic would read as a Unix time.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be a date string, YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_iso_date)]


def within(allowed: IntRange, **kw: Any) -> Any:
    """A fixed range, checked here with every other schema check of the body."""
    return Field(ge=allowed.low, le=allowed.high, **kw)


def _not_future(value: date) -> date:
    # The domain checks this too; checking it here as well lets one answer list it
    # beside every other bad field of the body.
    if value > datetime.now(UTC).date() + DATE_GRACE:
        raise ValueError(f"{value.isoformat()} is in the future")
    return value


PastDay = Annotated[Day, AfterValidator(_not_future)]


Count = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]


class Body(BaseModel):
    """A request body: unknown fields are refused, so typos are not ignored."""

    model_config = ConfigDict(extra="forbid")

    on_behalf_of: Identifier | None = Field(
        default=None, description="the clinician the caller acts for, if not itself"
    )


def example(**values: Any) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [values]})


class CaseCreate(Body):
    model_config = example(
        client_ref="A-1042",
        protocol="ipt@1",
        client_age=34,
        clinician_id="t-7",
        prior_episodes=1,
    )
    client_ref: Identifier
    protocol: ProtocolRef = Field(
        description="`ipt@1`, or `ipt` for the latest version"
    )
    client_age: Count = within(AGE)
    clinician_id: Identifier
    prior_episodes: Count = within(PRIOR_EPISODES, default=0)


class Relationship(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: RelationshipRole
    closeness: Count = within(
        CLOSENESS, description="1 inner, 2 middle, 3 outer circle"
    )
    supportive: Flag = False
    conflict: Flag = False
    changed_at_onset: Flag = False
    deceased: Flag = False


class InventoryRecord(Body):
    model_config = example(
        relationships=[
            {"role": "partner", "closeness": 1, "conflict": True},
            {"role": "mother", "closeness": 2, "supportive": True},
        ],
        attachment_style="anxious",
        communication_style="passive",
    )
    relationships: list[Relationship] = Field(
        min_length=RELATIONSHIPS.low, max_length=RELATIONSHIPS.high
    )
    attachment_style: AttachmentStyle | None = None
    communication_style: CommunicationStyle | None = None


class FocusAgree(Body):
    model_config = example(
        primary_area="role_dispute", dispute_stage="impasse", client_agreed=True
    )
    primary_area: ProblemArea
    secondary_area: ProblemArea | None = None
    secondary_reason: SecondaryAreaReason | None = None
    note: Note | None = None
    dispute_stage: DisputeStage | None = None
    client_agreed: Flag


class DisputeStageChange(Body):
    model_config = example(stage="renegotiation")
    stage: DisputeStage


class ContractAgree(Body):
    model_config = example(sessions=16, frequency="weekly")
    sessions: Count | None = within(CONTRACT_SESSIONS, default=None)
    frequency: Frequency | None = Field(
        default=None, description="weekly when agreeing; unchanged when renegotiating"
    )
    reason: RenegotiationReason | None = Field(
        default=None, description="required when a contract exists (a renegotiation)"
    )
    note: Note | None = None


class DeviationRecord(Body):
    model_config = example(rule="beginning_session_limit", reason="crisis")
    rule: DeviationRule
    reason: DeviationReason
    note: Note | None = None


class MeasureRecord(Body):
    model_config = example(instrument="phq9", score=18, measured_on="2026-01-05")
    instrument: Instrument
    score: Count = within(ALL_SCORES, description="within the instrument's range")
    measured_on: PastDay

    @field_validator("score")
    @classmethod
    def _score_fits_instrument(cls, score: int, info: ValidationInfo) -> int:
        instrument = info.data.get("instrument")
        if instrument is not None and score not in INSTRUMENTS[instrument].scores:
            raise ValueError(f"{score} is outside {INSTRUMENTS[instrument].scores}")
        return score


class SessionRecord(Body):
    model_config = example(
        held_on="2026-02-02",
        minutes=50,
        modality="in_person",
        attendees=["client"],
        strategies=["communication_analysis"],
        communication_aspects=["tone"],
    )
    held_on: PastDay
    minutes: Count = within(MINUTES)
    modality: Modality
    attendees: list[Attendee] = Field(min_length=1, max_length=len(Attendee))
    kind: SessionKind = SessionKind.therapy
    strategies: list[Strategy] = Field(default_factory=list, max_length=len(Strategy))
    communication_aspects: list[CommunicationAspect] = Field(
        default_factory=list, max_length=len(CommunicationAspect)
    )

    @field_validator("communication_aspects")
    @classmethod
    def _aspects_need_their_strategy(
        cls, aspects: list[CommunicationAspect], info: ValidationInfo
    ) -> list[CommunicationAspect]:
        if problem := aspects_problem(info.data.get("strategies", []), aspects):
            raise ValueError(problem)
        return aspects


class MissedSessionRecord(Body):
    model_config = example(scheduled_on="2026-02-09", reason="client_cancelled")
    scheduled_on: PastDay
    reason: MissedReason
    note: Note | None = None


class CorrectionRecord(Body):
    model_config = example(entry="session", number=3, reason="duplicate_entry")
    entry: CorrectedEntry
    number: Count | None = within(SESSION_NUMBER, default=None)
    measured_on: PastDay | None = None
    instrument: Instrument | None = None
    reason: CorrectionReason
    note: Note | None = None


class Reassignment(Body):
    model_config = example(clinician_id="t-9")
    clinician_id: Identifier


class TransitionBody(Body):
    model_config = example(maintenance_discussed=True)
    reason: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None,
        description=(
            "withdraw: "
            + ", ".join(WithdrawalReason)
            + "; close: "
            + ", ".join(CloseReason)
        ),
    )
    note: Note | None = None
    maintenance_discussed: Flag = False


class FollowUpOffer(Body):
    model_config = example(kind="maintenance")
    kind: Literal[FollowUpKind.continuation, FollowUpKind.maintenance]


class FollowUpDecision(Body):
    model_config = example(accepted=True, sessions=6, frequency="monthly")
    accepted: Flag
    sessions: Count | None = within(FOLLOW_UP_SESSIONS, default=None)
    frequency: FollowUpFrequency | None = None

    @model_validator(mode="after")
    def _contract_only_when_accepting(self) -> FollowUpDecision:
        if not self.accepted and (
            self.sessions is not None or self.frequency is not None
        ):
            raise ValueError("a declined offer takes no sessions or frequency")
        return self


# --- responses -------------------------------------------------------------------


class Reason(BaseModel):
    rule: str
    message: str


class TransitionView(BaseModel):
    allowed: bool
    reasons: list[Reason]


class SessionsHeld(BaseModel):
    beginning: int
    middle: int
    end: int
    total: int
    follow_up: int


class ContractView(BaseModel):
    sessions: int
    frequency: str


class FocusView(BaseModel):
    primary_area: ProblemArea
    secondary_area: ProblemArea | None
    dispute_stage: DisputeStage | None


class MeasureView(BaseModel):
    instrument: Instrument
    score: int
    measured_on: date


class OutcomeView(BaseModel):
    classification: OutcomeClass
    instrument: Instrument
    baseline: int
    final: int
    residual: bool


class OfferView(BaseModel):
    kind: FollowUpKind
    offered_at: str
    automatic: bool


class DeviationView(BaseModel):
    rule: DeviationRule
    reason: DeviationReason
    note: str | None
    phase: str
    recorded_at: str
    used: bool


class CaseView(BaseModel):
    """A case, as GET /cases/{id} and every case command answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f1c7b5e-8d0a-4b7e-9a63-2f1d8c4e5a90",
                    "clinic_id": "demo-clinic",
                    "client_ref": "A-1042",
                    "protocol": "ipt@1",
                    "clinician_id": "t-7",
                    "client_age": 34,
                    "prior_episodes": 1,
                    "phase": "beginning",
                    "version": 1,
                    "position": 1,
                    "retention_until": None,
                    "legal_hold": None,
                }
            ]
        }
    )
    id: str
    clinic_id: str
    client_ref: str
    protocol: str
    clinician_id: str
    client_age: int
    prior_episodes: int
    phase: str
    version: int
    position: int | None
    sessions_held: SessionsHeld
    contract: ContractView | None
    sessions_remaining: int | None
    focus: FocusView | None
    baseline: MeasureView | None
    latest_measure: MeasureView | None
    outcome: OutcomeView | None
    follow_up_offer: OfferView | None
    follow_up_contract: ContractView | None
    deviations: list[DeviationView]
    transitions: dict[str, TransitionView]
    retention_until: date | None = None
    """The first day the case may be erased for retention (open: null); the
    record's present state, so not in a replay."""
    legal_hold: dict[str, str] | None = None
    """The legal hold that suspends retention, if any (not in a replay)."""


class ErasedCaseView(BaseModel):
    """GET /cases/{id} (and replay) of an erased case: its receipt, nothing else."""

    id: str
    clinic_id: str
    phase: str
    version: int
    position: int | None
    erased: bool
    erasure: dict[str, str | None]


class SessionView(BaseModel):
    number: int | None
    follow_up: bool
    kind: str
    phase: str
    held_on: date | None = None
    minutes: int | None = None
    modality: str | None = None
    attendees: list[str] = []
    strategies: list[str] = []
    communication_aspects: list[str] = []
    missed: bool = False
    scheduled_on: date | None = None
    reason: str | None = None


class SessionAnswer(BaseModel):
    session: SessionView
    case: CaseView


class HistoryItem(BaseModel):
    version: int
    type: str
    occurred_at: str
    recorded_by: str
    on_behalf_of: str | None
    command_id: str | None
    """None for an event of an erased case."""
    data: dict[str, Any]
    erased: bool = False
    """The event's data was erased: only its envelope remains."""


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    next_after_version: int | None


class Problem(BaseModel):
    """An RFC 9457 problem: every error answer of the API."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "https://ipt-workflow.example/problems/guard_failed",
                    "title": "A rule of the protocol refuses this command",
                    "status": 409,
                    "detail": "2 rules are not met",
                    "code": "guard_failed",
                    "violations": [
                        {"rule": "focus_required", "message": "A focus must be agreed."}
                    ],
                }
            ]
        }
    )
    type: str
    title: str
    status: int
    detail: str
    code: str
    violations: list[Reason] | None = None
    errors: list[dict[str, str]] | None = None
