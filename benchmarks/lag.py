"""Live projection lag, seen from outside: the log's head against the read models.

A thread polls PostgreSQL (not the API, so that watching costs the server
nothing) for the highest committed position and each read model's tracked
position. A position's commit time is the first poll that saw the head reach it;
its appearance, the first poll that saw every read model reach it. The
difference is its lag, to within one poll interval.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg.sql import SQL, Composable, Composed, Identifier

POLL_SECONDS = 0.02


@dataclass
class Sample:
    at: float
    head: int
    slowest: int


@dataclass
class LagWatch:
    """Polls until stopped; `lags_ms` then gives one lag per position."""

    url: str
    events_table: str
    read_models: Sequence[str]
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _query(self) -> Composed:
        parts: list[Composable] = [
            SQL("(SELECT max(notification_id) FROM {0})").format(
                Identifier(self.events_table)
            )
        ]
        parts += [
            SQL("(SELECT max(notification_id) FROM {0})").format(
                Identifier(f"{name}_tracking")
            )
            for name in self.read_models
        ]
        return SQL("SELECT ") + SQL(", ").join(parts)

    def sample(self, conn: psycopg.Connection[tuple[int | None, ...]]) -> Sample:
        row = conn.execute(self._query()).fetchone()
        assert row is not None
        values = [v or 0 for v in row]
        return Sample(time.monotonic(), values[0], min(values[1:]))

    def start(self) -> LagWatch:
        conn = psycopg.connect(self.url, autocommit=True)
        self.samples.append(self.sample(conn))

        def poll() -> None:
            try:
                while not self._stop.wait(POLL_SECONDS):
                    self.samples.append(self.sample(conn))
            finally:
                conn.close()

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def stop_when_caught_up(self, timeout: float) -> bool:
        """Keep polling until the read models reach the head seen now, then stop."""
        deadline = time.monotonic() + timeout
        head = self.samples[-1].head
        caught_up = False
        while time.monotonic() < deadline:
            if self.samples[-1].slowest >= head:
                caught_up = True
                break
            time.sleep(POLL_SECONDS)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return caught_up

    def lags_ms(self) -> list[float]:
        start = self.samples[0].head
        end = self.samples[-1].head
        times = [s.at for s in self.samples]
        heads = [s.head for s in self.samples]
        slowest = [s.slowest for s in self.samples]
        found = []
        for position in range(start + 1, end + 1):
            committed = bisect.bisect_left(heads, position)
            appeared = bisect.bisect_left(slowest, position)
            if appeared >= len(times):
                appeared = len(times) - 1  # never seen: a lower bound
            found.append(max(0.0, (times[appeared] - times[committed]) * 1000))
        return found


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]
