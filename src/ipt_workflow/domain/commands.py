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
from enum import Enum, StrEnum
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
    SecondaryAreaReason,
    Strategy,
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
    known_protocol,
    note_for,
    offered_kind,
    optional,
    past_date,
    raw_value,
    required_when,
    score_of,
    within,
)
from ipt_workflow.domain.measures import FollowUpKind
from ipt_workflow.domain.protocols import (
    Instrument,
    IntRange,
    ProblemArea,
    Protocol,
    SessionKind,
    find_protocol,
)

E = TypeVar("E", bound=StrEnum)

AGE = IntRange(0, 130)
PRIOR_EPISODES = IntRange(0, 99)
CLOSENESS = IntRange(1, 3)
RELATIONSHIPS = IntRange(1, 50)
MINUTES = IntRange(20, 120)
CONTRACT_SESSIONS = IntRange(1, 104)
"""Any contract size a clinic may type; the protocol's own range is a rule."""
FOLLOW_UP_SESSIONS = IntRange(1, 104)
SESSION_NUMBER = IntRange(1, 10_000)
RELATIONSHIP_FLAGS = ("supportive", "conflict", "changed_at_onset", "deceased")


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


def relationships(p: Parsing, name: str, value: object) -> object:
    if not isinstance(value, list | tuple) or len(value) not in RELATIONSHIPS:
        p.inp.fail(name, f"must list {RELATIONSHIPS} relationships")
        return None
    return tuple(_relationship(p.inp, f"{name}[{i}]", r) for i, r in enumerate(value))


def _relationship(inp: Input, at: str, rel: object) -> Relationship | None:
    if not isinstance(rel, Mapping):
        inp.fail(at, "must be an object")
        return None
    for name in sorted(set(rel) - {"role", "closeness", *RELATIONSHIP_FLAGS}, key=str):
        inp.fail(f"{at}.{name}", "is not a field of a relationship")
    role = inp.code(f"{at}.role", rel.get("role"), RelationshipRole)
    closeness = inp.integer(f"{at}.closeness", rel.get("closeness"), CLOSENESS)
    flags = {n: inp.flag(f"{at}.{n}", rel.get(n, False)) for n in RELATIONSHIP_FLAGS}
    if role is None or closeness is None:
        return None
    return Relationship(role, closeness, **flags)


# --- commands -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Command:
    """A request to a case, named as a verb; its fields are already checked."""

    name: ClassVar[str]
    """The aggregate method that runs it, and its name in the idempotency digest."""
    label: ClassVar[str]
    """What logs and metrics call it (the first release's route names)."""

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
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    def digest(self) -> str:
        return command_digest(self.name, self.params())


def _plain(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Relationship):
        return value.as_dict()
    return value


@dataclass(frozen=True)
class Relationship:
    """One relationship of the interpersonal inventory: a role, never a name."""

    role: RelationshipRole
    closeness: int
    supportive: bool = False
    conflict: bool = False
    changed_at_onset: bool = False
    deceased: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, kw_only=True)
class OpenCase(Command):
    clinic_id: str = given(identifier)
    client_ref: str = given(identifier)
    clinician_id: str = given(identifier)
    client_age: int = given(within(AGE))
    prior_episodes: int = given(within(PRIOR_EPISODES), 0)
    protocol: str = given(known_protocol)
    """As given: `ipt@1`, or `ipt` for the latest version (see `resolved`)."""

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
