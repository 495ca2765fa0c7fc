"""`ipt-workflow demo`: realistic courses of every protocol through the aggregate.

Each course is saved to and reloaded from the library's in-memory event store, so
what is printed is the state folded back from the recorded events.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TextIO
from uuid import UUID

from eventsourcing.application import Application

from ipt_workflow.domain.case import CommandContext, TherapyCase
from ipt_workflow.domain.rules import DomainError

TODAY = date(2026, 11, 25)


class Course:
    """Drives one case week by week and prints what happens."""

    def __init__(
        self, out: TextIO, store: Application[UUID], case: TherapyCase
    ) -> None:
        self.out, self.store, self.case = out, store, case
        self.day = TODAY - timedelta(weeks=30)

    def ctx(self) -> CommandContext:
        return CommandContext(recorded_by="demo-clinician", today=TODAY)

    def do(
        self, label: str, command: Callable[..., Any], *args: Any, **kw: Any
    ) -> bool:
        """Run one command; print its refusal if the rules say no."""
        try:
            command(self.ctx(), *args, **kw)
        except DomainError as refused:
            self.out.write(f"    ✗ {label}: refused\n")
            for line in _reasons(refused):
                self.out.write(f"        - {line}\n")
            return False
        self.store.save(self.case)
        self.case = self.store.repository.get(self.case.id)
        self.out.write(f"    ✓ {label:<44} phase={self.case.phase}\n")
        return True

    def sessions(self, n: int, **kw: Any) -> None:
        for _ in range(n):
            self.day += timedelta(weeks=1)
            kw.setdefault("attendees", ["client"])
            self.do(
                f"session on {self.day}",
                self.case.record_session,
                self.day,
                50,
                "in_person",
                **kw,
            )

    def measure(self, instrument: str, score: int) -> None:
        self.do(
            f"{instrument} = {score}",
            self.case.record_measure,
            instrument,
            score,
            self.day,
        )

    def why_not(self) -> None:
        self.out.write("    why not, now:\n")
        for transition, reasons in self.case.why_not().items():
            if reasons and reasons[0].rule != "wrong_phase":
                text = "; ".join(r.rule for r in reasons)
                self.out.write(f"        {transition.value}: {text}\n")
            elif not reasons:
                self.out.write(f"        {transition.value}: allowed\n")


def _reasons(refused: DomainError) -> list[str]:
    violations = getattr(refused, "violations", ())
    errors = getattr(refused, "errors", ())
    return [f"{v.rule}: {v.message}" for v in violations] + [
        f"{e.field}: {e.message}" for e in errors
    ]


def _open(
    out: TextIO, store: Application[UUID], protocol: str, age: int, **kw: Any
) -> Course:
    case = TherapyCase.open(
        CommandContext(recorded_by="demo-clinician", today=TODAY),
        clinic_id="demo-clinic",
        client_ref=f"DEMO-{protocol}",
        protocol=protocol,
        client_age=age,
        clinician_id="t-7",
        **kw,
    )
    store.save(case)
    out.write(f"\n== {case.protocol.title} ({case.protocol_id}), client aged {age}\n")
    return Course(out, store, case)


def _open_refused(out: TextIO, protocol: str, age: int) -> None:
    out.write(f"\n== {protocol}, client aged {age}\n")
    try:
        _open(out, Application(), protocol, age)
    except DomainError as refused:
        out.write("    ✗ open case: refused\n")
        for line in _reasons(refused):
            out.write(f"        - {line}\n")


def _beginning(c: Course, area: str = "role_transition", **focus: Any) -> None:
    c.do(
        "interpersonal inventory",
        c.case.record_inventory,
        [
            {"role": "partner", "closeness": 1, "conflict": True},
            {"role": "mother", "closeness": 2, "supportive": True, "deceased": False},
        ],
        attachment_style="anxious",
    )
    c.do(f"agree focus: {area}", c.case.agree_focus, area, True, **focus)
    c.do("agree contract (protocol default)", c.case.agree_contract)


def _finish(c: Course, end_sessions: int, final: int, instrument: str = "phq9") -> None:
    c.do("start end phase", c.case.start_end)
    c.sessions(end_sessions)
    c.measure(instrument, final)
    c.do("conclude acute treatment", c.case.conclude, maintenance_discussed=True)
    outcome = c.case.outcome or {}
    c.out.write(
        f"    outcome: {outcome.get('classification')}; "
        f"offer: {c.case.follow_up_offer and c.case.follow_up_offer['kind']}\n"
    )


def run_demo(out: TextIO) -> None:
    """Print the demo courses."""
    store: Application[UUID] = Application()

    c = _open(out, store, "ipt", 34)
    c.do("start middle too early", c.case.start_middle)
    _beginning(c, "grief")
    _beginning(c, "role_dispute", dispute_stage="impasse")
    c.measure("phq9", 19)
    c.sessions(3)
    c.sessions(1)
    c.why_not()
    c.do("start middle phase", c.case.start_middle)
    c.sessions(
        11, strategies=["communication_analysis"], communication_aspects=["tone"]
    )
    c.sessions(1)
    _finish(c, 2, 8)
    c.do("close with the offer open", c.case.close)
    c.do("accept continuation", c.case.accept_follow_up, 6, "monthly")
    c.sessions(2)
    c.do("close after follow-up", c.case.close)

    _open_refused(out, "ipt-a", 19)
    c = _open(out, store, "ipt-a", 15)
    _beginning(c)
    c.measure("phq9", 16)
    c.sessions(1, attendees=["client", "parent"])
    c.do("start middle phase", c.case.start_middle)
    c.sessions(8)
    _finish(c, 2, 3)
    c.do("close (remission)", c.case.close)

    c = _open(out, store, "fb-ipt", 9)
    _beginning(c, "interpersonal_deficits")
    c.measure("cdrsr", 60)
    c.sessions(2)
    c.do("start middle without a parent session", c.case.start_middle)
    c.sessions(1, attendees=["client", "parent"])
    c.do("start middle phase", c.case.start_middle)
    c.sessions(9)
    c.do("withdraw: the family moved", c.case.withdraw, "moved")

    c = _open(out, store, "ipt-g", 41)
    _beginning(c)
    c.measure("bdi2", 30)
    c.sessions(1, attendees=["group"])
    c.sessions(1, kind="individual_pre_group")
    c.sessions(2, attendees=["group"])
    c.do("start middle phase", c.case.start_middle)
    c.sessions(13, attendees=["group"])
    _finish(c, 4, 27, "bdi2")
    c.do("accept the referral", c.case.accept_follow_up)

    c = _open(out, store, "ipt-b", 52, prior_episodes=3)
    c.sessions(1, kind="engagement")
    _beginning(c)
    c.measure("phq9", 14)
    c.sessions(2)
    c.sessions(1)
    c.do("start middle phase", c.case.start_middle)
    c.sessions(4)
    _finish(c, 2, 4)
    c.do("decline maintenance", c.case.decline_follow_up)
    c.do("close", c.case.close)
