"""Log lines: a request id on every line of a request, and never any client data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ipt_workflow.domain.commands import (
    AgreeContract,
    Close,
    Conclude,
    DeclineFollowUp,
    RecordMissedSession,
    StartEnd,
    StartMiddle,
)
from ipt_workflow.domain.courses import Course
from ipt_workflow.ops.logging import REDACTED, scrub_client_data
from tests.ops.conftest import ServerFactory, route_of
from tests.support.drivers import OverHttp, opening_body

CLIENT_REF = "ZQX-7781-PRIVATE"
NOTE = "Seen crying at the bus stop near Elm Road"
GIVEN_ID = "clinic-system.req:0001"
REQUEST_LOGGERS = {"ipt_workflow.http", "ipt_workflow.commands"}
REQUEST_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Form:
    note: str
    rule: str


COURSE = Course(baseline=20, final=9, contract=12, age=41, today=date(2026, 8, 27))


def august(day: int) -> date:
    return date(2026, 8, day)


def run_course(server: Any) -> str:
    """A whole adult course, with notes, a refusal and a malformed body on the way."""
    c = COURSE
    opening = opening_body(c.opening(client_ref=CLIENT_REF, clinician_id="t-7"))
    opened = server.post("/cases", opening, headers={"X-Request-ID": GIVEN_ID})
    assert opened.status_code == 201, opened.text
    case_id: str = opened.json()["id"]
    case = f"/cases/{case_id}"
    bad_age = server.post(
        "/cases",
        {**opening, "client_age": NOTE},
        headers={"X-Request-ID": "not a well-formed id"},
    )
    assert bad_age.status_code == 422
    http = OverHttp(server.post)
    http.run(case_id, c.inventory())
    refused = server.post(f"{case}/transitions/start_middle")
    assert refused.status_code == 409
    closed = http.run(
        case_id,
        c.focus(),
        AgreeContract.parse(sessions=12),
        c.measure(20, on=august(1)),
        RecordMissedSession.parse(
            scheduled_on=august(1), reason="other", note=NOTE, today=c.day
        ),
        c.session(held_on=august(2)),
        StartMiddle.parse(),
        *(c.session(held_on=august(d), strategies=["role_play"]) for d in range(3, 12)),
        StartEnd.parse(),
        c.session(held_on=august(20)),
        c.session(held_on=august(27)),
        c.measure(9, on=august(27)),
        Conclude.parse(maintenance_discussed=True),
        DeclineFollowUp.parse(),
        Close.parse(reason="other", note=NOTE),
    )
    assert closed["phase"] == "closed"
    assert server.get(case).status_code == 200
    assert (
        server.get(
            f"{case}/history", headers={"Authorization": "Bearer dev-auditor"}
        ).status_code
        == 200
    )
    return case_id


def test_a_whole_course_logs_no_client_data_and_a_request_id_on_every_line(
    servers: ServerFactory, tmp_path: Path
) -> None:
    server = servers(f"sqlite:///{tmp_path / 'ipt.db'}", IPT_LOG_LEVEL="DEBUG")

    case_id = run_course(server)
    server.stop()
    raw = server.log_path.read_text()
    lines = server.log_lines()

    assert CLIENT_REF not in raw
    assert NOTE not in raw
    ids = [a.headers["X-Request-ID"] for a in server.answers]
    given, malformed = server.answers[1], server.answers[2]
    assert given.headers["X-Request-ID"] == GIVEN_ID
    assert REQUEST_ID.fullmatch(malformed.headers["X-Request-ID"])
    assert len(set(ids)) == len(ids)
    for line in lines:
        if line.get("logger") in REQUEST_LOGGERS:
            assert line.get("request_id") in ids, line
    for request_id, answer in zip(ids, server.answers, strict=True):
        of_request = [line for line in lines if line.get("request_id") == request_id]
        access = [line for line in of_request if line["event"] == "request"]
        assert len(access) == 1, (request_id, of_request)
        assert access[0]["status"] == answer.status_code
        assert access[0]["route"] == route_of(answer.request.url.path)
        if answer.request.method == "POST" and answer.status_code != 422:
            outcome = [line for line in of_request if line["event"] == "command"]
            assert len(outcome) == 1, of_request
    commands = [line for line in lines if line["event"] == "command"]
    refusal = next(line for line in commands if line["result"] == "refused")
    assert refusal["command"] == "start_middle"
    assert refusal["case_id"] == case_id
    assert "baseline_measure_required" in refusal["rules"]
    assert {line["command"] for line in commands} >= {
        "open_case",
        "record_inventory",
        "agree_focus",
        "record_missed_session",
        "record_session",
        "start_middle",
        "conclude",
        "decide_follow_up",
        "close",
    }
    assert all(case_id not in line["route"] for line in lines if "route" in line)


def test_the_last_line_of_defence_strips_client_fields_however_deeply_nested() -> None:
    line = {
        "event": "something",
        "client_ref": CLIENT_REF,
        "case_id": "c-1",
        "request": {"body": {"client_ref": CLIENT_REF}, "method": "POST"},
        "changes": [{"Note": NOTE, "rule": "other"}, {"inventory": [{"role": "x"}]}],
        "form": Form(NOTE, "other"),
        "unknown": object(),
    }

    scrubbed = scrub_client_data(None, "info", line)

    assert scrubbed["client_ref"] == REDACTED
    assert scrubbed["case_id"] == "c-1"
    assert scrubbed["request"] == {"body": REDACTED, "method": "POST"}
    assert scrubbed["changes"] == [
        {"Note": REDACTED, "rule": "other"},
        {"inventory": REDACTED},
    ]
    assert scrubbed["form"] == {"note": REDACTED, "rule": "other"}
    assert scrubbed["unknown"] == "<object>"
    assert CLIENT_REF not in repr(scrubbed)
    assert NOTE not in repr(scrubbed)
