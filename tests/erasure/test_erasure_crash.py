"""A retention run killed in the middle leaves each case erased or untouched, never
half: the receipt and the key's destruction are one PostgreSQL transaction."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from uuid import UUID

import psycopg

from ipt_workflow.composition.builders import build_application
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.events import CaseErased
from ipt_workflow.storage.case_keys import TABLE
from tests.erasure.conftest import COURSE, RING, erasure_settings
from tests.support.drivers import ThroughApplication

CASES = 40


def states(url: str, ids: list[UUID]) -> dict[UUID, tuple[bool, bool]]:
    """Per case: (its data key exists, its last event is the erasure receipt)."""
    with psycopg.connect(url) as db:
        keys = {
            UUID(r[0]) for r in db.execute(f"SELECT case_id FROM {TABLE}").fetchall()
        }
        last: dict[UUID, str] = dict(
            db.execute(
                "SELECT DISTINCT ON (originator_id) originator_id, topic "
                "FROM cases_events ORDER BY originator_id, originator_version DESC"
            ).fetchall()
        )
    return {i: (i in keys, last[i] == CaseErased.TOPIC) for i in ids}


def run_apply(url: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "IPT_DATABASE_URL": url,
        "IPT_CIPHER_KEY": RING,
        "IPT_LOG_FORMAT": "json",
        "IPT_RETENTION_YEARS_AFTER_END": "0",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "ipt_workflow.cli.main", "retention", "run", "--apply"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_run_leaves_every_case_erased_or_untouched(postgres_url: str) -> None:
    settings = erasure_settings(postgres_url, run_projections=False)
    app = build_application(settings)
    try:
        driver = ThroughApplication(app, "clinic-a", today=datetime.now(UTC).date())
        ids = [driver.drive(COURSE, Phase.withdrawn) for _ in range(CASES)]
    finally:
        app.close()

    process = run_apply(postgres_url)
    try:
        assert process.stderr is not None
        erased_lines = 0
        for line in process.stderr:
            if line.startswith("{") and json.loads(line).get("action") == "erased":
                erased_lines += 1
                if erased_lines == 3:
                    process.send_signal(signal.SIGKILL)
                    break
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    found = states(postgres_url, ids)
    erased = [i for i, (key, receipt) in found.items() if receipt]
    assert all(key != receipt for key, receipt in found.values()), found
    assert 3 <= len(erased) < CASES, "the kill came in the middle of the run"

    again = run_apply(postgres_url)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert all(
        receipt and not key for key, receipt in states(postgres_url, ids).values()
    )
