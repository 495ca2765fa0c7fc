"""Read-model tables and their tracking position, written in one transaction.

Every read model keeps the facts of each case (`<name>_facts`), and from them either
one row per case (`<name>_rows`) or counters per key (`<name>_counts`). An event
updates the facts of its case, the row or the counter deltas, and the tracking
position together, so a crash never counts an event twice or skips one. The same
SQL runs on SQLite and PostgreSQL; only placeholders and JSON types differ.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Composed, Identifier

from ipt_workflow.domain import events
from projections.facts import Facts, evolve

Key = tuple[str, ...]
Counts = dict[Key, dict[str, int]]


class ReadModel(ABC):
    """What one read model derives from the facts of a case."""

    name: ClassVar[str]
    per_case: ClassVar[bool]
    """True: one row per case; False: counters per key."""

    def row(self, facts: Facts) -> dict[str, Any] | None:  # noqa: ARG002
        """The case's row (per-case models)."""
        return None

    def counts(self, facts: Facts) -> Counts:  # noqa: ARG002
        """The case's contribution to the counters (counter models)."""
        return {}

    def clinic_of(self, key: Key) -> str:
        return key[0]


@dataclass(frozen=True)
class Batch:
    """Events with the tracking of the last one, applied in one transaction."""

    events: Sequence[events.CaseEvent]
    tracking: Tracking


class ReadModelView(TrackingRecorder, ABC):
    """The operations both back ends share; they supply the SQL dialect."""

    model: ClassVar[ReadModel]

    # --- writing ---------------------------------------------------------------

    def apply(self, batch: Batch) -> None:
        """Fold a batch of events in; one write per case and per counter at the end."""
        with self._transaction() as c:
            ids = sorted({str(e.originator_id) for e in batch.events})
            before = self._load_facts(c, ids)
            current: dict[str, Facts] = dict(before)
            deltas: dict[tuple[Key, str], int] = {}
            erased: set[str] = set()
            for event in batch.events:
                case_id = str(event.originator_id)
                old = current.get(case_id)
                if not isinstance(event, events.CaseEvent):
                    continue  # an erased case's event: nothing is left to fold
                if isinstance(event, events.CaseErased):
                    # The case leaves every read model, as if it never was.
                    if old is not None and not self.model.per_case:
                        self._diff(old, None, deltas)
                    current.pop(case_id, None)
                    erased.add(case_id)
                    continue
                new = evolve(old, event)
                if new is None:
                    continue
                current[case_id] = new
                if not self.model.per_case:
                    self._diff(old, new, deltas)
            changed = {k: v for k, v in current.items() if v is not before.get(k)}
            self._delete(c, sorted(erased))
            self._save_facts(c, changed)
            if self.model.per_case:
                rows = {k: self.model.row(v) for k, v in changed.items()}
                self._save_rows(
                    c, [(k, changed[k]["clinic_id"], r) for k, r in rows.items() if r]
                )
            else:
                self._add_counts(c, [(k, m, d) for (k, m), d in deltas.items() if d])
            self._track(c, batch.tracking)

    def _diff(
        self, old: Facts | None, new: Facts | None, deltas: dict[tuple[Key, str], int]
    ) -> None:
        before = self.model.counts(old) if old is not None else {}
        after = self.model.counts(new) if new is not None else {}
        for key in before.keys() | after.keys():
            metrics = before.get(key, {}).keys() | after.get(key, {}).keys()
            for metric in metrics:
                delta = after.get(key, {}).get(metric, 0) - before.get(key, {}).get(
                    metric, 0
                )
                deltas[(key, metric)] = deltas.get((key, metric), 0) + delta

    # --- reading ---------------------------------------------------------------

    def rows(
        self,
        clinics: Iterable[str] | None,
        *,
        equals: Mapping[str, Sequence[str]] | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of the given clinics (None: all) in case-id order, filtered in SQL.

        `equals` keeps rows whose field is one of the given values; `after` and
        `limit` page by case id.
        """
        query = RowQuery(
            None if clinics is None else list(clinics), dict(equals or {}), after, limit
        )
        for field in query.equals:
            if not field.isidentifier():
                raise ValueError(f"not a row field: {field!r}")
        return [json.loads(r) if isinstance(r, str) else r for r in self._rows(query)]

    def counters(self, clinics: Iterable[str] | None) -> Counts:
        found: Counts = {}
        for key_text, metric, n in self._counts(clinics):
            key = tuple(json.loads(key_text))
            found.setdefault(key, {})[metric] = n
        return found

    # --- the dialect -------------------------------------------------------------

    @abstractmethod
    def _transaction(self) -> Any: ...

    @abstractmethod
    def _track(self, c: Any, tracking: Tracking) -> None: ...

    @abstractmethod
    def _load_facts(self, c: Any, case_ids: list[str]) -> dict[str, Facts]: ...

    @abstractmethod
    def _save_facts(self, c: Any, facts: dict[str, Facts]) -> None: ...

    @abstractmethod
    def _delete(self, c: Any, case_ids: list[str]) -> None:
        """Drop the facts and rows of erased cases."""

    @abstractmethod
    def _save_rows(
        self, c: Any, rows: list[tuple[str, str, dict[str, Any]]]
    ) -> None: ...

    @abstractmethod
    def _add_counts(self, c: Any, deltas: list[tuple[Key, str, int]]) -> None: ...

    @abstractmethod
    def _rows(self, query: RowQuery) -> list[Any]: ...

    @abstractmethod
    def _counts(self, clinics: Iterable[str] | None) -> list[tuple[str, str, int]]: ...


@dataclass(frozen=True)
class RowQuery:
    clinics: list[str] | None
    equals: dict[str, Sequence[str]]
    after: str | None
    limit: int | None


def _key_text(key: Key) -> str:
    return json.dumps(list(key))


class SQLiteReadModelView(ReadModelView, SQLiteTrackingRecorder):
    """A read model in its own SQLite file (tracking tables are per file)."""

    def __init__(self, datastore: SQLiteDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS facts "
            "(case_id TEXT PRIMARY KEY, facts TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS case_rows (case_id TEXT PRIMARY KEY, "
            "clinic_id TEXT NOT NULL, row TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rows_by_clinic "
            "ON case_rows (clinic_id, case_id)",
            "CREATE TABLE IF NOT EXISTS counts (key TEXT NOT NULL, "
            "clinic_id TEXT NOT NULL, metric TEXT NOT NULL, n INTEGER NOT NULL, "
            "PRIMARY KEY (key, metric))",
        ]

    def _transaction(self) -> Any:
        return self.datastore.transaction(commit=True)

    def _track(self, c: Any, tracking: Tracking) -> None:
        self._insert_tracking(c, tracking)

    def _load_facts(self, c: Any, case_ids: list[str]) -> dict[str, Facts]:
        marks = ",".join("?" * len(case_ids)) or "NULL"
        c.execute(
            f"SELECT case_id, facts FROM facts WHERE case_id IN ({marks})", case_ids
        )
        return {row[0]: dict(json.loads(row[1])) for row in c.fetchall()}

    def _save_facts(self, c: Any, facts: dict[str, Facts]) -> None:
        c.executemany(
            "INSERT INTO facts VALUES (?, ?) ON CONFLICT (case_id) DO UPDATE "
            "SET facts = excluded.facts",
            [(k, json.dumps(v)) for k, v in facts.items()],
        )

    def _delete(self, c: Any, case_ids: list[str]) -> None:
        for table in ("facts", "case_rows"):
            c.executemany(
                f"DELETE FROM {table} WHERE case_id = ?", [(k,) for k in case_ids]
            )

    def _save_rows(self, c: Any, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        c.executemany(
            "INSERT INTO case_rows VALUES (?, ?, ?) ON CONFLICT (case_id) DO UPDATE "
            "SET clinic_id = excluded.clinic_id, row = excluded.row",
            [(k, clinic, json.dumps(row)) for k, clinic, row in rows],
        )

    def _add_counts(self, c: Any, deltas: list[tuple[Key, str, int]]) -> None:
        c.executemany(
            "INSERT INTO counts VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key, metric) DO UPDATE "
            "SET n = n + excluded.n",
            [(_key_text(k), self.model.clinic_of(k), m, d) for k, m, d in deltas],
        )

    def _rows(self, query: RowQuery) -> list[Any]:
        where, params = ["1 = 1"], list[Any]()
        if query.clinics is not None:
            where.append(
                f"clinic_id IN ({','.join('?' * len(query.clinics)) or 'NULL'})"
            )
            params += query.clinics
        for field, values in query.equals.items():
            marks = ",".join("?" * len(values)) or "NULL"
            where.append(f"json_extract(row, '$.{field}') IN ({marks})")
            params += list(values)
        if query.after is not None:
            where.append("case_id > ?")
            params.append(query.after)
        sql = f"SELECT row FROM case_rows WHERE {' AND '.join(where)} ORDER BY case_id"
        if query.limit is not None:
            sql += " LIMIT ?"
            params.append(query.limit)
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return [r[0] for r in c.fetchall()]

    def _counts(self, clinics: Iterable[str] | None) -> list[tuple[str, str, int]]:
        with self.datastore.transaction(commit=False) as c:
            if clinics is None:
                c.execute("SELECT key, metric, n FROM counts WHERE n != 0")
            else:
                wanted = list(clinics)
                marks = ",".join("?" * len(wanted)) or "NULL"
                c.execute(
                    f"SELECT key, metric, n FROM counts WHERE n != 0 "
                    f"AND clinic_id IN ({marks})",
                    wanted,
                )
            return [(r[0], r[1], r[2]) for r in c.fetchall()]


class PostgresReadModelView(ReadModelView, PostgresTrackingRecorder):
    """A read model in the events' PostgreSQL database, its tables named after it."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        tracking_table_name: str = "notification_tracking",
        **kwargs: Any,
    ) -> None:
        super().__init__(datastore, tracking_table_name=tracking_table_name, **kwargs)
        prefix = tracking_table_name.removesuffix("_tracking")
        self.prefix = prefix
        self.tables = {
            t: SQL("{0}.{1}").format(
                Identifier(datastore.schema), Identifier(f"{prefix}_{t}")
            )
            for t in ("facts", "rows", "counts")
        }
        self.sql_create_statements += [
            self._sql(
                "CREATE TABLE IF NOT EXISTS {facts} (case_id text PRIMARY KEY, "
                "facts jsonb NOT NULL)"
            ),
            self._sql(
                "CREATE TABLE IF NOT EXISTS {rows} (case_id text PRIMARY KEY, "
                "clinic_id text NOT NULL, row jsonb NOT NULL)"
            ),
            self._sql(
                "CREATE TABLE IF NOT EXISTS {counts} (key text NOT NULL, "
                "clinic_id text NOT NULL, metric text NOT NULL, n bigint NOT NULL, "
                "PRIMARY KEY (key, metric))"
            ),
        ]

    def _sql(self, text: str) -> Composed:
        return SQL(text).format(**self.tables)

    def _transaction(self) -> Any:
        return self.datastore.transaction(commit=True)

    def _track(self, c: Any, tracking: Tracking) -> None:
        self._insert_tracking(c, tracking)

    def _load_facts(self, c: Any, case_ids: list[str]) -> dict[str, Facts]:
        c.execute(
            self._sql("SELECT case_id, facts FROM {facts} WHERE case_id = ANY(%s)"),
            (case_ids,),
        )
        return {row["case_id"]: dict(row["facts"]) for row in c.fetchall()}

    def _save_facts(self, c: Any, facts: dict[str, Facts]) -> None:
        if facts:
            c.executemany(
                self._sql(
                    "INSERT INTO {facts} VALUES (%s, %s) ON CONFLICT (case_id) "
                    "DO UPDATE SET facts = excluded.facts"
                ),
                [(k, json.dumps(v)) for k, v in facts.items()],
            )

    def _delete(self, c: Any, case_ids: list[str]) -> None:
        if case_ids:
            for table in ("{facts}", "{rows}"):
                c.execute(
                    self._sql(f"DELETE FROM {table} WHERE case_id = ANY(%s)"),
                    (case_ids,),
                )

    def _save_rows(self, c: Any, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        if rows:
            c.executemany(
                self._sql(
                    "INSERT INTO {rows} VALUES (%s, %s, %s) "
                    "ON CONFLICT (case_id) DO UPDATE "
                    "SET clinic_id = excluded.clinic_id, row = excluded.row"
                ),
                [(k, clinic, json.dumps(row)) for k, clinic, row in rows],
            )

    def _add_counts(self, c: Any, deltas: list[tuple[Key, str, int]]) -> None:
        if deltas:
            c.executemany(
                self._sql(
                    "INSERT INTO {counts} AS t VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (key, metric) DO UPDATE SET n = t.n + excluded.n"
                ),
                [(_key_text(k), self.model.clinic_of(k), m, d) for k, m, d in deltas],
            )

    def _rows(self, query: RowQuery) -> list[Any]:
        where, params = [SQL("TRUE")], list[Any]()
        if query.clinics is not None:
            where.append(SQL("clinic_id = ANY(%s)"))
            params.append(query.clinics)
        for field, values in query.equals.items():
            where.append(SQL("row->>%s = ANY(%s)"))
            params += [field, list(values)]
        if query.after is not None:
            where.append(SQL("case_id > %s"))
            params.append(query.after)
        sql = self._sql("SELECT row FROM {rows} WHERE ") + SQL(" AND ").join(where)
        sql += SQL(" ORDER BY case_id")
        if query.limit is not None:
            sql += SQL(" LIMIT %s")
            params.append(query.limit)
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return [r["row"] for r in c.fetchall()]

    def _counts(self, clinics: Iterable[str] | None) -> list[tuple[str, str, int]]:
        with self.datastore.transaction(commit=False) as c:
            if clinics is None:
                c.execute(self._sql("SELECT key, metric, n FROM {counts} WHERE n != 0"))
            else:
                c.execute(
                    self._sql(
                        "SELECT key, metric, n FROM {counts} WHERE n != 0 "
                        "AND clinic_id = ANY(%s)"
                    ),
                    (list(clinics),),
                )
            return [(r["key"], r["metric"], int(r["n"])) for r in c.fetchall()]
