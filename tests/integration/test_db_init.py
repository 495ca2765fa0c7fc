"""`ipt-workflow db init` creates the tables, as a real process, on both back ends."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg

from ipt_workflow.composition.settings import sqlite_path

CLI = [sys.executable, "-m", "ipt_workflow.cli.main"]


def tables(url: str) -> set[str]:
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url)) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            return {r[0] for r in rows}
    with psycopg.connect(url) as pg:
        found = pg.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        return {r[0] for r in found.fetchall()}


def test_db_init_creates_the_event_snapshot_and_chain_tables(database_url: str) -> None:
    env = {**os.environ, "IPT_DATABASE_URL": database_url}

    done = subprocess.run([*CLI, "db", "init"], env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    expected = (
        {"stored_events", "stored_snapshots", "event_hashes"}
        if database_url.startswith("sqlite")
        else {"cases_events", "cases_snapshots", "cases_events_hashes"}
    )
    assert expected <= tables(database_url)


def test_db_init_creates_the_sqlite_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new/folder/ipt.db"
    env = {**os.environ, "IPT_DATABASE_URL": url}

    done = subprocess.run([*CLI, "db", "init"], env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new" / "folder" / "ipt.db").exists()


def test_a_malformed_database_url_is_refused_with_a_clear_message() -> None:
    env = {**os.environ, "IPT_DATABASE_URL": "mysql://somewhere/db"}

    done = subprocess.run([*CLI, "db", "init"], env=env, capture_output=True, text=True)

    assert done.returncode == 2
    assert "IPT_DATABASE_URL must start sqlite:/// or postgresql://" in done.stderr
    assert "Traceback" not in done.stderr
