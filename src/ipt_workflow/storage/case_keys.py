"""Each case's data key, stored wrapped by the key ring, in the events' database.

A case opened since per-case keys exist has a random AES-256 key of its own; every
payload about the case (its events, its snapshots, the client index's events that
name it) is encrypted under it. Erasing the case deletes the key's row in the same
transaction as the `CaseErased` receipt, so afterwards nothing can decrypt them
(crypto-shredding). The recorders call `write_case_keys` inside their insert.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from uuid import UUID

from ipt_workflow.storage.connections import small_pool, sqlite_cursor

TABLE = "case_data_keys"
CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "case_id TEXT PRIMARY KEY, wrapped_key {blob} NOT NULL, created_at TEXT NOT NULL)"
)


class CaseKeyStore(ABC):
    """The wrapped data keys, by case id (the same SQL on both back ends)."""

    placeholder = "?"

    @abstractmethod
    def _cursor(self) -> AbstractContextManager[Any]:
        """A cursor in a transaction that commits when the block ends."""

    def _sql(self, text: str) -> str:
        return text.replace("?", self.placeholder)

    def wrapped(self, case_id: UUID) -> bytes | None:
        """The case's wrapped key; None if it never had one or it was destroyed."""
        with self._cursor() as c:
            c.execute(
                self._sql(f"SELECT wrapped_key FROM {TABLE} WHERE case_id = ?"),
                (case_id.hex,),
            )
            row = c.fetchone()
        return None if row is None else bytes(row[0])

    def scrub(self) -> None:
        """After keys were destroyed: leave no copy of them in the database's files
        where this store can reach (see SQLiteCaseKeyStore)."""
        return

    def page(self, after: str, limit: int) -> list[tuple[str, bytes]]:
        """(case id hex, wrapped key) of the keys after `after`, in case id order."""
        with self._cursor() as c:
            c.execute(
                self._sql(
                    f"SELECT case_id, wrapped_key FROM {TABLE} WHERE case_id > ? "
                    "ORDER BY case_id LIMIT ?"
                ),
                (after, limit),
            )
            return [(str(r[0]), bytes(r[1])) for r in c.fetchall()]

    def replace(self, rewrapped: Sequence[tuple[str, bytes, bytes]]) -> int:
        """Store each (case id hex, old wrapped, new wrapped) in one transaction, if
        the row still holds the old bytes: a key destroyed meanwhile stays destroyed.
        How many were replaced."""
        done = 0
        with self._cursor() as c:
            if self.placeholder == "?":  # SQLite: zero the old bytes (then scrub)
                c.execute("PRAGMA secure_delete = ON")
            for case_id, old, new in rewrapped:
                c.execute(
                    self._sql(
                        f"UPDATE {TABLE} SET wrapped_key = ? "
                        "WHERE case_id = ? AND wrapped_key = ?"
                    ),
                    (new, case_id, old),
                )
                done += int(c.rowcount)
        return done

    def count(self) -> int:
        with self._cursor() as c:
            c.execute(f"SELECT count(*) FROM {TABLE}")
            return int(c.fetchone()[0])

    def close(self) -> None:
        return


class SQLiteCaseKeyStore(CaseKeyStore):
    """Keys in the events' SQLite file, so one transaction covers both."""

    def __init__(self, path: str, *, create_table: bool = True) -> None:
        self.path = path
        if create_table:
            with self._cursor() as c:
                c.execute(CREATE.format(blob="BLOB"))

    def _cursor(self) -> AbstractContextManager[Any]:
        return sqlite_cursor(self.path)

    def scrub(self) -> None:
        """Copy the write-ahead log into the file and empty it: its frames still
        hold the pages as they were before the key's row was zeroed."""
        db = sqlite3.connect(self.path, timeout=10)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()


class PostgresCaseKeyStore(CaseKeyStore):
    """Keys in the events' PostgreSQL database."""

    placeholder = "%s"

    def __init__(self, conninfo: str, *, create_table: bool = True) -> None:
        self.pool = small_pool(conninfo)
        if create_table:  # else `db init` or `serve` made it: workers run no DDL (D90)
            with self._cursor() as c:
                c.execute(CREATE.format(blob="bytea"))

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self.pool.connection() as conn, conn.cursor() as c:
            yield c

    def close(self) -> None:
        self.pool.close()


def open_case_key_store(url: str, *, create_table: bool = True) -> CaseKeyStore:
    """The store of a database URL: `sqlite:///path` or `postgresql://...`."""
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite://").removeprefix("/")
        return SQLiteCaseKeyStore(path, create_table=create_table)
    return PostgresCaseKeyStore(url, create_table=create_table)


def write_case_keys(
    c: Any,
    mark: str,
    kwargs: Mapping[str, Any],
    *,
    snapshots_table: str,
    idempotency_table: str,
    now: str,
    unprepared: bool = False,
) -> None:
    """Inside an insert's transaction: store new cases' keys, destroy erased ones'.

    Destroying a key also drops the case's snapshots (encrypted under it, and never
    part of the chain) and its idempotency records (digests of requests that held
    client data). `unprepared`: PostgreSQL statements queued behind an insert that
    may fail are never prepared (D96).
    """
    opts: dict[str, Any] = {"prepare": False} if unprepared else {}
    new: Mapping[UUID, bytes] = kwargs.get("case_keys") or {}
    for case_id, wrapped in new.items():
        c.execute(
            f"INSERT INTO {TABLE} (case_id, wrapped_key, created_at) "
            f"VALUES ({mark}, {mark}, {mark})",
            (case_id.hex, wrapped, now),
            **opts,
        )
    shredded: Sequence[UUID] = kwargs.get("shred_cases") or ()
    if shredded and mark == "?":
        # SQLite keeps deleted rows in free pages; this zeroes them instead.
        c.execute("PRAGMA secure_delete = ON")
    for case_id in shredded:
        c.execute(f"DELETE FROM {TABLE} WHERE case_id = {mark}", (case_id.hex,), **opts)
        c.execute(
            f"DELETE FROM {snapshots_table} WHERE originator_id = {mark}",
            (_id(case_id, mark),),
            **opts,
        )
        c.execute(
            f"DELETE FROM {idempotency_table} WHERE case_id = {mark}",
            (_id(case_id, mark),),
            **opts,
        )


def _id(case_id: UUID, mark: str) -> Any:
    """SQLite stores ids as hex text; PostgreSQL as uuid."""
    return case_id.hex if mark == "?" else case_id
