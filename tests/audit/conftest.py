"""An API with a checkpoint key over each back end, and ways to reach behind it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from pydantic import SecretStr

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.composition.settings import Settings, sqlite_path
from ipt_workflow.domain.commands import (
    AcceptFollowUp,
    AgreeContract,
    Close,
    Command,
    Conclude,
    CorrectEntry,
    RecordMeasure,
    RecordMissedSession,
    RenegotiateContract,
    StartEnd,
    StartMiddle,
)
from ipt_workflow.domain.courses import Course
from ipt_workflow.storage.chain import GENESIS, event_hash
from tests.support.api import INTAKE_ON, Api, make_api
from tests.support.drivers import OverHttp, ThroughApplication, case_of

TODAY = date(2026, 11, 25)
"""The day of the commands given straight to the application."""
COURSE = Course(today=TODAY, intake_on=INTAKE_ON)
CHECKPOINT_KEY = "audit-tests-checkpoint-key-0123456789abcdef"
OTHER_KEY = "another-checkpoint-key-that-nobody-configured-42"


def audit_settings(url: str, **extra: Any) -> Settings:
    """Settings with a checkpoint key; the server's own checkpoints never fall due,
    so a test takes each checkpoint itself."""
    values: dict[str, Any] = {
        "database_url": url,
        "rate_limit_per_second": 0,
        "checkpoint_key": SecretStr(CHECKPOINT_KEY),
        "checkpoint_every_events": 10**9,
        "checkpoint_every_minutes": 0,
        **extra,
    }
    return Settings(**values)


@pytest.fixture
def audit_api(database_url: str) -> Iterator[Api]:
    """The API on each back end, with a checkpoint key."""
    yield from make_api(audit_settings(database_url))


@pytest.fixture
def sqlite_audit_api(tmp_path: Path) -> Iterator[Api]:
    """The API on SQLite only, for tests whose subject is not storage."""
    yield from make_api(audit_settings(f"sqlite:///{tmp_path / 'audit.db'}"))


def app_of(api: Api) -> CaseApplication:
    cases: CaseApplication = api.client.app.state.services.cases  # type: ignore[attr-defined]
    return cases


def url_of(api: Api) -> str:
    url: str = api.client.app.state.services.settings.database_url  # type: ignore[attr-defined]
    return url


def ok(api: Api, path: str, body: Any = None) -> dict[str, Any]:
    answer = api.post(path, body)
    assert answer.status_code in (200, 201), f"{path}: {answer.text}"
    found: dict[str, Any] = answer.json()
    return found


def through(api: Api, actor: str = "t-7") -> ThroughApplication:
    """The API's own application, given commands straight, on TODAY."""
    return ThroughApplication(app_of(api), actor=actor, today=TODAY)


def measure(score: int) -> RecordMeasure:
    """A phq9 of 2026-10-05."""
    return COURSE.measure(score, on=date(2026, 10, 5))


def add_measures(api: Api, case_id: str, n: int) -> None:
    """`n` measures straight through the application, scores 0, 1, 2..."""
    through(api).run(UUID(case_id), *(measure(i % 27) for i in range(n)))


def august(day: int) -> date:
    return date(2026, 8, day)


def full_course(api: Api, client_ref: str = "A-1042") -> tuple[str, list[str]]:
    """An adult case run to follow-up and closure, with a renegotiated contract, a
    voided session, a missed session and two instruments; returns the case id and
    the phase after each step that changed it."""
    c = COURSE
    commands: list[Command] = [
        c.inventory(),
        c.focus(),
        AgreeContract.parse(sessions=16, frequency="weekly"),
        c.measure(20, on=august(1)),
        c.measure(30, "bdi2", on=august(1)),
        c.session(held_on=august(2)),
        StartMiddle.parse(),
        RenegotiateContract.parse(
            sessions=12, frequency="weekly", reason="client_request"
        ),
        *(c.session(held_on=august(day), modality="video") for day in range(3, 12)),
        CorrectEntry.parse(entry="session", number=10, reason="duplicate_entry"),
        # A voided number is not given again: the lost slot is renegotiated (D50).
        RenegotiateContract.parse(sessions=13, reason="scheduling"),
        c.session(held_on=august(12)),
        RecordMissedSession.parse(
            scheduled_on="2026-08-13", reason="client_cancelled", today=TODAY
        ),
        StartEnd.parse(),
        c.session(held_on=august(20)),
        c.session(held_on=august(27)),
        c.measure(9, on=august(27)),
        Conclude.parse(maintenance_discussed=True),
        AcceptFollowUp.parse(sessions=4, frequency="monthly"),
        c.session(held_on=date(2026, 9, 27)),
        Close.parse(),
    ]
    http = OverHttp(api.post)
    case_id = api.open_case(client_ref)
    phases = ["beginning"]
    for command in commands:
        phase = case_of(http.run(case_id, command))["phase"]
        if phase != phases[-1]:
            phases.append(phase)
    return case_id, phases


# --- behind the service's back ------------------------------------------------------


def _tables(url: str) -> dict[str, str]:
    if url.startswith("sqlite"):
        return {
            "events": "stored_events",
            "hashes": "event_hashes",
            "snapshots": "stored_snapshots",
            "clinics": "case_clinics",
            "heads": "checkpoint_heads",
            "checkpoints": "checkpoints",
            "position": "rowid",
        }
    return {
        "events": "cases_events",
        "hashes": "cases_events_hashes",
        "snapshots": "cases_snapshots",
        "clinics": "cases_events_clinics",
        "heads": "cases_events_checkpoint_heads",
        "checkpoints": "cases_events_checkpoints",
        "position": "notification_id",
    }


def raw(url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run SQL straight on the database, as someone with database access could.

    Write `{events}`, `{hashes}`... for table names and `?` for parameters; UUID
    parameters are converted for each back end.
    """
    text = statement.format(**_tables(url))
    if url.startswith("sqlite"):
        args = [p.hex if isinstance(p, UUID) else p for p in params]
        with sqlite3.connect(sqlite_path(url)) as db:
            return db.execute(text, args).fetchall()
    with psycopg.connect(url) as db:
        cursor = db.execute(text.replace("?", "%s"), list(params))
        return cursor.fetchall() if cursor.description else []


def flip_byte(url: str, case_id: UUID, version: int) -> None:
    """Change one byte of one stored event's payload."""
    ((state,),) = raw(
        url,
        "SELECT state FROM {events} WHERE originator_id=? AND originator_version=?",
        case_id,
        version,
    )
    changed = bytes([state[0] ^ 1]) + bytes(state[1:])
    raw(
        url,
        "UPDATE {events} SET state=? WHERE originator_id=? AND originator_version=?",
        changed,
        case_id,
        version,
    )


def rewrite(url: str, case_id: UUID, version: int, old: bytes, new: bytes) -> None:
    """Edit one stored payload and recompute the case's chain from it, so that the
    chain alone still verifies."""
    ((state,),) = raw(
        url,
        "SELECT state FROM {events} WHERE originator_id=? AND originator_version=?",
        case_id,
        version,
    )
    assert old in bytes(state)
    raw(
        url,
        "UPDATE {events} SET state=? WHERE originator_id=? AND originator_version=?",
        bytes(state).replace(old, new, 1),
        case_id,
        version,
    )
    rows = raw(
        url,
        "SELECT originator_version, topic, state FROM {events} "
        "WHERE originator_id=? ORDER BY originator_version",
        case_id,
    )
    previous = GENESIS
    for v, topic, payload in rows:
        digest = event_hash(previous, StoredEvent(case_id, v, topic, bytes(payload)))
        raw(
            url,
            "UPDATE {hashes} SET hash=? WHERE originator_id=? AND originator_version=?",
            digest,
            case_id,
            v,
        )
        previous = digest


def delete_case(url: str, case_id: UUID) -> None:
    """Remove every row of a case: events, chain, snapshots and its index entry."""
    for table in ("events", "hashes", "snapshots"):
        raw(url, f"DELETE FROM {{{table}}} WHERE originator_id=?", case_id)
    raw(url, "DELETE FROM {clinics} WHERE case_id=?", case_id)


def position(url: str, case_id: UUID, version: int) -> int:
    ((found,),) = raw(
        url,
        "SELECT {position} FROM {events} "
        "WHERE originator_id=? AND originator_version=?",
        case_id,
        version,
    )
    return int(found)


def swap_positions(url: str, a: int, b: int) -> None:
    """Swap two events' places in the log."""
    spare = 10**9
    for old, new in ((a, spare), (b, a), (spare, b)):
        raw(url, "UPDATE {events} SET {position}=? WHERE {position}=?", new, old)
