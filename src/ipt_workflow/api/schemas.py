"""Request and response bodies of the HTTP API (api.md), with an example per body.

The schemas give clinic systems enums, ranges and examples in the OpenAPI document
and refuse malformed bodies early; the domain checks every value again, so a rule
never depends on this layer alone.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Literal

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
    RiskReviewOutcome,
    SecondaryAreaReason,
    Strategy,
    TerminationTask,
    WithdrawalReason,
)
from ipt_workflow.domain.inputs import (
    DATE_GRACE,
    IDENTIFIER_CHARACTERS,
    IDENTIFIER_LENGTH,
    NOTE_LENGTH,
    RISK_ITEM,
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
from ipt_workflow.domain.values import (
    AGE,
    CLOSENESS,
    CONTRACT_SESSIONS,
    FOLLOW_UP_SESSIONS,
    MINUTES,
    PRIOR_EPISODES,
    RELATIONSHIPS,
    SESSION_NUMBER,
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
    added: ClassVar[tuple[str, ...]] = ()
    """Fields added after the first release (see `stable_dump`)."""

    on_behalf_of: Identifier | None = Field(
        default=None, description="the clinician the caller acts for, if not itself"
    )


def stable_dump(body: BaseModel) -> dict[str, Any]:
    """The body as JSON, without the fields added after the first release where
    they have their defaults: what an idempotency key's request digest is taken
    over, so a retry from before an upgrade is still the same request."""
    data: dict[str, Any] = body.model_dump(mode="json")
    _drop_added(body, data)
    return data


def _drop_added(model: BaseModel, data: dict[str, Any]) -> None:
    data.update(getattr(model, "dumped_before", {}))
    for name, first in getattr(model, "first_defaults", {}).items():
        if data.get(name) is None:
            data[name] = first
    fields = type(model).model_fields
    for name in getattr(model, "added", ()):
        if getattr(model, name) == fields[name].get_default(call_default_factory=True):
            data.pop(name, None)
    for name in fields:
        value = getattr(model, name)
        if name not in data:
            continue
        if isinstance(value, BaseModel):
            _drop_added(value, data[name])
        elif isinstance(value, list):
            for item, dumped in zip(value, data[name], strict=True):
                if isinstance(item, BaseModel):
                    _drop_added(item, dumped)


def example(**values: Any) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [values]})


class CaseCreate(Body):
    model_config = example(
        client_ref="A-1042",
        protocol="ipt@1",
        client_age=34,
        clinician_id="t-7",
        prior_episodes=1,
        intake_on="2026-01-05",
    )
    client_ref: Identifier
    protocol: ProtocolRef = Field(
        description="`ipt@1`, or `ipt` for the latest version"
    )
    client_age: Count = within(AGE)
    clinician_id: Identifier
    prior_episodes: Count = within(PRIOR_EPISODES, default=0)
    intake_on: PastDay | None = Field(
        default=None,
        description="the day of the first assessment (default: today); sessions and "
        "measures may be dated from 30 days before it",
    )
    added = ("intake_on",)


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
    current: Flag = Field(
        default=True, description="false for a past relationship (it ended)"
    )
    communication_style: CommunicationStyle | None = None
    added: ClassVar[tuple[str, ...]] = ("current", "communication_style")
    dumped_before: ClassVar[dict[str, Any]] = {"on_behalf_of": None}
    """The first release took (and ignored) on_behalf_of here: its digests saw it."""


class InventoryRecord(Body):
    model_config = example(
        relationships=[
            {"role": "partner", "closeness": 1, "conflict": True},
            {"role": "mother", "closeness": 2, "supportive": True},
            {"role": "father", "closeness": 2, "deceased": True, "current": False},
        ],
        attachment_style="anxious",
        communication_style="passive",
        support_sources=["mother", "friend"],
    )
    relationships: list[Relationship] = Field(
        min_length=RELATIONSHIPS.low, max_length=RELATIONSHIPS.high
    )
    attachment_style: AttachmentStyle | None = None
    communication_style: CommunicationStyle | None = None
    support_sources: list[RelationshipRole] = Field(
        default_factory=list,
        max_length=len(RelationshipRole),
        description="where the client finds support (roles, never names)",
    )
    added = ("support_sources",)


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
    model_config = example(
        instrument="phq9", score=18, measured_on="2026-01-05", risk_item=1
    )
    instrument: Instrument
    score: Count = within(ALL_SCORES, description="within the instrument's range")
    measured_on: PastDay
    risk_item: Count | None = within(
        RISK_ITEM,
        default=None,
        description="item 9 (thoughts of self-harm) of phq9 or bdi2; above 0 flags "
        "a risk to follow up",
    )
    added = ("risk_item",)

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


class Replacement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score: Count = within(
        ALL_SCORES, description="on the corrected measure's instrument"
    )
    measured_on: PastDay


class CorrectionRecord(Body):
    model_config = example(
        entry="measure",
        measured_on="2026-01-05",
        instrument="phq9",
        reason="wrong_details",
        replacement={"score": 17, "measured_on": "2026-01-05"},
    )
    entry: CorrectedEntry
    number: Count | None = within(SESSION_NUMBER, default=None)
    measured_on: PastDay | None = None
    instrument: Instrument | None = None
    held_on: PastDay | None = Field(
        default=None, description="the day of the uncounted meeting to correct"
    )
    replacement: Replacement | None = Field(
        default=None,
        description="a measure's right value, recorded in its place in the same save",
    )
    reason: CorrectionReason
    note: Note | None = None
    added = ("held_on", "replacement")


class RiskReview(Body):
    model_config = example(outcome="safety_plan_made")
    outcome: RiskReviewOutcome
    note: Note | None = None


class Reassignment(Body):
    model_config = example(clinician_id="t-9")
    clinician_id: Identifier


class TransitionBody(Body):
    model_config = example(
        termination_tasks=["progress_reviewed", "maintenance_discussed"]
    )
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
    maintenance_discussed: Flag | None = Field(
        default=None,
        description="conclude: maintenance was discussed with the client (default "
        "false)",
    )
    termination_tasks: list[TerminationTask] = Field(
        default_factory=list,
        max_length=len(TerminationTask),
        description="conclude: the end-phase tasks done",
    )
    sessions: Count | None = within(
        FOLLOW_UP_SESSIONS,
        default=None,
        description="accept_follow_up: the follow-up contract's sessions",
    )
    frequency: FollowUpFrequency | None = Field(
        default=None, description="accept_follow_up: the follow-up contract's frequency"
    )
    added = ("termination_tasks", "sessions", "frequency")
    first_defaults: ClassVar[dict[str, Any]] = {"maintenance_discussed": False}
    """A default that changed (to null, for generated clients), as first digested."""


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
    outcome_revised_after_decision: bool
    intake_on: date
    inventory: InventoryView | None
    termination_tasks: list[TerminationTask]
    risk: RiskView | None
    relapse: RelapseView | None
    protocol_parameters: ProtocolView
    retention_until: date | None = None
    """The first day the case may be erased for retention (open: null); the
    record's present state, so not in a replay."""
    legal_hold: dict[str, str] | None = None
    """The legal hold that suspends retention, if any (not in a replay)."""


class Span(BaseModel):
    low: int
    high: int


class ContractSpan(Span):
    default: int


class ProtocolView(BaseModel):
    """A protocol version's parameters: what its cases are kept to."""

    id: str
    name: str
    version: int
    title: str
    age: Span
    contract_sessions: ContractSpan
    beginning_sessions: Span
    end_sessions: Span
    counted_session_kinds: list[SessionKind]
    uncounted_session_kinds: list[SessionKind]
    problem_areas: list[ProblemArea]
    frequencies: list[Frequency]
    follow_up_frequencies: list[FollowUpFrequency]
    parent_session_required_before_middle: bool
    parent_session_expected_in_beginning: bool
    pre_group_meeting_required: bool


class ProtocolList(BaseModel):
    items: list[ProtocolView]


class RiskReviewView(BaseModel):
    outcome: RiskReviewOutcome
    reviewed_at: str
    by: str


class RiskView(BaseModel):
    item: int
    instrument: Instrument
    measured_on: date
    flagged_at: str
    review: RiskReviewView | None
    followed_up: bool


class RelapseView(BaseModel):
    instrument: Instrument
    score: int
    measured_on: date
    reason: str


class InventoryRelationshipView(BaseModel):
    role: RelationshipRole
    closeness: int
    supportive: bool
    conflict: bool
    changed_at_onset: bool
    deceased: bool
    current: bool
    communication_style: CommunicationStyle | None


class InventoryView(BaseModel):
    relationships: list[InventoryRelationshipView]
    attachment_style: AttachmentStyle | None
    communication_style: CommunicationStyle | None
    support_sources: list[RelationshipRole]


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
    next_after: int | None = Field(
        default=None,
        description="Pass as `after` for the next page; absent on the last page",
    )
    next_after_version: int | None = Field(
        deprecated=True,
        description="The old name of `next_after` (null on the last page)",
    )


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
