"""The SQLite recorder's audit tables and queries: index, feed, checkpoints."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, StoredEvent

from ipt_workflow.storage.audit import (
    FEED_SCAN,
    Checkpoint,
    CheckpointHead,
    FeedRows,
    Head,
    LogRow,
)

if TYPE_CHECKING:
    from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore

CLINICS_TABLE = "case_clinics"
CHECKPOINTS_TABLE = "checkpoints"
HEADS_TABLE = "checkpoint_heads"

_CHECKPOINT_COLUMNS = (
    "seq, taken_at, log_head, range_start, range_events, range_digest, "
    "heads_digest, prev_mac, key_id, mac"
)


class SQLiteAuditMixin:
    """Mixed into the chained SQLite recorder."""

    datastore: SQLiteDatastore
    events_table_name: str
    hashes_table_name: str

    def audit_table_statements(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {CLINICS_TABLE} ("
            "case_id TEXT PRIMARY KEY, clinic_id TEXT NOT NULL) WITHOUT ROWID",
            f"CREATE INDEX IF NOT EXISTS {CLINICS_TABLE}_by_clinic "
            f"ON {CLINICS_TABLE} (clinic_id, case_id)",
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS_TABLE} ("
            "seq INTEGER PRIMARY KEY, taken_at TEXT NOT NULL, "
            "log_head INTEGER NOT NULL, range_start INTEGER NOT NULL, "
            "range_events INTEGER NOT NULL, range_digest TEXT NOT NULL, "
            "heads_digest TEXT NOT NULL, prev_mac TEXT NOT NULL, "
            "key_id TEXT NOT NULL, mac TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {HEADS_TABLE} ("
            "seq INTEGER NOT NULL, aggregate_id TEXT NOT NULL, "
            "version INTEGER NOT NULL, position INTEGER NOT NULL, hash BLOB, "
            "PRIMARY KEY (seq, aggregate_id)) WITHOUT ROWID",
            f"CREATE INDEX IF NOT EXISTS {HEADS_TABLE}_by_aggregate "
            f"ON {HEADS_TABLE} (aggregate_id, seq)",
        ]

    def index_cases(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        case_clinics: Mapping[UUID, str] | None,
    ) -> None:
        """Index each case created in this transaction under its clinic."""
        if not case_clinics:
            return
        rows = [
            (e.originator_id.hex, case_clinics[e.originator_id])
            for e in stored_events
            if e.originator_version == 1
            and isinstance(e.originator_id, UUID)
            and e.originator_id in case_clinics
        ]
        if rows:
            c.executemany(f"INSERT INTO {CLINICS_TABLE} VALUES (?, ?)", rows)

    def select_case_clinic(self, case_id: UUID) -> str | None:
        """The clinic a case was opened at, from the index; None if not indexed."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT clinic_id FROM {CLINICS_TABLE} WHERE case_id = ?",
                (case_id.hex,),
            )
            row = c.fetchone()
        return None if row is None else str(row[0])

    def select_feed(
        self, after: int, limit: int, clinics: Collection[str] | None
    ) -> FeedRows:
        """Case events after a position, of these clinics (None: all), in log order.

        A page looks at FEED_SCAN positions at most, so a poll by a quiet clinic
        costs the same as any other; the head is read first, so every position up
        to it is committed and the page may be passed by `scanned_to`.
        """
        if clinics is not None and not clinics:
            return FeedRows([], after)
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT MAX(rowid) FROM {self.events_table_name}")
            head = c.fetchone()[0] or 0
            upto = min(head, after + FEED_SCAN)
            if upto <= after:
                return FeedRows([], after)
            params: list[object] = [after, upto]
            where = ""
            if clinics is not None:
                where = f"AND c.clinic_id IN ({','.join('?' * len(clinics))}) "
                params += sorted(clinics)
            params.append(limit)
            # CROSS JOIN makes SQLite walk the log in order and look each case up,
            # rather than walk the index and sort.
            c.execute(
                "SELECT e.rowid, e.originator_id, e.originator_version, e.topic, "
                f"e.state, c.clinic_id FROM {self.events_table_name} e "
                f"CROSS JOIN {CLINICS_TABLE} c ON c.case_id = e.originator_id "
                f"WHERE e.rowid > ? AND e.rowid <= ? {where}"
                "ORDER BY e.rowid LIMIT ?",
                params,
            )
            rows = c.fetchall()
        events = [
            (
                Notification(
                    id=row[0],
                    originator_id=UUID(row[1]),
                    originator_version=row[2],
                    topic=row[3],
                    state=bytes(row[4]),
                ),
                str(row[5]),
            )
            for row in rows
        ]
        full = len(events) == limit
        return FeedRows(events, events[-1][0].id if full else upto)

    def select_positions(self, originator_id: UUID) -> dict[int, int]:
        """Each stored event's log position, by version."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_version, rowid FROM {self.events_table_name} "
                "WHERE originator_id = ?",
                (originator_id.hex,),
            )
            return {row[0]: row[1] for row in c.fetchall()}

    def select_log_rows(self, after: int, upto: int, limit: int) -> list[LogRow]:
        """Rows in (after, upto] in log order, with their chain hashes."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT e.rowid, e.originator_id, e.originator_version, h.hash "
                f"FROM {self.events_table_name} e "
                f"LEFT JOIN {self.hashes_table_name} h "
                "ON h.originator_id = e.originator_id "
                "AND h.originator_version = e.originator_version "
                "WHERE e.rowid > ? AND e.rowid <= ? ORDER BY e.rowid LIMIT ?",
                (after, upto, limit),
            )
            return [
                LogRow(
                    row[0],
                    UUID(row[1]),
                    row[2],
                    None if row[3] is None else bytes(row[3]),
                )
                for row in c.fetchall()
            ]

    def select_aggregate_ids(self) -> set[UUID]:
        """Every aggregate with a stored event or a stored chain hash."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_id FROM {self.events_table_name} "
                f"UNION SELECT originator_id FROM {self.hashes_table_name}"
            )
            return {UUID(row[0]) for row in c.fetchall()}

    def select_checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint, by number."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_TABLE} ORDER BY seq"
            )
            return [Checkpoint(*row) for row in c.fetchall()]

    def select_checkpoint_heads(
        self, *, seq: int | None = None, aggregate_id: UUID | None = None
    ) -> list[CheckpointHead]:
        """Heads stored with checkpoints: of one checkpoint, one aggregate, or all."""
        where: list[str] = []
        params: list[object] = []
        if seq is not None:
            where.append("seq = ?")
            params.append(seq)
        if aggregate_id is not None:
            where.append("aggregate_id = ?")
            params.append(aggregate_id.hex)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT seq, aggregate_id, version, position, hash "
                f"FROM {HEADS_TABLE} {clause}ORDER BY seq, aggregate_id",
                params,
            )
            return [
                CheckpointHead(
                    row[0],
                    Head(
                        UUID(row[1]),
                        row[2],
                        row[3],
                        None if row[4] is None else bytes(row[4]),
                    ),
                )
                for row in c.fetchall()
            ]

    def insert_checkpoint(self, checkpoint: Checkpoint, heads: Sequence[Head]) -> bool:
        """Store a checkpoint; False when another process took this number first."""
        cp = checkpoint
        try:
            with self.datastore.transaction(commit=True) as c:
                c.execute(
                    f"INSERT INTO {CHECKPOINTS_TABLE} ({_CHECKPOINT_COLUMNS}) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?)",
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
                c.executemany(
                    f"INSERT INTO {HEADS_TABLE} VALUES (?,?,?,?,?)",
                    [
                        (cp.seq, h.aggregate_id.hex, h.version, h.position, h.hash)
                        for h in heads
                    ],
                )
        except IntegrityError:
            return False
        return True
