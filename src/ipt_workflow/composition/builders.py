"""The builders of the service's parts from the settings, one part each."""

from __future__ import annotations

import math
from pathlib import Path

from ipt_workflow.application.auditing import Checkpointer
from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.composition.settings import (
    Settings,
    ensure_sqlite_directory,
    sqlite_path,
)
from ipt_workflow.storage.access_group import GroupCommitAccessLog
from ipt_workflow.storage.access_log import (
    AccessLog,
    PostgresAccessLog,
    SQLiteAccessLog,
)
from ipt_workflow.storage.audit import parse_checkpoint_keys
from ipt_workflow.storage.connections import private_file
from ipt_workflow.storage.exports import ExportJobs
from ipt_workflow.storage.keys import KeyStore, PostgresKeyStore, SQLiteKeyStore


def build_application(settings: Settings) -> CaseApplication:
    """The case application over the configured store; creates missing tables."""
    ensure_sqlite_directory(settings)
    env = settings.eventsourcing_env()
    env["COMMAND_ATTEMPTS"] = str(settings.command_attempts)
    return CaseApplication(env=env)


def build_key_store(settings: Settings) -> KeyStore:
    """The API keys, in the same database as the events."""
    ensure_sqlite_directory(settings)
    if settings.backend == "sqlite":
        return SQLiteKeyStore(sqlite_path(settings.database_url))
    return PostgresKeyStore(settings.database_url, create_tables=settings.create_tables)


def access_log_path(settings: Settings) -> str:
    """SQLite: the access log's own file beside the events' file."""
    events = Path(sqlite_path(settings.database_url))
    return str(events.with_name(f"{events.stem}.access{events.suffix or '.db'}"))


def build_access_log(settings: Settings) -> AccessLog:
    """Where reads of cases are recorded: never under the event log's write lock.

    Concurrent reads are committed together, each answered after its commit (D95).
    """
    ensure_sqlite_directory(settings)
    if settings.backend == "sqlite":
        private_file(access_log_path(settings))
        return GroupCommitAccessLog(SQLiteAccessLog(access_log_path(settings)))
    return GroupCommitAccessLog(
        PostgresAccessLog(settings.database_url, create_tables=settings.create_tables)
    )


def build_checkpointer(
    settings: Settings, cases: CaseApplication
) -> Checkpointer | None:
    """The server's checkpoint thread; None without IPT_CHECKPOINT_KEY."""
    if settings.checkpoint_key is None:
        return None
    key = parse_checkpoint_keys(settings.checkpoint_key.get_secret_value())[0]
    return Checkpointer(
        cases,
        key,
        every_events=settings.checkpoint_every_events,
        every_seconds=settings.checkpoint_every_minutes * 60 or math.inf,
    )


def build_exports(settings: Settings) -> ExportJobs:
    """The FHIR bulk export jobs, in the folder every worker shares."""
    return ExportJobs(Path(settings.export_dir))
