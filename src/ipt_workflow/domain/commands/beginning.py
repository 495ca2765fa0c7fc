"""The commands of opening a case and of its Beginning: inventory, focus, contract
and recorded deviations (domain.md §2-§3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ipt_workflow.domain.codes import (
    AttachmentStyle,
    CommunicationStyle,
    DeviationReason,
    DeviationRule,
    DisputeStage,
    Frequency,
    RelationshipRole,
    RenegotiationReason,
    SecondaryAreaReason,
)
from ipt_workflow.domain.commands.base import Command
from ipt_workflow.domain.inputs import (
    code,
    codes_of,
    flag,
    given,
    identifier,
    intake_date,
    known_protocol,
    note_for,
    optional,
    raw_value,
    within,
)
from ipt_workflow.domain.protocols import (
    ProblemArea,
    Protocol,
    find_protocol,
)
from ipt_workflow.domain.values import (
    AGE,
    CONTRACT_SESSIONS,
    PRIOR_EPISODES,
    Relationship,
    relationships,
)


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
