"""The auditor routes of api.md: replay, verify, FHIR, the feed, the access log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from ipt_workflow.api import audit_schemas as a
from ipt_workflow.api import schemas as s
from ipt_workflow.api.access import CaseReadsDep
from ipt_workflow.api.deps import Auditor, Reader, ServicesDep
from ipt_workflow.api.errors import ApiError, responses
from ipt_workflow.api.fhir import MEDIA_TYPE as FHIR_MEDIA_TYPE
from ipt_workflow.api.fhir import fhir_bundle
from ipt_workflow.api.views import case_view, erased_view, history_item
from ipt_workflow.application import auditing as audit
from ipt_workflow.storage.audit import parse_checkpoint_keys

cases_router = APIRouter(prefix="/cases", tags=["audit"])
router = APIRouter(tags=["audit"])

READ_ERRORS = responses(401, 403, 404, 422, 429, 503)
LIST_ERRORS = responses(401, 403, 422, 429, 503)
FHIR = "application/fhir+json"


@cases_router.get("/{case_id}/replay", response_model=s.CaseView, responses=READ_ERRORS)
def replay(
    case_id: UUID,
    principal: Auditor,
    svc: ServicesDep,
    reads: CaseReadsDep,
    version: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    at: Annotated[
        AwareDatetime | None, Query(description="an RFC 3339 time with its offset")
    ] = None,
) -> JSONResponse:
    """The case as it was at a version, or at a time: exactly one of the two."""
    if (version is None) == (at is None):
        raise ApiError(
            422,
            "validation_failed",
            "Give exactly one of version and at.",
            errors=[{"field": "version", "message": "give version or at, not both"}],
        )
    case = audit.replay(
        svc.cases, case_id, version=version, at=at, clinics=principal.clinics
    )
    reads.record(case)
    position = svc.cases.position_of(case.id, case.version)
    current = case if version is None else svc.cases.get_case(case_id)
    if current.erased is not None:
        # No earlier state of an erased case can be rebuilt: its data is gone.
        position = svc.cases.position_of(current.id, current.version)
        return JSONResponse(
            erased_view(current, position), headers={"ETag": f'"{current.version}"'}
        )
    return JSONResponse(
        case_view(case, position), headers={"ETag": f'"{case.version}"'}
    )


@cases_router.get(
    "/{case_id}/verify", response_model=a.Verification, responses=READ_ERRORS
)
def verify(
    case_id: UUID, principal: Auditor, svc: ServicesDep, reads: CaseReadsDep
) -> dict[str, Any]:
    """Recompute the case's hash chain, compare its snapshot and the checkpoints."""
    # Scoped by the clinic index: a tampered case may no longer load.
    reads.record_id(case_id, audit.case_clinic(svc.cases, case_id, principal.clinics))
    key = svc.settings.checkpoint_key
    keys = [] if key is None else parse_checkpoint_keys(key.get_secret_value())
    check = audit.verify_case(svc.cases, case_id, keys)
    return {
        "intact": check.intact,
        "events_checked": check.events_checked,
        "first_broken_version": check.first_broken_version,
        "snapshot_version": check.snapshot_version,
        "checkpoint": check.checkpoint,
        "problems": check.problems,
        "erased": check.erased,
    }


@cases_router.get(
    "/{case_id}/fhir",
    response_class=JSONResponse,
    responses={
        200: {
            "description": "An HL7 FHIR R4 Bundle of the case: `collection`, or "
            "`transaction` with a conditional update per entry",
            "content": {
                FHIR: {
                    "schema": {"type": "object"},
                    "example": {
                        "resourceType": "Bundle",
                        "type": "transaction",
                        "entry": [
                            {
                                "fullUrl": "urn:uuid:7d0c4c1e-5f1a-5d3e-9b1e-"
                                "0c1f2a3b4c5d",
                                "resource": {"resourceType": "EpisodeOfCare"},
                                "request": {
                                    "method": "PUT",
                                    "url": "EpisodeOfCare?identifier=https://"
                                    "ipt-workflow.example.org/fhir/NamingSystem/"
                                    "resource-id%7C7d0c4c1e-5f1a-5d3e-9b1e-0c1f2a3b4c5d",
                                },
                            }
                        ],
                    },
                }
            },
        },
        **READ_ERRORS,
    },
)
def fhir(
    case_id: UUID,
    principal: Reader,
    svc: ServicesDep,
    reads: CaseReadsDep,
    bundle_type: Annotated[
        Literal["collection", "transaction"],
        Query(
            alias="type",
            description="`transaction` to load into a FHIR server (conditional PUTs)",
        ),
    ] = "collection",
) -> JSONResponse:
    """The case as an HL7 FHIR R4 Bundle: episode, focus, plans, sessions, measures."""
    case = svc.cases.get_case(case_id, clinics=principal.clinics)
    reads.record(case)
    if case.erased is not None:
        raise ApiError(
            410,
            "case_erased",
            f"The case was erased on {case.erased['erased_at']}: nothing of it "
            "can be exported.",
            erasure=case.erased,
        )
    events = svc.cases.case_events(case_id, after_version=0)[: case.version]
    bundle = fhir_bundle(case, events, timestamp=datetime.now(UTC), kind=bundle_type)
    return JSONResponse(bundle, media_type=FHIR_MEDIA_TYPE)


@router.get("/events", response_model=a.FeedPage, responses=LIST_ERRORS)
def events(
    principal: Auditor,
    svc: ServicesDep,
    reads: CaseReadsDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The events of the caller's clinics in log order; positions may skip.

    Every case with an event on the page is recorded in the access log, once per
    page, before the page is sent. `next_after` may pass positions of other
    clinics' events even when the page is empty: poll again until it stops moving.
    """
    page = audit.feed(svc.cases, after=after, limit=limit, clinics=principal.clinics)
    seen: dict[UUID, str] = {}
    for item in page.items:
        seen.setdefault(item.event.originator_id, item.clinic_id)
    reads.record_ids(list(seen.items()))
    return {
        "items": [
            {
                "position": item.position,
                "case_id": str(item.event.originator_id),
                **history_item(item.event),
            }
            for item in page.items
        ],
        "next_after": page.next_after,
    }


@router.get("/audit/access", response_model=a.AccessPage, responses=LIST_ERRORS)
def access(
    principal: Auditor,
    svc: ServicesDep,
    case_id: UUID | None = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """Who read which case of the caller's clinics, when, through which route."""
    if svc.access is None:
        raise RuntimeError("no access log is configured")
    found = svc.access.query(
        clinics=principal.clinics,
        case_id=case_id,
        actor=actor,
        after=after,
        limit=limit + 1,
    )
    page: dict[str, Any] = {
        "items": [
            {
                "id": e.id,
                "at": e.at,
                "actor": e.actor,
                "role": e.role,
                "case_id": str(e.case_id),
                "route": e.route,
            }
            for e in found[:limit]
        ]
    }
    if len(found) > limit:  # absent on the last page, as on every list (D75)
        page["next_after"] = found[limit - 1].id
    return JSONResponse(page)
