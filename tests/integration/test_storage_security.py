"""Encryption at rest, key rotation, the hash chain and snapshots, on both back ends."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import psycopg
import pytest
from eventsourcing.cipher import AESCipher
from pydantic import SecretStr

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings, sqlite_path
from ipt_workflow.domain import events
from ipt_workflow.domain.commands import Reassign, RecordMeasure, Withdraw
from ipt_workflow.domain.courses import Course
from tests.support.drivers import ThroughApplication

TODAY = date(2026, 11, 25)
CLIENT_REF = "ZQ-UNMISTAKABLE-7731"


COURSE = Course(today=TODAY)


def straight(app: CaseApplication) -> ThroughApplication:
    return ThroughApplication(app, "clinic-a", today=TODAY)


def measure(score: int, on: date = date(2026, 11, 1)) -> RecordMeasure:
    return COURSE.measure(score, on=on)


def open_case(app: CaseApplication) -> UUID:
    return straight(app).open(COURSE, CLIENT_REF, "t-7")


def keyed(url: str, key: str | None) -> Settings:
    return Settings(
        database_url=url, cipher_key=None if key is None else SecretStr(key)
    )


def raw_rows(url: str) -> list[tuple[Any, ...]]:
    """Every row of every table, read behind the service's back."""
    rows: list[tuple[Any, ...]] = []
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url)) as db:
            tables = [
                r[0]
                for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                rows += db.execute(f"SELECT * FROM {table}").fetchall()
        return rows
    with psycopg.connect(url) as db:
        tables = [
            r[0]
            for r in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        for table in tables:
            rows += db.execute(f'SELECT * FROM "{table}"').fetchall()
    return rows


def raw_bytes(url: str) -> bytes:
    if url.startswith("sqlite"):
        path = Path(sqlite_path(url))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    return repr(raw_rows(url)).encode()


def tamper(url: str, case_id: UUID, version: int) -> None:
    """Flip one byte of one stored payload, as someone with database access could."""
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url)) as db:
            where = "WHERE originator_id=? AND originator_version=?"
            (state,) = db.execute(
                f"SELECT state FROM stored_events {where}", (case_id.hex, version)
            ).fetchone()
            changed = bytes([state[0] ^ 1]) + state[1:]
            db.execute(
                f"UPDATE stored_events SET state=? {where}",
                (changed, case_id.hex, version),
            )
        return
    with psycopg.connect(url) as db:
        db.execute(
            "UPDATE cases_events "
            "SET state = set_byte(state, 0, get_byte(state, 0) # 1) "
            "WHERE originator_id = %s AND originator_version = %s",
            (case_id, version),
        )


class TestEncryption:
    def test_with_a_cipher_key_the_client_ref_is_not_in_the_raw_database(
        self, database_url: str
    ) -> None:
        app = build_application(keyed(database_url, AESCipher.create_key(32)))
        case_id = open_case(app)
        straight(app).run(case_id, Withdraw.parse(reason="moved"))
        app.close()

        assert CLIENT_REF.encode() not in raw_bytes(database_url)

    def test_without_a_cipher_key_the_raw_database_holds_the_client_ref(
        self, database_url: str
    ) -> None:
        # The control for the test above: the search does find what is there.
        app = build_application(Settings(database_url=database_url))
        open_case(app)
        app.close()

        assert CLIENT_REF.encode() in raw_bytes(database_url)

    def test_after_rotating_keys_old_and_new_events_read_back(
        self, database_url: str
    ) -> None:
        old, new = AESCipher.create_key(32), AESCipher.create_key(32)
        before = build_application(keyed(database_url, old))
        case_id = open_case(before)
        before.close()

        after = build_application(keyed(database_url, f"{new},{old}"))
        straight(after).run(case_id, measure(17, on=date(2026, 11, 20)))
        after.close()
        reader = build_application(keyed(database_url, f"{new},{old}"))
        case = reader.get_case(case_id)
        reader.close()

        assert case.client_ref == CLIENT_REF
        assert case.baseline is not None and case.baseline["score"] == 17

    def test_a_payload_written_with_a_removed_key_cannot_be_read(
        self, database_url: str
    ) -> None:
        old, new = AESCipher.create_key(32), AESCipher.create_key(32)
        before = build_application(keyed(database_url, old))
        case_id = open_case(before)
        before.close()

        without_old = build_application(keyed(database_url, new))
        with pytest.raises(Exception, match="not configured"):
            without_old.get_case(case_id)
        without_old.close()


class TestHashChain:
    def test_an_untouched_case_verifies_intact(self, settings: Settings) -> None:
        app = build_application(settings)
        case_id = open_case(app)
        straight(app).run(case_id, measure(20), Reassign.parse(clinician_id="t-8"))

        check = app.verify_chain(case_id)
        app.close()

        assert (check.intact, check.events_checked, check.first_broken_version) == (
            True,
            3,
            None,
        )

    @pytest.mark.parametrize("cipher", [False, True])
    def test_changing_one_stored_byte_breaks_the_chain_at_that_version(
        self, database_url: str, cipher: bool
    ) -> None:
        key = AESCipher.create_key(32) if cipher else None
        app = build_application(keyed(database_url, key))
        case_id = open_case(app)
        straight(app).run(case_id, *(measure(score) for score in (20, 18, 15)))

        tamper(database_url, case_id, version=3)
        check = app.verify_chain(case_id)
        app.close()

        assert (check.intact, check.first_broken_version) == (False, 3)

    def test_events_saved_together_chain_to_each_other(
        self, settings: Settings
    ) -> None:
        # Concluding saves two events at once (the outcome and the follow-up offer).
        app = build_application(settings)
        case_id = open_case(app)
        straight(app).run(case_id, Withdraw.parse(reason="moved"))

        check = app.verify_chain(case_id)
        ref_check = app.verify_chain(app.reference_id("clinic-a", CLIENT_REF))
        app.close()

        assert check.intact and ref_check.intact
        assert ref_check.events_checked == 2


class TestSnapshots:
    def test_a_long_case_is_snapshotted_every_fifty_events_and_loads_the_same(
        self, settings: Settings
    ) -> None:
        app = build_application(settings)
        case_id = open_case(app)
        straight(app).run(case_id, *(measure(i % 27) for i in range(120)))

        snapshots = app.snapshots
        assert snapshots is not None
        versions = [s.originator_version for s in snapshots.get(case_id)]
        loaded = app.get_case(case_id)
        folded: Any = None
        for event in app.case_events(case_id):
            folded = cast(events.CaseEvent, event).mutate(folded)
        app.close()

        assert versions == [50, 100]
        assert loaded.version == 121
        assert loaded.__dict__ == folded.__dict__
