"""`ipt-workflow retention run` as a real process: a dry run changes nothing,
`--apply` erases exactly what is due; a log line per case, no client data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.courses import Course
from ipt_workflow.domain.erasure import add_years
from tests.erasure.conftest import (
    CLIENT_REF,
    COURSE,
    RING,
    erase,
    settings_of,
    withdrawn_case,
)
from tests.erasure.test_refusals import hold
from tests.support.api import Api
from tests.support.drivers import OverHttp

RUN_SECONDS = 60


def retention_run(
    api: Api, tmp_path: Path, *args: str
) -> tuple[str, list[dict[str, Any]], str]:
    """Run the command in its own process: its summary, its log lines and how far
    its progress said it came (away from a terminal: the last progress line)."""
    env = {
        **os.environ,
        "IPT_DATABASE_URL": settings_of(api).database_url,
        "IPT_CIPHER_KEY": RING,
        "IPT_LOG_FORMAT": "json",
        # Due the day a case ends: the cases of this test ended today.
        "IPT_RETENTION_YEARS_AFTER_END": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "ipt_workflow.cli.main", "retention", "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert CLIENT_REF not in done.stdout + done.stderr
    lines = [
        json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")
    ]
    progress = [
        f"{line['task']}: {line['done']}/{line['total']} {line['unit']}"
        for line in lines
        if line.get("event") == "progress_done"
    ]
    return (
        done.stdout,
        [line for line in lines if line.get("event") == "retention_case"],
        progress[-1] if progress else "",
    )


def test_a_dry_run_lists_what_is_due_and_apply_erases_only_that(
    sqlite_erasure_api: Api, tmp_path: Path
) -> None:
    api = sqlite_erasure_api
    due = withdrawn_case(api)
    held = withdrawn_case(api, "HELD-1")
    assert hold(api, held).status_code == 200
    teen = Course("ipt-a", age=15)
    minor = OverHttp(api.post).open(teen, "MINOR-1", "t-7")
    OverHttp(api.post).run(minor, *teen.commands(Phase.withdrawn))
    still_open = OverHttp(api.post).open(COURSE, "OPEN-2", "t-7")
    before = {c: api.get(f"/cases/{c}").json() for c in (due, held, minor, still_open)}
    metrics = tmp_path / "retention.prom"

    summary, lines, progress = retention_run(api, tmp_path)

    assert "1 cases due for erasure" in summary and "nothing was erased" in summary
    assert [(line["case_id"], line["action"]) for line in lines] == [(due, "due")]
    assert progress == "retention run: 1/1 cases"
    assert {c: api.get(f"/cases/{c}").json() for c in before} == before

    summary, lines, progress = retention_run(
        api, tmp_path, "--apply", "--metrics-file", str(metrics)
    )

    assert "erased 1" in summary
    assert [(line["case_id"], line["action"]) for line in lines] == [(due, "erased")]
    assert set(lines[0]) >= {"case_id", "clinic_id", "retention_until", "action"}
    erased = api.get(f"/cases/{due}").json()
    assert erased["erased"] is True
    assert erased["erasure"]["basis"] == "retention_expired"
    assert erased["erasure"]["erased_by"] == "retention-run"
    for case_id in (held, minor, still_open):
        assert api.get(f"/cases/{case_id}").json() == before[case_id]
    text = metrics.read_text()
    assert 'ipt_retention_run_cases_total{action="erased"} 1.0' in text
    assert 'ipt_retention_run_cases_total{action="unsupported"} 0.0' in text

    _, again, progress = retention_run(api, tmp_path, "--apply")
    assert again == []  # an erased case is never due again
    assert progress == "retention run: 0/0 cases"
    assert erase(api, due).status_code == 202


def test_a_minor_s_retention_counts_from_the_intake_day_not_the_opening_day(
    sqlite_erasure_api: Api,
) -> None:
    api = sqlite_erasure_api
    today = datetime.now(UTC).date()
    intake = today - timedelta(days=20)
    teen = Course("ipt-a", age=15, intake_on=intake)
    case_id = OverHttp(api.post).open(teen, "MINOR-2", "t-7")
    OverHttp(api.post).run(case_id, *teen.commands(Phase.withdrawn))

    case = api.get(f"/cases/{case_id}").json()

    assert case["intake_on"] == intake.isoformat()
    # Surely 25 ten years after the intake at 15; 7 years after the end is earlier.
    assert case["retention_until"] == add_years(intake, 10).isoformat()
