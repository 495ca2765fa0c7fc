"""A seeded generator of realistic caseloads, driven through the real application."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from ipt_workflow.application import CaseApplication
from ipt_workflow.domain.case import CommandContext, CommandResult, TherapyCase
from ipt_workflow.domain.rules import DomainError

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


class Course:
    """One random course; every command goes through the application."""

    def __init__(self, app: CaseApplication, rng: random.Random, case_id: UUID) -> None:
        self.app, self.rng, self.case_id = app, rng, case_id
        self.day = TODAY - timedelta(days=rng.randint(60, 400))

    def do(self, command: Callable[[TherapyCase], CommandResult]) -> bool:
        try:
            self.app.execute(self.case_id, command)
        except DomainError:
            return False
        return True

    @property
    def case(self) -> TherapyCase:
        return self.app.get_case(self.case_id)

    def session(self, **kw: Any) -> bool:
        self.day = min(TODAY, self.day + timedelta(days=self.rng.choice((3, 7, 7, 14))))
        attendees = kw.pop("attendees", ["client"])
        return self.do(
            lambda c: c.record_session(
                ctx(),
                self.day,
                50,
                self.rng.choice(("in_person", "video")),
                attendees,
                **kw,
            )
        )

    def measure(self, instrument: str, score: int) -> bool:
        return self.do(lambda c: c.record_measure(ctx(), instrument, score, self.day))


def generate(app: CaseApplication, cases: int, seed: int) -> list[UUID]:
    """Open `cases` cases and drive each through a random course."""
    rng = random.Random(seed)
    ids = []
    for n in range(cases):
        protocol = rng.choice(list(PROTOCOLS))
        low, high, instrument = PROTOCOLS[protocol]
        opened = app.open_case(
            ctx(),
            clinic_id=rng.choice(CLINICS),
            client_ref=f"GEN-{seed}-{n}",
            protocol=protocol,
            client_age=rng.randint(low, high),
            clinician_id=f"t-{rng.randint(1, 6)}",
            prior_episodes=rng.choice((0, 1, 3)),
        )
        ids.append(opened.case.id)
        _drive(Course(app, rng, opened.case.id), protocol, instrument)
    return ids


def _void(number: int) -> Callable[[TherapyCase], CommandResult]:
    def void(case: TherapyCase) -> CommandResult:
        return case.correct_entry(ctx(), "session", "duplicate_entry", number=number)

    return void


def _drive(c: Course, protocol: str, instrument: str) -> None:
    rng = c.rng
    stop = rng.random()
    floor = 17 if instrument == "cdrsr" else 0
    baseline = rng.randint(floor + 12, floor + 26)
    if protocol == "ipt-b" and rng.random() < 0.5:
        c.session(kind="engagement")
    c.do(
        lambda case: case.record_inventory(
            ctx(), [{"role": "partner", "closeness": 1, "deceased": rng.random() < 0.3}]
        )
    )
    area = rng.choice(AREAS)
    c.do(
        lambda case: case.agree_focus(
            ctx(),
            area,
            True,
            dispute_stage="impasse" if area == "role_dispute" else None,
        )
    )
    c.do(lambda case: case.agree_contract(ctx()))
    c.measure(instrument, baseline)
    if protocol == "ipt-g":
        c.session(kind="individual_pre_group")
    parent = (
        ["client", "parent"]
        if protocol in ("fb-ipt", "ipt-a") and rng.random() < 0.8
        else ["client"]
    )
    c.session(attendees=parent)
    if rng.random() < 0.1:
        c.do(lambda case: case.record_missed_session(ctx(), c.day, "client_cancelled"))
    if stop < 0.12:
        c.do(lambda case: case.withdraw(ctx(), "dropped_out"))
        return
    if stop < 0.2:
        return  # still in the beginning
    if not c.do(lambda case: case.start_middle(ctx())):
        return
    while c.session(
        strategies=rng.sample(
            ["communication_analysis", "decision_analysis", "role_play"],
            rng.randint(0, 2),
        )
    ):
        if rng.random() < 0.25:
            c.measure(instrument, rng.randint(floor, floor + 27))
        if rng.random() < 0.05:
            c.do(_void(c.case.last_session_number))
        left = c.case.acute_sessions_remaining or 0
        if left <= c.case.protocol.end_sessions.high and rng.random() < 0.6:
            break
    if rng.random() < 0.1:
        c.do(lambda case: case.reassign(ctx(), "t-9"))
    if stop < 0.35:
        return  # still in the middle
    if not c.do(lambda case: case.start_end(ctx())):
        return
    while c.session():
        pass
    final = rng.randint(floor, floor + baseline - floor)
    c.measure(instrument, final)
    if stop < 0.45:
        return  # in the end phase, measured
    if not c.do(lambda case: case.conclude(ctx(), rng.random() < 0.5)):
        return
    offer = c.case.follow_up_offer
    if offer is None:
        if rng.random() < 0.5:
            c.do(lambda case: case.close(ctx()))
        return
    choice = rng.random()
    if choice < 0.2:
        return  # awaiting the client's decision
    if choice < 0.45:
        c.do(lambda case: case.decline_follow_up(ctx()))
        c.do(lambda case: case.close(ctx()))
        return
    sessions = rng.randint(2, 6)
    if offer["kind"] == "referral":
        c.do(lambda case: case.accept_follow_up(ctx()))
        return
    c.do(lambda case: case.accept_follow_up(ctx(), sessions, "monthly"))
    for _ in range(rng.randint(0, sessions)):
        c.session()
    if rng.random() < 0.7:
        c.do(lambda case: case.close(ctx(), "other" if rng.random() < 0.1 else None))
