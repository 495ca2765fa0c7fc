"""A seeded generator of realistic caseloads, driven through the real application
with the commands of the sample courses (ipt_workflow.domain.courses)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import TerminationTask
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    AgreeContract,
    Close,
    Command,
    CommandContext,
    Conclude,
    CorrectEntry,
    DeclineFollowUp,
    Reassign,
    RecordMeasure,
    RecordMissedSession,
    RecordRiskReview,
    StartEnd,
    StartMiddle,
    Withdraw,
)
from ipt_workflow.domain.courses import Course
from ipt_workflow.domain.errors import DomainError

TODAY = date(2026, 11, 25)
CLINICS = ("clinic-a", "clinic-b", "clinic-c")
PROTOCOLS = {
    "ipt": (18, 80, "phq9"),
    "ipt-a": (12, 18, "phq9"),
    "fb-ipt": (7, 12, "cdrsr"),
    "ipt-g": (18, 80, "bdi2"),
    "ipt-b": (18, 80, "hamd17"),
}
AREAS = ("grief", "role_dispute", "role_transition", "interpersonal_deficits")


def ctx() -> CommandContext:
    return CommandContext(recorded_by="generator", today=TODAY)


class RandomCourse:
    """One random course; every command goes through the application, built by the
    sample course of the case's protocol (ipt_workflow.domain.courses)."""

    def __init__(
        self, app: CaseApplication, rng: random.Random, case_id: UUID, plan: Course
    ) -> None:
        self.app, self.rng, self.case_id, self.plan = app, rng, case_id, plan
        assert plan.intake_on is not None
        self.day = plan.intake_on

    def do(self, command: Command) -> bool:
        try:
            self.app.execute(self.case_id, command, ctx())
        except DomainError:
            return False
        return True

    @property
    def case(self) -> TherapyCase:
        return self.app.get_case(self.case_id)

    def session(self, **kw: Any) -> bool:
        self.day = min(TODAY, self.day + timedelta(days=self.rng.choice((3, 7, 7, 14))))
        modality = self.rng.choice(("in_person", "video"))
        return self.do(self.plan.session(held_on=self.day, modality=modality, **kw))

    def measure(self, score: int) -> bool:
        """A measure on the course's day; on the PHQ-9 and BDI-II sometimes with a
        risk item, and a risk flag is mostly reviewed soon after."""
        risk = None
        if self.plan.scale in ("phq9", "bdi2") and self.rng.random() < 0.3:
            risk = self.rng.choice((0, 0, 1, 2))
        measure = RecordMeasure.parse(
            instrument=self.plan.scale,
            score=score,
            measured_on=self.day,
            risk_item=risk,
            today=TODAY,
        )
        done = self.do(measure)
        if done and risk and self.rng.random() < 0.7:
            self.do(RecordRiskReview.parse(outcome="safety_plan_made"))
        return done


def generate(app: CaseApplication, cases: int, seed: int) -> list[UUID]:
    """Open `cases` cases and drive each through a random course."""
    rng = random.Random(seed)
    ids = []
    for n in range(cases):
        protocol = rng.choice(list(PROTOCOLS))
        low, high, instrument = PROTOCOLS[protocol]
        clinic_id = rng.choice(CLINICS)
        age = rng.randint(low, high)
        clinician_id = f"t-{rng.randint(1, 6)}"
        plan = Course(
            protocol,
            instrument=instrument,
            age=age,
            prior_episodes=rng.choice((0, 1, 3)),
            today=TODAY,
            intake_on=TODAY - timedelta(days=rng.randint(60, 400)),
        )
        opening = plan.opening(clinic_id, f"GEN-{seed}-{n}", clinician_id)
        opened = app.open_case(opening, ctx())
        ids.append(opened.case.id)
        _drive(RandomCourse(app, rng, opened.case.id, plan), protocol)
    return ids


def _void(number: int) -> Command:
    return CorrectEntry.parse(
        entry="session", reason="duplicate_entry", number=number, today=TODAY
    )


def _drive(c: RandomCourse, protocol: str) -> None:
    rng = c.rng
    stop = rng.random()
    floor = 17 if c.plan.instrument == "cdrsr" else 0
    baseline = rng.randint(floor + 12, floor + 26)
    if protocol == "ipt-b" and rng.random() < 0.5:
        c.session(kind="engagement")
    c.do(c.plan.inventory(deceased=rng.random() < 0.3))
    area = rng.choice(AREAS)
    stage = "impasse" if area == "role_dispute" else None
    c.do(c.plan.focus(area, dispute_stage=stage))
    c.do(AgreeContract.parse())
    c.measure(baseline)
    if protocol == "ipt-g":
        c.session(kind="individual_pre_group")
    parent = (
        ["client", "parent"]
        if protocol in ("fb-ipt", "ipt-a") and rng.random() < 0.8
        else ["client"]
    )
    c.session(attendees=parent)
    if rng.random() < 0.1:
        c.do(
            RecordMissedSession.parse(
                scheduled_on=c.day, reason="client_cancelled", today=TODAY
            )
        )
    if stop < 0.12:
        c.do(Withdraw.parse(reason="dropped_out"))
        return
    if stop < 0.2:
        return  # still in the beginning
    if not c.do(StartMiddle.parse()):
        return
    while c.session(
        strategies=rng.sample(
            ["communication_analysis", "decision_analysis", "role_play"],
            rng.randint(0, 2),
        )
    ):
        if rng.random() < 0.25:
            c.measure(rng.randint(floor, floor + 27))
        if rng.random() < 0.05:
            c.do(_void(c.case.last_session_number))
        left = c.case.acute_sessions_remaining or 0
        if left <= c.case.protocol.end_sessions.high and rng.random() < 0.6:
            break
    if rng.random() < 0.1:
        c.do(Reassign.parse(clinician_id="t-9"))
    if stop < 0.35:
        return  # still in the middle
    if not c.do(StartEnd.parse()):
        return
    while c.session():
        pass
    final = rng.randint(floor, floor + baseline - floor)
    c.measure(final)
    if stop < 0.45:
        return  # in the end phase, measured
    tasks = rng.sample(TASKS, rng.randint(0, len(TASKS)))
    concluding = Conclude.parse(
        maintenance_discussed=rng.random() < 0.5, termination_tasks=tasks
    )
    if not c.do(concluding):
        return
    if rng.random() < 0.2:
        _correct_final(c, floor, baseline)
    offer = c.case.follow_up_offer
    if offer is None:
        if rng.random() < 0.5:
            c.do(Close.parse())
        return
    choice = rng.random()
    if choice < 0.2:
        return  # awaiting the client's decision
    if choice < 0.45:
        c.do(DeclineFollowUp.parse())
        c.do(Close.parse())
        return
    sessions = rng.randint(2, 6)
    if offer["kind"] == "referral":
        c.do(AcceptFollowUp.parse())
        return
    c.do(AcceptFollowUp.parse(sessions=sessions, frequency="monthly"))
    for _ in range(rng.randint(0, sessions)):
        c.session()
        if rng.random() < 0.4:
            c.measure(rng.randint(floor, floor + 27))
    if rng.random() < 0.2:
        _correct_final(c, floor, baseline)  # after the client's decision
    if rng.random() < 0.7:
        c.do(Close.parse(reason="other" if rng.random() < 0.1 else None))


TASKS = [t.value for t in TerminationTask]


def _correct_final(c: RandomCourse, floor: int, baseline: int) -> None:
    """The final score was typed wrongly: replace it (the outcome may be revised)."""
    final = c.case.final_measure
    if final is None:
        return
    score = c.rng.randint(floor, floor + baseline - floor)
    c.do(
        CorrectEntry.parse(
            entry="measure",
            reason="wrong_details",
            instrument=final["instrument"],
            measured_on=final["measured_on"],
            replacement={"score": score, "measured_on": final["measured_on"]},
            today=TODAY,
        )
    )
