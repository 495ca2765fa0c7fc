"""GET /events: the events of the caller's clinics in log order, none missed."""

from __future__ import annotations

import random
import threading
from uuid import UUID

from ipt_workflow.application.cases import CaseApplication
from tests.audit.conftest import COURSE, TODAY, app_of, measure
from tests.support.api import Api
from tests.support.drivers import ThroughApplication

SIZES = [1, 2, 3, 7, 50, 999, 1000, *random.Random(6).sample(range(4, 999), 3)]
BURST = 24


def open_case(app: CaseApplication, clinic: str, ref: str) -> UUID:
    return ThroughApplication(app, clinic, "t-7", TODAY).open(COURSE, ref, "t-7")


def write_burst(app: CaseApplication, cases: dict[UUID, str], burst: int) -> None:
    """Commands on cases of both clinics, and now and then a new case."""
    rng = random.Random(burst)
    straight = ThroughApplication(app, actor="t-7", today=TODAY)
    for n in range(BURST):
        if n % 8 == 0:
            clinic = rng.choice(["clinic-a", "clinic-b"])
            cases[open_case(app, clinic, f"R-{burst}-{n}")] = clinic
        else:
            straight.run(rng.choice(sorted(cases)), measure(rng.randint(0, 27)))


def read_feed(
    api: Api, size: int, writer: threading.Thread
) -> tuple[list[tuple[int, str, int]], int]:
    """Page through the feed while the writer runs, until it is done and drained;
    also says how many pages were read while it was still writing."""
    seen: list[tuple[int, str, int]] = []
    after = 0
    during = 0
    for _ in range(10_000):
        finished = not writer.is_alive()
        during += not finished
        answer = api.get("/events", "auditor", after=after, limit=size)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert all(i["position"] > after for i in page["items"])
        seen += [(i["position"], i["case_id"], i["version"]) for i in page["items"]]
        assert len(page["items"]) <= size
        after = page["next_after"]
        if finished and len(page["items"]) < size:
            return seen, during
    raise AssertionError("the feed never ran dry")


def test_the_feed_read_in_pages_of_any_size_while_commands_run_misses_nothing(
    audit_api: Api,
) -> None:
    app = app_of(audit_api)
    cases = {
        open_case(app, "clinic-a", "A-0"): "clinic-a",
        open_case(app, "clinic-b", "B-0"): "clinic-b",
    }

    concurrent = 0
    for burst, size in enumerate(SIZES):
        writer = threading.Thread(target=write_burst, args=(app, cases, burst))
        writer.start()
        seen, during = read_feed(audit_api, size, writer)
        writer.join()
        concurrent += during

        truth = [
            (n.id, str(n.originator_id), n.originator_version)
            for n in app.recorder.select_notifications(start=1, limit=10**6)
            if cases.get(UUID(str(n.originator_id))) == "clinic-a"
        ]
        assert seen == truth, f"page size {size}"
    positions = [p for p, _, _ in seen]
    assert positions == sorted(set(positions))
    assert positions[-1] - positions[0] + 1 > len(positions)  # it skipped numbers
    assert len(seen) > BURST * len(SIZES) // 3
    assert concurrent > len(SIZES)  # pages were read while commands ran


def test_each_auditor_sees_only_the_events_of_its_clinics(audit_api: Api) -> None:
    a = audit_api.open_case("A-1")
    audit_api.post(
        f"/cases/{a}/measures",
        {"instrument": "phq9", "score": 9, "measured_on": "2026-10-01"},
    )
    b = audit_api.open_case("B-1")
    app = app_of(audit_api)
    c = open_case(app, "clinic-b", "C-1")

    mine = audit_api.get("/events", "auditor", limit=1000).json()
    theirs = audit_api.get("/events", "other_auditor", limit=1000).json()

    assert [(i["case_id"], i["version"]) for i in mine["items"]] == [
        (a, 1),
        (a, 2),
        (b, 1),
    ]
    assert [i["type"] for i in mine["items"]] == [
        "CaseOpened",
        "SymptomsMeasured",
        "CaseOpened",
    ]
    assert mine["items"][1]["data"]["score"] == 9
    # The page looked at the whole log: the next one starts after clinic-b's events.
    head = app.recorder.max_notification_id()
    assert mine["next_after"] == head > mine["items"][-1]["position"]
    assert [i["case_id"] for i in theirs["items"]] == [str(c)]


def test_an_empty_page_answers_with_the_position_it_was_asked_from(
    audit_api: Api,
) -> None:
    audit_api.open_case()

    answer = audit_api.get("/events", "auditor", after=10**6).json()

    assert answer == {"items": [], "next_after": 10**6}
