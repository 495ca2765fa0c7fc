"""API keys: only a SHA-256 hash of each token is stored, beside its role and clinics.

Tokens carry 256 bits of randomness, so a plain hash is enough; a slow password
hash would only slow every request down.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

from ipt_workflow.storage.connections import (
    once_more_if_dead,
    small_pool,
    sqlite_cursor,
)

T = TypeVar("T")

Role = Literal["clinician", "auditor", "ops", "admin"]
ROLES: tuple[Role, ...] = ("clinician", "auditor", "ops", "admin")
ALL_CLINICS = "*"
TOKEN_FORMAT = re.compile(r"ipt_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")
"""The shape of every token `new_token` issues: nothing else is ever looked up."""


@dataclass(frozen=True)
class ApiKey:
    """One key as stored: never the token itself."""

    key_id: str
    role: Role
    clinics: tuple[str, ...]
    actor: str
    created_at: str
    revoked_at: str | None = None

    @property
    def all_clinics(self) -> bool:
        return ALL_CLINICS in self.clinics


DEV_CLINIC = "demo-clinic"
DEV_KEYS: dict[str, ApiKey] = {
    f"dev-{role}": ApiKey(f"dev-{role}", role, (DEV_CLINIC,), f"dev-{role}", "")
    for role in ROLES
}
"""The fixed tokens of `--dev`, each its own key record."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A new (key id, token); the token is shown once and never stored."""
    key_id = secrets.token_hex(4)
    return key_id, f"ipt_{key_id}_{secrets.token_urlsafe(32)}"


class KeyStore(Protocol):
    def add(self, key: ApiKey, token: str) -> None: ...
    def find(self, token: str) -> ApiKey | None: ...
    def list(self) -> list[ApiKey]: ...
    def revoke(self, key_id: str) -> bool: ...
    def any_active(self) -> bool: ...
    def close(self) -> None: ...


_COLUMNS = "key_id, role, clinics, actor, created_at, revoked_at"


def _row(row: Any) -> ApiKey:
    return ApiKey(
        key_id=row[0],
        role=row[1],
        clinics=tuple(json.loads(row[2])),
        actor=row[3],
        created_at=row[4],
        revoked_at=row[5],
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _SqlKeyStore(ABC):
    """The same SQL on both back ends; only the placeholder and connection differ."""

    placeholder = "?"
    create = (
        "CREATE TABLE IF NOT EXISTS api_keys ("
        "key_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, "
        "clinics TEXT NOT NULL, actor TEXT NOT NULL, created_at TEXT NOT NULL, "
        "revoked_at TEXT)"
    )

    @abstractmethod
    def _cursor(self) -> AbstractContextManager[Any]:
        """A cursor in a transaction that commits when the block ends."""

    def _sql(self, text: str) -> str:
        return text.replace("?", self.placeholder)

    def add(self, key: ApiKey, token: str) -> None:
        with self._cursor() as c:
            c.execute(
                self._sql(
                    f"INSERT INTO api_keys (token_hash, {_COLUMNS}) "
                    "VALUES (?,?,?,?,?,?,?)"
                ),
                (
                    token_hash(token),
                    key.key_id,
                    key.role,
                    json.dumps(list(key.clinics)),
                    key.actor,
                    key.created_at,
                    key.revoked_at,
                ),
            )

    def _read(self, work: Callable[[Any], T]) -> T:
        """`work(cursor)` that only reads."""
        with self._cursor() as c:
            return work(c)

    def find(self, token: str) -> ApiKey | None:
        def read(c: Any) -> Any:
            c.execute(
                self._sql(
                    f"SELECT {_COLUMNS} FROM api_keys "
                    "WHERE token_hash = ? AND revoked_at IS NULL"
                ),
                (token_hash(token),),
            )
            return c.fetchone()

        row = self._read(read)
        return None if row is None else _row(row)

    def list(self) -> list[ApiKey]:
        def read(c: Any) -> list[ApiKey]:
            c.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id")
            return [_row(r) for r in c.fetchall()]

        return self._read(read)

    def revoke(self, key_id: str) -> bool:
        with self._cursor() as c:
            c.execute(
                self._sql(
                    "UPDATE api_keys SET revoked_at = ? "
                    "WHERE key_id = ? AND revoked_at IS NULL"
                ),
                (_now(), key_id),
            )
            return bool(c.rowcount)

    def any_active(self) -> bool:
        def read(c: Any) -> bool:
            c.execute("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1")
            return c.fetchone() is not None

        return self._read(read)

    def close(self) -> None:
        """Release connections; SQLite opens one per call and holds none."""
        return


class SQLiteKeyStore(_SqlKeyStore):
    """Keys in the same SQLite file as the events."""

    def __init__(self, path: str) -> None:
        self.path = path
        with self._cursor() as c:
            c.execute(self.create)

    def _cursor(self) -> AbstractContextManager[Any]:
        return sqlite_cursor(self.path)


class PostgresKeyStore(_SqlKeyStore):
    """Keys in the same PostgreSQL database as the events."""

    placeholder = "%s"

    def __init__(self, conninfo: str, *, create_tables: bool = True) -> None:
        self.pool = small_pool(conninfo)
        if create_tables:
            with self._cursor() as c:
                c.execute(self.create)

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self.pool.connection() as conn, conn.cursor() as c:
            yield c

    def _read(self, work: Callable[[Any], T]) -> T:
        return once_more_if_dead(self.pool, work, transaction=False)

    def close(self) -> None:
        self.pool.close()


def make_key(role: Role, clinics: list[str], actor: str) -> tuple[ApiKey, str]:
    """A new key and its token."""
    key_id, token = new_token()
    key = ApiKey(key_id, role, tuple(clinics), actor, _now())
    return key, token
