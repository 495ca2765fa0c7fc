"""The PostgreSQL recorder's audit tables and queries: index, feed, checkpoints."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from ipt_workflow.storage.audit import (
    FEED_SCAN,
    Checkpoint,
    CheckpointHead,
    FeedRows,
    Head,
    LogRow,
)

_CHECKPOINT_COLUMNS = SQL(
    "seq, taken_at, log_head, range_start, range_events, range_digest, "
    "heads_digest, prev_mac, key_id, mac"
)


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


class PostgresAuditMixin:
    """Mixed into the chained PostgreSQL recorder."""

    datastore: PostgresDatastore
    events_table_name: str
    hashes_table_name: str
    sql_create_statements: list[Composed]

    def _table(self, suffix: str) -> Composed:
        return SQL("{0}.{1}").format(
            Identifier(self.datastore.schema),
            Identifier(f"{self.events_table_name}_{suffix}"),
        )

    def add_audit_tables(self) -> None:
        clinics, checkpoints, heads = (
            self._table("clinics"),
            self._table("checkpoints"),
            self._table("checkpoint_heads"),
        )
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} ("
                "case_id uuid PRIMARY KEY, clinic_id text NOT NULL)"
            ).format(clinics),
            SQL("CREATE INDEX IF NOT EXISTS {0} ON {1} (clinic_id, case_id)").format(
                Identifier(f"{self.events_table_name}_clinics_by_clinic"), clinics
            ),
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} ("
                "seq bigint PRIMARY KEY, taken_at text NOT NULL, "
                "log_head bigint NOT NULL, range_start bigint NOT NULL, "
                "range_events bigint NOT NULL, range_digest text NOT NULL, "
                "heads_digest text NOT NULL, prev_mac text NOT NULL, "
                "key_id text NOT NULL, mac text NOT NULL)"
            ).format(checkpoints),
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} ("
                "seq bigint NOT NULL, aggregate_id uuid NOT NULL, "
                "version bigint NOT NULL, position bigint NOT NULL, hash bytea, "
                "PRIMARY KEY (seq, aggregate_id))"
            ).format(heads),
            SQL("CREATE INDEX IF NOT EXISTS {0} ON {1} (aggregate_id, seq)").format(
                Identifier(f"{self.events_table_name}_heads_by_aggregate"), heads
            ),
        ]

    @property
    def _events(self) -> Composed:
        return SQL("{0}.{1}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )

    @property
    def _hashes(self) -> Composed:
        return SQL("{0}.{1}").format(
            Identifier(self.datastore.schema), Identifier(self.hashes_table_name)
        )

    def index_cases(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        case_clinics: Mapping[UUID, str] | None,
    ) -> None:
        """Index each case created in this transaction under its clinic."""
        if not case_clinics:
            return
        rows = [
            (e.originator_id, case_clinics[e.originator_id])
            for e in stored_events
            if e.originator_version == 1
            and isinstance(e.originator_id, UUID)
            and e.originator_id in case_clinics
        ]
        insert = SQL("INSERT INTO {0} (case_id, clinic_id) VALUES (%s, %s)").format(
            self._table("clinics")
        )
        for row in rows:  # queued in the insert's pipeline: never prepared (D96)
            curs.execute(insert, row, prepare=False)

    def select_case_clinic(self, case_id: UUID) -> str | None:
        """The clinic a case was opened at, from the index; None if not indexed."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT clinic_id FROM {0} WHERE case_id = %s").format(
                    self._table("clinics")
                ),
                (case_id,),
            )
            row = curs.fetchone()
        return None if row is None else str(row["clinic_id"])

    def select_feed(
        self, after: int, limit: int, clinics: Collection[str] | None
    ) -> FeedRows:
        """Case events after a position, of these clinics (None: all), in log order.

        A page looks at FEED_SCAN positions at most; the head is read first, and
        writers commit in position order (the library's table lock), so every
        position up to it is final and the page may be passed by `scanned_to`.
        """
        if clinics is not None and not clinics:
            return FeedRows([], after)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT MAX(notification_id) AS head FROM {0}").format(self._events)
            )
            found = curs.fetchone()
            head = (found["head"] if found else None) or 0
            upto = min(head, after + FEED_SCAN)
            if upto <= after:
                return FeedRows([], after)
            statement = SQL(
                "SELECT e.notification_id, e.originator_id, e.originator_version, "
                "e.topic, e.state, c.clinic_id FROM {0} e "
                "JOIN {1} c ON c.case_id = e.originator_id "
                "WHERE e.notification_id > %s AND e.notification_id <= %s"
            ).format(self._events, self._table("clinics"))
            params: list[Any] = [after, upto]
            if clinics is not None:
                statement += SQL(" AND c.clinic_id = ANY(%s)")
                params.append(sorted(clinics))
            statement += SQL(" ORDER BY e.notification_id LIMIT %s")
            params.append(limit)
            curs.execute(statement, params)
            rows = curs.fetchall()
        events = [
            (
                Notification(
                    id=row["notification_id"],
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                ),
                str(row["clinic_id"]),
            )
            for row in rows
        ]
        full = len(events) == limit
        return FeedRows(events, events[-1][0].id if full else upto)

    def select_positions(self, originator_id: UUID) -> dict[int, int]:
        """Each stored event's log position, by version."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT originator_version, notification_id FROM {0} "
                    "WHERE originator_id = %s"
                ).format(self._events),
                (originator_id,),
            )
            return {row["originator_version"]: row["notification_id"] for row in curs}

    def select_log_rows(self, after: int, upto: int, limit: int) -> list[LogRow]:
        """Rows in (after, upto] in log order, with their chain hashes."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT e.notification_id, e.originator_id, "
                    "e.originator_version, h.hash FROM {0} e LEFT JOIN {1} h "
                    "ON h.originator_id = e.originator_id "
                    "AND h.originator_version = e.originator_version "
                    "WHERE e.notification_id > %s AND e.notification_id <= %s "
                    "ORDER BY e.notification_id LIMIT %s"
                ).format(self._events, self._hashes),
                (after, upto, limit),
            )
            return [
                LogRow(
                    row["notification_id"],
                    row["originator_id"],
                    row["originator_version"],
                    _bytes(row["hash"]),
                )
                for row in curs
            ]

    def select_aggregate_ids(self) -> set[UUID]:
        """Every aggregate with a stored event or a stored chain hash."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT originator_id FROM {0} UNION SELECT originator_id FROM {1}"
                ).format(self._events, self._hashes)
            )
            return {row["originator_id"] for row in curs}

    def select_checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint, by number."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT {0} FROM {1} ORDER BY seq").format(
                    _CHECKPOINT_COLUMNS, self._table("checkpoints")
                )
            )
            return [Checkpoint(**row) for row in curs]

    def select_checkpoint_heads(
        self, *, seq: int | None = None, aggregate_id: UUID | None = None
    ) -> list[CheckpointHead]:
        """Heads stored with checkpoints: of one checkpoint, one aggregate, or all."""
        statement = SQL(
            "SELECT seq, aggregate_id, version, position, hash FROM {0} WHERE true"
        ).format(self._table("checkpoint_heads"))
        params: list[Any] = []
        if seq is not None:
            statement += SQL(" AND seq = %s")
            params.append(seq)
        if aggregate_id is not None:
            statement += SQL(" AND aggregate_id = %s")
            params.append(aggregate_id)
        statement += SQL(" ORDER BY seq, aggregate_id")
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params)
            return [
                CheckpointHead(
                    row["seq"],
                    Head(
                        row["aggregate_id"],
                        row["version"],
                        row["position"],
                        _bytes(row["hash"]),
                    ),
                )
                for row in curs
            ]

    def insert_checkpoint(self, checkpoint: Checkpoint, heads: Sequence[Head]) -> bool:
        """Store a checkpoint; False when another process took this number first."""
        cp = checkpoint
        try:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(
                    SQL(
                        "INSERT INTO {0} ({1}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                    ).format(self._table("checkpoints"), _CHECKPOINT_COLUMNS),
                    (
                        cp.seq,
                        cp.taken_at,
                        cp.log_head,
                        cp.range_start,
                        cp.range_events,
                        cp.range_digest,
                        cp.heads_digest,
                        cp.prev_mac,
                        cp.key_id,
                        cp.mac,
                    ),
                )
                curs.executemany(
                    SQL(
                        "INSERT INTO {0} (seq, aggregate_id, version, position, hash) "
                        "VALUES (%s,%s,%s,%s,%s)"
                    ).format(self._table("checkpoint_heads")),
                    [
                        (cp.seq, h.aggregate_id, h.version, h.position, h.hash)
                        for h in heads
                    ],
                )
        except IntegrityError:
            return False
        return True
