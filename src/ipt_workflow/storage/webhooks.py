"""Webhook subscriptions, their dispatch state and the delivery log.

A subscription row holds the dispatcher's state beside what the admin asked for:
`position` (every event of the clinic up to it has been handled: acknowledged by
the receiver, or not of a subscribed type), the attempts made on the event after
it, and when the next one is due. Each attempt's outcome (a row of the delivery
log) and the state it leads to are written in one transaction, so a dispatcher
that dies between them repeats the attempt rather than skipping the event.

Every change of a subscription bumps its `revision`; the dispatcher writes an
outcome only if the revision it read is still current, so a redelivery or a
deletion that happens during an attempt is never overwritten.

On SQLite the tables live in a file of their own beside the events' file (a write
locks the whole file, and the dispatcher writes after every attempt); on
PostgreSQL they are tables of the events' database. Secrets are encrypted with the
cipher of the event payloads when one is configured.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import psycopg
from psycopg_pool import ConnectionPool

Status = Literal["active", "failing"]
PLAIN = b"\x00"
"""The first byte of a secret stored without a cipher (the key ring's is 0x01)."""


class SecretCipher(Protocol):
    def encrypt(self, plaintext: bytes) -> bytes: ...
    def decrypt(self, ciphertext: bytes) -> bytes: ...


@dataclass(frozen=True)
class Subscription:
    """A subscription as stored, with the dispatcher's state."""

    id: str
    clinic_id: str
    url: str
    event_types: tuple[str, ...]
    description: str | None
    secret: str
    created_at: float
    created_by: str
    revision: int = 0
    position: int = 0
    """Every event of the clinic up to this log position has been handled."""
    attempts: int = 0
    """Failed attempts on the first event after `position`."""
    next_attempt_at: float | None = None
    first_failure_at: float | None = None
    failing_since: float | None = None
    status: Status = "active"
    deleted_at: float | None = None


@dataclass(frozen=True)
class DispatchState:
    """What one attempt (or a skip past unsubscribed events) leaves behind."""

    position: int
    attempts: int = 0
    next_attempt_at: float | None = None
    first_failure_at: float | None = None
    failing_since: float | None = None
    status: Status = "active"


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver one event to one subscription."""

    subscription_id: str
    event_id: str
    position: int
    attempt: int
    at: float
    outcome: str
    """`delivered`, `http_error`, `timeout`, `network_error` or `refused`."""
    status_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None
    next_attempt_at: float | None = None
    id: int = 0


@dataclass(frozen=True)
class Claim:
    """An Idempotency-Key of a write: its scope (the clinic) and request digest."""

    scope: str
    key: str
    digest: str


@dataclass(frozen=True)
class Written:
    """The answer a write gives: the subscription, the status, and whether it is
    the first answer repeated for a retried request."""

    subscription_id: str
    status: int
    replayed: bool = False


class SubscriptionNotFoundError(Exception):
    """Raised when a subscription does not exist (or was deleted)."""


class KeyReusedError(Exception):
    """Raised when an Idempotency-Key comes back with another request."""


PRUNED_TABLES = ("webhook_deliveries", "webhook_idempotency")
"""The tables `prune` deletes old rows from."""
SUB_COLUMNS = (
    "id, clinic_id, url, event_types, description, secret, created_at, created_by, "
    "revision, position, attempts, next_attempt_at, first_failure_at, "
    "failing_since, status, deleted_at"
)
DELIVERY_COLUMNS = (
    "id, subscription_id, event_id, position, attempt, at, outcome, status_code, "
    "error, duration_ms, next_attempt_at"
)


class WebhookStore(Protocol):
    def answered(self, claim: Claim) -> Written | None: ...
    def create(self, sub: Subscription, claim: Claim | None) -> Written: ...
    def delete(self, sub_id: str, claim: Claim | None) -> Written: ...
    def redeliver(
        self, sub_id: str, from_position: int, claim: Claim | None
    ) -> Written: ...
    def get(self, sub_id: str, *, deleted: bool = False) -> Subscription | None: ...
    def page(
        self, clinics: Collection[str] | None, after: str | None, limit: int
    ) -> list[Subscription]: ...
    def count(self, clinic_id: str) -> int: ...
    def live(self) -> list[Subscription]: ...
    def deliveries(self, sub_id: str, after: int, limit: int) -> list[Delivery]: ...
    def record(
        self, sub: Subscription, state: DispatchState, delivery: Delivery | None
    ) -> bool: ...
    def beat(self, holder: str) -> None: ...
    def last_beat(self) -> tuple[str, float] | None: ...
    def last_delivered(self, sub_id: str) -> float | None: ...
    def prune(self, before: float) -> int: ...
    def close(self) -> None: ...


class _SqlWebhookStore(ABC):
    """The same SQL on both back ends; placeholders, types and locking differ."""

    placeholder = "?"
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
    blob = "BLOB"
    real = "REAL"
    bigint = "INTEGER"

    def __init__(self, cipher: SecretCipher | None) -> None:
        self.cipher = cipher

    @abstractmethod
    def _transaction(self) -> Any:
        """A cursor in a write transaction that commits when the block ends."""

    @abstractmethod
    def _read(self) -> Any:
        """A cursor for reading."""

    def _sql(self, text: str) -> str:
        return text.replace("?", self.placeholder)

    def _create(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS webhook_subscriptions ("
            f"seq {self.serial}, id TEXT NOT NULL UNIQUE, clinic_id TEXT NOT NULL, "
            "url TEXT NOT NULL, event_types TEXT NOT NULL, description TEXT, "
            f"secret {self.blob} NOT NULL, created_at {self.real} NOT NULL, "
            "created_by TEXT NOT NULL, revision INTEGER NOT NULL DEFAULT 0, "
            f"position {self.bigint} NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
            f"next_attempt_at {self.real}, first_failure_at {self.real}, "
            f"failing_since {self.real}, status TEXT NOT NULL DEFAULT 'active', "
            f"deleted_at {self.real})",
            "CREATE INDEX IF NOT EXISTS webhook_subscriptions_by_clinic "
            "ON webhook_subscriptions (clinic_id, seq)",
            "CREATE TABLE IF NOT EXISTS webhook_deliveries ("
            f"id {self.serial}, subscription_id TEXT NOT NULL, "
            f"event_id TEXT NOT NULL, position {self.bigint} NOT NULL, "
            f"attempt INTEGER NOT NULL, at {self.real} NOT NULL, "
            "outcome TEXT NOT NULL, status_code INTEGER, error TEXT, "
            f"duration_ms INTEGER, next_attempt_at {self.real})",
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_subscription "
            "ON webhook_deliveries (subscription_id, id)",
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_time "
            "ON webhook_deliveries (at)",
            "CREATE TABLE IF NOT EXISTS webhook_idempotency ("
            "scope TEXT NOT NULL, key TEXT NOT NULL, digest TEXT NOT NULL, "
            "status INTEGER NOT NULL, subscription_id TEXT NOT NULL, "
            f"created_at {self.real} NOT NULL, PRIMARY KEY (scope, key))",
            "CREATE TABLE IF NOT EXISTS webhook_dispatcher ("
            f"name TEXT PRIMARY KEY, holder TEXT NOT NULL, beat_at {self.real} "
            "NOT NULL)",
        ]

    # --- secrets -------------------------------------------------------------------

    def _seal(self, secret: str) -> bytes:
        raw = secret.encode()
        return PLAIN + raw if self.cipher is None else self.cipher.encrypt(raw)

    def _open(self, stored: bytes) -> str:
        stored = bytes(stored)
        if stored[:1] == PLAIN:
            return stored[1:].decode()
        if self.cipher is None:
            raise ValueError("a webhook secret is encrypted and no cipher key is set")
        return self.cipher.decrypt(stored).decode()

    def _row(self, row: Sequence[Any]) -> Subscription:
        return Subscription(
            id=row[0],
            clinic_id=row[1],
            url=row[2],
            event_types=tuple(json.loads(row[3])),
            description=row[4],
            secret=self._open(row[5]),
            created_at=float(row[6]),
            created_by=row[7],
            revision=int(row[8]),
            position=int(row[9]),
            attempts=int(row[10]),
            next_attempt_at=row[11],
            first_failure_at=row[12],
            failing_since=row[13],
            status=row[14],
            deleted_at=row[15],
        )

    # --- idempotency -----------------------------------------------------------------

    def _replay(self, c: Any, claim: Claim | None) -> Written | None:
        if claim is None:
            return None
        c.execute(
            self._sql(
                "SELECT digest, status, subscription_id FROM webhook_idempotency "
                "WHERE scope = ? AND key = ?"
            ),
            (claim.scope, claim.key),
        )
        row = c.fetchone()
        if row is None:
            return None
        if row[0] != claim.digest:
            raise KeyReusedError(claim.key)
        return Written(row[2], int(row[1]), replayed=True)

    def _remember(self, c: Any, claim: Claim | None, written: Written) -> Written:
        if claim is not None:
            c.execute(
                self._sql(
                    "INSERT INTO webhook_idempotency "
                    "(scope, key, digest, status, subscription_id, created_at) "
                    "VALUES (?,?,?,?,?,?)"
                ),
                (
                    claim.scope,
                    claim.key,
                    claim.digest,
                    written.status,
                    written.subscription_id,
                    time.time(),
                ),
            )
        return written

    @abstractmethod
    def _retrying(self, claim: Claim | None, write: Any) -> Written:
        """Run `write(cursor)` in a transaction; a racing twin of a keyed write
        gets the first answer."""

    def answered(self, claim: Claim) -> Written | None:
        """The first answer to a request with this key, if there was one."""
        with self._read() as c:
            return self._replay(c, claim)

    # --- the API's writes ------------------------------------------------------------

    def create(self, sub: Subscription, claim: Claim | None) -> Written:
        """Store a new subscription (or answer a retried request as the first time)."""

        def write(c: Any) -> Written:
            if (done := self._replay(c, claim)) is not None:
                return done
            c.execute(
                self._sql(
                    f"INSERT INTO webhook_subscriptions ({SUB_COLUMNS}) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                ),
                (
                    sub.id,
                    sub.clinic_id,
                    sub.url,
                    json.dumps(list(sub.event_types)),
                    sub.description,
                    self._seal(sub.secret),
                    sub.created_at,
                    sub.created_by,
                    sub.revision,
                    sub.position,
                    sub.attempts,
                    sub.next_attempt_at,
                    sub.first_failure_at,
                    sub.failing_since,
                    sub.status,
                    sub.deleted_at,
                ),
            )
            return self._remember(c, claim, Written(sub.id, 201))

        return self._retrying(claim, write)

    def delete(self, sub_id: str, claim: Claim | None) -> Written:
        """Mark a subscription deleted: the dispatcher stops at once."""

        def write(c: Any) -> Written:
            if (done := self._replay(c, claim)) is not None:
                return done
            c.execute(
                self._sql(
                    "UPDATE webhook_subscriptions SET deleted_at = ?, "
                    "revision = revision + 1 WHERE id = ? AND deleted_at IS NULL"
                ),
                (time.time(), sub_id),
            )
            if c.rowcount != 1:
                raise SubscriptionNotFoundError(sub_id)
            return self._remember(c, claim, Written(sub_id, 204))

        return self._retrying(claim, write)

    def redeliver(
        self, sub_id: str, from_position: int, claim: Claim | None
    ) -> Written:
        """Deliver again every event from `from_position` on; never skip one not yet
        delivered. The backoff starts afresh, and a failing subscription is active."""

        def write(c: Any) -> Written:
            if (done := self._replay(c, claim)) is not None:
                return done
            c.execute(
                self._sql(
                    "UPDATE webhook_subscriptions SET "
                    "position = CASE WHEN position < ? THEN position ELSE ? END, "
                    "attempts = 0, next_attempt_at = NULL, first_failure_at = NULL, "
                    "failing_since = NULL, status = 'active', "
                    "revision = revision + 1 WHERE id = ? AND deleted_at IS NULL"
                ),
                (from_position - 1, max(from_position - 1, 0), sub_id),
            )
            if c.rowcount != 1:
                raise SubscriptionNotFoundError(sub_id)
            return self._remember(c, claim, Written(sub_id, 202))

        return self._retrying(claim, write)

    # --- reads -----------------------------------------------------------------------

    def get(self, sub_id: str, *, deleted: bool = False) -> Subscription | None:
        """A subscription; a deleted one only if `deleted`."""
        with self._read() as c:
            c.execute(
                self._sql(
                    f"SELECT {SUB_COLUMNS} FROM webhook_subscriptions WHERE id = ?"
                ),
                (sub_id,),
            )
            row = c.fetchone()
        if row is None:
            return None
        found = self._row(row)
        return found if deleted or found.deleted_at is None else None

    def page(
        self, clinics: Collection[str] | None, after: str | None, limit: int
    ) -> list[Subscription]:
        """Live subscriptions of these clinics (None: all), oldest first."""
        if clinics is not None and not clinics:
            return []
        where = ["deleted_at IS NULL"]
        params: list[Any] = []
        if clinics is not None:
            where.append(f"clinic_id IN ({','.join('?' * len(clinics))})")
            params += sorted(clinics)
        if after is not None:
            where.append(
                "seq > COALESCE("
                "(SELECT seq FROM webhook_subscriptions WHERE id = ?), 0)"
            )
            params.append(after)
        params.append(limit)
        with self._read() as c:
            c.execute(
                self._sql(
                    f"SELECT {SUB_COLUMNS} FROM webhook_subscriptions "
                    f"WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
                ),
                params,
            )
            return [self._row(r) for r in c.fetchall()]

    def count(self, clinic_id: str) -> int:
        """Live subscriptions of a clinic."""
        with self._read() as c:
            c.execute(
                self._sql(
                    "SELECT COUNT(*) FROM webhook_subscriptions "
                    "WHERE clinic_id = ? AND deleted_at IS NULL"
                ),
                (clinic_id,),
            )
            return int(c.fetchone()[0])

    def live(self) -> list[Subscription]:
        """Every subscription not deleted, for the dispatcher."""
        with self._read() as c:
            c.execute(
                f"SELECT {SUB_COLUMNS} FROM webhook_subscriptions "
                "WHERE deleted_at IS NULL ORDER BY seq"
            )
            return [self._row(r) for r in c.fetchall()]

    def deliveries(self, sub_id: str, after: int, limit: int) -> list[Delivery]:
        """A subscription's attempts after an id, oldest first."""
        with self._read() as c:
            c.execute(
                self._sql(
                    f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries "
                    "WHERE subscription_id = ? AND id > ? ORDER BY id LIMIT ?"
                ),
                (sub_id, after, limit),
            )
            return [
                Delivery(
                    id=int(r[0]),
                    subscription_id=r[1],
                    event_id=r[2],
                    position=int(r[3]),
                    attempt=int(r[4]),
                    at=float(r[5]),
                    outcome=r[6],
                    status_code=r[7],
                    error=r[8],
                    duration_ms=r[9],
                    next_attempt_at=r[10],
                )
                for r in c.fetchall()
            ]

    # --- the dispatcher's writes ---------------------------------------------------

    def record(
        self, sub: Subscription, state: DispatchState, delivery: Delivery | None
    ) -> bool:
        """An attempt's outcome and the state it leads to, in one transaction.

        The state is written only if nobody changed the subscription since `sub`
        was read (its revision); the attempt is logged either way, since it
        happened. False when the state was not written.
        """
        with self._transaction() as c:
            c.execute(
                self._sql(
                    "UPDATE webhook_subscriptions SET position = ?, attempts = ?, "
                    "next_attempt_at = ?, first_failure_at = ?, failing_since = ?, "
                    "status = ?, revision = revision + 1 "
                    "WHERE id = ? AND revision = ? AND deleted_at IS NULL"
                ),
                (
                    state.position,
                    state.attempts,
                    state.next_attempt_at,
                    state.first_failure_at,
                    state.failing_since,
                    state.status,
                    sub.id,
                    sub.revision,
                ),
            )
            moved = bool(c.rowcount == 1)
            if delivery is not None:
                c.execute(
                    self._sql(
                        "INSERT INTO webhook_deliveries (subscription_id, event_id, "
                        "position, attempt, at, outcome, status_code, error, "
                        "duration_ms, next_attempt_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
                    ),
                    (
                        delivery.subscription_id,
                        delivery.event_id,
                        delivery.position,
                        delivery.attempt,
                        delivery.at,
                        delivery.outcome,
                        delivery.status_code,
                        delivery.error,
                        delivery.duration_ms,
                        delivery.next_attempt_at if moved else None,
                    ),
                )
        return moved

    def beat(self, holder: str) -> None:
        """The active dispatcher is alive (shown to ops)."""
        with self._transaction() as c:
            c.execute(
                self._sql(
                    "INSERT INTO webhook_dispatcher (name, holder, beat_at) "
                    "VALUES ('dispatcher', ?, ?) ON CONFLICT (name) DO UPDATE SET "
                    "holder = excluded.holder, beat_at = excluded.beat_at"
                ),
                (holder, time.time()),
            )

    def last_beat(self) -> tuple[str, float] | None:
        with self._read() as c:
            c.execute("SELECT holder, beat_at FROM webhook_dispatcher")
            row = c.fetchone()
        return None if row is None else (str(row[0]), float(row[1]))

    def last_delivered(self, sub_id: str) -> float | None:
        """When the subscription's last acknowledged delivery was (still logged)."""
        with self._read() as c:
            c.execute(
                self._sql(
                    "SELECT at FROM webhook_deliveries WHERE subscription_id = ? "
                    "AND outcome = 'delivered' ORDER BY id DESC LIMIT 1"
                ),
                (sub_id,),
            )
            row = c.fetchone()
        return None if row is None else float(row[0])

    def prune(self, before: float) -> int:
        """Forget attempts older than `before`, and idempotency keys too
        (PRUNED_TABLES)."""
        with self._transaction() as c:
            c.execute(
                self._sql("DELETE FROM webhook_deliveries WHERE at < ?"), (before,)
            )
            removed = int(c.rowcount)
            c.execute(
                self._sql("DELETE FROM webhook_idempotency WHERE created_at < ?"),
                (before,),
            )
        return removed

    def close(self) -> None:
        return


class SQLiteWebhookStore(_SqlWebhookStore):
    """Subscriptions and the delivery log in a SQLite file of their own."""

    def __init__(self, path: str, cipher: SecretCipher | None = None) -> None:
        super().__init__(cipher)
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._connect().execute("PRAGMA journal_mode=WAL")
        with self._transaction() as c:
            for statement in self._create():
                c.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection (one per thread: sqlite3 objects are not
        shared across threads)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                self.path, timeout=10, isolation_level=None, check_same_thread=False
            )
            # Durable against a crash of the process; a power cut can lose the
            # last positions written, which only repeats deliveries, never skips.
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
            with self._all_lock:
                self._all.append(db)
        return db

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        db = self._connect()
        c = db.cursor()
        c.execute("BEGIN IMMEDIATE")  # writers queue here, never deadlock later
        try:
            yield c
        except BaseException:
            db.rollback()
            raise
        db.commit()

    @contextmanager
    def _read(self) -> Iterator[Any]:
        yield self._connect().cursor()

    def close(self) -> None:
        with self._all_lock:
            for db in self._all:
                with suppress(sqlite3.Error):
                    db.close()
            self._all.clear()
        self._local = threading.local()

    def _retrying(self, _claim: Claim | None, write: Any) -> Written:
        with self._transaction() as c:  # BEGIN IMMEDIATE serialises twins
            result: Written = write(c)
            return result


class PostgresWebhookStore(_SqlWebhookStore):
    """Subscriptions and the delivery log in tables of the events' database."""

    placeholder = "%s"
    serial = "bigserial PRIMARY KEY"
    blob = "bytea"
    real = "double precision"
    bigint = "bigint"

    def __init__(
        self,
        conninfo: str,
        cipher: SecretCipher | None = None,
        max_size: int = 4,
        *,
        create_tables: bool = True,
    ) -> None:
        super().__init__(cipher)
        self.pool: ConnectionPool[Any] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max(2, max_size),
            open=True,
            timeout=5,
            check=ConnectionPool.check_connection,
            kwargs={"autocommit": True},
        )
        if not create_tables:  # `serve` made them; its workers run no DDL (D90)
            return
        with self._transaction() as c:
            # Processes starting together must not race on CREATE TABLE IF NOT EXISTS.
            c.execute("SELECT pg_advisory_xact_lock(hashtext('ipt_webhook_tables'))")
            for statement in self._create():
                c.execute(statement)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as c:
            yield c

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self.pool.connection() as conn, conn.cursor() as c:
            yield c

    def _retrying(self, claim: Claim | None, write: Any) -> Written:
        try:
            with self._transaction() as c:
                result: Written = write(c)
                return result
        except psycopg.errors.UniqueViolation:
            if claim is None:
                raise
        # A twin request with the same key committed first: its answer is ours.
        with self._transaction() as c:
            replayed = self._replay(c, claim)
        if replayed is None:  # pragma: no cover - the twin's row is committed
            raise RuntimeError("idempotency row vanished")
        return replayed

    def close(self) -> None:
        self.pool.close()


def advanced(sub: Subscription, state: DispatchState) -> Subscription:
    """The subscription as `record` left it (when it returned True)."""
    return replace(
        sub,
        revision=sub.revision + 1,
        position=state.position,
        attempts=state.attempts,
        next_attempt_at=state.next_attempt_at,
        first_failure_at=state.first_failure_at,
        failing_since=state.failing_since,
        status=state.status,
    )


# --- one active dispatcher per database ---------------------------------------


class DispatchLock(Protocol):
    """Held by the one dispatcher that delivers; others wait as standbys."""

    def acquire(self) -> bool:
        """Take the lock if free; True if this process holds it now."""
        ...

    def held(self) -> bool:
        """Still held (a lost database connection loses a PostgreSQL lock)."""
        ...

    def release(self) -> None: ...


class FileDispatchLock:
    """SQLite: an exclusive `flock` on a file beside the database (one machine).

    The kernel releases it when the process dies, however it dies.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


LOCK_KEY = 0x6970745F776831
"""The advisory lock's key: 'ipt_wh1'."""


class PostgresDispatchLock:
    """PostgreSQL: a session advisory lock on a connection of its own.

    The server releases it when that connection ends: the process died, or the
    database restarted (then `held` turns False and the dispatcher stops). A
    standby keeps its connection and asks again on it, without reconnecting.
    """

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._conn: psycopg.Connection[Any] | None = None
        self._holding = False

    def acquire(self) -> bool:
        if self.held():
            return True
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(
                    self.conninfo, autocommit=True, connect_timeout=5
                )
            row = self._conn.execute(
                "SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)
            ).fetchone()
        except psycopg.Error:
            self.release()
            raise
        self._holding = bool(row and row[0])
        return self._holding

    def held(self) -> bool:
        if not self._holding or self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            with suppress(psycopg.Error):
                if self._holding:
                    # Closing alone frees the lock only once the server's backend
                    # has exited, which a standby asking at once may not wait for.
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
                self._conn.close()
            self._conn = None
        self._holding = False
