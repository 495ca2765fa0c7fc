"""Connections for the small stores beside the events: API keys and the access log."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from time import monotonic, sleep
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from psycopg_pool.base import AttemptWithBackoff


def private_file(path: str | os.PathLike[str]) -> None:
    """Create a database file readable by its owner only, unless it exists.

    SQLite creates a missing file with the umask's permissions (0644: anyone on
    the machine could read the records) and gives its -wal and -shm files the
    permissions of the database file; so the file is made here first, 0600.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


@contextmanager
def sqlite_cursor(path: str) -> Iterator[Any]:
    """A cursor in a transaction that commits when the block ends; one file handle."""
    private_file(path)
    db = sqlite3.connect(path, timeout=10)
    try:
        with db:
            yield db.cursor()
    finally:
        db.close()


class _SteadyAttempt(AttemptWithBackoff):
    """Reconnect every half second, not with psycopg_pool's doubling delays.

    After a ten-second outage the doubling has reached 8-16 s, so the first
    requests after the database is back would still time out waiting.
    """

    INITIAL_DELAY = 0.5
    DELAY_JITTER = 0.2
    DELAY_BACKOFF = 1.0


def _add_connection(
    pool: Any, attempt: AttemptWithBackoff | None, growing: bool = False
) -> None:
    steady = attempt or _SteadyAttempt(timeout=pool.reconnect_timeout)
    ConnectionPool._add_connection(pool, steady, growing)


CHECK_AFTER_IDLE_SECONDS = 1.0
"""A connection back in the pool for longer than this is checked before use (D93)."""


def _return_connection(pool: Any, conn: Any, from_getconn: bool) -> None:
    if not from_getconn:  # from_getconn: it has just failed its check
        conn._ipt_returned_at = monotonic()
    ConnectionPool._return_connection(pool, conn, from_getconn)


def _recently_returned(conn: Any) -> bool:
    returned_at: float | None = getattr(conn, "_ipt_returned_at", None)
    return (
        returned_at is not None and monotonic() - returned_at < CHECK_AFTER_IDLE_SECONDS
    )


def _getconn_with_check_loop(pool: Any, deadline: float) -> Any:
    while True:
        conn = pool._getconn_unchecked(deadline - monotonic())
        try:
            if not _recently_returned(conn):
                pool._check_connection(conn)
        except Exception:
            pool._putconn(conn, from_getconn=True)
        except BaseException:
            pool._putconn(conn, from_getconn=True)
            raise
        else:
            return conn
        pool.check()
        if monotonic() >= deadline:
            raise PoolTimeout()
        sleep(0.01)


STEADY_METHODS: dict[str, Any] = {
    "_add_connection": _add_connection,
    "_getconn_with_check_loop": _getconn_with_check_loop,
    "_return_connection": _return_connection,
}
"""Recover at once when the database is back, in any psycopg_pool pool class.

psycopg_pool meets the dead connections a database restart leaves one at a time,
sleeping 1 s, then 2 s... after each: with a 2 s pool timeout the first request
after a restart was a 503. With these, the first dead connection found sends every
idle one to be checked (each fails at once), and new connections are tried every
half second. A connection that was in use less than a second ago is not checked
again (D93): under load that check was a round trip on every checkout, and a
connection a restart killed in that second fails its statement, is discarded, and
the caller's short retry (storage/postgres.py) takes another. They replace three
private methods of psycopg-pool 3 (pinned).
"""


class SteadyPool(ConnectionPool):
    """psycopg_pool's pool, recovering at once after a database restart."""

    _add_connection = _add_connection
    _getconn_with_check_loop = _getconn_with_check_loop
    _return_connection = _return_connection


T = TypeVar("T")


class _DiedUncommitted(Exception):
    """The connection was dead, and nothing had been committed on it."""


def _attempt(
    pool: ConnectionPool, work: Callable[[Any], T], transaction: bool, again: bool
) -> T:
    committing = False
    with pool.connection() as conn:
        try:
            with conn.transaction() if transaction else nullcontext():
                with conn.cursor() as cursor:
                    result = work(cursor)
                committing = True  # leaving the block commits
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            if again and not committing and (conn.broken or conn.closed):
                raise _DiedUncommitted from error
            raise
    return result


def once_more_if_dead(
    pool: ConnectionPool, work: Callable[[Any], T], *, transaction: bool = True
) -> T:
    """`work(cursor)` on a pooled connection; if that one was dead, once more (D97).

    A database restart kills every pooled connection, and the pool can still hand
    one out. Only a failure before the commit is tried again, on a connection the
    pool has just checked: nothing was written. Without `transaction` (autocommit)
    each statement commits itself, so `work` must only read.
    """
    try:
        return _attempt(pool, work, transaction, again=True)
    except _DiedUncommitted:
        pool.check()  # drops every idle connection the restart killed
    return _attempt(pool, work, transaction, again=False)


def small_pool(conninfo: str) -> ConnectionPool:
    """A pool of a few autocommit connections that fails fast when the database goes."""
    return SteadyPool(
        conninfo,
        min_size=1,
        max_size=4,
        open=True,
        timeout=2,
        check=ConnectionPool.check_connection,  # drop connections a restart killed
        kwargs={"autocommit": True},
    )
