"""A client generated from /openapi.json by openapi-python-client drives a whole
course against a real `ipt-workflow serve` process, with typed models both ways."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import AcceptFollowUp, Close, Command
from ipt_workflow.domain.courses import Course
from tests.api.test_over_http import Server, start_server
from tests.support.drivers import opening_body, request_for, unique_ref

PACKAGE = "ipt_generated_client"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
COURSE = Course(baseline=20, final=9, contract=12, today=date(2026, 9, 27))
CONFIG = """\
content_type_overrides:
  application/fhir+ndjson: application/octet-stream
"""
"""The generator knows no NDJSON; the export's files are bytes to it."""

ROUTES = {
    "inventory": ("record_inventory", "InventoryRecord"),
    "focus": ("agree_focus", "FocusAgree"),
    "dispute-stage": ("change_dispute_stage", "DisputeStageChange"),
    "contract": ("set_contract", "ContractAgree"),
    "deviations": ("record_deviation", "DeviationRecord"),
    "measures": ("record_measure", "MeasureRecord"),
    "sessions": ("record_session", "SessionRecord"),
    "missed-sessions": ("record_missed_session", "MissedSessionRecord"),
    "corrections": ("correct_entry", "CorrectionRecord"),
    "reassign": ("reassign_case", "Reassignment"),
    "follow-up/offer": ("offer_follow_up", "FollowUpOffer"),
    "follow-up/decision": ("decide_follow_up", "FollowUpDecision"),
}
"""Each command route's generated operation (module of api.cases) and body model."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("generated")
    running = start_server(f"sqlite:///{folder / 'ipt.db'}")
    try:
        yield running
    finally:
        running.process.terminate()
        running.process.wait(timeout=10)


@pytest.fixture(scope="module")
def generated(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ModuleType, str]]:
    """The client package generated from the running server's document, imported;
    and what the generator printed."""
    folder = tmp_path_factory.mktemp("client")
    spec = folder / "openapi.json"
    spec.write_bytes(httpx.get(f"{server.base}/openapi.json").content)
    config = folder / "config.yaml"
    config.write_text(CONFIG)
    done = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(folder / PACKAGE),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{GENERATOR.parent}:{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE), done.stdout + done.stderr
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def module(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


class Driver:
    """Sends course commands through the generated operations and models."""

    def __init__(self, package: ModuleType, base: str) -> None:
        self.package = package
        self.client = package.AuthenticatedClient(base_url=base, token="dev-clinician")
        self.models = module(package, "models")

    def open(self, body: dict[str, Any], key: str | None = None) -> Any:
        open_case = module(self.package, "api.cases.open_case")
        extra = {} if key is None else {"idempotency_key": key}
        return open_case.sync_detailed(
            client=self.client, body=self.models.CaseCreate.from_dict(body), **extra
        )

    def run(self, case_id: str, command: Command) -> Any:
        route, body = request_for(command)
        if route.startswith("transitions/"):
            operation = module(self.package, "api.cases.transition_case")
            name = self.models.TransitionName(route.removeprefix("transitions/"))
            answer = operation.sync_detailed(
                case_id,
                name,
                client=self.client,
                body=self.models.TransitionBody.from_dict(body or {}),
            )
        else:
            function, model = ROUTES[route]
            operation = module(self.package, f"api.cases.{function}")
            answer = operation.sync_detailed(
                case_id,
                client=self.client,
                body=getattr(self.models, model).from_dict(body),
            )
        assert answer.status_code in (200, 201), answer.content
        return answer


def test_the_generator_reads_the_document_without_a_warning(
    generated: tuple[ModuleType, str],
) -> None:
    _, printed = generated

    assert "Warning" not in printed, printed
    assert "WARNING" not in printed, printed


def test_a_whole_course_runs_through_the_generated_client_with_typed_answers(
    generated: tuple[ModuleType, str], server: Server
) -> None:
    package, _ = generated
    driver = Driver(package, server.base)
    ref = unique_ref("GEN")
    body = opening_body(COURSE.opening(client_ref=ref, clinician_id="t-7"))

    opened = driver.open(body, key=f"open-{ref}")
    again = driver.open(body, key=f"open-{ref}")
    case_id = opened.parsed.id
    for command in COURSE.commands(Phase.concluded):
        driver.run(case_id, command)
    driver.run(case_id, AcceptFollowUp.parse(sessions=4, frequency="monthly"))
    driver.run(case_id, COURSE.session())
    closed = driver.run(case_id, Close.parse())
    read = module(package, "api.cases.get_case").sync_detailed(
        case_id, client=driver.client
    )
    listed = module(package, "api.cases.list_cases").sync_detailed(
        client=driver.client, client_ref=ref
    )
    history = module(package, "api.cases.list_case_history").sync_detailed(
        case_id, client=driver.client, limit=1000
    )

    assert opened.status_code == 201
    assert type(opened.parsed).__name__ == "CaseView"
    assert opened.headers["Location"] == f"/cases/{case_id}"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert closed.parsed.phase == "closed"
    assert closed.parsed.outcome.classification.value == "response"
    assert read.parsed.version == int(read.headers["ETag"].strip('"'))
    assert [c.id for c in listed.parsed.items] == [case_id]
    assert history.parsed.items[-1].type_ == "CaseClosed"


def test_a_refusal_parses_as_a_problem_with_its_violations(
    generated: tuple[ModuleType, str], server: Server
) -> None:
    package, _ = generated
    driver = Driver(package, server.base)
    opened = driver.open(
        opening_body(COURSE.opening(client_ref=unique_ref("GEN"), clinician_id="t-7"))
    )

    refused = module(package, "api.cases.transition_case").sync_detailed(
        opened.parsed.id,
        driver.models.TransitionName("start_middle"),
        client=driver.client,
        body=driver.models.TransitionBody(),
    )

    assert refused.status_code == 409
    assert type(refused.parsed).__name__ == "Problem"
    assert refused.parsed.code == "guard_failed"
    assert {v.rule for v in refused.parsed.violations} >= {"focus_required"}
