"""How every case command runs over HTTP: context, idempotency, If-Match, answer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ipt_workflow.api.deps import (
    Clinician,
    Principal,
    Services,
    ServicesDep,
    expected_version,
    idempotency_key,
)
from ipt_workflow.api.views import case_view
from ipt_workflow.application import IdempotencyClaim, Outcome
from ipt_workflow.domain.case import CommandContext, CommandResult, TherapyCase

Action = Callable[[TherapyCase, CommandContext], CommandResult]
Render = Callable[[Outcome], dict[str, Any]]


def default_render(outcome: Outcome) -> dict[str, Any]:
    return case_view(outcome.case, outcome.position)


@dataclass
class CommandRunner:
    """Runs one aggregate command for the calling clinician."""

    principal: Principal
    svc: Services
    request: Request
    key: str | None
    expected: int | None

    def context(self, body: BaseModel | None) -> CommandContext:
        return CommandContext(
            recorded_by=self.principal.actor,
            today=datetime.now(UTC).date(),
            command_id=self.key or uuid4().hex,
            on_behalf_of=getattr(body, "on_behalf_of", None),
        )

    def claim(self, body: BaseModel | None, status: int) -> IdempotencyClaim | None:
        if self.key is None:
            return None
        request = {
            "method": self.request.method,
            "path": self.request.url.path,
            "body": None if body is None else body.model_dump(mode="json"),
        }
        digest = hashlib.sha256(
            json.dumps(request, sort_keys=True).encode()
        ).hexdigest()
        return IdempotencyClaim(self.principal.home_clinic, self.key, digest, status)

    def run(
        self,
        case_id: UUID,
        body: BaseModel | None,
        action: Action,
        *,
        status: int = 200,
        render: Render = default_render,
    ) -> JSONResponse:
        ctx = self.context(body)
        outcome = self.svc.cases.execute(
            case_id,
            lambda case: action(case, ctx),
            clinics=self.principal.clinics,
            expected_version=self.expected,
            idempotency=self.claim(body, status),
            name=self.command_name(),
        )
        return answer(outcome, render(outcome), outcome.status or status)

    def command_name(self) -> str:
        """The route's name; a transition is named by its own name (start_middle)."""
        transition = self.request.path_params.get("name")
        if isinstance(transition, str):
            return transition
        route = self.request.scope.get("route")
        return str(getattr(route, "name", None) or "command")


def answer(outcome: Outcome, content: dict[str, Any], status: int) -> JSONResponse:
    headers = {"ETag": f'"{outcome.case.version}"'}
    if outcome.position is not None:
        headers["X-Position"] = str(outcome.position)
    return JSONResponse(content, status_code=status, headers=headers)


def command_runner(
    principal: Clinician,
    svc: ServicesDep,
    request: Request,
    key: Annotated[str | None, Depends(idempotency_key)],
    expected: Annotated[int | None, Depends(expected_version)],
) -> CommandRunner:
    return CommandRunner(principal, svc, request, key, expected)


Runner = Annotated[CommandRunner, Depends(command_runner)]
