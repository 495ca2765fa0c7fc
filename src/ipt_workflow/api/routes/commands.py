"""How every case command runs over HTTP: parse, context, idempotency, If-Match, answer.

A route turns its body into a command value (`runner.parse`) and hands it to the
application with `runner.run`; the outcome becomes the response.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID, uuid4

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ipt_workflow.api.deps import (
    Clinician,
    Principal,
    ServicesDep,
    expected_version,
    idempotency_key,
)
from ipt_workflow.api.schemas import stable_dump
from ipt_workflow.api.views import case_view
from ipt_workflow.application.cases import IdempotencyClaim, Outcome
from ipt_workflow.composition.bootstrap import Services
from ipt_workflow.domain.commands import Command, CommandContext

C = TypeVar("C", bound=Command)
Render = Callable[[Outcome], dict[str, Any]]


def with_retention(svc: Services, case: Any, content: dict[str, Any]) -> dict[str, Any]:
    """A case answer with the record's retention date and legal hold (issue 15)."""
    view = content.get("case", content)
    if "transitions" in view:
        until = None if svc.retention is None else svc.retention.until(case)
        view["retention_until"] = None if until is None else until.isoformat()
        view["legal_hold"] = case.held
    return content


def default_render(outcome: Outcome) -> dict[str, Any]:
    return case_view(outcome.case, outcome.position)


@dataclass
class CommandRunner:
    """Runs one command for the calling clinician."""

    principal: Principal
    svc: Services
    request: Request
    key: str | None
    expected: int | None

    def parse(self, command: type[C], body: BaseModel | None, **values: object) -> C:
        """The command a body asks for (its fields are the command's)."""
        given = {} if body is None else body.model_dump(exclude={"on_behalf_of"})
        return command.parse(today=self.today(), **given, **values)

    def today(self) -> Any:
        return datetime.now(UTC).date()

    def context(self, body: BaseModel | None) -> CommandContext:
        return CommandContext(
            recorded_by=self.principal.actor,
            today=self.today(),
            command_id=self.key or uuid4().hex,
            on_behalf_of=getattr(body, "on_behalf_of", None),
        )

    def claim(
        self, body: BaseModel | None, status: int, case_id: UUID | None = None
    ) -> IdempotencyClaim | None:
        if self.key is None:
            return None
        request = {
            "method": self.request.method,
            "path": self._canonical_path(case_id),
            "body": None if body is None else stable_dump(body),
        }
        digest = hashlib.sha256(
            json.dumps(request, sort_keys=True).encode()
        ).hexdigest()
        return IdempotencyClaim(self.principal.home_clinic, self.key, digest, status)

    def _canonical_path(self, case_id: UUID | None) -> str:
        # The path as the service spells it, so that a retry naming the case in
        # another spelling (upper case, no hyphens) is the same request.
        route = self.request.scope.get("route")
        template = getattr(route, "path_format", None)
        if template is None:
            return self.request.url.path
        params = dict(self.request.path_params)
        if case_id is not None:
            params["case_id"] = str(case_id)
        return str(template.format(**params))

    def run(
        self,
        case_id: UUID,
        body: BaseModel | None,
        command: Command,
        *,
        status: int = 200,
        render: Render = default_render,
    ) -> JSONResponse:
        outcome = self.svc.cases.execute(
            case_id,
            command,
            self.context(body),
            clinics=self.principal.clinics,
            expected_version=self.expected,
            idempotency=self.claim(body, status, case_id),
        )
        replayed = self.key is not None and outcome.result.replayed
        content = with_retention(self.svc, outcome.case, render(outcome))
        return answer(outcome, content, outcome.status or status, replayed=replayed)


REPLAYED = "Idempotent-Replayed"
"""Marks the first answer given again to a retry with the same Idempotency-Key."""


def answer(
    outcome: Outcome, content: dict[str, Any], status: int, *, replayed: bool = False
) -> JSONResponse:
    headers = {"ETag": f'"{outcome.case.version}"'}
    if outcome.position is not None:
        headers["X-Position"] = str(outcome.position)
    if replayed:
        headers[REPLAYED] = "true"
    return JSONResponse(content, status_code=status, headers=headers)


async def command_runner(
    principal: Clinician,
    svc: ServicesDep,
    request: Request,
    key: Annotated[str | None, Depends(idempotency_key)],
    expected: Annotated[int | None, Depends(expected_version)],
) -> CommandRunner:
    return CommandRunner(principal, svc, request, key, expected)


Runner = Annotated[CommandRunner, Depends(command_runner)]
