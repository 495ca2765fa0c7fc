"""The PostgreSQL application recorder with the hash chain in the same transaction.

The chain, idempotency and index rows are written after the events' insert, under
the library's `LOCK TABLE ... IN EXCLUSIVE MODE`, in one round trip: each hash is
computed by the statement that stores it, from the previous hash it reads there
(`sha256(previous || event)`, D115), so no round trip reads hashes first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import (
    ConnectionPool,
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import Environment
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from ipt_workflow.storage.case_keys import write_case_keys
from ipt_workflow.storage.chain import GENESIS, event_hash, hashed_after_previous
from ipt_workflow.storage.connections import STEADY_METHODS
from ipt_workflow.storage.idempotency import IdempotencyRecord
from ipt_workflow.storage.postgres_audit import PostgresAuditMixin

T = TypeVar("T")

_COMMIT_SENT: ContextVar[bool] = ContextVar("commit_sent", default=False)
"""Set once an insert has only its commit left: from then on, never try it again."""


# The library retries a lost database ten times, each after waiting for a pooled
# connection: minutes before a caller hears anything. One more try, on a connection
# the pool has just checked, rides over the dead ones a restart leaves (D97); then
# the API answers 503 at once.
def _once_more(inner: Callable[..., T]) -> Callable[..., T]:
    """A recorder method tried once more if it failed before anything committed."""

    @functools.wraps(inner)
    def method(self: Any, *args: Any, **kwargs: Any) -> T:
        sent = _COMMIT_SENT.set(False)
        try:
            return inner(self, *args, **kwargs)
        except (InterfaceError, OperationalError):
            # A commit that may have happened is never repeated: the repeat would
            # meet its own events as a version conflict, and the application would
            # run the command again on top of them.
            if _COMMIT_SENT.get():
                raise
        finally:
            _COMMIT_SENT.reset(sent)
        self.datastore.pool.check()  # drops every idle connection a restart killed
        return inner(self, *args, **kwargs)

    return method


def _briefly(base: type, name: str) -> Any:
    """`base.name` without the library's long retry; once more if nothing committed."""
    return _once_more(getattr(base, name).__wrapped__)


def _once(base: type, name: str) -> Any:
    """`base.name` without the library's retry: it may have committed when it fails."""
    once: Any = getattr(base, name).__wrapped__
    return once


class ChainedPostgresApplicationRecorder(
    PostgresAuditMixin, PostgresApplicationRecorder
):
    """Stores each event's chain hash beside it, atomically."""

    insert_events = _briefly(PostgresApplicationRecorder, "insert_events")
    select_events = _briefly(PostgresApplicationRecorder, "select_events")
    select_notifications = _briefly(PostgresApplicationRecorder, "select_notifications")
    max_notification_id = _briefly(PostgresApplicationRecorder, "max_notification_id")

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        if datastore.enable_db_functions:
            raise OSError("POSTGRES_ENABLE_DB_FUNCTIONS must stay off (D90)")
        # The library creates its insert function even with the functions off, by
        # CREATE OR REPLACE, which rewrites a catalog row every time: two processes
        # starting together fail on "tuple concurrently updated". It is never called.
        del self.sql_create_statements[self.create_insert_function_statement_index]
        self.hashes_table_name = f"{events_table_name}_hashes"
        self.check_identifier_length(self.hashes_table_name)
        table = SQL("{0}.{1}").format(
            Identifier(datastore.schema), Identifier(self.hashes_table_name)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} ("
                "originator_id {1} NOT NULL, "
                "originator_version bigint NOT NULL, "
                "hash bytea NOT NULL, "
                "PRIMARY KEY (originator_id, originator_version))"
            ).format(table, Identifier(datastore.originator_id_type))
        )
        self._insert_hash = SQL(
            "INSERT INTO {0} (originator_id, originator_version, hash) "
            "VALUES (%s, %s, %s)"
        ).format(table)
        # A missing predecessor chains from genesis, as `chain.link` does.
        self._insert_chained_hash = SQL(
            "INSERT INTO {0} (originator_id, originator_version, hash) "
            "SELECT %s, %s, sha256(COALESCE((SELECT hash FROM {0} "
            "WHERE originator_id = %s AND originator_version = %s), %s) || %s)"
        ).format(table)
        self._select_hashes = SQL(
            "SELECT originator_version, hash FROM {0} WHERE originator_id = %s"
        ).format(table)
        keys = SQL("{0}.{1}").format(
            Identifier(datastore.schema), Identifier(f"{events_table_name}_keys")
        )
        # Plain text for write_case_keys; both names are this class's own.
        self._keys_table = f'"{datastore.schema}"."{events_table_name}_keys"'
        snapshots = events_table_name.removesuffix("_events") + "_snapshots"
        self._snapshots_table = f'"{datastore.schema}"."{snapshots}"'
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} ("
                "scope text NOT NULL, key text NOT NULL, request_digest text NOT NULL, "
                "case_id uuid NOT NULL, version bigint NOT NULL, status int NOT NULL, "
                "PRIMARY KEY (scope, key))"
            ).format(keys)
        )
        self._insert_key = SQL(
            "INSERT INTO {0} (scope, key, request_digest, case_id, version, status) "
            "VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(keys)
        self._select_key = SQL(
            "SELECT request_digest, case_id, version, status FROM {0} "
            "WHERE scope = %s AND key = %s"
        ).format(keys)
        self._select_position = SQL(
            "SELECT notification_id FROM {0}.{1} "
            "WHERE originator_id = %s AND originator_version = %s"
        ).format(Identifier(datastore.schema), Identifier(events_table_name))
        self.add_audit_tables()

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_stored_events(curs, stored_events, **kwargs)
        conn = curs.connection
        # Sync the pipeline here (leaving a nested block syncs) so that a version
        # conflict surfaces as the insert's own IntegrityError, which the
        # application retries, not as "pipeline aborted" on our next statement.
        with conn.pipeline():
            pass
        # Queued only: the library syncs the pipeline once after this (a duplicate
        # idempotency key is an IntegrityError there), then commits.
        own = conn.cursor()
        for event in stored_events:
            self._queue_hash(own, event)
        record: IdempotencyRecord | None = kwargs.get("idempotency")
        if record is not None:
            own.execute(
                self._insert_key,
                (
                    record.scope,
                    record.key,
                    record.request_digest,
                    record.case_id,
                    record.version,
                    record.status,
                ),
                prepare=False,
            )
        self.index_cases(own, stored_events, kwargs.get("case_clinics"))
        write_case_keys(
            own,
            "%s",
            kwargs,
            snapshots_table=self._snapshots_table,
            idempotency_table=self._keys_table,
            now=datetime.now(UTC).isoformat(),
            unprepared=True,
        )

    def _queue_hash(self, curs: Cursor[DictRow], event: StoredEvent) -> None:
        """The event's chain hash, computed where it is stored (D115)."""
        key, version = event.originator_id, event.originator_version
        if version == 1:
            first = (key, version, event_hash(GENESIS, event))
            curs.execute(self._insert_hash, first, prepare=False)
            return
        after = hashed_after_previous(event)
        params = (key, version, key, version - 1, GENESIS, after)
        curs.execute(self._insert_chained_hash, params, prepare=False)

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        _COMMIT_SENT.set(True)  # the library commits next
        return ids

    @_once_more
    def select_hashes(self, originator_id: UUID | str) -> dict[int, bytes]:
        """The stored chain hashes of one aggregate, by version."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_hashes, (originator_id,))
            return {row["originator_version"]: bytes(row["hash"]) for row in curs}

    @_once_more
    def select_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The stored answer for an idempotency key, if any."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_key, (scope, key))
            row = curs.fetchone()
        if row is None:
            return None
        return IdempotencyRecord(
            scope,
            key,
            row["request_digest"],
            row["case_id"],
            row["version"],
            row["status"],
        )

    @_once_more
    def position_of(self, originator_id: UUID | str, version: int) -> int | None:
        """The log position of one stored event."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_position, (originator_id, version))
            row = curs.fetchone()
        return None if row is None else int(row["notification_id"])


class BrieflyRetryingAggregateRecorder(PostgresAggregateRecorder):
    """The snapshot store, failing as fast as the event store when the database goes.

    A snapshot is one autocommit statement, which may have committed when it fails:
    it is never repeated (a repeat's IntegrityError would run the command again).
    """

    insert_events = _once(PostgresAggregateRecorder, "insert_events")
    select_events = _briefly(PostgresAggregateRecorder, "select_events")


_SteadyLibraryPool = type("SteadyLibraryPool", (ConnectionPool,), dict(STEADY_METHODS))
"""The library's pool (it fetches passwords), recovering at once after a restart."""


class ChainedPostgresFactory(PostgresFactory):
    """The library's PostgreSQL persistence with this project's recorders."""

    aggregate_recorder_class = BrieflyRetryingAggregateRecorder
    application_recorder_class = ChainedPostgresApplicationRecorder

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        # The datastore builds its pool itself and opens it later: give it the
        # behaviour of ours before it makes any connection.
        self.datastore.pool.__class__ = _SteadyLibraryPool
