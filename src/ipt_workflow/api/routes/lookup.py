"""Finding cases: by client_ref through the keyed index, or listed newest first."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from ipt_workflow.api import list_schemas as ls
from ipt_workflow.api.access import CaseReadsDep
from ipt_workflow.api.deps import Principal, Reader, ReadYourWrites, ServicesDep
from ipt_workflow.api.errors import ApiError, responses
from ipt_workflow.api.schemas import Identifier
from ipt_workflow.application.lookup import CaseSummary, cases_of_client
from ipt_workflow.domain.codes import Phase
from projections.case_list import CaseListView, Cursor

router = APIRouter(prefix="/cases", tags=["cases"])

LIST_ERRORS = responses(401, 403, 422, 429, 503)
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00")


def encode_cursor(row: dict[str, Any]) -> str:
    """An opaque cursor after this row: its opening time and id."""
    raw = f"{row['opened_at']}|{row['id']}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        opened_at, case_id = raw.split("|")
        if not _MOMENT.fullmatch(opened_at):
            raise ValueError(opened_at)
        return opened_at, str(UUID(case_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(
            422,
            "validation_failed",
            "`after` is not a cursor this list gave.",
            errors=[{"field": "after", "message": "pass a `next_after` unchanged"}],
        ) from None


LookupScope = Annotated[
    Identifier | None,
    Query(
        description="one of the token's clinics (required with client_ref for a "
        "token of every clinic)"
    ),
]


def clinics_in_scope(principal: Principal, clinic_id: str | None) -> list[str] | None:
    """The clinics to search: the token's, narrowed to `clinic_id` if given."""
    if clinic_id is None:
        return None if principal.clinics is None else sorted(principal.clinics)
    if principal.clinics is None or clinic_id in principal.clinics:
        return [clinic_id]
    return []  # another clinic's cases are not revealed, not even as a 403


@router.get(
    "",
    response_model=ls.CaseList,
    responses=LIST_ERRORS,
)
def list_cases(
    principal: Reader,
    svc: ServicesDep,
    _: ReadYourWrites,
    reads: CaseReadsDep,
    client_ref: Annotated[
        Identifier | None,
        Query(description="exactly this client's cases, ended ones too"),
    ] = None,
    clinician_id: Annotated[
        Identifier | None, Query(description="only cases assigned to this clinician")
    ] = None,
    phase: Annotated[
        Phase | None, Query(description="only cases in this phase")
    ] = None,
    clinic_id: LookupScope = None,
    after: Annotated[
        str | None, Query(max_length=200, description="the `next_after` of a page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """Cases newest first: a client's by client_ref, or by clinician and phase."""
    cursor = None if after is None else decode_cursor(after)
    clinics = clinics_in_scope(principal, clinic_id)
    if client_ref is not None:
        if clinics is None:
            raise ApiError(
                422,
                "validation_failed",
                "A token of every clinic must name the clinic of the client.",
                errors=[{"field": "clinic_id", "message": "required with client_ref"}],
            )
        rows = [
            _row(s)
            for clinic in clinics
            for s in cases_of_client(svc.cases, clinic, client_ref)
        ]
        rows = _filtered(rows, clinician_id, phase, cursor, limit + 1)
        for row in rows[:limit]:
            reads.record_id(UUID(row["id"]), row["clinic_id"])
    else:
        view = svc.read_models.views["case_list"] if svc.read_models else None
        if not isinstance(view, CaseListView):
            raise ApiError(503, "unavailable", "The read models are not configured.")
        rows = view.newest(
            clinics,
            clinician_id=clinician_id,
            phase=None if phase is None else phase.value,
            after=cursor,
            limit=limit + 1,
        )
    page: dict[str, Any] = {"items": [_public(r) for r in rows[:limit]]}
    if len(rows) > limit:
        page["next_after"] = encode_cursor(rows[limit - 1])
    return JSONResponse(page)


def _row(summary: CaseSummary) -> dict[str, Any]:
    return dict(vars(summary))


def _filtered(
    rows: list[dict[str, Any]],
    clinician_id: str | None,
    phase: Phase | None,
    cursor: Cursor | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The read model's order and filters, applied to a client's few cases."""
    rows = sorted(rows, key=lambda r: (r["opened_at"], r["id"]), reverse=True)
    return [
        r
        for r in rows
        if (clinician_id is None or r["clinician_id"] == clinician_id)
        and (phase is None or r["phase"] == phase)
        and (cursor is None or (r["opened_at"], r["id"]) < cursor)
    ][:limit]


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ls.CaseSummary.model_fields}
