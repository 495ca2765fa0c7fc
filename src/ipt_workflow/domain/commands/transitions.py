"""The commands that move a case between phases, and the follow-up decision at the
end (domain.md §1, §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ipt_workflow.domain.codes import (
    CloseReason,
    FollowUpFrequency,
    TerminationTask,
    WithdrawalReason,
)
from ipt_workflow.domain.commands.base import Command
from ipt_workflow.domain.inputs import (
    code,
    codes_of,
    flag,
    follow_up_frequency,
    given,
    note_for,
    offered_kind,
    optional,
    raw_value,
    within,
)
from ipt_workflow.domain.measures import FollowUpKind
from ipt_workflow.domain.values import FOLLOW_UP_SESSIONS


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
