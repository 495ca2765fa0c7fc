"""Schemathesis against the app's own OpenAPI document, over a real SQLite store.

Every operation of the document is tried with a token of each role: first schemathesis'
coverage phase (boundary values, wrong types, missing and unexpected parts, other
methods), then Hypothesis fuzzing with positive and negative data. Most path ids are
real cases of the caller's clinic, opened through the API first, so commands and reads
run their domain code, not only the 404 path. Every answer must be no 5xx, and must be
described by the document: status, media type, headers and body; input that does not
fit the schema must be refused with a 4xx.

Each operation and role is an ordinary pytest item driving schemathesis' strategies,
not an item of schemathesis' pytest plugin: that plugin crashes pytest (INTERNALERROR in
`_get_pytest_report_outcome`) when one of its items is a strict xfail that passes, and
a known defect here is a strict xfail.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.python.asgi import ASGIClient, get_client

from ipt_workflow.api.app import create_app
from ipt_workflow.composition.bootstrap import Services, bootstrap
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.courses import Course
from ipt_workflow.storage.keys import Role, make_key
from tests.support.api import Api, drive_to_middle
from tests.support.drivers import OverHttp

Case = schemathesis.Case[Any]
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
BASE_URL = "http://testserver"


def clean_settings(**values: Any) -> Settings:
    """Settings from these values only: the developer's IPT_* variables stay out."""
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("IPT_")]:
            env.delenv(name)
        return Settings(**values)


# The document is built from the code alone: no store is opened until a lifespan runs.
DOCUMENT: dict[str, Any] = create_app(
    clean_settings(database_url="sqlite:///never-opened.db")
).openapi()

CONFORMANCE = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]
REJECTION = ["not_a_server_error", "negative_data_rejection"]
FUZZED_EXAMPLES = 25
SHOWN_FAILURES = 5


def load(checks: list[str]) -> schemathesis.BaseSchema:
    """The document with these checks, and no configuration file read from disk."""
    loaded = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config())
    loaded.config.checks.update(included_check_names=checks)
    loaded.config.phases.coverage.generate_duplicate_query_parameters = True
    return loaded


conformance = load(CONFORMANCE)
rejection = load(REJECTION)

OPERATIONS = [
    f"{method.upper()} {path}"
    for path, methods in DOCUMENT["paths"].items()
    for method in methods
]
CALLERS: tuple[Role, ...] = ("clinician", "auditor", "ops", "admin")

TOKENS: dict[str, tuple[Role, list[str]]] = {
    "clinician": ("clinician", ["clinic-a"]),
    "other_clinician": ("clinician", ["clinic-b"]),
    "auditor": ("auditor", ["clinic-a"]),
    "ops": ("ops", ["*"]),
    "admin": ("admin", ["clinic-a"]),
}
SUBSCRIPTIONS: list[str | None] = [None]
"""Ids of subscriptions of clinic-a made before the runs; None keeps a generated id."""


def any_name_is_public(host: str, port: int) -> list[str]:
    """DNS for the generated webhook URLs: never asked, no address is ever called
    (no dispatcher runs here)."""
    return ["93.184.215.14"]


# Known defects: each a strict xfail of the operation it breaks.
KNOWN_REJECTION_DEFECTS: dict[str, str] = {}
KNOWN_CONFORMANCE_DEFECTS: dict[tuple[str, str], str] = {}


def _xfail(reason: str | None) -> list[pytest.MarkDecorator]:
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


def _conformance_runs() -> list[Any]:
    return [
        pytest.param(
            label,
            role,
            marks=_xfail(KNOWN_CONFORMANCE_DEFECTS.get((label, role))),
            id=f"{label}-{role}",
        )
        for label in OPERATIONS
        for role in CALLERS
    ]


def _rejection_runs() -> list[Any]:
    return [
        pytest.param(label, marks=_xfail(KNOWN_REJECTION_DEFECTS.get(label)), id=label)
        for label in OPERATIONS
    ]


@dataclass(frozen=True)
class Served:
    """The app under test, a client with a token per role for seeding cases, and
    schemathesis' in-process client.

    That client is never entered: entering it starts a lifespan of its own that
    lives until the interpreter exits, with its own checkpointer and runners. The
    test client's lifespan, which this module ends, is the only one.
    """

    app: FastAPI
    api: Api
    session: ASGIClient


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One SQLite store for the module, for every operation and role."""
    folder: Path = tmp_path_factory.mktemp("schemathesis")
    configured = clean_settings(
        database_url=f"sqlite:///{folder / 'api.db'}",
        rate_limit_per_second=0,
        # No runner projects here: without these, /readyz rightly answers 503
        # once the read models are a minute behind (docs/operations.md).
        ready_max_lag_events=0,
        ready_max_lag_seconds=0,
    )
    services = bootstrap(configured, resolver=any_name_is_public)
    try:
        tokens: dict[str, str] = {}
        for name, (role, clinics) in TOKENS.items():
            key, token = make_key(role, clinics, f"{name}-actor")
            services.keys.add(key, token)
            tokens[name] = token
        app = create_app(configured, services=services)
        with TestClient(app, raise_server_exceptions=False) as client:
            created = client.post(
                "/subscriptions",
                json={"url": "https://hooks.example.org/in", "event_types": ["*"]},
                headers={"Authorization": f"Bearer {tokens['admin']}"},
            )
            assert created.status_code == 201, created.text
            SUBSCRIPTIONS.append(created.json()["id"])
            # Schemathesis types an ASGI app with dicts where Starlette has mappings.
            session = get_client(cast(Any, app))
            yield Served(app, Api(client, tokens), session)
    finally:
        for built in (services.cases, services.keys, *optional(services)):
            built.close()


def optional(services: Services) -> list[Any]:
    """The services a configuration may leave out, as far as they were built."""
    found = (getattr(services, name, None) for name in ("read_models", "access"))
    return [service for service in found if service is not None]


def _client_ref() -> str:
    return f"ST-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def case_ids(served: Served) -> tuple[str | None, ...]:
    """Fresh cases for one run: in the beginning, in the middle, of another clinic.

    `None` keeps the generated id, so unknown cases are still sent now and then.
    """
    api = served.api
    beginning = api.open_case(_client_ref())
    middle = api.open_case(_client_ref())
    drive_to_middle(api, middle)
    other = OverHttp(partial(api.post, who="other_clinician")).open(
        Course(), _client_ref()
    )
    return (beginning, middle, other, None)


# api.md formats of two request headers the document gives as bare strings: positive
# data that does not fit them can only ever be a 400 (test_malformed_input.py).
HEADER_FORMATS = {
    "if-match": re.compile(r'\s*(\*|"[0-9]{1,12}")\s*'),
    "idempotency-key": re.compile(r"[\x21-\x7e]{1,200}"),
}


def negated_headers(case: Case) -> bool:
    """Whether schemathesis generated this request's headers as negative data."""
    meta = case.meta
    if meta is None:
        return True
    return any(
        location == "header" and info.mode is GenerationMode.NEGATIVE
        for location, info in meta.components.items()
    )


def aim(case: Case, ids: tuple[str | None, ...]) -> None:
    """Point a generated request at the seeded cases, and keep reads from waiting.

    A well-formed case id is replaced by one of `ids`, chosen by its value, so a
    failing example replays and shrinks as usual; a malformed one is kept (404).
    A well-formed subscription id likewise by a seeded subscription of clinic-a, or
    kept.
    A well-formed `min_position` is held at 0: past the read models it waits 5 s by
    design (api.md), which the run cannot afford per example; 0 still runs the
    read-your-writes path, and test_malformed_input.py tests its edges.
    An If-Match or Idempotency-Key generated as positive data that api.md's format
    refuses is left out: most commands would otherwise stop at a 400 for it.
    """
    path = dict(case.path_parameters or {})
    generated = path.get("case_id")
    if isinstance(generated, str):
        try:
            parsed = uuid.UUID(generated)
        except ValueError:
            parsed = None
        if parsed is not None and str(parsed) == generated.lower():
            chosen = ids[parsed.int % len(ids)]
            if chosen is not None:
                path["case_id"] = chosen
                case.path_parameters = path
    subscription = path.get("subscription_id")
    if isinstance(subscription, str):
        try:
            seed = uuid.UUID(subscription)
        except ValueError:
            seed = None
        if seed is not None and str(seed) == subscription.lower():
            picked = SUBSCRIPTIONS[seed.int % len(SUBSCRIPTIONS)]
            if picked is not None:
                path["subscription_id"] = picked
                case.path_parameters = path
    headers = case.headers
    if headers is not None and not negated_headers(case):
        for name in [
            name
            for name, value in headers.items()
            if name.lower() in HEADER_FORMATS
            and not HEADER_FORMATS[name.lower()].fullmatch(str(value))
        ]:
            del headers[name]
    query = dict(case.query or {})
    position = query.get("min_position")
    if isinstance(position, int | str) and str(position).isdigit():
        query["min_position"] = 0
        case.query = query


def send(case: Case, served: Served, role: str) -> int:
    answer = case.call_and_validate(
        base_url=BASE_URL, session=served.session, headers=served.api.headers(role)
    )
    return answer.status_code


def report(failure: BaseException) -> str:
    return f"{type(failure).__name__}: {failure}"


def coverage_cases(
    loaded: schemathesis.BaseSchema,
    operation: Operation,
    modes: list[GenerationMode],
) -> Iterator[Case]:
    """Schemathesis' coverage phase: boundaries, wrong types, missing parts."""
    return loaded.iter_coverage_cases(
        operation,
        generation_modes=modes,
        generation_config=loaded.config.generation_for(
            operation=operation, phase="coverage"
        ),
    )


def try_all(
    cases: Iterator[Case],
    served: Served,
    role: str,
    ids: tuple[str | None, ...],
    statuses: list[int] | None = None,
) -> list[str]:
    failures = []
    for case in cases:
        aim(case, ids)
        try:
            status = send(case, served, role)
        except (AssertionError, BaseExceptionGroup) as failure:
            failures.append(report(failure))
        else:
            if statuses is not None:
                statuses.append(status)
    return failures


REACHED = {200, 201, 409, 412}
"""Answers given only once a case was loaded: the run got past the 404 path."""


def reached_a_case(label: str, statuses: list[int]) -> None:
    """A route on a case, open to this role, ran its domain code for some request.

    A 403 comes only from the role check (api.md, Roles): none seen, the role may
    use the route.
    """
    if "{case_id}" not in label or 403 in statuses:
        return
    seen = sorted(set(statuses))
    assert REACHED & set(statuses), f"no request of {label} reached a case: {seen}"


def verdict(label: str, failures: list[str]) -> None:
    shown = "\n\n".join(failures[:SHOWN_FAILURES])
    assert not failures, f"{len(failures)} failing request(s) for {label}:\n{shown}"


@pytest.mark.parametrize(("label", "role"), _conformance_runs())
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
    label: str, role: str, served: Served, case_ids: tuple[str | None, ...]
) -> None:
    operation = conformance.find_operation_by_label(label)
    assert operation is not None, label
    modes = list(GenerationMode)
    statuses: list[int] = []
    failures = try_all(
        coverage_cases(conformance, operation, modes), served, role, case_ids, statuses
    )
    pinned = operation.get_parameter("min_position", "query") is not None
    fixed = {"min_position": 0} if pinned else None

    @given(
        case=st.one_of(
            [operation.as_strategy(mode, query=fixed) for mode in modes],
        )
    )
    @settings(
        max_examples=FUZZED_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        # The seeded cases are shared by the examples on purpose: later examples meet
        # a case that earlier ones moved on, as a clinic system would.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
        ],
    )
    def fuzz(case: Case) -> None:
        aim(case, case_ids)
        statuses.append(send(case, served, role))

    try:
        fuzz()
    except (AssertionError, BaseExceptionGroup) as failure:
        failures.append(report(failure))
    verdict(label, failures)
    reached_a_case(label, statuses)


@pytest.mark.parametrize("label", _rejection_runs())
def test_every_request_that_does_not_fit_the_document_is_refused(
    label: str, served: Served, case_ids: tuple[str | None, ...]
) -> None:
    operation = rejection.find_operation_by_label(label)
    assert operation is not None, label
    negative = coverage_cases(rejection, operation, [GenerationMode.NEGATIVE])
    verdict(label, try_all(negative, served, "clinician", case_ids))


def test_the_document_under_test_is_the_one_the_app_serves(served: Served) -> None:
    answer = served.api.client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.json() == DOCUMENT


def test_schemathesis_loads_every_operation_of_the_document() -> None:
    assert len(OPERATIONS) >= 25, OPERATIONS
    for label in OPERATIONS:
        assert conformance.find_operation_by_label(label) is not None, label
        assert rejection.find_operation_by_label(label) is not None, label
