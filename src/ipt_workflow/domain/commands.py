"""The commands a case accepts, as values: each parsed once, at the domain's edge.

Every field declares its check (`given(...)`): a fixed range, a code list, a date
format (domain.md §4: bad input). `Command.parse` runs them all, in field order,
and raises one InvalidInput naming every bad field; what it returns holds only
good values, so the rules and the aggregate never look at raw input. A command's
`name` and `params` identify it for idempotency: their digest is stored with its
events and never changes for a command an earlier release accepted.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import date
from enum import StrEnum
from typing import Any, ClassVar, Self, TypeVar
from uuid import uuid4

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
    Input,
    Parsing,
    aspects,
    code,
    codes_of,
    flag,
    follow_up_frequency,
    given,
    identifier,
    intake_date,
    known_protocol,
    note_for,
    offered_kind,
    optional,
    past_date,
    raw_value,
    required_when,
    risk_item_of,
    score_of,
    within,
)
from ipt_workflow.domain.measures import FollowUpKind
from ipt_workflow.domain.protocols import (
    Instrument,
    ProblemArea,
    Protocol,
    SessionKind,
    find_protocol,
)
from ipt_workflow.domain.values import (
    AGE,
    CONTRACT_SESSIONS,
    FOLLOW_UP_SESSIONS,
    MINUTES,
    PRIOR_EPISODES,
    SESSION_NUMBER,
    Relationship,
    Replacement,
    plain,
    relationships,
    replacement,
)

E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class CommandContext:
    """Who issues a command, on whose behalf, under which id, and what day it is."""

    recorded_by: str
    today: date
    command_id: str = field(default_factory=lambda: uuid4().hex)
    on_behalf_of: str | None = None


@dataclass(frozen=True)
class CommandResult:
    """What a command did: the case version after it, and its session number."""

    version: int
    replayed: bool = False
    session_number: int | None = None


def command_digest(name: str, params: Mapping[str, Any]) -> str:
    """A fingerprint of a command, to tell a retry from another command."""
    text = json.dumps({"command": name, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --- commands -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Command:
    """A request to a case, named as a verb; its fields are already checked."""

    name: ClassVar[str]
    """The aggregate method that runs it, and its name in the idempotency digest."""
    label: ClassVar[str]
    """What logs and metrics call it (the first release's route names)."""
    added: ClassVar[tuple[str, ...]] = ()
    """Fields added after the first release: digested only when given (not at their
    default), so a command an earlier release digested keeps its digest."""

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.name = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
        cls.label = cls.__dict__.get("label", cls.name)

    @classmethod
    def parse(cls, *, today: date | None = None, **raw: object) -> Self:
        """The command from raw values, or InvalidInput naming every bad one."""
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)}")
        p = Parsing(Input(), raw, {}, today)
        for f in fields(cls):
            value = raw.get(f.name, None if f.default is MISSING else f.default)
            p.good[f.name] = f.metadata["check"](p, f.name, value)
        p.inp.check()
        return cls(**p.good)

    def params(self) -> dict[str, Any]:
        """The command's values as its digest has always seen them."""
        return {
            f.name: plain(getattr(self, f.name))
            for f in fields(self)
            if f.name not in self.added or getattr(self, f.name) != f.default
        }

    def digest(self) -> str:
        return command_digest(self.name, self.params())


@dataclass(frozen=True, kw_only=True)
class OpenCase(Command):
    clinic_id: str = given(identifier)
    client_ref: str = given(identifier)
    clinician_id: str = given(identifier)
    client_age: int = given(within(AGE))
    prior_episodes: int = given(within(PRIOR_EPISODES), 0)
    protocol: str = given(known_protocol)
    """As given: `ipt@1`, or `ipt` for the latest version (see `resolved`)."""
    intake_on: str | None = given(optional(intake_date), None)
    """The day of the first assessment (None: the day the case is opened)."""
    added = ("intake_on",)

    @property
    def resolved(self) -> Protocol:
        found = find_protocol(self.protocol)
        assert found is not None
        return found


@dataclass(frozen=True, kw_only=True)
class RecordInventory(Command):
    relationships: tuple[Relationship, ...] = given(relationships)
    attachment_style: AttachmentStyle | None = given(
        optional(code(AttachmentStyle)), None
    )
    communication_style: CommunicationStyle | None = given(
        optional(code(CommunicationStyle)), None
    )
    support_sources: tuple[RelationshipRole, ...] = given(
        codes_of(RelationshipRole), ()
    )
    """Where the client finds support (roles, never names)."""
    added = ("support_sources",)


@dataclass(frozen=True, kw_only=True)
class AgreeFocus(Command):
    primary_area: ProblemArea = given(code(ProblemArea))
    secondary_area: ProblemArea | None = given(optional(code(ProblemArea)), None)
    secondary_reason: SecondaryAreaReason | None = given(
        optional(code(SecondaryAreaReason)), None
    )
    note: str | None = given(note_for("secondary_reason", reason_optional=True), None)
    dispute_stage: DisputeStage | None = given(optional(code(DisputeStage)), None)
    client_agreed: bool = given(flag)


@dataclass(frozen=True, kw_only=True)
class ChangeDisputeStage(Command):
    stage: DisputeStage = given(code(DisputeStage))


@dataclass(frozen=True, kw_only=True)
class AgreeContract(Command):
    sessions: int | None = given(optional(within(CONTRACT_SESSIONS)), None)
    """None: the protocol's default contract."""
    frequency: Frequency = given(code(Frequency), Frequency.weekly)


@dataclass(frozen=True, kw_only=True)
class RenegotiateContract(Command):
    sessions: int = given(within(CONTRACT_SESSIONS))
    reason: RenegotiationReason = given(code(RenegotiationReason))
    note: str | None = given(note_for("reason"), None)
    frequency: Frequency | None = given(optional(code(Frequency)), None)
    """None: the frequency stays as it is."""


@dataclass(frozen=True, kw_only=True)
class SetContract(Command):
    """Agree the contract, or renegotiate the agreed one: the case knows which.

    Its values are parsed as the command it turns out to be, since what is
    required depends on that.
    """

    label: ClassVar[str] = "contract"
    sessions: object = given(raw_value, None)
    frequency: object = given(raw_value, None)
    reason: object = given(raw_value, None)
    note: object = given(raw_value, None)

    def as_agreement(self) -> AgreeContract:
        return AgreeContract.parse(
            sessions=self.sessions, frequency=self.frequency or Frequency.weekly
        )

    def as_renegotiation(self) -> RenegotiateContract:
        return RenegotiateContract.parse(
            sessions=self.sessions,
            reason=self.reason,
            frequency=self.frequency,
            note=self.note,
        )


@dataclass(frozen=True, kw_only=True)
class RecordDeviation(Command):
    rule: DeviationRule = given(code(DeviationRule))
    reason: DeviationReason = given(code(DeviationReason))
    note: str | None = given(note_for("reason"), None)


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


@dataclass(frozen=True, kw_only=True)
class StartMiddle(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class StartEnd(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class Conclude(Command):
    maintenance_discussed: bool = given(flag, False)
    """The first release's flag: the same as the task `maintenance_discussed`."""
    termination_tasks: tuple[TerminationTask, ...] = given(
        codes_of(TerminationTask), ()
    )
    added = ("termination_tasks",)

    @property
    def tasks(self) -> list[str]:
        """The termination tasks done, the flag counted as its task."""
        done = {t.value for t in self.termination_tasks}
        if self.maintenance_discussed:
            done.add(TerminationTask.maintenance_discussed.value)
        return [t.value for t in TerminationTask if t.value in done]

    @property
    def discussed_maintenance(self) -> bool:
        """The flag and the task mean the same (domain.md §8): either sets both."""
        return TerminationTask.maintenance_discussed.value in self.tasks


@dataclass(frozen=True, kw_only=True)
class OfferFollowUp(Command):
    kind: FollowUpKind = given(offered_kind)


@dataclass(frozen=True, kw_only=True)
class AcceptFollowUp(Command):
    sessions: int | None = given(optional(within(FOLLOW_UP_SESSIONS)), None)
    """With `frequency`, the follow-up contract (not for a referral)."""
    frequency: FollowUpFrequency | None = given(follow_up_frequency, None)

    @property
    def contract(self) -> dict[str, Any] | None:
        if self.sessions is None or self.frequency is None:
            return None
        return {"sessions": self.sessions, "frequency": self.frequency.value}


@dataclass(frozen=True, kw_only=True)
class DeclineFollowUp(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class DecideFollowUp(Command):
    """The client's answer to the open offer; a contract goes with an acceptance."""

    accepted: bool = given(flag)
    sessions: object = given(raw_value, None)
    frequency: object = given(raw_value, None)

    def as_acceptance(self) -> AcceptFollowUp:
        return AcceptFollowUp.parse(sessions=self.sessions, frequency=self.frequency)


@dataclass(frozen=True, kw_only=True)
class Close(Command):
    reason: CloseReason | None = given(optional(code(CloseReason)), None)
    note: str | None = given(note_for("reason", reason_optional=True), None)


@dataclass(frozen=True, kw_only=True)
class Withdraw(Command):
    reason: WithdrawalReason = given(code(WithdrawalReason))
    note: str | None = given(note_for("reason"), None)
