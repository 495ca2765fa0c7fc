"""Rebuild throughput: the batched rebuild against the library's runner.

    .venv/bin/python -m benchmarks.rebuild --events 100000 [--database-url URL]

Fills a fresh store with realistic courses (about 20 events a case), then times
`ipt-workflow projections rebuild caseload` (batches of 1,000 events per
transaction) and eventsourcing's ProjectionRunner (one transaction per event) on
the same log, and prints both rates in events per second.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import date, timedelta
from typing import Any

from eventsourcing.projection import ProjectionRunner

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.composition import readmodels
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import CommandContext
from ipt_workflow.domain.courses import Course
from projections.caseload import (
    CaseloadProjection,
    PostgresCaseloadView,
    SQLiteCaseloadView,
)

TODAY = date(2026, 11, 25)


def ctx() -> CommandContext:
    return CommandContext(recorded_by="bench", today=TODAY)


def _course(rng: random.Random, n: int) -> TherapyCase:
    """An adult's case brought to the end phase by the sample course's commands,
    with weekly sessions from 200 days ago."""
    plan = Course(
        area=rng.choice(["role_transition", "interpersonal_deficits"]),
        baseline=rng.randint(12, 24),
        contract=16,
        age=30 + n % 40,
        today=TODAY,
        weekly_from=TODAY - timedelta(days=200),
    )
    opening = plan.opening(f"clinic-{n % 7}", f"B-{n}", f"t-{n % 11}")
    case = TherapyCase.open(ctx(), opening)
    for command in plan.commands(Phase.end):
        case.handle(ctx(), command)
    return case


def fill(app: CaseApplication, events: int) -> int:
    rng = random.Random(1)
    written, n = 0, 0
    while written < events:
        case = _course(rng, n)
        written += len(case.pending_events)
        app.save(case)
        n += 1
    return written


def runner_rate(settings: Settings, head: int) -> float:
    class Bench(CaseloadProjection):
        name = "caseload_bench"

    view: Any = (
        SQLiteCaseloadView if settings.backend == "sqlite" else PostgresCaseloadView
    )
    env = readmodels.projection_env(settings, "caseload_bench")
    started = time.perf_counter()
    with ProjectionRunner(
        application_class=CaseApplication,
        projection_class=Bench,
        view_class=view,
        env=env,
    ) as runner:
        runner.wait(head, timeout=3600)
    return head / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    settings = Settings(database_url=url)
    app = build_application(settings)
    started = time.perf_counter()
    written = fill(app, args.events)
    fill_seconds = time.perf_counter() - started
    head_id = app.recorder.max_notification_id() or 0
    app.close()
    print(
        f"store: {settings.backend}, {written} events written in {fill_seconds:.1f} s"
    )
    report = readmodels.rebuild(settings, "caseload")
    print(
        f"rebuild (batches of {readmodels.REBUILD_BATCH}): {report.events} events, "
        f"{report.seconds:.1f} s, {report.rate:,.0f} events/s"
    )
    rate = runner_rate(settings, head_id)
    print(f"library ProjectionRunner (one transaction per event): {rate:,.0f} events/s")


if __name__ == "__main__":
    main()
