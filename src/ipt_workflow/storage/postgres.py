"""The PostgreSQL application recorder with the hash chain in the same transaction.

The library takes `LOCK TABLE ... IN EXCLUSIVE MODE` before inserting events, so the
previous hash read here cannot change before this transaction commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from ipt_workflow.storage.case_keys import write_case_keys
from ipt_workflow.storage.chain import link
from ipt_workflow.storage.idempotency import IdempotencyRecord
from ipt_workflow.storage.postgres_audit import PostgresAuditMixin


# The library retries a lost database ten times, each after waiting for a pooled
# connection: minutes before a caller hears anything. Two short tries ride over
# one stale connection; then the API answers 503 at once.
def _briefly(base: type, name: str) -> Any:
    """`base.name` without the library's long retry, with two short tries instead."""
    inner = getattr(base, name).__wrapped__

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return inner(self, *args, **kwargs)

    method.__name__ = name
    return retry((InterfaceError, OperationalError), max_attempts=2, wait=0.1)(method)


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
        self._select_previous = SQL(
            "SELECT hash FROM {0} WHERE originator_id = %s AND originator_version = %s"
        ).format(table)
        self._insert_hash = SQL(
            "INSERT INTO {0} (originator_id, originator_version, hash) "
            "VALUES (%s, %s, %s)"
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
        # Sync the pipeline here (leaving a nested block syncs) so that a version
        # conflict surfaces as the insert's own IntegrityError, which the
        # application retries, not as "pipeline aborted" on our next statement.
        with curs.connection.pipeline():
            pass
        # A cursor of our own: `curs` still holds the RETURNING ids the library reads.
        with curs.connection.cursor() as own:

            def previous(originator_id: UUID | str, version: int) -> bytes | None:
                own.execute(self._select_previous, (originator_id, version))
                row = own.fetchone()
                return None if row is None else bytes(row["hash"])

            links = link(stored_events, previous)
            own.executemany(
                self._insert_hash,
                [(x.originator_id, x.originator_version, x.hash) for x in links],
            )
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
                )
            self.index_cases(own, stored_events, kwargs.get("case_clinics"))
            write_case_keys(
                own,
                "%s",
                kwargs,
                snapshots_table=self._snapshots_table,
                idempotency_table=self._keys_table,
                now=datetime.now(UTC).isoformat(),
            )

    def select_hashes(self, originator_id: UUID | str) -> dict[int, bytes]:
        """The stored chain hashes of one aggregate, by version."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_hashes, (originator_id,))
            return {row["originator_version"]: bytes(row["hash"]) for row in curs}

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

    def position_of(self, originator_id: UUID | str, version: int) -> int | None:
        """The log position of one stored event."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_position, (originator_id, version))
            row = curs.fetchone()
        return None if row is None else int(row["notification_id"])


class BrieflyRetryingAggregateRecorder(PostgresAggregateRecorder):
    """The snapshot store, failing as fast as the event store when the database goes."""

    insert_events = _briefly(PostgresAggregateRecorder, "insert_events")
    select_events = _briefly(PostgresAggregateRecorder, "select_events")


class ChainedPostgresFactory(PostgresFactory):
    """The library's PostgreSQL persistence with this project's recorders."""

    aggregate_recorder_class = BrieflyRetryingAggregateRecorder
    application_recorder_class = ChainedPostgresApplicationRecorder
