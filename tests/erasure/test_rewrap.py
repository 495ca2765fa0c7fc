"""`ipt-workflow keys rewrap`, a real process on each back end: every case data key
ends under the ring's newest key, erased cases stay erased, and the command says
truly what an old ring key still seals (the events' envelopes, which are never
rewritten), so the old key is not removed while the log needs it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
import pytest
from pydantic import SecretStr

from ipt_workflow.application.erasure import Retention
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings, sqlite_path
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import CommandContext
from ipt_workflow.domain.erasure import EraseCase
from ipt_workflow.storage.case_keys import TABLE
from ipt_workflow.storage.cipher import fingerprint, parse_keys, ring_key_of
from tests.erasure.conftest import COURSE, erasure_settings
from tests.support.drivers import ThroughApplication

CLI = [sys.executable, "-m", "ipt_workflow.cli.main"]
A = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
B = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
A_ID, B_ID = (fingerprint(parse_keys(k)[0]) for k in (A, B))


def under(url: str, ring: str) -> Settings:
    return erasure_settings(url, run_projections=False, cipher_key=SecretStr(ring))


def drive(url: str, ring: str, refs: list[str]) -> list[UUID]:
    app = build_application(under(url, ring))
    try:
        driver = ThroughApplication(app, "clinic-a", today=datetime.now(UTC).date())
        return [driver.drive(COURSE, Phase.withdrawn, client_ref=r) for r in refs]
    finally:
        app.close()


def erase(url: str, ring: str, case_id: UUID) -> None:
    settings = under(url, ring)
    app = build_application(settings)
    try:
        Retention(app, settings.retention_policy).erase(
            case_id,
            EraseCase.parse(basis="data_subject_request", reason="DSR-1"),
            CommandContext(recorded_by="admin-1", today=datetime.now(UTC).date()),
            clinics=None,
        )
    finally:
        app.close()


def wrapped_keys(url: str) -> dict[str, bytes]:
    query = f"SELECT case_id, wrapped_key FROM {TABLE}"
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url)) as db:
            rows: list[Any] = db.execute(query).fetchall()
    else:
        with psycopg.connect(url) as pg:
            rows = pg.execute(query).fetchall()
    return {str(r[0]): bytes(r[1]) for r in rows}


def rewrap(url: str, ring: str) -> str:
    done = subprocess.run(
        [*CLI, "keys", "rewrap"],
        env={**os.environ, "IPT_DATABASE_URL": url, "IPT_CIPHER_KEY": ring},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def line_of(out: str, key: bytes) -> str:
    return next(line for line in out.splitlines() if line.startswith(key.hex()))


def test_rewrap_puts_every_data_key_under_the_newest_ring_key_and_tells_what_still_needs_the_old(  # noqa: E501
    database_url: str,
) -> None:
    kept, erased = drive(database_url, A, ["ZQ-OLD-1", "ZQ-OLD-2"])
    erase(database_url, A, erased)
    (newer,) = drive(database_url, f"{B},{A}", ["ZQ-NEW-1"])
    before = wrapped_keys(database_url)
    assert {ring_key_of(w) for w in before.values()} == {A_ID, B_ID}

    first = rewrap(database_url, f"{B},{A}")
    again = rewrap(database_url, f"{B},{A}")

    after = wrapped_keys(database_url)
    assert set(after) == {kept.hex, newer.hex}, "the erased case's key stays destroyed"
    assert {ring_key_of(w) for w in after.values()} == {B_ID}
    assert after[newer.hex] == before[newer.hex], "a current key is left alone"
    assert "2 data keys, 1 re-wrapped" in first
    assert "1 already were" in first
    assert "2 data keys, 0 re-wrapped" in again
    old = line_of(first, A_ID)
    assert old.startswith(f"{A_ID.hex()} (ring key 2 of 2): 0 data keys, ")
    assert "still needed" in old
    assert " 0 event envelopes" not in old
    assert "still needed" not in line_of(first, B_ID)

    # With the new ring key alone every data key opens; erased stays erased.
    app = build_application(under(database_url, B))
    try:
        mapper = app.case_keys
        assert mapper is not None
        assert mapper.has_key(kept) and mapper.has_key(newer)
        assert not mapper.has_key(erased)
        assert app.get_case(newer).client_ref == "ZQ-NEW-1"
        # What the command said: the old case's envelopes still need key A.
        with pytest.raises(Exception, match=A_ID.hex()):
            app.get_case(kept)
    finally:
        app.close()
    alone = rewrap(database_url, B)
    assert line_of(alone, A_ID).startswith(
        f"{A_ID.hex()} (a key NOT in IPT_CIPHER_KEY)"
    )
