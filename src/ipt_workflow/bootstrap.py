"""The composition root's one recipe: settings in, a ready case application out."""

from __future__ import annotations

import ipaddress
import math
from pathlib import Path

from ipt_workflow.application import CaseApplication
from ipt_workflow.audit import Checkpointer
from ipt_workflow.settings import (
    DEV_REFERENCE_KEY,
    Settings,
    ensure_sqlite_directory,
    sqlite_path,
)
from ipt_workflow.storage.access_log import (
    AccessLog,
    PostgresAccessLog,
    SQLiteAccessLog,
)
from ipt_workflow.storage.audit import parse_checkpoint_keys
from ipt_workflow.storage.connections import private_file
from ipt_workflow.storage.keys import KeyStore, PostgresKeyStore, SQLiteKeyStore

DEV_FLAG = "IPT_SERVE_DEV_FLAG"
"""Set to 1 by `serve --dev` for its workers: IPT_DEV alone does not make dev mode."""
SERVE_PID = "IPT_SERVE_PID"
"""The `serve` process whose workers these are: they exit when it is gone."""


def is_loopback(host: str) -> bool:
    """Is this a loopback address (or `localhost`)?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def production_problems(
    settings: Settings, *, dev_flag: bool | None = None
) -> list[str]:
    """Why the service may not serve with these settings (empty: it may).

    Development mode needs the settings' `dev` and the `--dev` flag together
    (`dev_flag`; None: take the settings' word for it). Outside it, the keys must be
    set and long enough, and an API key must exist.
    """
    if settings.dev:
        if dev_flag is False:
            return [
                "IPT_DEV is set, but development mode needs `ipt-workflow serve --dev`"
            ]
        return []
    problems = []
    if settings.cipher_key is None:
        problems.append(
            "IPT_CIPHER_KEY is not set: client data would be stored in clear"
        )
    if settings.reference_key.get_secret_value() == DEV_REFERENCE_KEY:
        problems.append("IPT_REFERENCE_KEY is not set: the client index key is public")
    if settings.checkpoint_key is None:
        problems.append(
            "IPT_CHECKPOINT_KEY is not set: no signed checkpoints would be taken"
        )
    store = build_key_store(settings)
    try:
        if not store.any_active():
            problems.append(
                "no API key exists: create one with `ipt-workflow keys add`"
            )
    finally:
        store.close()
    return problems


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
    return PostgresKeyStore(settings.database_url)


def access_log_path(settings: Settings) -> str:
    """SQLite: the access log's own file beside the events' file."""
    events = Path(sqlite_path(settings.database_url))
    return str(events.with_name(f"{events.stem}.access{events.suffix or '.db'}"))


def build_access_log(settings: Settings) -> AccessLog:
    """Where reads of cases are recorded: never under the event log's write lock."""
    ensure_sqlite_directory(settings)
    if settings.backend == "sqlite":
        private_file(access_log_path(settings))
        return SQLiteAccessLog(access_log_path(settings))
    return PostgresAccessLog(settings.database_url)


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
