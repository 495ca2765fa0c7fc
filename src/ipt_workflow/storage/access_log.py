"""The access log: who read which case, when, through which route.

Reads are not events: recording one must never take the event log's write lock.
On PostgreSQL the log is a table of its own (its inserts lock only that table);
on SQLite, where a write locks the whole file, it is a file of its own beside the
events' file. A row holds ids, a role and a route template, never client data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from ipt_workflow.storage.connections import (
    once_more_if_dead,
    small_pool,
    sqlite_cursor,
)

T = TypeVar("T")


@dataclass(frozen=True)
class AccessEntry:
    """One recorded read of a case."""

    id: int
    at: str
    actor: str
    role: str
    key_id: str
    clinic_id: str
    case_id: UUID
    route: str


class AccessLog(Protocol):
    def record(
        self,
        *,
        actor: str,
        role: str,
        key_id: str,
        clinic_id: str,
        case_id: UUID,
        route: str,
    ) -> None: ...

    def record_many(
        self,
        *,
        actor: str,
        role: str,
        key_id: str,
        cases: Collection[tuple[UUID, str]],
        route: str,
    ) -> None: ...

    def query(
        self,
        *,
        clinics: Collection[str] | None,
        case_id: UUID | None = None,
        actor: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[AccessEntry]: ...

    def close(self) -> None: ...


_COLUMNS = "id, at, actor, role, key_id, clinic_id, case_id, route"


class RecordsReads(ABC):
    """`record` and `record_many` over one way of committing rows."""

    def record(
        self,
        *,
        actor: str,
        role: str,
        key_id: str,
        clinic_id: str,
        case_id: UUID,
        route: str,
    ) -> None:
        """Record one read of a case."""
        self.record_many(
            actor=actor,
            role=role,
            key_id=key_id,
            cases=[(case_id, clinic_id)],
            route=route,
        )

    def record_many(
        self,
        *,
        actor: str,
        role: str,
        key_id: str,
        cases: Collection[tuple[UUID, str]],
        route: str,
    ) -> None:
        """Record one read of each of these (case, clinic), committed together."""
        if not cases:
            return
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        self._write(
            [
                (at, actor, role, key_id, clinic_id, str(case_id), route)
                for case_id, clinic_id in cases
            ]
        )

    @abstractmethod
    def _write(self, rows: Sequence[tuple[str, ...]]) -> None:
        """Commit rows of (at, actor, role, key_id, clinic_id, case_id, route)."""


class _SqlAccessLog(RecordsReads):
    placeholder = "?"
    id_column = "id INTEGER PRIMARY KEY AUTOINCREMENT"

    @abstractmethod
    def _cursor(self) -> AbstractContextManager[Any]:
        """A cursor in a transaction that commits when the block ends."""

    def _run(self, work: Callable[[Any], T]) -> T:
        """`work(cursor)` in one transaction."""
        with self._cursor() as c:
            return work(c)

    def _sql(self, text: str) -> str:
        return text.replace("?", self.placeholder)

    def _create(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS access_log ("
            f"{self.id_column}, at TEXT NOT NULL, actor TEXT NOT NULL, "
            "role TEXT NOT NULL, key_id TEXT NOT NULL, clinic_id TEXT NOT NULL, "
            "case_id TEXT NOT NULL, route TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS access_log_by_case ON access_log (case_id, id)",
            "CREATE INDEX IF NOT EXISTS access_log_by_actor ON access_log (actor, id)",
        ]

    def _before_insert(self, cursor: Any) -> None:
        """Serialise writers so ids are committed in order (see PostgreSQL)."""

    def _write(self, rows: Sequence[tuple[str, ...]]) -> None:
        self.insert_rows(rows)

    def insert_rows(self, rows: Sequence[tuple[str, ...]]) -> None:
        """Rows of (at, actor, role, key_id, clinic_id, case_id, route), one commit."""

        def insert(c: Any) -> None:
            self._before_insert(c)
            c.executemany(
                self._sql(
                    "INSERT INTO access_log "
                    "(at, actor, role, key_id, clinic_id, case_id, route) "
                    "VALUES (?,?,?,?,?,?,?)"
                ),
                rows,
            )

        self._run(insert)

    def query(
        self,
        *,
        clinics: Collection[str] | None,
        case_id: UUID | None = None,
        actor: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[AccessEntry]:
        """Reads of cases of these clinics (None: all), oldest first, after an id."""
        if clinics is not None and not clinics:
            return []
        where = ["id > ?"]
        params: list[Any] = [after]
        if clinics is not None:
            where.append(f"clinic_id IN ({','.join('?' * len(clinics))})")
            params += sorted(clinics)
        if case_id is not None:
            where.append("case_id = ?")
            params.append(str(case_id))
        if actor is not None:
            where.append("actor = ?")
            params.append(actor)
        params.append(limit)

        def read(c: Any) -> list[AccessEntry]:
            c.execute(
                self._sql(
                    f"SELECT {_COLUMNS} FROM access_log WHERE {' AND '.join(where)} "
                    "ORDER BY id LIMIT ?"
                ),
                params,
            )
            return [
                AccessEntry(r[0], r[1], r[2], r[3], r[4], r[5], UUID(r[6]), r[7])
                for r in c.fetchall()
            ]

        return self._run(read)

    def close(self) -> None:
        """Release connections; SQLite opens one per call and holds none."""
        return


class SQLiteAccessLog(_SqlAccessLog):
    """The access log in a SQLite file of its own."""

    def __init__(self, path: str) -> None:
        self.path = path
        with self._cursor() as c:
            c.execute("PRAGMA journal_mode=WAL")
            for statement in self._create():
                c.execute(statement)

    def _cursor(self) -> AbstractContextManager[Any]:
        return sqlite_cursor(self.path)


class PostgresAccessLog(_SqlAccessLog):
    """The access log in a table of its own in the events' database."""

    placeholder = "%s"
    id_column = "id bigserial PRIMARY KEY"

    def __init__(self, conninfo: str, *, create_tables: bool = True) -> None:
        self.pool = small_pool(conninfo)
        if create_tables:
            with self._cursor() as c:
                for statement in self._create():
                    c.execute(statement)

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as c:
            yield c

    def _run(self, work: Callable[[Any], T]) -> T:
        # A connection a database restart killed is replaced once (D97).
        return once_more_if_dead(self.pool, work)

    def _before_insert(self, cursor: Any) -> None:
        # Without it, two inserts could commit out of id order and a reader paging
        # by `after` would pass over the one that commits last. It locks this
        # table only, never the event log.
        cursor.execute("LOCK TABLE access_log IN EXCLUSIVE MODE")

    def close(self) -> None:
        self.pool.close()
