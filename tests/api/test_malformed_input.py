"""Malformed input, named one by one: each is a 4xx problem+json with its code, never a
500 (api.md, Errors), and a refused command writes nothing.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from ipt_workflow.api.app import MAX_BODY
from ipt_workflow.composition.settings import Settings
from tests.support.api import MIDDLE, Api, drive_to_middle, make_api
from tests.support.drivers import request_for
from tests.support.postgres import Cluster

PROBLEM = "application/problem+json"
MEMBERS = {"type", "title", "status", "detail", "code"}


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The answer is an RFC 9457 problem with this status and code."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM), answer.headers
    body: dict[str, Any] = answer.json()
    assert body.keys() >= MEMBERS, body
    assert body["status"] == status, body
    assert body["code"] == code, body
    return body


def wrong_answers(
    answers: dict[str, httpx.Response], status: int, code: str
) -> dict[str, str]:
    """Each answer that is not this problem, by what was sent: none may mask another."""
    wrong = {}
    for sent, answer in answers.items():
        try:
            problem(answer, status, code)
        except AssertionError as failure:
            wrong[sent] = f"{answer.status_code} {failure}"
    return wrong


def fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body["errors"]}


def send(
    api: Api, path: str, content: bytes | Iterator[bytes], **headers: str
) -> httpx.Response:
    """POST raw bytes as JSON, as a clinic system with a broken serialiser would."""
    sent = api.headers(**{"Content-Type": "application/json", **headers})
    answer: httpx.Response = api.client.post(path, content=content, headers=sent)
    return answer


def version(api: Api, case_id: str) -> int:
    answer = api.get(f"/cases/{case_id}")
    assert answer.status_code == 200, answer.text
    found: int = answer.json()["version"]
    return found


def opening(**fields: Any) -> dict[str, Any]:
    return {
        "client_ref": f"M-{uuid.uuid4().hex[:12]}",
        "protocol": "ipt",
        "client_age": 34,
        "clinician_id": "t-7",
        **fields,
    }


@pytest.fixture
def case_id(sqlite_api: Api) -> str:
    return sqlite_api.open_case()


# --- bodies that are not JSON ---------------------------------------------------------

NOT_JSON = [
    pytest.param(b'{"stage": "impasse"', id="unterminated"),
    pytest.param(b'{"stage": "impasse",}', id="trailing-comma"),
    pytest.param(b"{'stage': 'impasse'}", id="single-quotes"),
    pytest.param(b'{"stage": impasse}', id="bare-word"),
    pytest.param(b'{"stage": "impasse"} {}', id="two-documents"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-100k-deep"),
    pytest.param(b'{"stage": ' + b"9" * 5000 + b"}", id="5000-digit-number"),
]


@pytest.mark.parametrize("content", NOT_JSON)
def test_a_body_that_is_not_json_is_a_400_bad_request_and_writes_nothing(
    sqlite_api: Api, case_id: str, content: bytes
) -> None:
    answer = send(sqlite_api, f"/cases/{case_id}/dispute-stage", content)
    problem(answer, 400, "bad_request")
    assert version(sqlite_api, case_id) == 1


def test_opening_a_case_with_a_body_that_is_not_json_is_a_400(sqlite_api: Api) -> None:
    problem(send(sqlite_api, "/cases", b'{"client_ref": '), 400, "bad_request")


NOT_UTF8 = [
    pytest.param(b'{"stage": "imp\xffasse"}', id="0xff-in-string"),
    pytest.param(b'{"stage": "\xc3\x28"}', id="bad-continuation"),
    # json.loads passes an encoded surrogate (ED A0 80, not UTF-8 by RFC 3629)
    # through to the field as a 422; api.md asks for the 400 of bad UTF-8.
    pytest.param(b'{"stage": "\xed\xa0\x80"}', id="encoded-surrogate"),
    pytest.param(b"\xc3\x28", id="bare-bytes"),
]


@pytest.mark.parametrize("content", NOT_UTF8)
def test_a_body_that_is_not_utf8_is_a_400_bad_request_and_writes_nothing(
    sqlite_api: Api, case_id: str, content: bytes
) -> None:
    answer = send(sqlite_api, f"/cases/{case_id}/dispute-stage", content)
    problem(answer, 400, "bad_request")
    assert version(sqlite_api, case_id) == 1


def test_an_escaped_lone_surrogate_in_a_string_is_a_422_not_a_500(
    sqlite_api: Api,
) -> None:
    content = json.dumps(opening(client_ref="A-\ud800")).encode()
    body = problem(send(sqlite_api, "/cases", content), 422, "validation_failed")
    assert fields(body) == {"client_ref"}


# --- JSON of the wrong shape ----------------------------------------------------------

NOT_AN_OBJECT = [
    pytest.param([], id="empty-array"),
    pytest.param([opening()], id="array-of-the-body"),
    pytest.param("A-1042", id="string"),
    pytest.param(34, id="number"),
    pytest.param(True, id="boolean"),
    pytest.param(None, id="null"),
]


@pytest.mark.parametrize("value", NOT_AN_OBJECT)
def test_a_json_value_that_is_not_an_object_is_a_422_validation_failed(
    sqlite_api: Api, value: Any
) -> None:
    answer = send(sqlite_api, "/cases", json.dumps(value).encode())
    body = problem(answer, 422, "validation_failed")
    assert fields(body) == {"body"}


@pytest.mark.parametrize("value", [[], "start", 1])
def test_a_transition_body_that_is_not_an_object_is_a_422_and_writes_nothing(
    sqlite_api: Api, case_id: str, value: Any
) -> None:
    path = f"/cases/{case_id}/transitions/withdraw"
    problem(
        send(sqlite_api, path, json.dumps(value).encode()), 422, "validation_failed"
    )
    assert version(sqlite_api, case_id) == 1


WRONG_TYPES = [
    pytest.param(
        "/cases",
        opening(
            client_ref=12, client_age="34", clinician_id=["t-7"], prior_episodes=1.5
        ),
        {"client_ref", "client_age", "clinician_id", "prior_episodes"},
        id="opening-string-for-int-and-int-for-string",
    ),
    pytest.param(
        "/cases",
        {
            "client_ref": None,
            "protocol": None,
            "client_age": None,
            "clinician_id": None,
        },
        {"client_ref", "protocol", "client_age", "clinician_id"},
        id="opening-null-for-every-required-field",
    ),
    pytest.param(
        "/cases",
        {"protocol": "ipt"},
        {"client_ref", "client_age", "clinician_id"},
        id="opening-required-fields-missing",
    ),
    pytest.param(
        "/cases/{case_id}/measures",
        {"instrument": "phq9", "score": "18", "measured_on": 20260105},
        {"score", "measured_on"},
        id="measure-string-score-number-date",
    ),
    pytest.param(
        "/cases/{case_id}/sessions",
        {"held_on": 1.5, "minutes": 50.5, "modality": 1, "attendees": "client"},
        {"held_on", "minutes", "modality", "attendees"},
        id="session-every-field-of-the-wrong-type",
    ),
    pytest.param(
        "/cases/{case_id}/inventory",
        {"relationships": [{"role": "partner", "closeness": "1", "conflict": "yes"}]},
        {"relationships[0].closeness", "relationships[0].conflict"},
        id="inventory-nested-wrong-types",
    ),
    pytest.param(
        "/cases/{case_id}/focus",
        {"primary_area": "grief", "client_agreed": "true"},
        {"client_agreed"},
        id="focus-string-for-boolean",
    ),
]


@pytest.mark.parametrize(("path", "sent", "wrong"), WRONG_TYPES)
def test_wrong_types_are_a_422_that_lists_every_wrong_field(
    sqlite_api: Api, case_id: str, path: str, sent: dict[str, Any], wrong: set[str]
) -> None:
    answer = sqlite_api.post(path.format(case_id=case_id), sent)
    body = problem(answer, 422, "validation_failed")
    assert fields(body) == wrong
    assert all(error["message"] for error in body["errors"])
    assert version(sqlite_api, case_id) == 1


def test_a_100_kb_client_ref_is_a_422_that_does_not_echo_it(sqlite_api: Api) -> None:
    huge = "A" * 100_000
    body = problem(
        sqlite_api.post("/cases", opening(client_ref=huge)), 422, "validation_failed"
    )
    assert fields(body) == {"client_ref"}
    assert huge not in json.dumps(body)


@pytest.mark.parametrize(
    ("path", "sent", "field"),
    [
        pytest.param(
            "/cases",
            opening(client_ref="A-1\u0000"),
            "client_ref",
            id="client-ref",
        ),
        pytest.param(
            "/cases",
            opening(clinician_id="\u0000"),
            "clinician_id",
            id="clinician-id",
        ),
        pytest.param(
            "/cases/{case_id}/missed-sessions",
            {
                "scheduled_on": "2026-02-09",
                "reason": "client_cancelled",
                "note": "call\u0000back",
            },
            "note",
            id="missed-session-note",
        ),
        pytest.param(
            "/cases/{case_id}/deviations",
            {"rule": "beginning_session_limit", "reason": "crisis", "note": "\u0000"},
            "note",
            id="deviation-note",
        ),
        pytest.param(
            "/cases/{case_id}/transitions/withdraw",
            {"reason": "client_request\u0000"},
            "reason",
            id="withdrawal-reason",
        ),
        pytest.param(
            "/cases/{case_id}/transitions/close",
            {"reason": "completed", "note": "done\u0000"},
            "note",
            id="closing-note",
        ),
    ],
)
def test_a_nul_character_in_a_string_is_a_422_and_writes_nothing(
    sqlite_api: Api, case_id: str, path: str, sent: dict[str, Any], field: str
) -> None:
    answer = sqlite_api.post(path.format(case_id=case_id), sent)
    assert field in fields(problem(answer, 422, "validation_failed"))
    assert version(sqlite_api, case_id) == 1


IMPOSSIBLE_DATES = [
    "2026-02-30",
    "2025-02-29",
    "2026-04-31",
    "2026-13-01",
    "2026-00-10",
    "2026-01-00",
    "2026-1-5",
    "05/01/2026",
    "",
    "tomorrow",
]


@pytest.mark.parametrize("day", IMPOSSIBLE_DATES)
def test_an_impossible_date_is_a_422_naming_the_field(
    sqlite_api: Api, case_id: str, day: str
) -> None:
    sent = {"instrument": "phq9", "score": 18, "measured_on": day}
    answer = sqlite_api.post(f"/cases/{case_id}/measures", sent)
    assert fields(problem(answer, 422, "validation_failed")) == {"measured_on"}
    assert version(sqlite_api, case_id) == 1


@pytest.mark.parametrize(
    ("path", "sent", "unknown"),
    [
        pytest.param("/cases", opening(colour="blue"), "colour", id="top-level"),
        pytest.param(
            "/cases",
            opening(clientRef="A-1"),
            "clientRef",
            id="camel-case-spelling",
        ),
        pytest.param(
            "/cases/{case_id}/inventory",
            {"relationships": [{"role": "partner", "closeness": 1, "nickname": "J"}]},
            "relationships[0].nickname",
            id="nested",
        ),
        pytest.param(
            "/cases/{case_id}/transitions/start_middle",
            {"reason": "client_request"},
            "reason",
            id="a-field-this-transition-does-not-take",
        ),
    ],
)
def test_an_unknown_field_is_a_422_naming_it(
    sqlite_api: Api, case_id: str, path: str, sent: dict[str, Any], unknown: str
) -> None:
    answer = sqlite_api.post(path.format(case_id=case_id), sent)
    assert unknown in fields(problem(answer, 422, "validation_failed"))
    assert version(sqlite_api, case_id) == 1


# --- bodies over 1 MiB ----------------------------------------------------------------


def test_a_body_over_1_mib_with_content_length_is_a_413_payload_too_large(
    sqlite_api: Api,
) -> None:
    content = b'{"client_ref": "' + b"A" * MAX_BODY + b'"}'
    answer = send(sqlite_api, "/cases", content)
    assert answer.request.headers["content-length"] == str(len(content))
    problem(answer, 413, "payload_too_large")


def test_a_streamed_body_over_1_mib_without_content_length_is_a_413(
    sqlite_api: Api, case_id: str
) -> None:
    chunk = b" " * 65_536

    def chunks() -> Iterator[bytes]:
        yield b'{"stage": "impasse"'
        for _ in range(MAX_BODY // len(chunk) + 1):
            yield chunk
        yield b"}"

    answer = send(sqlite_api, f"/cases/{case_id}/dispute-stage", chunks())
    assert "content-length" not in answer.request.headers
    assert answer.request.headers["transfer-encoding"] == "chunked"
    problem(answer, 413, "payload_too_large")
    assert version(sqlite_api, case_id) == 1


def test_a_body_of_exactly_1_mib_is_read_and_judged_by_the_schema(
    sqlite_api: Api, case_id: str
) -> None:
    sent = {"scheduled_on": "2026-02-09", "reason": "client_cancelled", "note": ""}
    padding = MAX_BODY - len(json.dumps(sent).encode())
    content = json.dumps({**sent, "note": "x" * padding}).encode()
    assert len(content) == MAX_BODY
    answer = send(sqlite_api, f"/cases/{case_id}/missed-sessions", content)
    assert fields(problem(answer, 422, "validation_failed")) == {"note"}


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", ""])
def test_a_content_length_that_is_not_a_number_is_a_400_bad_request(
    sqlite_api: Api, length: str
) -> None:
    answer = send(sqlite_api, "/cases", b"{}", **{"Content-Length": length})
    assert answer.request.headers["content-length"] == length
    problem(answer, 400, "bad_request")


# --- paths and methods ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", "/cases/{case_id}/nope"),
        ("POST", "/cases/{case_id}/transitions"),
        ("POST", "/cases/{case_id}/focus/extra"),
        ("GET", "/cases/{case_id}/history/1"),
        ("GET", "/CASES/{case_id}"),
    ],
)
def test_an_unknown_path_is_a_404_not_found(
    sqlite_api: Api, case_id: str, method: str, path: str
) -> None:
    answer = sqlite_api.client.request(
        method, path.format(case_id=case_id), headers=sqlite_api.headers()
    )
    problem(answer, 404, "not_found")


@pytest.mark.parametrize(
    "name", ["fly", "START_MIDDLE", "start-middle", "start_middle ", "%00", "accept"]
)
def test_an_unknown_transition_name_is_a_404_and_writes_nothing(
    sqlite_api: Api, case_id: str, name: str
) -> None:
    drive_to_middle(sqlite_api, case_id)
    before = version(sqlite_api, case_id)
    answer = sqlite_api.post(f"/cases/{case_id}/transitions/{name}")
    problem(answer, 404, "not_found")
    assert version(sqlite_api, case_id) == before


MALFORMED_IDS = [
    "not-a-uuid",
    "123",
    "0",
    "3f1c7b5e-8d0a-4b7e-9a63-2f1d8c4e5a9",
    "3f1c7b5e-8d0a-4b7e-9a63-2f1d8c4e5a900",
    "3f1c7b5e-8d0a-4b7e-9a63-2f1d8c4e5a9g",
    "%00",
    "..",
]


ROUTES = [
    ("GET", "/cases/{id}", None),
    ("GET", "/cases/{id}/history", None),
    ("POST", "/cases/{id}/dispute-stage", {"stage": "impasse"}),
    ("POST", "/cases/{id}/transitions/withdraw", None),
]


@pytest.mark.parametrize("bad", MALFORMED_IDS)
def test_a_malformed_case_id_is_a_404_not_found(sqlite_api: Api, bad: str) -> None:
    answers = {
        f"{method} {route}": sqlite_api.client.request(
            method, route.format(id=bad), json=sent, headers=sqlite_api.headers()
        )
        for method, route, sent in ROUTES
    }
    assert not wrong_answers(answers, 404, "not_found")


def test_a_well_formed_id_of_no_case_is_a_404_not_found(sqlite_api: Api) -> None:
    unknown = uuid.uuid4()
    problem(sqlite_api.get(f"/cases/{unknown}"), 404, "not_found")
    answer = sqlite_api.post(f"/cases/{unknown}/dispute-stage", {"stage": "impasse"})
    problem(answer, 404, "not_found")


WRONG_METHODS = [
    ("DELETE", "/cases/{case_id}"),
    ("PUT", "/cases/{case_id}"),
    ("PATCH", "/cases/{case_id}/focus"),
    ("PUT", "/cases"),  # GET /cases lists cases (issue 14)
    ("GET", "/cases/{case_id}/focus"),
    ("DELETE", "/cases/{case_id}/transitions/withdraw"),
    ("POST", "/healthz"),
]


@pytest.mark.parametrize(("method", "path"), WRONG_METHODS)
def test_a_wrong_method_is_a_405_method_not_allowed_and_writes_nothing(
    sqlite_api: Api, case_id: str, method: str, path: str
) -> None:
    answer = sqlite_api.client.request(
        method, path.format(case_id=case_id), headers=sqlite_api.headers()
    )
    problem(answer, 405, "method_not_allowed")
    assert version(sqlite_api, case_id) == 1


def test_a_405_names_the_allowed_methods_in_allow(
    sqlite_api: Api, case_id: str
) -> None:
    answer = sqlite_api.client.delete(f"/cases/{case_id}", headers=sqlite_api.headers())
    problem(answer, 405, "method_not_allowed")
    assert "GET" in answer.headers.get("allow", ""), answer.headers


# --- headers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param(" ", id="a-space"),
        pytest.param("two words", id="inner-space"),
        pytest.param("tab\tinside", id="tab"),
        pytest.param("k" * 201, id="201-characters"),
        pytest.param("caf\xe9", id="latin-1-byte"),
    ],
)
def test_a_malformed_idempotency_key_is_a_400_and_writes_nothing(
    sqlite_api: Api, case_id: str, key: str
) -> None:
    answer = sqlite_api.client.post(
        f"/cases/{case_id}/dispute-stage",
        json={"stage": "impasse"},
        headers={**sqlite_api.headers(), "Idempotency-Key": key.encode("latin-1")},
    )
    problem(answer, 400, "bad_request")
    assert version(sqlite_api, case_id) == 1


def test_an_idempotency_key_of_200_printable_characters_is_accepted(
    sqlite_api: Api,
) -> None:
    key = "!" + "k" * 198 + "~"
    answer = sqlite_api.post("/cases", opening(), **{"Idempotency-Key": key})
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize(
    "if_match",
    ['W/"1"', "1", '"abc"', '"1", "2"', '"-1"', '"1234567890123"', '""', "'1'"],
)
def test_a_malformed_if_match_is_a_400_and_writes_nothing(
    sqlite_api: Api, case_id: str, if_match: str
) -> None:
    answer = sqlite_api.post(
        f"/cases/{case_id}/dispute-stage",
        {"stage": "impasse"},
        **{"If-Match": if_match},
    )
    problem(answer, 400, "bad_request")
    assert version(sqlite_api, case_id) == 1


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic Zm9vOmJhcg==", id="basic"),
        pytest.param("{token}", id="the-token-alone"),
        pytest.param("Token {token}", id="another-scheme"),
        pytest.param("Bearer: {token}", id="scheme-with-colon"),
        pytest.param("Bearer", id="no-token"),
        pytest.param("Bearer    ", id="blank-token"),
        pytest.param("Bearer {token}x", id="unknown-token"),
    ],
)
def test_an_authorization_header_without_a_bearer_token_is_a_401(
    sqlite_api: Api, case_id: str, authorization: str
) -> None:
    token = sqlite_api.tokens["clinician"]
    answer = sqlite_api.client.get(
        f"/cases/{case_id}",
        headers={"Authorization": authorization.format(token=token)},
    )
    problem(answer, 401, "unauthorized")
    assert answer.headers["www-authenticate"] == "Bearer"


# --- query values ---------------------------------------------------------------------


OUT_OF_RANGE: list[dict[str, Any]] = [
    {"after_version": -1},
    {"after_version": 2**53 + 1},
    {"after_version": 2**63},
    {"after_version": 10**30},
    {"after_version": "1.5"},
    {"limit": 0},
    {"limit": 1001},
    {"limit": 2**64},
    {"limit": "many"},
]


def test_a_history_page_parameter_out_of_range_is_a_422_not_a_500(api: Api) -> None:
    """On both back ends: a number past an integer column once overflowed in SQLite."""
    case_id = api.open_case()
    answers = {
        repr(query): api.get(f"/cases/{case_id}/history", **query)
        for query in OUT_OF_RANGE
    }
    assert not wrong_answers(answers, 422, "validation_failed")


@pytest.mark.parametrize("position", [-1, "soon", 1.5, ""])
def test_a_min_position_that_is_not_a_natural_number_is_a_422(
    sqlite_api: Api, case_id: str, position: Any
) -> None:
    answer = sqlite_api.get(f"/cases/{case_id}", min_position=position)
    problem(answer, 422, "validation_failed")


def test_a_min_position_past_the_log_is_a_422_position_not_reached_not_a_500(
    sqlite_api: Api, case_id: str
) -> None:
    answer = sqlite_api.get(f"/cases/{case_id}", min_position=2**63)
    problem(answer, 422, "position_not_reached")


# --- a database that cannot be reached ------------------------------------------------

ANSWER_WITHIN = 10.0
"""How long a client waits for a 503, as a proxy or a clinic system would."""
RECOVERY_WITHIN = 60.0
"""How long the service may take to answer again once the database is back."""
LATE_ANSWER_WITHIN = 120.0
"""How long an unanswered request may still run once the database is back."""
_, INVENTORY = request_for(MIDDLE.inventory())


@dataclass
class Pending:
    """A request in its own thread, so the test waits for it a bounded time."""

    request: Callable[[], httpx.Response]
    answers: list[httpx.Response] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> Pending:
        def run() -> None:
            try:
                self.answers.append(self.request())
            except BaseException as error:
                self.errors.append(error)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def answer(self, within: float) -> httpx.Response | None:
        assert self.thread is not None
        self.thread.join(within)
        assert not self.errors, self.errors
        return self.answers[0] if self.answers else None


@contextmanager
def outage(postgres: Cluster, sent: list[Pending]) -> Iterator[None]:
    """Stop the shared cluster; start it again however the block ends.

    Requests still running then get a bounded time to finish against the database
    that is back, so none outlives the test.
    """
    postgres.stop()
    try:
        yield
    finally:
        postgres.start()
        for request in sent:
            request.answer(LATE_ANSWER_WITHIN)


def until_ready(api: Api) -> None:
    """Poll /readyz until it answers 200, for at most RECOVERY_WITHIN seconds."""
    deadline = time.monotonic() + RECOVERY_WITHIN
    while api.client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, f"/readyz not 200 in {RECOVERY_WITHIN} s"
        time.sleep(0.1)


def until_answered(request: Callable[[], httpx.Response]) -> httpx.Response:
    """Repeat a request while it is 503, for at most RECOVERY_WITHIN seconds."""
    deadline = time.monotonic() + RECOVERY_WITHIN
    while (answer := request()).status_code == 503:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.1)
    return answer


@pytest.fixture
def postgres_api(postgres_url: str) -> Iterator[Api]:
    """The API over a fresh PostgreSQL database of the shared cluster."""
    settings = Settings(
        database_url=postgres_url,
        rate_limit_per_second=0,
        # No runner projects here: /readyz is to judge the database alone.
        ready_max_lag_events=0,
        ready_max_lag_seconds=0,
    )
    with contextmanager(make_api)(settings) as api:
        yield api


def unavailable(answer: httpx.Response | None, what: str) -> None:
    assert answer is not None, f"the {what} got no answer within {ANSWER_WITHIN} s"
    problem(answer, 503, "unavailable")
    assert int(answer.headers["retry-after"]) >= 1, answer.headers


def test_a_database_that_cannot_be_reached_gives_a_503_within_10_s(
    postgres: Cluster, postgres_api: Api
) -> None:
    api = postgres_api
    case_id = api.open_case()
    sent = [
        Pending(lambda: api.post(f"/cases/{case_id}/inventory", INVENTORY)),
        Pending(lambda: api.get(f"/cases/{case_id}")),
    ]
    with outage(postgres, sent):
        command, read = (request.start() for request in sent)
        unavailable(command.answer(ANSWER_WITHIN), "command")
        unavailable(read.answer(ANSWER_WITHIN), "read")


def test_a_command_that_meets_a_database_outage_is_written_only_if_answered_2xx(
    postgres: Cluster, postgres_api: Api
) -> None:
    """A 503 (or no answer) means nothing was written; a late 2xx, written once."""
    api = postgres_api
    case_id = api.open_case()
    command = Pending(lambda: api.post(f"/cases/{case_id}/inventory", INVENTORY))
    with outage(postgres, [command]):
        command.start().answer(ANSWER_WITHIN)
    answer = command.answer(0)
    history = until_answered(lambda: api.get(f"/cases/{case_id}/history"))
    assert history.status_code == 200, history.text
    kinds = [item["type"] for item in history.json()["items"]]
    if answer is not None and answer.status_code == 200:
        assert kinds == ["CaseOpened", "InterpersonalInventoryRecorded"]
    else:
        if answer is not None:
            unavailable(answer, "command")
        assert kinds == ["CaseOpened"], f"written, yet answered {answer}"


def test_the_service_answers_again_once_the_database_is_back(
    postgres: Cluster, postgres_api: Api
) -> None:
    api = postgres_api
    case_id = api.open_case()
    with outage(postgres, []):
        pass
    read = until_answered(lambda: api.get(f"/cases/{case_id}"))
    assert read.status_code == 200, read.text
    command = until_answered(lambda: api.post(f"/cases/{case_id}/inventory", INVENTORY))
    assert command.status_code == 200, command.text
    assert command.json()["version"] == 2


def test_once_readyz_says_ready_the_next_requests_are_answered(
    postgres: Cluster, postgres_api: Api
) -> None:
    api = postgres_api
    case_id = api.open_case()
    assert api.get(f"/cases/{case_id}").status_code == 200
    with outage(postgres, []):
        pass
    until_ready(api)
    for _ in range(3):
        read = api.get(f"/cases/{case_id}")
        assert read.status_code == 200, read.text


def first_answer_after_a_restart(
    postgres: Cluster, api: Api, case_id: str, request: Callable[[], httpx.Response]
) -> httpx.Response:
    """Restart the cluster right after a read of the case; then `request`'s answer.

    A restart takes a fraction of a second here, so the pools still hold the
    connections it killed, some used less than a second before.
    """
    assert api.get(f"/cases/{case_id}").status_code == 200
    with outage(postgres, []):
        pass
    pending = Pending(request).start()
    try:
        answer = pending.answer(ANSWER_WITHIN)
        assert answer is not None, f"no answer within {ANSWER_WITHIN} s"
        return answer
    finally:
        pending.answer(LATE_ANSWER_WITHIN)


def test_the_first_request_after_a_database_restart_is_answered_within_10_s(
    postgres: Cluster, postgres_api: Api
) -> None:
    """It caught a 503 with D93 (no check of a connection used in the last second):
    the read met a connection the restart killed, and its one retry another."""
    api = postgres_api
    case_id = api.open_case()
    read = first_answer_after_a_restart(
        postgres, api, case_id, lambda: api.get(f"/cases/{case_id}")
    )
    assert read.status_code == 200, read.text


def test_the_first_command_after_a_database_restart_is_answered_and_written_once(
    postgres: Cluster, postgres_api: Api
) -> None:
    """It caught a 503 with D93, as the read above did."""
    api = postgres_api
    case_id = api.open_case()
    command = first_answer_after_a_restart(
        postgres,
        api,
        case_id,
        lambda: api.post(f"/cases/{case_id}/inventory", INVENTORY),
    )
    assert command.status_code == 200, command.text
    history = api.get(f"/cases/{case_id}/history")
    kinds = [item["type"] for item in history.json()["items"]]
    assert kinds == ["CaseOpened", "InterpersonalInventoryRecorded"], kinds
