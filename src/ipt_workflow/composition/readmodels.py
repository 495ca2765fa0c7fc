"""Where the case application meets the read models: runners, readers, rebuilds.

This is part of the composition root: the only code that names both the
application and a projection.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
import structlog
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    InterfaceError,
    OperationalError,
    Tracking,
)
from eventsourcing.utils import Environment
from psycopg.sql import SQL, Identifier

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import (
    Settings,
    ensure_sqlite_directory,
    sqlite_path,
)
from ipt_workflow.ops import metrics
from ipt_workflow.ops.supervisor import ProjectionSupervisor, Runner, StartRunner
from ipt_workflow.storage.connections import private_file
from projections.base import CASE_TOPICS
from projections.catalog import CATALOG, Entry
from projections.store import Batch, PostgresReadModelView, ReadModelView

REBUILD_BATCH = 1000
LIVE_BATCH = 1000
WAIT_SECONDS = 5.0
REBUILD_SUFFIX = "_rebuild"
OPEN_ATTEMPTS = 3
IDLE_SECONDS = 0.5
"""PostgreSQL: with no notification, look for new events this often anyway."""
SQLITE_POLL_SECONDS = 0.05
"""SQLite has no notifications: look for new events this often."""
SET_ASIDE_SECONDS = (1.0, 60.0)
"""A read model whose own code failed is tried again after 1 s, doubling to 60 s."""

log = structlog.get_logger("ipt_workflow.projections")


def projection_path(settings: Settings, name: str) -> str:
    """SQLite: each read model in a file of its own beside the events' file."""
    events = Path(sqlite_path(settings.database_url))
    return str(events.with_name(f"{events.stem}.{name}{events.suffix or '.db'}"))


def projection_env(settings: Settings, *view_names: str) -> dict[str, str]:
    """The library's environment for the runners and for views of these names."""
    env = settings.eventsourcing_env()
    for name in view_names or CATALOG:
        prefix = name.upper()
        if settings.backend == "sqlite":
            env[f"{prefix}_SQLITE_DBNAME"] = projection_path(settings, name)
        else:
            env[f"{prefix}_POSTGRES_POOL_SIZE"] = "1"
            env[f"{prefix}_POSTGRES_MAX_OVERFLOW"] = "3"
    return env


def _view_class(settings: Settings, entry: Entry) -> type[ReadModelView]:
    return entry.sqlite_view if settings.backend == "sqlite" else entry.postgres_view


def open_view(
    settings: Settings, entry: Entry, name: str | None = None
) -> ReadModelView:
    """A view of one read model, its tables created if missing."""
    ensure_sqlite_directory(settings)
    view_name = name or entry.name
    if settings.backend == "sqlite":
        private_file(projection_path(settings, view_name))
    env = Environment(view_name, {**os.environ, **projection_env(settings, view_name)})
    factory: Any = InfrastructureFactory.construct(env=env)
    for attempt in range(OPEN_ATTEMPTS):
        try:
            view: ReadModelView = factory.tracking_recorder(
                _view_class(settings, entry)
            )
        except IntegrityError:
            # Creating the tables also inserts the library's migration row; when
            # another process (a runner starting) created them at the same moment,
            # that insert fails although the tables are ready: open them again.
            if attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
        else:
            return view
    raise AssertionError("unreachable")


def start_runners(settings: Settings) -> list[LiveProjections]:
    """The live runner of every read model, running (it resumes from each position)."""
    return [LiveProjections(settings).__enter__()]


def stop_runners(runners: Iterable[LiveProjections]) -> None:
    for runner in runners:
        runner.__exit__(None, None, None)


@dataclass
class _SetAside:
    retry_at: float
    backoff: float
    error: str


class LiveProjections:
    """Keeps every read model up to date with one loop over the log (D91).

    Each pass takes the case events after the lowest position of the read models
    (up to LIVE_BATCH), decodes them once and applies to each read model the ones it
    has not seen, in one transaction per read model that also moves its tracking
    position: a crash between two passes loses nothing and counts nothing twice.
    New events are waited for with LISTEN on PostgreSQL, by polling on SQLite. A
    failing read model is set aside and tried again later, while the others go on;
    a failing database stops the loop, and the supervisor starts a new one.
    """

    def __init__(
        self,
        settings: Settings,
        names: Iterable[str] = CATALOG,
        *,
        batch: int = LIVE_BATCH,
    ) -> None:
        ensure_sqlite_directory(settings)
        self._settings = settings
        self._batch = batch
        self._listener: psycopg.Connection[Any] | None = None
        self.app = build_application(settings)
        self.views: dict[str, ReadModelView] = {}
        try:
            for name in names:
                self.views[name] = open_view(settings, CATALOG[name])
            self._listener = self._listen()
            self.positions = {
                name: view.max_tracking_id(self.app.name) or 0
                for name, view in self.views.items()
            }
        except BaseException:
            self._close_stores()
            raise
        self._set_aside: dict[str, _SetAside] = {}
        self._stopping = threading.Event()
        self._interrupted = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="projections")

    @property
    def is_interrupted(self) -> threading.Event:
        """Set once the loop has stopped, by `stop` or by an error."""
        return self._interrupted

    def running(self) -> dict[str, bool]:
        alive = not self._interrupted.is_set()
        return {name: alive and name not in self._set_aside for name in self.views}

    def __enter__(self) -> LiveProjections:
        self._thread.start()
        return self

    def run_forever(self, timeout: float | None = None) -> None:
        """Wait until the loop stops (or the timeout); raise what stopped it."""
        if self._interrupted.wait(timeout) and self._error is not None:
            error, self._error = self._error, None
            raise error

    def stop(self) -> None:
        self._stopping.set()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """Stop after the pass in progress (its transactions end), then close."""
        self.stop()
        if self._thread.is_alive():
            self._thread.join()
        self._close_stores()

    # --- the loop ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                if not self.step():
                    self._wait()
        except BaseException as error:
            self._error = error
        finally:
            self._interrupted.set()

    def step(self) -> bool:
        """One pass; False when there was nothing new to apply."""
        now = time.monotonic()
        due = [
            name
            for name in self.views
            if name not in self._set_aside or self._set_aside[name].retry_at <= now
        ]
        if not due:
            return False
        found = self.app.recorder.select_notifications(
            start=min(self.positions[name] for name in due),
            limit=self._batch,
            topics=CASE_TOPICS,
            inclusive_of_start=False,
        )
        if not found:
            return False
        decoded: list[tuple[int, Any]] = [
            (n.id, self.app.mapper.to_domain_event(n)) for n in found
        ]
        tracking = Tracking(self.app.name, found[-1].id)
        for name in due:
            at = self.positions[name]
            new = [event for position, event in decoded if position > at]
            if new:
                self._apply(name, Batch(new, tracking))
        return True

    def _apply(self, name: str, batch: Batch) -> None:
        view = self.views[name]
        try:
            view.apply(batch)
        except IntegrityError:
            # Another runner recorded this position first: go on from where it is.
            moved_to = view.max_tracking_id(self.app.name) or 0
            if moved_to == self.positions[name]:
                self._put_aside(name, "IntegrityError")
            self.positions[name] = moved_to
            return
        except (OperationalError, InterfaceError):
            raise  # the database: the loop stops and is started again
        except Exception as error:
            self._put_aside(name, type(error).__name__)
            return
        self.positions[name] = batch.tracking.notification_id
        if self._set_aside.pop(name, None) is not None:
            metrics.observe_projection_restart(name)
            log.info("projection_restarted", projection=name)

    def _put_aside(self, name: str, error: str) -> None:
        low, high = SET_ASIDE_SECONDS
        previous = self._set_aside.get(name)
        backoff = low if previous is None else min(high, previous.backoff * 2)
        self._set_aside[name] = _SetAside(time.monotonic() + backoff, backoff, error)
        log.error(
            "projection_failed", projection=name, error=error, retry_in_seconds=backoff
        )

    def _listen(self) -> psycopg.Connection[Any] | None:
        if self._settings.backend != "postgres":
            return None
        channel: str = getattr(self.app.recorder, "channel_name", "cases_events")
        conn = psycopg.connect(
            self._settings.database_url,
            autocommit=True,
            connect_timeout=int(CONNECT_TIMEOUT_SECONDS),
        )
        try:
            conn.execute(SQL("LISTEN {0}").format(Identifier(channel)))
        except BaseException:
            conn.close()
            raise
        return conn

    def _wait(self) -> None:
        """Until an insert is notified (or a while has passed, or a stop)."""
        if self._listener is None:
            self._stopping.wait(SQLITE_POLL_SECONDS)
            return
        for _ in self._listener.notifies(timeout=IDLE_SECONDS, stop_after=1):
            break

    def _close_stores(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for view in self.views.values():
            view.datastore.close()  # type: ignore[attr-defined]
        self.app.close()


class ReadModels:
    """Readers of every read model, for the API."""

    wait_seconds = WAIT_SECONDS

    def __init__(self, settings: Settings, app: CaseApplication) -> None:
        self.app = app
        self.views = {
            name: open_view(settings, entry) for name, entry in CATALOG.items()
        }

    def head(self) -> int:
        """The position of the last event in the log (0: none yet)."""
        return self.app.recorder.max_notification_id() or 0

    def not_reached(self, position: int, names: Iterable[str]) -> list[str]:
        """Which of these read models have not yet reached `position`."""
        return [n for n in names if not self.reached(n, position)]

    def position(self, name: str) -> int:
        return self.views[name].max_tracking_id(self.app.name) or 0

    def reached(self, name: str, position: int) -> bool:
        """Has this read model processed every case event up to `position`?"""
        at = self.position(name)
        if at >= position:
            return True
        if position > (self.app.recorder.max_notification_id() or 0):
            return False  # not written yet
        pending = self.app.recorder.select_notifications(
            start=at,
            stop=position,
            limit=1,
            topics=CASE_TOPICS,
            inclusive_of_start=False,
        )
        return not pending

    def wait(self, position: int, names: Iterable[str] | None = None) -> bool:
        """Wait up to WAIT_SECONDS until the read models reach `position`."""
        wanted = list(names or self.views)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            wanted = [n for n in wanted if not self.reached(n, position)]
            if not wanted:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def status(self) -> list[dict[str, Any]]:
        head = self.app.recorder.max_notification_id() or 0
        now = datetime.now(UTC)
        found = []
        for name in self.views:
            at = self.position(name)
            pending = self.app.recorder.select_notifications(
                start=at, limit=10_001, topics=CASE_TOPICS, inclusive_of_start=False
            )
            lag_seconds = 0.0
            if pending:
                oldest: Any = self.app.mapper.to_domain_event(pending[0])
                lag_seconds = round((now - oldest.timestamp).total_seconds(), 3)
            found.append(
                {
                    "projection": name,
                    "position": at,
                    "head": head,
                    "lag_events": len(pending),
                    "lag_events_capped": len(pending) > 10_000,
                    "lag_seconds": lag_seconds,
                }
            )
        return found

    def close(self) -> None:
        for view in self.views.values():
            view.datastore.close()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RebuildReport:
    """A rebuild of one or more read models in one pass over the log."""

    names: Sequence[str]
    events: int
    seconds: float
    writing: Mapping[str, float] = field(default_factory=dict)
    """Seconds each read model spent folding and writing its batches."""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


BatchDone = Callable[[int, int], None]
"""Told after each batch: the log position reached, and the log's head at the start."""


def rebuild(
    settings: Settings,
    names: Iterable[str] = CATALOG,
    batch: int = REBUILD_BATCH,
    on_batch: BatchDone | None = None,
) -> RebuildReport:
    """Rebuild read models from position 0 into fresh tables, then swap them in.

    One pass over the log feeds every read model named: each event is read and
    decoded once. Stop the live runner first: a runner still writing to the old
    tables would not see the swap.
    """
    settings = _creating(settings)
    targets = {name: name + REBUILD_SUFFIX for name in names}
    report = fold_into(settings, targets, batch, on_batch)
    for name, fresh_name in targets.items():
        _swap(settings, CATALOG[name], fresh_name)
    return report


def fold_into(
    settings: Settings,
    targets: Mapping[str, str],
    batch: int = REBUILD_BATCH,
    on_batch: BatchDone | None = None,
) -> RebuildReport:
    """Fold the whole log into fresh views: read model name → name of its view."""
    settings = _creating(settings)
    app = build_application(settings)
    fresh: dict[str, ReadModelView] = {}
    writing = dict.fromkeys(targets, 0.0)
    started = time.perf_counter()
    count, position = 0, 0
    try:
        for name, view_name in targets.items():
            _drop(settings, CATALOG[name], view_name)
            fresh[name] = open_view(settings, CATALOG[name], view_name)
        started = time.perf_counter()
        head = app.recorder.max_notification_id() or 0
        while True:
            found = app.recorder.select_notifications(
                start=position,
                limit=batch,
                topics=CASE_TOPICS,
                inclusive_of_start=False,
            )
            if not found:
                # The log may end with events no read model reads (the client
                # index): the fold has still come to the head it set out for.
                if on_batch is not None and position < head:
                    on_batch(head, head)
                break
            events: Any = [app.mapper.to_domain_event(n) for n in found]
            position = found[-1].id
            folded = Batch(events, Tracking(app.name, position))
            for name, view in fresh.items():
                began = time.perf_counter()
                view.apply(folded)
                writing[name] += time.perf_counter() - began
            count += len(found)
            if on_batch is not None:
                on_batch(position, head)
    finally:
        for view in fresh.values():
            view.datastore.close()  # type: ignore[attr-defined]
        app.close()
    return RebuildReport(list(targets), count, time.perf_counter() - started, writing)


def _creating(settings: Settings) -> Settings:
    """A rebuild makes tables of its own, whatever `create_tables` says."""
    return settings.model_copy(update={"create_tables": True})


def _drop(settings: Settings, entry: Entry, view_name: str) -> None:
    if settings.backend == "sqlite":
        path = projection_path(settings, view_name)
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        return
    view = open_view(settings, entry, view_name)
    assert isinstance(view, PostgresReadModelView)
    with view.datastore.transaction(commit=True) as c:
        for table in postgres_tables(view_name):
            c.execute(SQL("DROP TABLE IF EXISTS {0}").format(Identifier(table)))
    view.datastore.close()


def postgres_tables(view_name: str) -> list[str]:
    """A read model's PostgreSQL tables."""
    return [f"{view_name}_{t}" for t in ("facts", "rows", "counts", "tracking")]


def _swap(settings: Settings, entry: Entry, fresh_name: str) -> None:
    """Put the rebuilt tables in place of the old ones, atomically."""
    if settings.backend == "sqlite":
        target = projection_path(settings, entry.name)
        source = projection_path(settings, fresh_name)
        for suffix in ("-wal", "-shm"):
            Path(target + suffix).unlink(missing_ok=True)
        os.replace(source, target)
        return
    view = open_view(settings, entry)  # makes sure the old tables exist
    assert isinstance(view, PostgresReadModelView)
    with view.datastore.transaction(commit=True) as c:
        for new, old in zip(
            postgres_tables(fresh_name), postgres_tables(entry.name), strict=True
        ):
            c.execute(SQL("DROP TABLE {0}").format(Identifier(old)))
            c.execute(
                SQL("ALTER TABLE {0} RENAME TO {1}").format(
                    Identifier(new), Identifier(old)
                )
            )
            c.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (old,))
            for row in c.fetchall():
                index = row["indexname"]
                renamed = index.replace(fresh_name, entry.name, 1)
                c.execute(
                    SQL("ALTER INDEX {0} RENAME TO {1}").format(
                        Identifier(index), Identifier(renamed)
                    )
                )
    view.datastore.close()


CONNECT_TIMEOUT_SECONDS = "5"
"""The runner waits this long for a connection, not the library's 30 s: a restart
during an outage fails soon and is tried again, and a stop is not held up."""


def runner_starter(settings: Settings) -> StartRunner:
    """Starts the live runner of every read model (it resumes from each position)."""
    ensure_sqlite_directory(settings)

    def start() -> Runner:
        return LiveProjections(settings).__enter__()

    return start


def supervised_projections(
    settings: Settings, *, heartbeat: Path | None = None
) -> ProjectionSupervisor:
    """A supervisor of the read models' runner (not started yet)."""
    return ProjectionSupervisor(runner_starter(settings), heartbeat=heartbeat)
