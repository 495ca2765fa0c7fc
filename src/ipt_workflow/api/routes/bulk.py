"""FHIR for systems: the CapabilityStatement and bulk export (FHIR Bulk Data 2.0).

Kick-off (`GET /fhir/$export`, `Prefer: respond-async`) answers 202 at once with
the status URL in `Content-Location`; the export runs in a thread of the worker,
one case at a time into NDJSON files; polling answers 202 with `X-Progress` until
a 200 lists the files. Only the token that started an export may poll it or read
its files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import AwareDatetime

from ipt_workflow import __version__
from ipt_workflow.api.access import CaseReads, CaseReadsDep
from ipt_workflow.api.deps import Auditor, ServicesDep
from ipt_workflow.api.errors import ApiError, responses
from ipt_workflow.api.fhir import (
    MEDIA_TYPE,
    RESOURCE_TYPES,
    by_type,
    capability_statement,
    case_resources,
    deleted_bundle,
    erased_references,
)
from ipt_workflow.api.routes.lookup import LookupScope, clinics_in_scope
from ipt_workflow.composition.bootstrap import Services
from ipt_workflow.domain import events
from ipt_workflow.storage.audit import AuditRecorder
from ipt_workflow.storage.case_cipher import ErasedEvent
from ipt_workflow.storage.exports import (
    DELETED,
    ExportBusyError,
    ExportJob,
    JobWriter,
)
from projections.case_list import CaseListView

router = APIRouter(prefix="/fhir", tags=["fhir"])

NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = {NDJSON, "application/ndjson", "ndjson"}
PAGE = 100
FEED_PAGE = 1000
"""Log events read a query when looking for erasures (only receipts are decoded)."""
IN_FLIGHT = timedelta(seconds=5)
"""Longer than a command takes from stamping its events to committing them."""
CATCH_UP_SECONDS = 25.0
"""How long an export waits for the case list to include the log's head."""
ERRORS = responses(400, 401, 403, 404, 422, 429, 503)

FHIR_JSON: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA_TYPE: {"schema": {"type": "object"}}}}
}


@router.get(
    "/metadata",
    response_class=JSONResponse,
    openapi_extra={"security": []},
    responses={
        200: {
            "description": "An HL7 FHIR R4 CapabilityStatement",
            "content": {
                MEDIA_TYPE: {
                    "schema": {"type": "object"},
                    "example": {
                        "resourceType": "CapabilityStatement",
                        "fhirVersion": "4.0.1",
                    },
                }
            },
        }
    },
)
def metadata() -> JSONResponse:
    """What the FHIR export offers: resources, profiles, the bulk export operation."""
    today = datetime.now(UTC).date().isoformat()
    return JSONResponse(capability_statement(__version__, today), media_type=MEDIA_TYPE)


@router.get(
    "/$export",
    status_code=202,
    response_class=Response,
    responses={
        202: {
            "description": "Accepted: poll the URL in Content-Location",
            "headers": {
                "Content-Location": {
                    "description": "The export's status URL",
                    "schema": {"type": "string"},
                }
            },
        },
        **ERRORS,
    },
)
def export(
    request: Request,
    principal: Auditor,
    svc: ServicesDep,
    reads: CaseReadsDep,
    prefer: Annotated[
        str | None,
        Header(description="`respond-async` (required by FHIR Bulk Data)"),
    ] = None,
    since: Annotated[
        AwareDatetime | None,
        Query(
            alias="_since",
            description="only cases changed after this instant (RFC 3339)",
        ),
    ] = None,
    types: Annotated[
        str | None,
        Query(
            alias="_type",
            max_length=200,
            description="comma-separated resource types (default: all)",
        ),
    ] = None,
    output_format: Annotated[
        str | None,
        Query(alias="_outputFormat", max_length=64, description="NDJSON only"),
    ] = None,
    clinic_id: LookupScope = None,
) -> Response:
    """Start a bulk export of the cases of the token's clinics (FHIR Bulk Data)."""
    if prefer is None or "respond-async" not in prefer.lower():
        raise ApiError(400, "bad_request", "Send Prefer: respond-async.")
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise _invalid("_outputFormat", f"only {NDJSON} is offered")
    wanted = _types(types)
    if svc.exports is None or svc.read_models is None:
        raise ApiError(503, "unavailable", "Exports are not configured here.")
    view = svc.read_models.views["case_list"]
    if not isinstance(view, CaseListView):
        raise ApiError(503, "unavailable", "The read models are not configured.")
    clinics = clinics_in_scope(principal, clinic_id)
    # A command stamps its events before it commits: reported a little early, the
    # time is one before which every change is in the log's head, so a later export
    # `_since` it misses nothing (and may repeat the last seconds: D74).
    started = (datetime.now(UTC) - IN_FLIGHT).isoformat(timespec="microseconds")
    head = svc.cases.recorder.max_notification_id() or 0
    produce = _producer(svc, reads, view, clinics, since, wanted, head)
    try:
        job = svc.exports.start(principal.token_id, str(request.url), started, produce)
    except ExportBusyError:
        raise ApiError(
            429,
            "rate_limited",
            "As many exports run as the server allows; try again later.",
            headers={"Retry-After": "30"},
        ) from None
    except OSError:
        # The export folder is missing or not writable: an operations problem.
        raise ApiError(
            503,
            "unavailable",
            "Exports cannot be written here now (IPT_EXPORT_DIR).",
            headers={"Retry-After": "60"},
        ) from None
    location = str(request.url_for("export_status", job_id=job.id))
    return Response(status_code=202, headers={"Content-Location": location})


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(
        422,
        "validation_failed",
        f"{field}: {message}.",
        errors=[{"field": field, "message": message}],
    )


def _types(types: str | None) -> set[str] | None:
    if types is None:
        return None
    wanted = {t.strip() for t in types.split(",") if t.strip()}
    if not wanted or not wanted <= set(RESOURCE_TYPES):
        raise _invalid("_type", "one or more of " + ", ".join(RESOURCE_TYPES))
    return wanted


def _producer(
    svc: Services,
    reads: CaseReads,
    view: CaseListView,
    clinics: list[str] | None,
    since: datetime | None,
    types: set[str] | None,
    head: int,
) -> Callable[[JobWriter], None]:
    """The export: every case of the clinics, a page of the case list at a time."""
    after_time = (
        None
        if since is None
        else since.astimezone(UTC).isoformat(timespec="microseconds")
    )

    def produce(writer: JobWriter) -> None:
        # Every case written before the kick-off must be in the list, or a later
        # `_since` export would miss its change.
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while svc.read_models is not None and not svc.read_models.reached(
            "case_list", head
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("the case list did not catch up")
            writer.beat()
            time.sleep(0.1)
        cursor = None
        while True:
            rows = view.newest(clinics, after=cursor, limit=PAGE)
            for row in rows:
                if after_time is None or row["updated_at"] > after_time:
                    _write_case(svc, reads, writer, UUID(row["id"]), types)
            if len(rows) < PAGE:
                break
            cursor = (rows[-1]["opened_at"], rows[-1]["id"])
        if after_time is not None:
            _write_deleted(svc, writer, clinics, after_time, types, head)

    return produce


def _write_deleted(
    svc: Services,
    writer: JobWriter,
    clinics: list[str] | None,
    after_time: str,
    types: set[str] | None,
    head: int,
) -> None:
    """A Bundle of DELETEs for each case of the clinics erased after `_since` (up to
    the kick-off's head): the ids its resources had, nothing else (D112)."""
    recorder = cast(AuditRecorder, cast(Any, svc.cases.recorder))
    after = 0
    while after < head:
        page = recorder.select_feed(after, FEED_PAGE, clinics)
        for note, _ in page.events:
            if note.id > head or note.topic != events.CaseErased.TOPIC:
                continue
            case_id = UUID(str(note.originator_id))
            receipt = svc.cases.mapper.to_domain_event(note)
            erased_at = cast(Any, receipt).timestamp.astimezone(UTC)
            if erased_at.isoformat(timespec="microseconds") <= after_time:
                continue
            kinds = [
                e.erased_type if isinstance(e, ErasedEvent) else type(e).__name__
                for e in svc.cases.case_events(case_id)
            ]
            refs = [
                r
                for r in erased_references(case_id, kinds)
                if types is None or r.split("/", 1)[0] in types
            ]
            if refs:
                writer.write_deleted(deleted_bundle(refs))
        writer.beat()
        if page.scanned_to <= after:
            return
        after = page.scanned_to


def _write_case(
    svc: Services,
    reads: CaseReads,
    writer: JobWriter,
    case_id: UUID,
    types: set[str] | None,
) -> None:
    case = svc.cases.get_case(case_id)
    if case.erased is not None:  # since the case list was read: nothing to export
        writer.case_done()
        return
    events = svc.cases.case_events(case_id)[: case.version]
    reads.record(case)
    for resource in case_resources(case, events, refer=by_type):
        if types is None or resource.kind in types:
            writer.write(resource.kind, resource.body)
    writer.case_done()


def _job(svc: ServicesDep, principal: Auditor, job_id: str) -> ExportJob:
    job = None if svc.exports is None else svc.exports.get(job_id, principal.token_id)
    if job is None:
        raise ApiError(404, "not_found", "No such export (they are kept for an hour).")
    return job


@router.get(
    "/bulkstatus/{job_id}",
    name="export_status",
    responses={
        200: {"description": "The export is complete: its NDJSON files"},
        202: {
            "description": "Still running",
            "headers": {
                "X-Progress": {
                    "description": "How far the export has come",
                    "schema": {"type": "string"},
                },
                "Retry-After": {
                    "description": "Seconds to wait before polling again",
                    "schema": {"type": "integer"},
                },
            },
        },
        500: {"description": "The export failed (an OperationOutcome); start anew"},
        **ERRORS,
    },
)
def export_status(
    request: Request, principal: Auditor, svc: ServicesDep, job_id: str
) -> Response:
    """Poll an export: 202 with progress while it runs, then 200 with its files."""
    job = _job(svc, principal, job_id)
    if job.running:
        progress = f"{job.cases_done} cases exported"
        return Response(
            status_code=202, headers={"X-Progress": progress, "Retry-After": "2"}
        )
    if job.status != "completed":
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "fatal",
                    "code": "exception",
                    "diagnostics": f"The export failed ({job.error}); start anew.",
                }
            ],
        }
        return JSONResponse(outcome, status_code=500, media_type=MEDIA_TYPE)
    output = [
        {
            "type": kind,
            "url": str(request.url_for("export_file", job_id=job.id, kind=kind)),
            "count": count,
        }
        for kind, count in job.outputs.items()
    ]
    deleted = (
        [
            {
                "type": "Bundle",
                "url": str(request.url_for("export_file", job_id=job.id, kind=DELETED)),
                "count": job.deleted,
            }
        ]
        if job.deleted
        else []
    )
    manifest = {
        "transactionTime": job.transaction_time,
        "request": job.request,
        "requiresAccessToken": True,
        "output": output,
        "deleted": deleted,
        "error": [],
    }
    keep = 0.0 if svc.exports is None else svc.exports.keep_seconds
    expires = datetime.fromtimestamp(job.created + keep, UTC)
    return JSONResponse(
        manifest, headers={"Expires": expires.strftime("%a, %d %b %Y %H:%M:%S GMT")}
    )


@router.delete("/bulkstatus/{job_id}", status_code=202, responses=ERRORS)
def cancel_export(principal: Auditor, svc: ServicesDep, job_id: str) -> Response:
    """Cancel an export and delete its files."""
    _job(svc, principal, job_id)
    assert svc.exports is not None
    svc.exports.cancel(job_id, principal.token_id)
    return Response(status_code=202)


@router.get(
    "/bulkfiles/{job_id}/{kind}.ndjson",
    name="export_file",
    response_class=FileResponse,
    responses={200: {"content": {NDJSON: {"schema": {"type": "string"}}}}, **ERRORS},
)
def export_file(
    principal: Auditor, svc: ServicesDep, job_id: str, kind: str
) -> FileResponse:
    """One NDJSON file of a completed export: a resource per line."""
    path = (
        None
        if svc.exports is None
        else svc.exports.file(job_id, principal.token_id, kind)
    )
    if path is None:
        raise ApiError(404, "not_found", "No such export file.")
    return FileResponse(path, media_type=NDJSON)
