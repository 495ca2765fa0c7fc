"""The case application over real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from typing import Any
from uuid import UUID

import pytest

from ipt_workflow.application.cases import (
    CaseApplication,
    CaseConflictError,
    CaseNotFoundError,
    VersionMismatchError,
)
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import (
    AgreeContract,
    CommandContext,
    RecordMeasure,
    StartMiddle,
    Withdraw,
)
from ipt_workflow.domain.courses import Course
from ipt_workflow.domain.errors import CommandIdReused, GuardFailed
from tests.support.drivers import ThroughApplication

TODAY = date(2026, 11, 25)


def ctx(command_id: str | None = None) -> CommandContext:
    if command_id is None:
        return CommandContext(recorded_by="clinician-1", today=TODAY)
    return CommandContext(recorded_by="clinician-1", today=TODAY, command_id=command_id)


@pytest.fixture
def app(settings: Settings) -> Iterator[CaseApplication]:
    application = build_application(settings)
    yield application
    application.close()


def course(protocol: str = "ipt", **details: Any) -> Course:
    """The sample course of `protocol`, given on TODAY."""
    return Course(protocol, today=TODAY, **details)


def straight(app: CaseApplication, clinic_id: str = "clinic-a") -> ThroughApplication:
    return ThroughApplication(app, clinic_id, today=TODAY)


def open_case(
    app: CaseApplication,
    client_ref: str = "A-1042",
    protocol: str = "ipt",
    client_age: int | None = None,
    clinic_id: str = "clinic-a",
) -> UUID:
    plan = course(protocol, age=client_age)
    return straight(app, clinic_id).open(plan, client_ref, "t-7")


def measure(score: int) -> RecordMeasure:
    return course().measure(score, on=date(2026, 11, 1))


class TestOpenCase:
    def test_opening_saves_a_case_that_reads_back(self, app: CaseApplication) -> None:
        case_id = open_case(app)

        case = app.get_case(case_id)

        assert (case.phase, case.protocol_id, case.clinic_id) == (
            "beginning",
            "ipt@1",
            "clinic-a",
        )

    def test_opening_again_with_the_same_data_returns_the_open_case(
        self, app: CaseApplication
    ) -> None:
        first = app.open_case(course("ipt").opening("c", "R-1", "t"), ctx())

        again = app.open_case(course("ipt@1").opening("c", "R-1", "t"), ctx())

        assert (first.created, again.created) == (True, False)
        assert again.case.id == first.case.id
        assert len(app.case_events(first.case.id)) == 1

    def test_opening_again_with_other_data_is_a_conflict(
        self, app: CaseApplication
    ) -> None:
        case_id = open_case(app, client_ref="R-2")

        with pytest.raises(CaseConflictError) as refused:
            open_case(app, client_ref="R-2", client_age=35)

        assert refused.value.case_id == case_id

    def test_the_same_client_ref_at_another_clinic_is_another_case(
        self, app: CaseApplication
    ) -> None:
        here = open_case(app, client_ref="R-3")

        there = open_case(app, client_ref="R-3", clinic_id="clinic-b")

        assert here != there

    def test_concurrent_opens_of_one_client_ref_give_one_case(
        self, settings: Settings
    ) -> None:
        # Two application instances stand for two server processes.
        apps = [build_application(settings) for _ in range(2)]
        barrier = threading.Barrier(8)
        opened: list[UUID] = []
        errors: list[BaseException] = []

        def open_one(i: int) -> None:
            barrier.wait()
            try:
                opened.append(open_case(apps[i % 2], client_ref="RACE-1"))
            except BaseException as e:  # collected, asserted below
                errors.append(e)

        threads = [threading.Thread(target=open_one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for a in apps:
            a.close()

        assert errors == []
        assert len(opened) == 8
        assert len(set(opened)) == 1

    def test_an_ended_case_frees_its_client_ref_for_a_new_course(
        self, app: CaseApplication
    ) -> None:
        first = open_case(app, client_ref="R-4")
        straight(app).run(first, Withdraw.parse(reason="moved"))

        second = open_case(app, client_ref="R-4")

        assert second != first
        assert app.get_case(first).phase == "withdrawn"
        assert app.get_case(second).phase == "beginning"

    def test_the_client_ref_is_never_an_id(self, app: CaseApplication) -> None:
        case_id = open_case(app, client_ref="R-5")

        ref_id = app.reference_id("clinic-a", "R-5")

        assert "R-5" not in str(ref_id)
        assert ref_id != app.reference_id("clinic-b", "R-5")
        assert case_id != ref_id


class TestCommands:
    def test_a_command_is_saved_and_reported_with_its_position(
        self, app: CaseApplication
    ) -> None:
        case_id = open_case(app)

        done = app.execute(case_id, measure(20), ctx())

        assert done.case.version == 2
        assert done.position is not None and done.position > 0
        assert app.get_case(case_id).baseline == done.case.baseline

    def test_a_refused_command_saves_nothing(self, app: CaseApplication) -> None:
        case_id = open_case(app)

        with pytest.raises(GuardFailed):
            app.execute(case_id, StartMiddle.parse(), ctx())

        assert len(app.case_events(case_id)) == 1

    def test_a_case_of_another_clinic_is_not_found(self, app: CaseApplication) -> None:
        case_id = open_case(app)

        with pytest.raises(CaseNotFoundError):
            app.execute(case_id, AgreeContract.parse(), ctx(), clinics={"clinic-b"})
        with pytest.raises(CaseNotFoundError):
            app.get_case(case_id, clinics={"clinic-b"})

    def test_an_unknown_case_is_not_found(self, app: CaseApplication) -> None:
        with pytest.raises(CaseNotFoundError):
            app.get_case(UUID(int=7))

    def test_an_expected_version_that_moved_on_is_refused_and_saves_nothing(
        self, app: CaseApplication
    ) -> None:
        case_id = open_case(app)

        with pytest.raises(VersionMismatchError) as refused:
            app.execute(case_id, AgreeContract.parse(), ctx(), expected_version=5)

        assert refused.value.current == 1
        assert len(app.case_events(case_id)) == 1

    def test_the_case_as_of_a_version_is_the_fold_of_its_first_events(
        self, app: CaseApplication
    ) -> None:
        case_id = straight(app).drive(course(), Phase.middle)

        then = app.get_case(case_id, version=4)

        assert (then.version, then.phase, then.contract) == (
            4,
            "beginning",
            {"sessions": 16, "frequency": "weekly"},
        )
        assert then.baseline is None
        assert app.get_case(case_id).phase == "middle"


class TestRestart:
    def test_a_new_application_sees_every_event_and_every_applied_command_id(
        self, settings: Settings
    ) -> None:
        first = build_application(settings)
        case_id = open_case(first)
        first.execute(case_id, measure(20), ctx("cmd-1"))
        first.close()

        second = build_application(settings)
        replay = second.execute(case_id, measure(20), ctx("cmd-1"))
        with pytest.raises(CommandIdReused):
            second.execute(case_id, measure(21), ctx("cmd-1"))
        events = second.case_events(case_id)
        second.close()

        assert replay.result.replayed
        assert [type(e).__name__ for e in events] == ["CaseOpened", "SymptomsMeasured"]


class TestConcurrency:
    def test_sixteen_threads_recording_sessions_end_with_numbers_one_to_n(
        self, settings: Settings
    ) -> None:
        setup = build_application(settings)
        group = course("ipt-g")
        # An uncounted individual session before the group, then session 1.
        case_id = straight(setup).drive(group, Phase.middle)
        setup.close()
        # Two application instances stand for two server processes, so lost races
        # across processes are exercised as well as the in-process lock.
        apps = [build_application(settings) for _ in range(2)]
        barrier = threading.Barrier(16)
        numbers: list[int | None] = []
        errors: list[BaseException] = []
        session = group.session(
            held_on=date(2026, 11, 2), minutes=90, attendees=["group"]
        )

        def record(i: int) -> None:
            barrier.wait()
            try:
                done = straight(apps[i % 2]).run(case_id, session)
                numbers.append(done.result.session_number)
            except BaseException as e:  # collected, asserted below
                errors.append(e)

        threads = [threading.Thread(target=record, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        case = apps[0].get_case(case_id)
        for a in apps:
            a.close()

        assert errors == []
        assert sorted(n for n in numbers if n is not None) == list(range(2, 18))
        assert [s["number"] for s in case.sessions if s["number"]] == list(range(1, 18))
