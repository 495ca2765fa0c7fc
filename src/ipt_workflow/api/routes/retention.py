"""The admin's routes on a case's record: retention, legal holds, erasure (api.md)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ipt_workflow.api import retention_schemas as r
from ipt_workflow.api.deps import (
    Principal,
    ServicesDep,
    idempotency_key,
    require,
)
from ipt_workflow.api.errors import ApiError, responses
from ipt_workflow.application.cases import IdempotencyClaim, Outcome
from ipt_workflow.application.erasure import Retention
from ipt_workflow.composition.bootstrap import Services
from ipt_workflow.domain.commands import CommandContext
from ipt_workflow.domain.erasure import EraseCase, LiftLegalHold, PlaceLegalHold

router = APIRouter(prefix="/cases", tags=["retention"])
Admin = Annotated[Principal, Depends(require("admin"))]
Key = Annotated[str | None, Depends(idempotency_key)]
ERRORS = responses(400, 401, 403, 404, 409, 422, 429, 503)


def _retention(svc: Services) -> Retention:
    if svc.retention is None:
        raise ApiError(503, "unavailable", "Retention is not configured.")
    return svc.retention


def _context(principal: Principal, key: str | None) -> CommandContext:
    return CommandContext(
        recorded_by=principal.actor,
        today=datetime.now(UTC).date(),
        command_id=key or uuid4().hex,
    )


def _claim(
    request: Request,
    principal: Principal,
    key: str | None,
    case_id: UUID,
    body: BaseModel,
) -> IdempotencyClaim | None:
    """An admin's Idempotency-Key, scoped to its token (an admin may span clinics)."""
    if key is None:
        return None
    asked = {
        "method": request.method,
        "path": request.url.path.replace(
            str(request.path_params["case_id"]), str(case_id)
        ),
        "body": body.model_dump(mode="json"),
    }
    digest = hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()
    return IdempotencyClaim(f"admin:{principal.token_id}", key, digest, 200)


def _answer(retention: Retention, outcome: Outcome, status: int) -> JSONResponse:
    headers = {"ETag": f'"{outcome.case.version}"'}
    if outcome.position is not None:
        headers["X-Position"] = str(outcome.position)
    if outcome.result.replayed:
        headers["Idempotent-Replayed"] = "true"
    content: dict[str, Any] = retention.status(outcome.case).as_dict()
    return JSONResponse(content, status_code=status, headers=headers)


@router.get("/{case_id}/retention", response_model=r.RetentionView, responses=ERRORS)
def retention(case_id: UUID, principal: Admin, svc: ServicesDep) -> dict[str, Any]:
    """When the case may be erased, whether it is held, and whether it was erased."""
    return _retention(svc).status_of(case_id, principal.clinics).as_dict()


@router.post("/{case_id}/legal-hold", response_model=r.RetentionView, responses=ERRORS)
def place_legal_hold(
    case_id: UUID,
    body: r.LegalHoldBody,
    principal: Admin,
    svc: ServicesDep,
    request: Request,
    key: Key,
) -> JSONResponse:
    """Suspend the case's retention: it may not be erased until the hold is lifted."""
    held = _retention(svc)
    outcome = held.place_hold(
        case_id,
        PlaceLegalHold.parse(reason=body.reason),
        _context(principal, key),
        clinics=principal.clinics,
        idempotency=_claim(request, principal, key, case_id, body),
    )
    return _answer(held, outcome, 200)


@router.delete(
    "/{case_id}/legal-hold", response_model=r.RetentionView, responses=ERRORS
)
def lift_legal_hold(
    case_id: UUID,
    body: r.LegalHoldBody,
    principal: Admin,
    svc: ServicesDep,
    request: Request,
    key: Key,
) -> JSONResponse:
    """Lift the case's legal hold; its retention period applies again."""
    held = _retention(svc)
    outcome = held.place_hold(
        case_id,
        LiftLegalHold.parse(reason=body.reason),
        _context(principal, key),
        clinics=principal.clinics,
        idempotency=_claim(request, principal, key, case_id, body),
    )
    return _answer(held, outcome, 200)


@router.post(
    "/{case_id}/erasure",
    status_code=202,
    response_model=r.RetentionView,
    responses=ERRORS,
)
def erase(
    case_id: UUID,
    body: r.ErasureBody,
    principal: Admin,
    svc: ServicesDep,
    request: Request,
    key: Key,
) -> JSONResponse:
    """Destroy the case's data key and keep a receipt (who, when, basis).

    Refused (409) while the case is open, under a legal hold, or before its
    retention ends unless the basis is `data_subject_request`; a case written
    before cases had keys of their own answers `erasure_unsupported`. Erasing an
    erased case again answers its receipt. The read models drop the case as they
    reach the receipt (hence 202).
    """
    erasing = _retention(svc)
    outcome = erasing.erase(
        case_id,
        EraseCase.parse(basis=body.basis.value, reason=body.reason),
        _context(principal, key),
        clinics=principal.clinics,
        idempotency=_claim(request, principal, key, case_id, body),
    )
    return _answer(erasing, outcome, 202)
