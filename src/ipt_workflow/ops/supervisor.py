"""Keeps a runner per read model alive, in the API process or the projections process.

A ProjectionRunner stops for good when its database goes away (its subscription
raises). The supervisor notices, closes it, and starts a new one with a growing
back-off until the database answers again; the new runner resumes from the read
model's tracking position, so nothing is skipped or counted twice (D31).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog
from eventsourcing.projection import ProjectionRunner

from ipt_workflow.ops import metrics
from projections.catalog import CATALOG

Runner = ProjectionRunner[Any, Any]
StartOne = Callable[[str], Runner]

log = structlog.get_logger("ipt_workflow.projections")

CHECK_SECONDS = 0.5
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 30.0
STOP_WAIT_SECONDS = 5.0
"""How long `stop` waits for a restart in progress (it may wait for the database)."""


class ProjectionSupervisor:
    """Runs one runner per read model and replaces any that fails."""

    def __init__(
        self,
        start: StartOne,
        names: Iterable[str] = CATALOG,
        *,
        heartbeat: Path | None = None,
    ) -> None:
        self._start = start
        self._names = list(names)
        self._runners: dict[str, Runner | None] = {}
        self._retry_at: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat = heartbeat

    def start(self) -> ProjectionSupervisor:
        """Start every runner now (errors propagate), then watch them."""
        try:
            for name in self._names:
                self._runners[name] = self._start(name)
        except BaseException:
            self.stop()
            raise
        self._beat()
        log.info("projections_started", projections=self._names)
        self._thread = threading.Thread(
            target=self._watch, name="projection-supervisor", daemon=True
        )
        self._thread.start()
        return self

    def running(self) -> dict[str, bool]:
        """Per read model: is its runner running now?"""
        found = {}
        for name in self._names:
            runner = self._runners.get(name)
            found[name] = runner is not None and not runner.is_interrupted.is_set()
        return found

    def stop(self) -> None:
        """Stop watching; each runner finishes the event it is on, then stops."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            # A restart in progress may wait for the database; it closes what it
            # started once it sees the stop (the thread is a daemon).
            self._thread.join(STOP_WAIT_SECONDS)
        for name in list(self._runners):
            self._close(name)
        log.info("projections_stopped")

    def _watch(self) -> None:
        while not self._stopping.wait(CHECK_SECONDS):
            for name in self._names:
                if self._stopping.is_set():
                    return
                self._check(name)
            self._beat()

    def _check(self, name: str) -> None:
        runner = self._runners.get(name)
        if runner is not None and not runner.is_interrupted.is_set():
            return
        now = time.monotonic()
        if runner is not None:
            error = self._close(name)
            log.error(
                "projection_failed",
                projection=name,
                error=type(error).__name__ if error else None,
            )
            self._retry_at[name] = now + self._backoff.setdefault(
                name, FIRST_RETRY_SECONDS
            )
            return
        if now < self._retry_at.get(name, 0.0):
            return
        try:
            started = self._start(name)
        except Exception as error:
            delay = min(MAX_RETRY_SECONDS, self._backoff.get(name, 0.5) * 2)
            self._backoff[name] = delay
            self._retry_at[name] = time.monotonic() + delay
            log.warning(
                "projection_restart_failed",
                projection=name,
                error=type(error).__name__,
                retry_in_seconds=delay,
            )
            return
        if self._stopping.is_set():
            started.__exit__(None, None, None)
            return
        self._runners[name] = started
        self._backoff.pop(name, None)
        metrics.observe_projection_restart(name)
        log.info("projection_restarted", projection=name)

    def _close(self, name: str) -> BaseException | None:
        """Close a runner; the error that stopped it, if any."""
        runner = self._runners.pop(name, None)
        if runner is None:
            return None
        error: BaseException | None = None
        try:
            runner.run_forever(timeout=0)
        except Exception as stopped_by:
            error = stopped_by
        try:
            runner.__exit__(None, None, None)
        except Exception as closing:
            error = error or closing
        return error

    def _beat(self) -> None:
        """Touch the heartbeat file while every runner runs (container health)."""
        if self._heartbeat is not None and all(self.running().values()):
            self._heartbeat.touch()
