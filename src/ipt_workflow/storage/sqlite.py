"""The SQLite application recorder, writing the hash chain in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent, Subscription
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from ipt_workflow.storage.case_keys import write_case_keys
from ipt_workflow.storage.chain import link
from ipt_workflow.storage.idempotency import IdempotencyRecord
from ipt_workflow.storage.polling import PollingSubscription
from ipt_workflow.storage.sqlite_audit import SQLiteAuditMixin

HASHES_TABLE = "event_hashes"
KEYS_TABLE = "idempotency_keys"


def _key(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


class ChainedSQLiteApplicationRecorder(SQLiteAuditMixin, SQLiteApplicationRecorder):
    """Stores each event's chain hash beside it, atomically."""

    hashes_table_name = HASHES_TABLE

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {HASHES_TABLE} ("
            "originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, "
            "hash BLOB NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID",
            f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} ("
            "scope TEXT NOT NULL, key TEXT NOT NULL, request_digest TEXT NOT NULL, "
            "case_id TEXT NOT NULL, version INTEGER NOT NULL, status INTEGER NOT NULL, "
            "PRIMARY KEY (scope, key)) WITHOUT ROWID",
            *self.audit_table_statements(),
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)

        def previous(originator_id: UUID | str, version: int) -> bytes | None:
            c.execute(
                f"SELECT hash FROM {HASHES_TABLE} "
                "WHERE originator_id=? AND originator_version=?",
                (_key(originator_id), version),
            )
            row = c.fetchone()
            return None if row is None else bytes(row[0])

        links = link(stored_events, previous)
        c.executemany(
            f"INSERT INTO {HASHES_TABLE} VALUES (?,?,?)",
            [(_key(x.originator_id), x.originator_version, x.hash) for x in links],
        )
        record: IdempotencyRecord | None = kwargs.get("idempotency")
        if record is not None:
            c.execute(
                f"INSERT INTO {KEYS_TABLE} VALUES (?,?,?,?,?,?)",
                (
                    record.scope,
                    record.key,
                    record.request_digest,
                    record.case_id.hex,
                    record.version,
                    record.status,
                ),
            )
        self.index_cases(c, stored_events, kwargs.get("case_clinics"))
        write_case_keys(
            c,
            "?",
            kwargs,
            snapshots_table="stored_snapshots",
            idempotency_table=KEYS_TABLE,
            now=datetime.now(UTC).isoformat(),
        )
        return ids

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        """New notifications as they are committed, found by polling."""
        return PollingSubscription(recorder=self, gt=gt, topics=topics)

    def select_hashes(self, originator_id: UUID | str) -> dict[int, bytes]:
        """The stored chain hashes of one aggregate, by version."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_version, hash FROM {HASHES_TABLE} "
                "WHERE originator_id=?",
                (_key(originator_id),),
            )
            return {row[0]: bytes(row[1]) for row in c.fetchall()}

    def select_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The stored answer for an idempotency key, if any."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT request_digest, case_id, version, status "
                f"FROM {KEYS_TABLE} WHERE scope=? AND key=?",
                (scope, key),
            )
            row = c.fetchone()
        if row is None:
            return None
        return IdempotencyRecord(scope, key, row[0], UUID(row[1]), row[2], row[3])

    def position_of(self, originator_id: UUID | str, version: int) -> int | None:
        """The log position of one stored event."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid FROM {self.events_table_name} "
                "WHERE originator_id=? AND originator_version=?",
                (_key(originator_id), version),
            )
            row = c.fetchone()
        return None if row is None else int(row[0])
