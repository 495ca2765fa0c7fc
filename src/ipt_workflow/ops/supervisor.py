"""Keeps the read models' runner alive, in the API process or the projections process.

The runner stops for good when its database goes away (a query raises). The
supervisor notices, closes it, and starts a new one with a growing back-off until
the database answers again; the new runner resumes from each read model's tracking
position, so nothing is skipped or counted twice (D31). A read model whose own code
fails is set aside by the runner itself, which reports it as not running (D91).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Protocol

import structlog

from ipt_workflow.ops import metrics
from projections.catalog import CATALOG


class Runner(Protocol):
    """What the supervisor needs of a running runner of several read models."""

    @property
    def is_interrupted(self) -> threading.Event: ...

    def running(self) -> dict[str, bool]: ...

    def run_forever(self, timeout: float | None = None) -> None: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None: ...


StartRunner = Callable[[], Runner]

log = structlog.get_logger("ipt_workflow.projections")

CHECK_SECONDS = 0.5
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 30.0
STOP_WAIT_SECONDS = 5.0
"""How long `stop` waits for a restart in progress (it may wait for the database)."""


class ProjectionSupervisor:
    """Runs the runner of every read model and replaces it when it fails."""

    def __init__(
        self,
        start: StartRunner,
        names: Iterable[str] = CATALOG,
        *,
        heartbeat: Path | None = None,
    ) -> None:
        self._start = start
        self._names = list(names)
        self._runner: Runner | None = None
        self._retry_at = 0.0
        self._backoff = FIRST_RETRY_SECONDS
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat = heartbeat

    def start(self) -> ProjectionSupervisor:
        """Start the runner now (errors propagate), then watch it."""
        try:
            self._runner = self._start()
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
        """Per read model: is it being kept up to date now?"""
        runner = self._runner
        if runner is None or runner.is_interrupted.is_set():
            return dict.fromkeys(self._names, False)
        found = runner.running()
        return {name: found.get(name, False) for name in self._names}

    def stop(self) -> None:
        """Stop watching; the runner finishes the batch it is on, then stops."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            # A restart in progress may wait for the database; it closes what it
            # started once it sees the stop (the thread is a daemon).
            self._thread.join(STOP_WAIT_SECONDS)
        self._close()
        log.info("projections_stopped")

    def _watch(self) -> None:
        while not self._stopping.wait(CHECK_SECONDS):
            self._check()
            self._beat()

    def _check(self) -> None:
        runner = self._runner
        if runner is not None and not runner.is_interrupted.is_set():
            return
        now = time.monotonic()
        if runner is not None:
            error = self._close()
            log.error(
                "projection_failed",
                projections=self._names,
                error=type(error).__name__ if error else None,
            )
            self._retry_at = now + self._backoff
            return
        if now < self._retry_at:
            return
        try:
            started = self._start()
        except Exception as error:
            self._backoff = min(MAX_RETRY_SECONDS, self._backoff * 2)
            self._retry_at = time.monotonic() + self._backoff
            log.warning(
                "projection_restart_failed",
                projections=self._names,
                error=type(error).__name__,
                retry_in_seconds=self._backoff,
            )
            return
        if self._stopping.is_set():
            started.__exit__(None, None, None)
            return
        self._runner = started
        self._backoff = FIRST_RETRY_SECONDS
        for name in self._names:
            metrics.observe_projection_restart(name)
        log.info("projection_restarted", projections=self._names)

    def _close(self) -> BaseException | None:
        """Close the runner; the error that stopped it, if any."""
        runner, self._runner = self._runner, None
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
        """Touch the heartbeat file while every read model runs (container health)."""
        if self._heartbeat is not None and all(self.running().values()):
            self._heartbeat.touch()
