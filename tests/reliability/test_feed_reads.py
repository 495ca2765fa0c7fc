"""Findings 5 and 7: feed reads are audited; a feed poll is bounded and moves on.

The real app in-process over a real SQLite file and over the real PostgreSQL cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from ipt_workflow.storage import audit as audit_storage
from tests.reliability.conftest import InProcess


def measure(app: InProcess, case_id: str, score: int) -> None:
    answer = app.post(
        f"/cases/{case_id}/measures",
        # today: the cases open today, so their intake bounds earlier dates (§7)
        {"instrument": "phq9", "score": score, "measured_on": date.today().isoformat()},
    )
    assert answer.status_code == 200, answer.text


def access_entries(app: InProcess) -> list[dict[str, Any]]:
    answer = app.get("/audit/access", who="auditor", limit=1000)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_every_case_on_a_feed_page_is_recorded_in_the_access_log(
    database_url: str, in_process: Callable[..., InProcess]
) -> None:
    """Caught: an auditor paged /events (client data of every event) and the access
    log gained nothing, while /history of the same data was recorded."""
    app = in_process(database_url)
    first = app.open_case("F-1")["id"]
    second = app.open_case("F-2")["id"]
    measure(app, first, 12)
    app.open_case("F-3", who="other_clinician")  # another clinic: never on the page

    page = app.get("/events", who="auditor", limit=2)
    rest = app.get("/events", who="auditor", after=page.json()["next_after"])
    entries = access_entries(app)

    assert page.status_code == 200
    assert [i["case_id"] for i in page.json()["items"]] == [first, second]
    assert [i["case_id"] for i in rest.json()["items"]] == [first]
    assert [(e["case_id"], e["route"], e["actor"]) for e in entries] == [
        (first, "/events", "auditor-actor"),
        (second, "/events", "auditor-actor"),
        (first, "/events", "auditor-actor"),
    ]


def test_a_quiet_clinics_feed_poll_looks_at_a_bounded_stretch_and_moves_past_it(
    database_url: str,
    in_process: Callable[..., InProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Caught: a poll by a clinic with no new events scanned the rest of the log (on
    SQLite, every row), and `next_after` never moved, so every poll did it again."""
    monkeypatch.setattr(audit_storage, "FEED_SCAN", 10)
    for module in ("sqlite_audit", "postgres_audit"):
        monkeypatch.setattr(f"ipt_workflow.storage.{module}.FEED_SCAN", 10)
    app = in_process(database_url)
    for n in range(12):  # clinic-b only: two events each (the case and its index)
        app.open_case(f"Q-{n}", who="other_clinician")
    head = app.get("/projections/status", who="all_ops").json()["items"][0]["head"]
    mine = app.open_case("Q-mine")["id"]

    polls = []
    after = 0
    for _ in range(10):
        page = app.get("/events", who="auditor", after=after).json()
        polls.append((len(page["items"]), page["next_after"]))
        if page["items"]:
            break
        after = page["next_after"]

    assert head == 24
    assert polls[:2] == [(0, 10), (0, 20)]
    assert polls[-1][0] == 1
    assert [i["case_id"] for i in page["items"]] == [mine]
    assert len(polls) == 3
