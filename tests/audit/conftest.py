"""An API with a checkpoint key over each back end, and ways to reach behind it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from pydantic import SecretStr

from ipt_workflow.application import CaseApplication
from ipt_workflow.settings import Settings, sqlite_path
from ipt_workflow.storage.chain import GENESIS, event_hash
from tests.api.conftest import Api, inventory, make_api, session

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


def full_course(api: Api, client_ref: str = "A-1042") -> tuple[str, list[str]]:
    """An adult case run to follow-up and closure, with a renegotiated contract, a
    voided session, a missed session and two instruments; returns the case id and
    the phase after each step that changed it."""
    case_id = api.open_case(client_ref)
    case = f"/cases/{case_id}"
    phases = ["beginning"]
    ok(api, f"{case}/inventory", inventory())
    ok(api, f"{case}/focus", {"primary_area": "role_transition", "client_agreed": True})
    ok(api, f"{case}/contract", {"sessions": 16, "frequency": "weekly"})
    ok(
        api,
        f"{case}/measures",
        {"instrument": "phq9", "score": 20, "measured_on": "2026-08-01"},
    )
    ok(
        api,
        f"{case}/measures",
        {"instrument": "bdi2", "score": 30, "measured_on": "2026-08-01"},
    )
    ok(api, f"{case}/sessions", session("2026-08-02"))
    phases.append(ok(api, f"{case}/transitions/start_middle")["phase"])
    ok(
        api,
        f"{case}/contract",
        {"sessions": 12, "frequency": "weekly", "reason": "client_request"},
    )
    for day in range(3, 12):
        ok(api, f"{case}/sessions", session(f"2026-08-{day:02d}", modality="video"))
    ok(
        api,
        f"{case}/corrections",
        {"entry": "session", "number": 10, "reason": "duplicate_entry"},
    )
    ok(api, f"{case}/sessions", session("2026-08-12"))
    ok(
        api,
        f"{case}/missed-sessions",
        {"scheduled_on": "2026-08-13", "reason": "client_cancelled"},
    )
    phases.append(ok(api, f"{case}/transitions/start_end")["phase"])
    ok(api, f"{case}/sessions", session("2026-08-20"))
    ok(api, f"{case}/sessions", session("2026-08-27"))
    ok(
        api,
        f"{case}/measures",
        {"instrument": "phq9", "score": 9, "measured_on": "2026-08-27"},
    )
    phases.append(
        ok(api, f"{case}/transitions/conclude", {"maintenance_discussed": True})[
            "phase"
        ]
    )
    phases.append(
        ok(
            api,
            f"{case}/follow-up/decision",
            {"accepted": True, "sessions": 4, "frequency": "monthly"},
        )["phase"]
    )
    ok(api, f"{case}/sessions", session("2026-09-27"))
    phases.append(ok(api, f"{case}/transitions/close")["phase"])
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
