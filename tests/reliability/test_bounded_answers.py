"""Findings 7 and 8: answers are bounded, and nothing leaks across tenants or roles.

The real app in-process over real SQLite files (the read models run in-process), and
a real server for the size and time of an error flood.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import inventory
from tests.reliability.conftest import InProcess, ServerFactory

MAX_LISTED_ERRORS = 20
"""How many errors a 422 lists at most (api-guide.md)."""
FAR_AHEAD = "2031-01-01"
"""A day on which every open case has an overdue session."""


def test_a_body_of_60000_unknown_keys_gets_a_short_422_within_a_second(
    servers: ServerFactory, tmp_path: Path
) -> None:
    """Caught: a 1 MB body of 60,000 unknown keys returned a 3.7 MB 422 listing
    60,004 errors, at 0.8 s of CPU each."""
    server = servers(f"sqlite:///{tmp_path / 'ipt.db'}")
    case = server.open_case("E-1")
    body = {f"k{n:06d}": 0 for n in range(60_000)}
    content = json.dumps(body).encode()
    assert len(content) < 1024 * 1024

    started = time.monotonic()
    answer = httpx.post(
        f"{server.base}/cases/{case['id']}/inventory",
        content=content,
        headers=server.headers(**{"Content-Type": "application/json"}),
        timeout=30,
    )
    took = time.monotonic() - started

    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "validation_failed"
    assert "60000 JSON members" in problem["detail"]
    assert len(answer.content) < 10_000
    assert took < 1.0, took
    assert server.get(f"/cases/{case['id']}").json()["version"] == 1


def test_a_body_with_many_wrong_fields_lists_only_the_first_ones(
    in_process: Callable[..., InProcess],
) -> None:
    """Caught: every error was listed, however many; now the first 20 are."""
    app = in_process()
    case = app.open_case("E-2")

    answer = app.post(
        f"/cases/{case['id']}/inventory", {f"k{n:04d}": 0 for n in range(1500)}
    )

    assert answer.status_code == 422
    problem = answer.json()
    assert len(problem["errors"]) == MAX_LISTED_ERRORS
    assert "1501 field(s) do not fit the schema" in problem["detail"]
    assert f"the first {MAX_LISTED_ERRORS} are listed" in problem["detail"]


def live(
    in_process: Callable[..., InProcess], tmp_path: Path, name: str = "live"
) -> InProcess:
    return in_process(f"sqlite:///{tmp_path / f'{name}.db'}", run_projections=True)


def caught_up(app: InProcess, case: dict[str, Any], position: int) -> None:
    """Wait until every read model has reached `position` (a case read waits so)."""
    answer = app.get(f"/cases/{case['id']}", min_position=position)
    assert answer.status_code == 200, answer.text


def test_alerts_come_in_pages_and_a_page_reads_a_bounded_number_of_cases(
    in_process: Callable[..., InProcess], tmp_path: Path
) -> None:
    """Caught: /projections/alerts had no paging: every case of the clinics, at once."""
    app = live(in_process, tmp_path)
    opened = [app.open_case(f"AL-{n}") for n in range(5)]
    caught_up(app, opened[0], opened[-1]["position"])

    pages: list[list[str]] = []
    cursors: list[bool] = []
    after: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"as_of": FAR_AHEAD, "limit": 2}
        if after is not None:
            params["after"] = after
        page = app.get("/projections/alerts", **params).json()
        pages.append([i["case_id"] for i in page["items"]])
        cursors.append("next_after" in page)
        after = page.get("next_after")
        if after is None:
            break

    assert [len(p) for p in pages] == [2, 2, 1]
    assert cursors == [True, True, False]  # absent on the last page, as on every list
    assert sorted(i for p in pages for i in p) == sorted(c["id"] for c in opened)


def test_every_list_of_the_read_models_takes_a_limit(
    in_process: Callable[..., InProcess], tmp_path: Path
) -> None:
    """Caught: phase_board and outcomes answered every row of the clinics at once."""
    app = live(in_process, tmp_path)
    last = app.open_case("PB-1")
    app.open_case("PB-2", who="other_clinician")
    ipt_a = app.post(
        "/cases",
        {
            "client_ref": "PB-3",
            "protocol": "ipt-a",
            "client_age": 15,
            "clinician_id": "t",
        },
    ).json()
    caught_up(app, last, max(last["position"], ipt_a["position"]))

    first = app.get("/projections/phase_board", who="all_ops", limit=1).json()
    second = app.get(
        "/projections/phase_board", who="all_ops", limit=1, after=first["next_after"]
    ).json()
    outcomes = app.get("/projections/outcomes", who="all_ops", limit=1).json()
    refused = app.get("/projections/phase_board", who="all_ops", limit=1001)

    assert len(first["items"]) == len(second["items"]) == 1
    assert first["items"] != second["items"]
    assert first["next_after"] is not None
    assert "next_after" not in app.get("/projections/outcomes", who="all_ops").json()
    assert len(outcomes["items"]) <= 1
    assert refused.status_code == 422


def test_ops_may_not_select_alerts_by_a_clinician_they_are_not_shown(
    in_process: Callable[..., InProcess], tmp_path: Path
) -> None:
    """Caught: ops could filter alerts by clinician_id, a field hidden from them, and
    so learn which clinician holds which case."""
    app = live(in_process, tmp_path)
    case = app.open_case("OPS-1")
    caught_up(app, case, case["position"])

    refused = app.get(
        "/projections/alerts", who="ops", as_of=FAR_AHEAD, clinician_id="t-7"
    )
    allowed = app.get("/projections/alerts", who="ops", as_of=FAR_AHEAD)
    clinician = app.get("/projections/alerts", as_of=FAR_AHEAD, clinician_id="t-7")

    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert allowed.status_code == 200
    assert all("clinician_id" not in i for i in allowed.json()["items"])
    assert [i["case_id"] for i in clinician.json()["items"]] == [case["id"]]


def test_only_a_key_for_every_clinic_sees_the_head_of_the_log(
    in_process: Callable[..., InProcess], tmp_path: Path
) -> None:
    """Caught: every tenant saw the global log head (and so every clinic's volume of
    writes) in /projections/status."""
    app = live(in_process, tmp_path)
    case = app.open_case("H-1")
    other = app.open_case("H-2", who="other_clinician")
    caught_up(app, case, other["position"])

    scoped = app.get("/projections/status", who="ops").json()["items"]
    everyone = app.get("/projections/status", who="all_ops").json()["items"]

    assert {row["projection"] for row in scoped} == {r["projection"] for r in everyone}
    for row in scoped:
        assert set(row) == {"projection", "lag_seconds", "caught_up"}
    assert all("head" in row and "position" in row for row in everyone)


def test_the_sqlite_files_are_readable_and_writable_by_their_owner_only(
    in_process: Callable[..., InProcess], tmp_path: Path
) -> None:
    """Caught: the events, access log and read-model files were created 0644."""
    folder = tmp_path / "var"
    os.umask(0o022)
    app = in_process(f"sqlite:///{folder / 'ipt.db'}", run_projections=True)
    case = app.open_case("P-1")
    app.post(f"/cases/{case['id']}/inventory", inventory())
    app.get(f"/cases/{case['id']}", min_position=case["position"])

    files = sorted(folder.glob("ipt*.db*"))
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}

    assert {"ipt.db", "ipt.access.db", "ipt.caseload.db"} <= set(modes)
    assert any(name.endswith("-wal") for name in modes)
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes
