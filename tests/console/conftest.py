"""One real `ipt-workflow serve --dev` process per module, with a clinic's cases
built over HTTP from the sample courses, and Debian's Chromium to look at them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser

from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import Command, RecordMeasure, RecordSession
from ipt_workflow.domain.courses import Course
from tests.ops.conftest import OpsServer, start_server
from tests.support.browser import Guarded, chromium, guarded_context
from tests.support.drivers import OverHttp, unique_ref


@dataclass(frozen=True)
class Clinic:
    """demo-clinic's cases, by what the tests look for."""

    server: OpsServer
    showcase: str
    """A concluded case (remission) with four measures over thirteen weeks."""
    showcase_ref: str
    middle: list[str]
    concluded: list[str]

    @property
    def base(self) -> str:
        return self.server.base

    def post(self, path: str, body: object = None) -> httpx.Response:
        return self.server.post(path, body)

    def get(self, path: str, token: str = "dev-auditor") -> httpx.Response:
        return self.server.get(path, headers={"Authorization": f"Bearer {token}"})


def showcase_commands(course: Course, start: date) -> list[Command]:
    """The course to its conclusion with the baseline on the first session's day and
    two more measures between, so the trajectory spans the course."""
    plan: list[Command] = []
    sessions = 0
    for command in course.commands(Phase.concluded):
        if isinstance(command, RecordMeasure) and command.score == course.baseline:
            command = course.measure(course.baseline, on=start)
        plan.append(command)
        if isinstance(command, RecordSession) and command.kind == "therapy":
            sessions += 1
            if sessions in (4, 8):
                score = {4: 14, 8: 9}[sessions]
                plan.append(course.measure(score, on=start + timedelta(weeks=sessions)))
    return plan


def build_clinic(server: OpsServer) -> Clinic:
    http = OverHttp(server.post)
    today = datetime.now(UTC).date()
    start = today - timedelta(weeks=12)
    course = Course(baseline=19, final=4, contract=12, weekly_from=start)
    showcase_ref = unique_ref("SHOW")
    showcase = http.open(course, showcase_ref)
    http.run(showcase, *showcase_commands(course, start))
    concluded = [showcase]
    for final in (3, 2, 8, 9, 18):
        brief = Course(baseline=20, final=final, contract=12, brief=True)
        concluded.append(http.drive(brief, Phase.concluded))
    idle = Course(contract=12, weekly_from=today - timedelta(weeks=8))
    middle = [
        http.drive(Course(contract=12), Phase.middle),
        http.drive(idle, Phase.middle),  # its last session 8 weeks ago: overdue
    ]
    http.open(Course())  # one in the beginning phase
    concluded.append(
        http.drive(Course("ipt-b", baseline=20, final=3, brief=True), Phase.concluded)
    )
    return Clinic(server, showcase, showcase_ref, middle, concluded)


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    """A server on SQLite with demo-clinic's cases; always stopped at the end."""
    folder = tmp_path_factory.mktemp("console")
    server = start_server(
        folder, f"sqlite:///{folder / 'ipt.db'}", IPT_RATE_LIMIT_PER_SECOND="0"
    )
    try:
        yield build_clinic(server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


@pytest.fixture
def browse(browser: Browser, clinic: Clinic) -> Iterator[Guarded]:
    """A fresh browser context on the server; fails the test on any outside URL."""
    with guarded_context(browser, clinic.base) as guarded:
        yield guarded
