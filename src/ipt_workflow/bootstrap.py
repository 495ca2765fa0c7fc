"""The composition root's one recipe: settings in, a ready case application out."""

from __future__ import annotations

from ipt_workflow.application import CaseApplication
from ipt_workflow.settings import Settings, ensure_sqlite_directory, sqlite_path
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
    return PostgresKeyStore(settings.database_url)
