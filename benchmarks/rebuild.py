"""Rebuild throughput: the batched rebuild against the library's runner.

    .venv/bin/python -m benchmarks.rebuild --events 100000 [--database-url URL]

Fills a store with realistic courses (20 events a case, saved in batches through
the application), then times `ipt-workflow projections rebuild` (one pass over
the log into every read model, batches of 1,000 events, a transaction per read
model and batch) and eventsourcing's ProjectionRunner (one transaction per
event, a runner per read model, all at once, as `projections run` did before
D91) on the same log, in events of the log per second.
`make bench` runs the same through `benchmarks.run`.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from eventsourcing.projection import ProjectionRunner

from benchmarks import direct, procs
from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.composition import readmodels
from ipt_workflow.composition.settings import Settings
from projections.catalog import CATALOG

RUNNER_SUFFIX = "_runbench"
_PASS = re.compile(r"^[\w, ]+: (\d+) events in ([\d.]+) s", re.MULTILINE)
_MODEL = re.compile(r"^  (\w+): ([\d.]+) s folding and writing", re.MULTILINE)


@dataclass(frozen=True)
class Rebuilt:
    """`projections rebuild` of every read model, as the operator runs it."""

    events: int
    seconds: float
    wall_seconds: float
    per_model: dict[str, float]
    """Seconds each read model spent folding and writing, within the one pass."""

    @property
    def rate(self) -> float:
        """Events of the log per second of rebuilding every read model."""
        return self.events / self.seconds if self.seconds else 0.0


def rebuild_all(env: dict[str, str]) -> Rebuilt:
    """One pass over the log into every read model (the CLI prints its times)."""
    started = time.perf_counter()
    done = procs.cli(["projections", "rebuild"], env)
    wall = time.perf_counter() - started
    found = _PASS.search(done.stdout)
    events, seconds = (int(found[1]), float(found[2])) if found else (0, wall)
    per_model = {name: float(s) for name, s in _MODEL.findall(done.stdout)}
    return Rebuilt(events, seconds or wall, wall, per_model)


def runner_rate(settings: Settings, seconds: float) -> tuple[float, int]:
    """Events per second of the library's runners, all read models at once.

    They start from position 0 into fresh views and run for `seconds` (a million
    events at one transaction each would take the better part of an hour); the
    rate is the slowest runner's position over the time.
    """
    names = [name + RUNNER_SUFFIX for name in CATALOG]
    env = readmodels.projection_env(settings, *names)
    runners: list[ProjectionRunner[Any, Any]] = []
    views: list[Any] = []
    started = time.perf_counter()
    try:
        for entry in CATALOG.values():
            projection = type(
                entry.projection.__name__ + "Bench",
                (entry.projection,),
                {"name": entry.name + RUNNER_SUFFIX},
            )
            view = (
                entry.sqlite_view
                if settings.backend == "sqlite"
                else entry.postgres_view
            )
            runner: ProjectionRunner[Any, Any] = ProjectionRunner(
                application_class=CaseApplication,
                projection_class=projection,
                view_class=view,
                env=env,
            )
            runners.append(runner.__enter__())
            views.append(runner.view)
        time.sleep(seconds)
        elapsed = time.perf_counter() - started
        reached = min(v.max_tracking_id(CaseApplication.name) or 0 for v in views)
    finally:
        for runner in runners:
            runner.__exit__(None, None, None)
    return reached / elapsed, reached


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--database-url")
    parser.add_argument("--runner-seconds", type=float, default=20)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    env = {**os.environ, "IPT_DATABASE_URL": url}
    settings = Settings(database_url=url)
    started = time.perf_counter()
    written = direct.fill(url, args.events)
    print(
        f"store: {settings.backend}, {written} events written in "
        f"{time.perf_counter() - started:.1f} s"
    )
    report = rebuild_all(env)
    print(
        f"rebuild of {len(report.per_model)} read models: {report.events} events, "
        f"{report.seconds:.1f} s, {report.rate:,.0f} events/s "
        f"(seconds of each: {report.per_model})"
    )
    rate, reached = runner_rate(settings, args.runner_seconds)
    print(
        f"library ProjectionRunner (one transaction per event): {rate:,.0f} events/s "
        f"({reached} events in {args.runner_seconds:.0f} s)"
    )


if __name__ == "__main__":
    main()
