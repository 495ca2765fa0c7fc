"""The one place that turns errors into RFC 9457 problem+json answers (api.md)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import psycopg
import psycopg_pool
import structlog
from eventsourcing.persistence import (
    InterfaceError,
    MapperDeserialisationError,
    OperationalError,
    ProgrammingError,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ipt_workflow.application.auditing import VersionNotFoundError
from ipt_workflow.application.cases import (
    BusyError,
    CaseConflictError,
    CaseNotFoundError,
    IdempotencyKeyReusedError,
    VersionMismatchError,
)
from ipt_workflow.application.erasure import ErasureUnsupportedError
from ipt_workflow.application.webhooks import TooManySubscriptionsError
from ipt_workflow.domain.errors import CommandIdReused, GuardFailed, InvalidInput
from ipt_workflow.ops.ratelimit import RateLimited
from ipt_workflow.storage.access_group import AccessLogBusyError
from ipt_workflow.storage.cipher import UnknownCipherKeyError
from ipt_workflow.storage.webhooks import KeyReusedError, SubscriptionNotFoundError

PROBLEM = "application/problem+json"
MAX_LISTED_ERRORS = 20
"""A body with thousands of wrong fields is answered with the first ones only."""
log = structlog.get_logger("ipt_workflow.http")

TITLES = {
    "bad_request": "The request is malformed",
    "unauthorized": "A valid API token is required",
    "forbidden": "This role may not use this route",
    "not_found": "Not found",
    "method_not_allowed": "This method is not allowed here",
    "guard_failed": "A rule of the protocol refuses this command",
    "conflict": "An open case already has this client_ref with other data",
    "version_mismatch": "The case has moved on from the version in If-Match",
    "payload_too_large": "The body is larger than 1 MiB",
    "validation_failed": "The request does not fit the schema",
    "idempotency_key_reused": "This Idempotency-Key was used for another request",
    "rate_limited": "Too many requests for this token",
    "unavailable": "The service cannot reach its database; nothing was written",
    "projection_lagging": "The read models have not caught up yet",
    "position_not_reached": "No event has this position yet",
    "headers_too_large": "The request's headers are too large",
    "internal_error": "An unexpected error; nothing was written",
    "too_many_subscriptions": "The clinic has the most webhook subscriptions allowed",
    "erasure_unsupported": "This case's data cannot be shredded",
    "case_erased": "The case was erased",
}


class ApiError(Exception):
    """Raised by the API layer for an answer that is not the domain's to give."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers = headers or {}
        self.extra = extra


def problem(
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": TITLES.get(code, code),
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "header", "path")]
    field = ""
    for p in parts:
        field += f"[{p}]" if p.isdigit() else (f".{p}" if field else p)
    return field or "body"


def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") in ("json_invalid", "json_type") for e in errors):
        return problem(400, "bad_request", "The body is not valid JSON.")
    if any(e.get("loc", ("",))[0] == "path" for e in errors):
        return problem(404, "not_found", "No such resource.")
    fields = [
        {"field": _field(e.get("loc", ())), "message": str(e.get("msg"))}
        for e in errors[:MAX_LISTED_ERRORS]
    ]
    return problem(
        422,
        "validation_failed",
        _count(len(errors), "do not fit the schema"),
        errors=fields,
    )


def _count(n: int, what: str) -> str:
    if n > MAX_LISTED_ERRORS:
        return f"{n} field(s) {what}; the first {MAX_LISTED_ERRORS} are listed."
    return f"{n} field(s) {what}."


def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return problem(404, "not_found", "No such resource.")
    if exc.status_code == 405:
        return problem(
            405,
            "method_not_allowed",
            "This method is not allowed here.",
            headers=dict(exc.headers or {}),
        )
    code = "bad_request" if exc.status_code == 400 else "internal_error"
    return problem(exc.status_code, code, str(exc.detail))


def _api(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem(exc.status, exc.code, exc.detail, exc.headers, **exc.extra)


def _guard(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GuardFailed)
    violations = [{"rule": v.rule, "message": v.message} for v in exc.violations]
    n = len(violations)
    return problem(
        409,
        "guard_failed",
        f"{n} rule{'s are' if n > 1 else ' is'} not met.",
        violations=violations,
    )


def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    errors = [
        {"field": e.field, "message": e.message} for e in exc.errors[:MAX_LISTED_ERRORS]
    ]
    return problem(
        422,
        "validation_failed",
        _count(len(exc.errors), "are not valid"),
        errors=errors,
    )


def _not_found(_: Request, _exc: Exception) -> JSONResponse:
    return problem(404, "not_found", "No such case.")


def _no_version(_: Request, exc: Exception) -> JSONResponse:
    return problem(404, "not_found", f"{str(exc).capitalize()}.")


def _conflict(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CaseConflictError)
    return problem(
        409,
        "conflict",
        "An open case already has this client_ref with other data.",
        headers={"Location": f"/cases/{exc.case_id}"},
        case_id=str(exc.case_id),
    )


def _version(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VersionMismatchError)
    return problem(
        412,
        "version_mismatch",
        f"The case is at version {exc.current}.",
        headers={"ETag": f'"{exc.current}"'},
    )


def _reused(_: Request, _exc: Exception) -> JSONResponse:
    return problem(
        422,
        "idempotency_key_reused",
        "This Idempotency-Key was already used with a different request.",
    )


def _busy(_: Request, _exc: Exception) -> JSONResponse:
    return problem(
        503,
        "unavailable",
        "The case changed too often while this command was decided; retry.",
        headers={"Retry-After": "1"},
    )


def _unavailable(_: Request, _exc: Exception) -> JSONResponse:
    return problem(
        503,
        "unavailable",
        "The database cannot be reached; nothing was written.",
        headers={"Retry-After": "5"},
    )


def _rate_limited(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)
    return problem(
        429,
        "rate_limited",
        exc.detail,
        headers={"Retry-After": str(exc.retry_after)},
    )


def _undecryptable(_: Request, exc: Exception) -> JSONResponse:
    unknown = exc.__cause__
    fingerprint = (
        unknown.fingerprint if isinstance(unknown, UnknownCipherKeyError) else None
    )
    # The operator's line: which key is missing. The client hears only that the
    # server is misconfigured, and that nothing was written.
    log.error(
        "cipher_key_unknown" if fingerprint else "payload_undecryptable",
        key_fingerprint=fingerprint,
    )
    return problem(
        503,
        "unavailable",
        "The stored records cannot be decrypted with this server's keys "
        "(IPT_CIPHER_KEY lacks the key they were written with); nothing was written.",
        headers={"Retry-After": "60"},
    )


def _no_subscription(_: Request, _exc: Exception) -> JSONResponse:
    return problem(404, "not_found", "No such subscription.")


def _too_many(_: Request, exc: Exception) -> JSONResponse:
    return problem(409, "too_many_subscriptions", f"{str(exc).capitalize()}.")


def _unsupported(_: Request, exc: Exception) -> JSONResponse:
    return problem(409, "erasure_unsupported", f"{str(exc).capitalize()}.")


def _internal(_: Request, _exc: Exception) -> JSONResponse:
    return problem(500, "internal_error", "An unexpected error; nothing was written.")


def _privilege(exc: BaseException) -> psycopg.errors.InsufficientPrivilege | None:
    """The database's refusal of a privilege, raised as is or wrapped by the library."""
    for error in (exc, exc.__cause__, exc.__context__):
        if isinstance(error, psycopg.errors.InsufficientPrivilege):
            return error
    return None


def _programming(request: Request, exc: Exception) -> JSONResponse:
    refused = _privilege(exc)
    if refused is None:
        return _internal(request, exc)
    # The operator's line names the privilege (a table, never client data); the
    # role lacks a grant `ipt-workflow db grants` prints (D110).
    log.error("database_privilege_missing", detail=refused.diag.message_primary)
    return problem(
        503,
        "unavailable",
        "The database refused this server a privilege it needs; nothing was written.",
        headers={"Retry-After": "60"},
    )


DATABASE_DOWN: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,
    sqlite3.OperationalError,
    AccessLogBusyError,
)


def install(app: FastAPI) -> None:
    """Register every mapping on the app."""
    handlers: list[tuple[type[Exception], Any]] = [
        (RequestValidationError, _validation),
        (StarletteHTTPException, _http),
        (ApiError, _api),
        (GuardFailed, _guard),
        (InvalidInput, _invalid),
        (CaseNotFoundError, _not_found),
        (VersionNotFoundError, _no_version),
        (CaseConflictError, _conflict),
        (VersionMismatchError, _version),
        (CommandIdReused, _reused),
        (IdempotencyKeyReusedError, _reused),
        (KeyReusedError, _reused),
        (SubscriptionNotFoundError, _no_subscription),
        (TooManySubscriptionsError, _too_many),
        (BusyError, _busy),
        (ErasureUnsupportedError, _unsupported),
        (RateLimited, _rate_limited),
        (MapperDeserialisationError, _undecryptable),
        *[(kind, _unavailable) for kind in DATABASE_DOWN],
        (ProgrammingError, _programming),
        (psycopg.ProgrammingError, _programming),
        (Exception, _internal),
    ]
    for kind, handler in handlers:
        app.add_exception_handler(kind, handler)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem answers a route can give."""
    described = {
        400: "Malformed JSON, invalid UTF-8 or a malformed header",
        401: "No token, or an unknown token",
        403: "This role may not use this route",
        404: "Unknown case or subscription, or one of another clinic",
        409: "A rule refuses the command (guard_failed), conflict, or "
        "too_many_subscriptions",
        412: "If-Match names a version that is not the current one",
        413: "The body is over 1 MiB",
        422: "The body does not fit the schema, or the Idempotency-Key was reused",
        429: "Too many requests for this token",
        503: "The database cannot be reached, or the read models lag",
    }
    return {
        s: {
            "description": described[s],
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }
