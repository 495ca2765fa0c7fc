"""Connections for the small stores beside the events: API keys and the access log."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg_pool import ConnectionPool


@contextmanager
def sqlite_cursor(path: str) -> Iterator[Any]:
    """A cursor in a transaction that commits when the block ends; one file handle."""
    db = sqlite3.connect(path, timeout=10)
    try:
        with db:
            yield db.cursor()
    finally:
        db.close()


def small_pool(conninfo: str) -> ConnectionPool:
    """A pool of a few autocommit connections that fails fast when the database goes."""
    return ConnectionPool(
        conninfo,
        min_size=1,
        max_size=4,
        open=True,
        timeout=2,
        check=ConnectionPool.check_connection,  # drop connections a restart killed
        kwargs={"autocommit": True},
    )
