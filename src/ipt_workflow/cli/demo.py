"""`ipt-workflow demo`: realistic courses of every protocol through the aggregate.

Each course is saved to and reloaded from the library's in-memory event store, so
what is printed is the state folded back from the recorded events.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TextIO
from uuid import UUID

from eventsourcing.application import Application

from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    AgreeContract,
    Close,
    Command,
    CommandContext,
    Conclude,
    DeclineFollowUp,
    StartEnd,
    StartMiddle,
    Withdraw,
)
from ipt_workflow.domain.courses import Course
from ipt_workflow.domain.errors import DomainError

TODAY = date(2026, 11, 25)


class Demo:
    """Drives one case week by week and prints what happens."""

    def __init__(
        self, out: TextIO, store: Application[UUID], case: TherapyCase, course: Course
    ) -> None:
        self.out, self.store, self.case, self.course = out, store, case, course
        self.week = 0

    def do(self, label: str, command: Command) -> bool:
        """Run one command; print its refusal if the rules say no."""
        try:
            self.case.handle(_ctx(), command)
        except DomainError as refused:
            self.out.write(f"    ✗ {label}: refused\n")
            for line in _reasons(refused):
                self.out.write(f"        - {line}\n")
            return False
        self.store.save(self.case)
        self.case = self.store.repository.get(self.case.id)
        self.out.write(f"    ✓ {label:<44} phase={self.case.phase}\n")
        return True

    def sessions(self, n: int, **details: object) -> None:
        for _ in range(n):
            self.week += 1
            session = self.course.session(self.week, **details)
            self.do(f"session on {session.held_on}", session)

    def measure(self, score: int, instrument: str | None = None) -> None:
        on = (self.course.weekly_from or TODAY) + timedelta(weeks=self.week)
        measure = self.course.measure(score, instrument, on)
        self.do(f"{measure.instrument.value} = {score}", measure)

    def why_not(self) -> None:
        self.out.write("    why not, now:\n")
        for transition, reasons in self.case.why_not().items():
            if reasons and reasons[0].rule != "wrong_phase":
                text = "; ".join(r.rule for r in reasons)
                self.out.write(f"        {transition.value}: {text}\n")
            elif not reasons:
                self.out.write(f"        {transition.value}: allowed\n")


def _ctx() -> CommandContext:
    return CommandContext(recorded_by="demo-clinician", today=TODAY)


def _reasons(refused: DomainError) -> list[str]:
    violations = getattr(refused, "violations", ())
    errors = getattr(refused, "errors", ())
    return [f"{v.rule}: {v.message}" for v in violations] + [
        f"{e.field}: {e.message}" for e in errors
    ]


def _course(protocol: str, age: int, prior_episodes: int = 0) -> Course:
    return Course(
        protocol,
        age=age,
        prior_episodes=prior_episodes,
        today=TODAY,
        weekly_from=TODAY - timedelta(weeks=30),
    )


def _open(out: TextIO, store: Application[UUID], course: Course) -> Demo:
    opening = course.opening("demo-clinic", f"DEMO-{course.protocol}", "t-7")
    case = TherapyCase.open(_ctx(), opening)
    store.save(case)
    title = f"{case.protocol.title} ({case.protocol_id})"
    out.write(f"\n== {title}, client aged {opening.client_age}\n")
    return Demo(out, store, case, course)


def _open_refused(out: TextIO, protocol: str, age: int) -> None:
    out.write(f"\n== {protocol}, client aged {age}\n")
    try:
        _open(out, Application(), _course(protocol, age))
    except DomainError as refused:
        out.write("    ✗ open case: refused\n")
        for line in _reasons(refused):
            out.write(f"        - {line}\n")


def _beginning(d: Demo, area: str = "role_transition", **focus: object) -> None:
    d.do("interpersonal inventory", d.course.inventory())
    d.do(f"agree focus: {area}", d.course.focus(area, **focus))
    d.do("agree contract (protocol default)", AgreeContract.parse())


def _finish(d: Demo, end_sessions: int, final: int, instrument: str = "phq9") -> None:
    d.do("start end phase", StartEnd.parse())
    d.sessions(end_sessions)
    d.measure(final, instrument)
    d.do("conclude acute treatment", Conclude.parse(maintenance_discussed=True))
    outcome = d.case.outcome or {}
    offer = d.case.follow_up_offer
    d.out.write(
        f"    outcome: {outcome.get('classification')}; "
        f"offer: {offer and offer['kind']}\n"
    )


def run_demo(out: TextIO) -> None:
    """Print the demo courses."""
    store: Application[UUID] = Application()

    d = _open(out, store, _course("ipt", 34))
    d.do("start middle too early", StartMiddle.parse())
    _beginning(d, "grief")
    _beginning(d, "role_dispute", dispute_stage="impasse")
    d.measure(19)
    d.sessions(3)
    d.sessions(1)
    d.why_not()
    d.do("start middle phase", StartMiddle.parse())
    d.sessions(
        11, strategies=["communication_analysis"], communication_aspects=["tone"]
    )
    d.sessions(1)
    _finish(d, 2, 8)
    d.do("close with the offer open", Close.parse())
    d.do("accept continuation", AcceptFollowUp.parse(sessions=6, frequency="monthly"))
    d.sessions(2)
    d.do("close after follow-up", Close.parse())

    _open_refused(out, "ipt-a", 19)
    d = _open(out, store, _course("ipt-a", 15))
    _beginning(d)
    d.measure(16)
    d.sessions(1, attendees=["client", "parent"])
    d.do("start middle phase", StartMiddle.parse())
    d.sessions(8)
    _finish(d, 2, 3)
    d.do("close (remission)", Close.parse())

    d = _open(out, store, _course("fb-ipt", 9))
    _beginning(d, "interpersonal_deficits")
    d.measure(60, "cdrsr")
    d.sessions(2)
    d.do("start middle without a parent session", StartMiddle.parse())
    d.sessions(1, attendees=["client", "parent"])
    d.do("start middle phase", StartMiddle.parse())
    d.sessions(9)
    d.do("withdraw: the family moved", Withdraw.parse(reason="moved"))

    d = _open(out, store, _course("ipt-g", 41))
    _beginning(d)
    d.measure(30, "bdi2")
    d.sessions(1, attendees=["group"])
    d.sessions(1, kind="individual_pre_group")
    d.sessions(2, attendees=["group"])
    d.do("start middle phase", StartMiddle.parse())
    d.sessions(13, attendees=["group"])
    _finish(d, 4, 27, "bdi2")
    d.do("accept the referral", AcceptFollowUp.parse())

    d = _open(out, store, _course("ipt-b", 52, prior_episodes=3))
    d.sessions(1, kind="engagement")
    _beginning(d)
    d.measure(14)
    d.sessions(2)
    d.sessions(1)
    d.do("start middle phase", StartMiddle.parse())
    d.sessions(4)
    _finish(d, 2, 4)
    d.do("decline maintenance", DeclineFollowUp.parse())
    d.do("close", Close.parse())
