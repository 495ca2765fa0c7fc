"""case_list: a summary of every case, newest first, for `GET /cases` (no client_ref).

Rows are ordered by when the case was opened (then by id, for cases opened in the
same microsecond); `newest` pages through them by a (opened_at, case_id) cursor.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from psycopg.sql import SQL, Composable, Identifier

from projections.base import ReadModelProjection
from projections.facts import Facts
from projections.store import PostgresReadModelView, ReadModel, SQLiteReadModelView

Cursor = tuple[str, str]
"""(opened_at, case_id) of the last row of a page: the next page starts after it."""


class CaseList(ReadModel):
    name = "case_list"
    per_case = True

    def row(self, facts: Facts) -> dict[str, Any]:
        return {
            "id": facts["case_id"],
            "clinic_id": facts["clinic_id"],
            "phase": facts["phase"],
            "protocol": facts["protocol"],
            "clinician_id": facts["clinician_id"],
            "opened_at": facts["opened_at"],
            "ended_at": facts["ended_at"],
            "updated_at": facts["updated_at"],
        }


class CaseListProjection(ReadModelProjection):
    name = "case_list"
    model = CaseList()


class CaseListView(ABC):
    """The case list's query: newest first, filtered and paged in SQL."""

    @abstractmethod
    def newest(
        self,
        clinics: Iterable[str] | None,
        *,
        clinician_id: str | None = None,
        phase: str | None = None,
        after: Cursor | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Rows of the clinics (None: all), newest first, after the cursor."""


class SQLiteCaseListView(SQLiteReadModelView, CaseListView):
    model = CaseList()

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE INDEX IF NOT EXISTS rows_newest ON case_rows "
            "(clinic_id, json_extract(row, '$.opened_at') DESC, case_id DESC)",
        ]

    def newest(
        self,
        clinics: Iterable[str] | None,
        *,
        clinician_id: str | None = None,
        phase: str | None = None,
        after: Cursor | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        opened = "json_extract(row, '$.opened_at')"
        where, params = ["1 = 1"], list[Any]()
        if clinics is not None:
            wanted = list(clinics)
            where.append(f"clinic_id IN ({','.join('?' * len(wanted)) or 'NULL'})")
            params += wanted
        for field, value in (("clinician_id", clinician_id), ("phase", phase)):
            if value is not None:
                where.append(f"json_extract(row, '$.{field}') = ?")
                params.append(value)
        if after is not None:
            where.append(f"({opened}, case_id) < (?, ?)")
            params += list(after)
        sql = (
            f"SELECT row FROM case_rows WHERE {' AND '.join(where)} "
            f"ORDER BY {opened} DESC, case_id DESC LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, [*params, limit])
            return [json.loads(r[0]) for r in c.fetchall()]


class PostgresCaseListView(PostgresReadModelView, CaseListView):
    model = CaseList()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sql_create_statements.append(
            SQL(
                "CREATE INDEX IF NOT EXISTS {0} ON {1} "
                "(clinic_id, (row->>'opened_at') COLLATE \"C\" DESC, "
                'case_id COLLATE "C" DESC)'
            ).format(Identifier(f"{self.prefix}_rows_newest"), self.tables["rows"])
        )

    def newest(
        self,
        clinics: Iterable[str] | None,
        *,
        clinician_id: str | None = None,
        phase: str | None = None,
        after: Cursor | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        opened = SQL("(row->>'opened_at') COLLATE \"C\"")
        case_id = SQL('case_id COLLATE "C"')
        where: list[Composable] = [SQL("TRUE")]
        params: list[Any] = []
        if clinics is not None:
            where.append(SQL("clinic_id = ANY(%s)"))
            params.append(list(clinics))
        for field, value in (("clinician_id", clinician_id), ("phase", phase)):
            if value is not None:
                where.append(SQL("row->>%s = %s"))
                params += [field, value]
        if after is not None:
            where.append(SQL("({0}, {1}) < (%s, %s)").format(opened, case_id))
            params += list(after)
        sql = (
            self._sql("SELECT row FROM {rows} WHERE ")
            + SQL(" AND ").join(where)
            + SQL(" ORDER BY {0} DESC, {1} DESC LIMIT %s").format(opened, case_id)
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, [*params, limit])
            return [r["row"] for r in c.fetchall()]
