"""Progress of long commands: a bar on a terminal, log lines everywhere else.

`progress(task, total)` gives a reporter to `advance` or `update`. On a terminal it
draws a bar with the rate and the time left (rich); where stderr is a file, a pipe
or a container's log, it writes a `progress` line every `log_every` seconds and a
`progress_done` line at the end, with the same figures. The rebuild of read
models and `audit verify --all` use it; so can any other batch job (D87).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.text import Text

log = structlog.get_logger("ipt_workflow.progress")

LOG_EVERY_SECONDS = 10.0
Clock = Callable[[], float]


@dataclass
class Figures:
    """Where a task is: done of total, its rate and the time it still needs."""

    task: str
    unit: str
    total: int | None
    done: int = 0
    started: float = 0.0
    now: float = 0.0

    @property
    def elapsed(self) -> float:
        return max(self.now - self.started, 0.0)

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        if self.total is None or self.rate <= 0:
            return None
        return max(self.total - self.done, 0) / self.rate

    def fields(self) -> dict[str, object]:
        left = self.seconds_left
        return {
            "task": self.task,
            "done": self.done,
            "total": self.total,
            "unit": self.unit,
            "percent": None
            if not self.total
            else round(100 * min(self.done / self.total, 1.0), 1),
            "rate_per_second": round(self.rate, 1),
            "seconds_left": None if left is None else round(left, 1),
            "elapsed_seconds": round(self.elapsed, 1),
        }


class _Figures(ProgressColumn):
    """`1,234/s, 0:00:12 left`: the reporter's own figures, as the log lines give."""

    def render(self, task: Task) -> Text:
        rate = task.fields.get("rate")
        left = task.fields.get("left")
        shown_rate = "?" if not rate else f"{rate:,.0f}/s"
        shown_left = "?" if left is None else _clock_time(left)
        return Text(f"{shown_rate}, {shown_left} left", style="progress.data.speed")


def _clock_time(seconds: float) -> str:
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@dataclass
class Reporter:
    """Told how far a task has come; shows it on a bar or in log lines."""

    figures: Figures
    clock: Clock
    log_every: float
    bar: Progress | None = None
    bar_task: TaskID | None = None
    _last_log: float = field(default=0.0)

    def advance(self, n: int = 1) -> None:
        self.update(self.figures.done + n)

    def update(self, done: int, total: int | None = None) -> None:
        """Set how much is done (and, if it changed, the total)."""
        if total is not None:
            self.figures.total = total
        self.figures.done = done
        self.figures.now = self.clock()
        if self.bar is not None and self.bar_task is not None:
            self.bar.update(
                self.bar_task,
                completed=done,
                total=self.figures.total,
                rate=self.figures.rate,
                left=self.figures.seconds_left,
            )
        elif self.figures.now - self._last_log >= self.log_every:
            self._last_log = self.figures.now
            log.info("progress", **self.figures.fields())

    def finish(self) -> None:
        self.figures.now = self.clock()
        if self.bar is None:
            log.info("progress_done", **self.figures.fields())


@contextmanager
def progress(
    task: str,
    total: int | None,
    *,
    unit: str = "events",
    stream: TextIO | None = None,
    terminal: bool | None = None,
    log_every: float = LOG_EVERY_SECONDS,
    clock: Clock = time.monotonic,
) -> Iterator[Reporter]:
    """A reporter for one task; a bar if `stream` (stderr) is a terminal."""
    out = stream or sys.stderr
    on_terminal = out.isatty() if terminal is None else terminal
    now = clock()
    figures = Figures(task, unit, total, started=now, now=now)
    if not on_terminal:
        reporter = Reporter(figures, clock, log_every, _last_log=now)
        log.info("progress", **figures.fields())
        yield reporter
        reporter.finish()
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn(unit),
        _Figures(),
        console=Console(file=out, force_terminal=True),
        transient=False,
    )
    with bar:
        task_id = bar.add_task(task, total=total, rate=0.0, left=None)
        reporter = Reporter(figures, clock, log_every, bar=bar, bar_task=task_id)
        yield reporter
        reporter.finish()


class Stages:
    """Progress of a job in stages, as `(stage, done, total)` callbacks tell it:
    one bar (or one series of log lines) per stage, each closed when the next
    begins and all closed on leaving the block."""

    def __init__(
        self,
        job: str,
        *,
        unit: str = "items",
        stream: TextIO | None = None,
        terminal: bool | None = None,
        log_every: float = LOG_EVERY_SECONDS,
    ) -> None:
        self.job = job
        self.unit = unit
        self.stream, self.terminal, self.log_every = stream, terminal, log_every
        self._stage: str | None = None
        self._open: contextlib.ExitStack | None = None
        self._reporter: Reporter | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            self._close()
            self._stage = stage
            self._open = contextlib.ExitStack()
            self._reporter = self._open.enter_context(
                progress(
                    f"{self.job}: {stage}",
                    total,
                    unit=self.unit,
                    stream=self.stream,
                    terminal=self.terminal,
                    log_every=self.log_every,
                )
            )
        assert self._reporter is not None
        self._reporter.update(done, total)

    def _close(self) -> None:
        if self._open is not None:
            self._open.close()
        self._open, self._reporter = None, None

    def __enter__(self) -> Stages:
        return self

    def __exit__(self, *_: object) -> None:
        self._close()
