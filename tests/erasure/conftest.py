"""An API with a key ring, a checkpoint key and in-process read models, over each
back end, and ways to look at everything it stored behind its back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from pydantic import SecretStr

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings, sqlite_path
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import Withdraw
from ipt_workflow.domain.courses import Course
from tests.support.api import Api, make_api
from tests.support.drivers import OverHttp

CHECKPOINT_KEY = "erasure-tests-checkpoint-key-0123456789abcdef"
RING = (
    "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=,"
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)
"""Two ring keys, newest first, fixed (the retention command runs in a process of
its own): whatever either can decrypt, the tests try."""
CLIENT_REF = "ZQ-ERASE-ME-4417"
NOTE = "ZQ-NOTE-SECRET-9921 the client's sister"
COURSE = Course()


def erasure_settings(url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "rate_limit_per_second": 0,
        "cipher_key": SecretStr(RING),
        "checkpoint_key": SecretStr(CHECKPOINT_KEY),
        "checkpoint_every_events": 10**9,
        "checkpoint_every_minutes": 0,
        "run_projections": True,
        **extra,
    }
    return Settings(**values)


@pytest.fixture
def erasure_api(database_url: str) -> Iterator[Api]:
    """The API on each back end."""
    yield from make_api(erasure_settings(database_url))


@pytest.fixture
def sqlite_erasure_api(tmp_path: Path) -> Iterator[Api]:
    """The API on SQLite only, for tests whose subject is not storage."""
    yield from make_api(erasure_settings(f"sqlite:///{tmp_path / 'erasure.db'}"))


def app_of(api: Api) -> CaseApplication:
    cases: CaseApplication = api.client.app.state.services.cases  # type: ignore[attr-defined]
    return cases


def settings_of(api: Api) -> Settings:
    found: Settings = api.client.app.state.services.settings  # type: ignore[attr-defined]
    return found


def withdrawn_case(api: Api, client_ref: str = CLIENT_REF) -> str:
    """A case in the middle phase, then withdrawn with a note: its events hold the
    client_ref, an inventory and the note."""
    http = OverHttp(api.post)
    case_id = http.open(COURSE, client_ref, "t-7")
    http.run(case_id, *COURSE.commands(Phase.middle))
    http.run(case_id, Withdraw.parse(reason="other", note=NOTE))
    return case_id


def erase(api: Api, case_id: str, basis: str = "data_subject_request", **h: str) -> Any:
    return api.post(
        f"/cases/{case_id}/erasure",
        {"basis": basis, "reason": "DSR-2026-0042"},
        "admin",
        **h,
    )


def decrypted_payloads(settings: Settings) -> list[str]:
    """Every stored event and snapshot, decrypted by a fresh application holding
    every key of the ring: what anyone with the keys could still read."""
    app = build_application(settings)
    try:
        found = []
        for row in raw_event_rows(settings.database_url):
            event = app.mapper.to_domain_event(row)
            found.append(f"{type(event).__name__} {vars(event)!r}")
        return found
    finally:
        app.close()


def raw_event_rows(url: str) -> list[StoredEvent]:
    """The stored events and snapshots, read behind the service's back."""
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url)) as db:
            rows = [
                *db.execute(
                    "SELECT originator_id, originator_version, topic, state "
                    "FROM stored_events"
                ),
                *db.execute(
                    "SELECT originator_id, originator_version, topic, state "
                    "FROM stored_snapshots"
                ),
            ]
        return [StoredEvent(r[0], r[1], r[2], bytes(r[3])) for r in rows]
    with psycopg.connect(url) as db:
        rows = [
            *db.execute(
                "SELECT originator_id, originator_version, topic, state "
                "FROM cases_events"
            ).fetchall(),
            *db.execute(
                "SELECT originator_id, originator_version, topic, state "
                "FROM cases_snapshots"
            ).fetchall(),
        ]
    return [StoredEvent(r[0], r[1], r[2], bytes(r[3])) for r in rows]


def raw_bytes(url: str) -> bytes:
    """Every byte the service stored: SQLite files (events, read models, access log)
    or every PostgreSQL table."""
    if url.startswith("sqlite"):
        folder = Path(sqlite_path(url)).parent
        return b"".join(
            p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
        )
    rows: list[Any] = []
    with psycopg.connect(url) as db:
        tables = [
            r[0]
            for r in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        for table in tables:
            rows += db.execute(f'SELECT * FROM "{table}"').fetchall()
    return repr(rows).encode()
