"""Where the case application meets the read models: runners, readers, rebuilds.

This is part of the composition root: the only code that names both the
application and a projection.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventsourcing.persistence import InfrastructureFactory, IntegrityError, Tracking
from eventsourcing.projection import ProjectionRunner
from eventsourcing.utils import Environment
from psycopg.sql import SQL, Identifier

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import (
    Settings,
    ensure_sqlite_directory,
    sqlite_path,
)
from ipt_workflow.ops.supervisor import ProjectionSupervisor, Runner, StartOne
from ipt_workflow.storage.connections import private_file
from projections.base import CASE_TOPICS
from projections.catalog import CATALOG, Entry
from projections.store import Batch, PostgresReadModelView, ReadModelView

REBUILD_BATCH = 1000
WAIT_SECONDS = 5.0
REBUILD_SUFFIX = "_rebuild"
OPEN_ATTEMPTS = 3


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


def start_runners(settings: Settings) -> list[ProjectionRunner[Any, Any]]:
    """One running ProjectionRunner per read model (each resumes from its position)."""
    ensure_sqlite_directory(settings)
    env = projection_env(settings)
    if settings.backend == "sqlite":
        for name in CATALOG:
            private_file(projection_path(settings, name))
    runners: list[ProjectionRunner[Any, Any]] = []
    try:
        for entry in CATALOG.values():
            runner: ProjectionRunner[Any, Any] = ProjectionRunner(
                application_class=CaseApplication,
                projection_class=entry.projection,
                view_class=_view_class(settings, entry),
                env=env,
            )
            runners.append(runner.__enter__())
    except BaseException:
        stop_runners(runners)
        raise
    return runners


def stop_runners(runners: Iterable[ProjectionRunner[Any, Any]]) -> None:
    for runner in runners:
        runner.__exit__(None, None, None)


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
    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


BatchDone = Callable[[int, int], None]
"""Told after each batch: the log position reached, and the log's head at the start."""


def rebuild(
    settings: Settings,
    name: str,
    batch: int = REBUILD_BATCH,
    on_batch: BatchDone | None = None,
) -> RebuildReport:
    """Rebuild one read model from position 0 into fresh tables, then swap them in.

    Stop the projection runners first: a runner still writing to the old tables
    would not see the swap.
    """
    settings = _creating(settings)
    fresh_name = name + REBUILD_SUFFIX
    report = fold_into(settings, name, fresh_name, batch, on_batch)
    _swap(settings, CATALOG[name], fresh_name)
    return report


def fold_into(
    settings: Settings,
    name: str,
    view_name: str,
    batch: int = REBUILD_BATCH,
    on_batch: BatchDone | None = None,
) -> RebuildReport:
    """Fold the whole log into a fresh view of a read model named `view_name`."""
    settings = _creating(settings)
    entry = CATALOG[name]
    app = build_application(settings)
    _drop(settings, entry, view_name)
    fresh = open_view(settings, entry, view_name)
    started = time.perf_counter()
    count, position = 0, 0
    head = app.recorder.max_notification_id() or 0
    try:
        while True:
            found = app.recorder.select_notifications(
                start=position,
                limit=batch,
                topics=CASE_TOPICS,
                inclusive_of_start=False,
            )
            if not found:
                break
            events: Any = [app.mapper.to_domain_event(n) for n in found]
            position = found[-1].id
            fresh.apply(Batch(events, Tracking(app.name, position)))
            count += len(found)
            if on_batch is not None:
                on_batch(position, head)
    finally:
        fresh.datastore.close()  # type: ignore[attr-defined]
        app.close()
    return RebuildReport(name, count, time.perf_counter() - started)


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
        for table in _pg_tables(view_name):
            c.execute(SQL("DROP TABLE IF EXISTS {0}").format(Identifier(table)))
    view.datastore.close()


def _pg_tables(view_name: str) -> list[str]:
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
            _pg_tables(fresh_name), _pg_tables(entry.name), strict=True
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
"""A runner waits this long for a pooled connection, not the library's 30 s: a restart
during an outage fails soon and is tried again, and a stop is not held up."""


def runner_starter(settings: Settings) -> StartOne:
    """Starts the library's runner of one read model (it resumes from its position)."""
    ensure_sqlite_directory(settings)
    env = projection_env(settings)
    if settings.backend == "postgres":
        env["POSTGRES_CONNECT_TIMEOUT"] = CONNECT_TIMEOUT_SECONDS

    def start(name: str) -> Runner:
        entry = CATALOG[name]
        view = (
            entry.sqlite_view if settings.backend == "sqlite" else entry.postgres_view
        )
        runner: Runner = ProjectionRunner(
            application_class=CaseApplication,
            projection_class=entry.projection,
            view_class=view,
            env=env,
        )
        return runner.__enter__()

    return start


def supervised_projections(
    settings: Settings, *, heartbeat: Path | None = None
) -> ProjectionSupervisor:
    """A supervisor of a runner per read model (not started yet)."""
    return ProjectionSupervisor(runner_starter(settings), heartbeat=heartbeat)
