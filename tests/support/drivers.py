"""Drive cases with the sample courses' command values, through the application or
over HTTP: the same commands every test folder builds its cases with.

The unit tests give the commands to the aggregate (`tests/unit/builders.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

from ipt_workflow.application.cases import CaseApplication, Outcome
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    AgreeContract,
    AgreeFocus,
    ChangeDisputeStage,
    Command,
    CommandContext,
    CorrectEntry,
    DecideFollowUp,
    DeclineFollowUp,
    OfferFollowUp,
    OpenCase,
    Reassign,
    RecordDeviation,
    RecordInventory,
    RecordMeasure,
    RecordMissedSession,
    RecordRiskReview,
    RecordSession,
    RenegotiateContract,
    SetContract,
)
from ipt_workflow.domain.courses import Course
from ipt_workflow.domain.phases import TRANSITIONS

ROUTES: dict[type[Command], str] = {
    RecordInventory: "inventory",
    AgreeFocus: "focus",
    ChangeDisputeStage: "dispute-stage",
    AgreeContract: "contract",
    RenegotiateContract: "contract",
    SetContract: "contract",
    RecordDeviation: "deviations",
    RecordMeasure: "measures",
    RecordSession: "sessions",
    RecordMissedSession: "missed-sessions",
    CorrectEntry: "corrections",
    RecordRiskReview: "risk-reviews",
    Reassign: "reassign",
    OfferFollowUp: "follow-up/offer",
    AcceptFollowUp: "follow-up/decision",
    DeclineFollowUp: "follow-up/decision",
    DecideFollowUp: "follow-up/decision",
}
"""The route of each command that is not a named transition (api.md)."""


def request_for(command: Command) -> tuple[str, dict[str, Any] | None]:
    """The route (under /cases/{id}/) and body that send `command` over HTTP."""
    body = {k: v for k, v in command.params().items() if v is not None}
    if isinstance(command, AcceptFollowUp):
        return ROUTES[AcceptFollowUp], {"accepted": True, **body}
    if isinstance(command, DeclineFollowUp):
        return ROUTES[DeclineFollowUp], {"accepted": False}
    if type(command) in TRANSITIONS and not isinstance(
        command, AcceptFollowUp | DeclineFollowUp
    ):
        name = TRANSITIONS[type(command)].value
        return f"transitions/{name}", body or None
    return ROUTES[type(command)], body


def opening_body(command: OpenCase) -> dict[str, Any]:
    """POST /cases: the clinic is the caller's, never part of the body."""
    return {k: v for k, v in command.params().items() if k != "clinic_id"}


def until_last(commands: list[Command], last: type[Command]) -> list[Command]:
    """The commands before the last one, which must be a `last`: a course's
    commands to a phase, less the transition into it."""
    *before, final = commands
    assert isinstance(final, last), final
    return before


def unique_ref(prefix: str = "C") -> str:
    return f"{prefix}-{uuid4().hex[:16]}"


Post = Callable[[str, Any], Any]
"""POST a JSON body to a path; the answer (an httpx-style response)."""


@dataclass(frozen=True)
class OverHttp:
    """Sends commands as a clinic system would: one request each."""

    post: Post

    def opened(
        self,
        course: Course,
        client_ref: str | None = None,
        clinician_id: str = "clinician-1",
    ) -> dict[str, Any]:
        """Open a case of the course's client: the case as the answer gives it."""
        opening = course.opening(
            client_ref=client_ref or unique_ref(), clinician_id=clinician_id
        )
        answer = self.post("/cases", opening_body(opening))
        assert answer.status_code in (200, 201), answer.text
        case: dict[str, Any] = answer.json()
        return case

    def open(
        self,
        course: Course,
        client_ref: str | None = None,
        clinician_id: str = "clinician-1",
    ) -> str:
        case_id: str = self.opened(course, client_ref, clinician_id)["id"]
        return case_id

    def run(self, case_id: str, *commands: Command) -> Any:
        """Send each command; every one must succeed. The last answer's body."""
        found = None
        for command in commands:
            route, body = request_for(command)
            answer = self.post(f"/cases/{case_id}/{route}", body)
            assert answer.status_code in (200, 201), f"{route}: {answer.text}"
            found = answer.json()
        return found

    def drive(self, course: Course, to: Phase, client_ref: str | None = None) -> str:
        """A new case brought to phase `to` by the course's commands."""
        case_id = self.open(course, client_ref)
        self.run(case_id, *course.commands(to))
        return case_id


def case_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The case in a command's answer (a session's answer holds it beside the
    session)."""
    case: dict[str, Any] = answer.get("case", answer)
    return case


@dataclass(frozen=True)
class ThroughApplication:
    """Gives commands to the case application, as the API does, with no HTTP."""

    app: CaseApplication
    clinic_id: str = "clinic-a"
    actor: str = "clinician-1"
    today: date | None = None
    """The day the commands are given (default: the real today)."""

    def ctx(self, command_id: str | None = None) -> CommandContext:
        today = self.today or datetime.now(UTC).date()
        if command_id is None:
            return CommandContext(recorded_by=self.actor, today=today)
        return CommandContext(
            recorded_by=self.actor, today=today, command_id=command_id
        )

    def open(
        self,
        course: Course,
        client_ref: str | None = None,
        clinician_id: str = "clinician-1",
    ) -> UUID:
        opening = course.opening(
            self.clinic_id, client_ref or unique_ref(), clinician_id
        )
        return self.app.open_case(opening, self.ctx()).case.id

    def run(self, case_id: UUID, *commands: Command) -> Outcome:
        found = None
        for command in commands:
            found = self.app.execute(case_id, command, self.ctx())
        assert found is not None
        return found

    def drive(self, course: Course, to: Phase, client_ref: str | None = None) -> UUID:
        case_id = self.open(course, client_ref)
        self.run(case_id, *course.commands(to))
        return case_id
