"""Everything the harness does through the application object itself, no HTTP.

Baseline (b) of every row and the loading go through here and nowhere else, so a
change of `CaseApplication`'s or `TherapyCase`'s signatures is adapted in this one
module: `open_case`, `record_measure`, `read_case`, `replay` and `course`.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

from ipt_workflow.application.cases import CaseApplication, IdempotencyClaim
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import CommandContext, OpenCase, RecordMeasure
from ipt_workflow.domain.courses import Course

ACTOR = "bench-direct"
TODAY = date(2026, 11, 25)


def build(settings: Settings) -> CaseApplication:
    return build_application(settings)


def record_measure(
    app: CaseApplication, case_id: UUID, score: int, measured_on: date, clinic: str
) -> None:
    """`POST /cases/{id}/measures` with an Idempotency-Key, minus HTTP."""
    key = uuid4().hex
    ctx = CommandContext(recorded_by=ACTOR, today=date.today(), command_id=key)
    digest = hashlib.sha256(f"{case_id}:{score}:{measured_on}".encode()).hexdigest()
    command = RecordMeasure.parse(
        instrument="phq9", score=score, measured_on=measured_on, today=ctx.today
    )
    app.execute(
        case_id,
        command,
        ctx,
        clinics={clinic},
        idempotency=IdempotencyClaim(clinic, key, digest, 200),
    )


def open_case(app: CaseApplication, clinic: str, client_ref: str) -> UUID:
    """`POST /cases`, minus HTTP: the case and its client index, as the API opens it."""
    ctx = CommandContext(recorded_by=ACTOR, today=date.today())
    opening = OpenCase.parse(
        clinic_id=clinic,
        client_ref=client_ref,
        protocol="ipt",
        client_age=35,
        clinician_id="bench-t1",
        today=ctx.today,
    )
    outcome = app.open_case(opening, ctx)
    return outcome.case.id


def read_case(app: CaseApplication, case_id: UUID, clinic: str) -> None:
    """`GET /cases/{id}`'s load, minus HTTP and the access log."""
    case = app.get_case(case_id, clinics={clinic})
    app.position_of(case.id, case.version)


def replay(app: CaseApplication, case_id: UUID, version: int) -> None:
    app.get_case(case_id, version=version)


def _ctx() -> CommandContext:
    return CommandContext(recorded_by="bench-load", today=TODAY)


def course(rng: random.Random, n: int) -> TherapyCase:
    """A realistic acute course to the end phase (about 20 events), not yet saved:
    the sample course's commands, weekly sessions from 200 days ago."""
    plan = Course(
        area=rng.choice(["role_transition", "interpersonal_deficits"]),
        baseline=rng.randint(12, 24),
        contract=16,
        age=30 + n % 40,
        today=TODAY,
        weekly_from=TODAY - timedelta(days=200),
    )
    case = TherapyCase.open(
        _ctx(), plan.opening(f"clinic-{n % 7}", f"B-{n}", f"t-{n % 11}")
    )
    for command in plan.commands(Phase.end):
        case.handle(_ctx(), command)
    return case


def fill(database_url: str, events: int, seed: int = 1, batch: int = 1000) -> int:
    """Write about `events` events of new courses, `batch` events a transaction."""
    app = build(Settings(database_url=database_url))
    rng = random.Random(seed)
    written, n, pending, pending_events = 0, seed * 10_000_000, [], 0
    try:
        while written < events:
            case = course(rng, n)
            n += 1
            pending.append(case)
            pending_events += len(case.pending_events)
            written += len(case.pending_events)
            if pending_events >= batch or written >= events:
                app.save(*pending)
                pending, pending_events = [], 0
    finally:
        app.close()
    return written


def open_cases(
    settings: Settings, clinic: str, refs: Sequence[str], measures: int = 0
) -> list[str]:
    """Open a case per synthetic client_ref, each with `measures` measures after."""
    app = build(settings)
    day = date.today() - timedelta(days=1)
    try:
        ids = [open_case(app, clinic, ref) for ref in refs]
        for case_id in ids:
            for i in range(measures):
                record_measure(app, case_id, i % 28, day, clinic)
    finally:
        app.close()
    return [str(i) for i in ids]


@dataclass(frozen=True)
class Driven:
    """What a run of threads calling the application did."""

    calls: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    first_error: str

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

    def brief(self) -> dict[str, Any]:
        return {
            "rate": round(self.rate, 1),
            "calls": self.calls,
            "errors": self.errors,
            "p50_ms": round(self.percentile(50), 2),
            "p99_ms": round(self.percentile(99), 2),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 2)
            if self.latencies_ms
            else 0.0,
            "first_error": self.first_error,
        }

    def describe(self, unit: str) -> str:
        return (
            f"{self.rate:,.0f} {unit}/s, p50 {self.percentile(50):.1f} ms, "
            f"p99 {self.percentile(99):.1f} ms, {self.errors} errors"
        )


def drive(
    call: Callable[[Any], None],
    items: Sequence[Any],
    *,
    threads: int,
    seconds: float,
) -> Driven:
    """`threads` threads calling `call(random item)` for `seconds`."""
    stop = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    first_error: list[str] = []

    def work(i: int) -> None:
        rng = random.Random(i)
        mine = latencies[i]
        while time.monotonic() < stop:
            item = items[rng.randrange(len(items))]
            started = time.perf_counter()
            try:
                call(item)
            except Exception as error:
                errors[i] += 1
                if not first_error:
                    first_error.append(f"{type(error).__name__}: {error}"[:300])
                continue
            mine.append((time.perf_counter() - started) * 1000)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    merged = [x for part in latencies for x in part]
    return Driven(
        len(merged), sum(errors), elapsed, merged, first_error[0] if first_error else ""
    )
