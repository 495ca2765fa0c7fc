"""A page per problem code, so that every problem's `type` resolves (RFC 9457)."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from ipt_workflow.api.errors import TITLES, ApiError, responses

router = APIRouter(prefix="/problems", tags=["problems"])

PAGES: dict[str, tuple[str, str, str]] = {
    "bad_request": (
        "400",
        "The request could not be read: the body is not valid JSON or UTF-8, or a "
        "header (Idempotency-Key, If-Match, If-None-Match, Content-Length) is "
        "malformed.",
        "Fix the request; sending it again unchanged gives the same answer.",
    ),
    "unauthorized": (
        "401",
        "No `Authorization: Bearer <token>` header was sent, or the token is "
        "unknown or revoked.",
        "Send a valid token (`ipt-workflow keys add` makes one).",
    ),
    "forbidden": (
        "403",
        "The token's role may not use this route. Roles are checked before any "
        "case is looked up.",
        "Use a token of a role the route names (see the API guide's role table).",
    ),
    "not_found": (
        "404",
        "No such path, case or resource, or a case of a clinic the token does not "
        "cover (its existence is not revealed).",
        "Check the id and the token's clinics.",
    ),
    "method_not_allowed": (
        "405",
        "The path exists but not with this method; `Allow` lists the methods it takes.",
        "Use one of the methods in `Allow`.",
    ),
    "guard_failed": (
        "409",
        "A rule of the protocol refuses the command. `violations` lists every "
        "unmet rule with a stable `rule` code and a sentence for a clinician. "
        "Nothing was written.",
        "Do what the violations ask (the case's `transitions` say the same ahead "
        "of time), then send the command again.",
    ),
    "conflict": (
        "409",
        "An open case already has this client_ref with other opening data. "
        "`Location` and `case_id` name it.",
        "Read that case, or end it before opening a new one for the client.",
    ),
    "version_mismatch": (
        "412",
        "`If-Match` names a version the case is no longer at; `ETag` gives the "
        "current one. Nothing was written.",
        "Read the case again and decide whether the command still applies.",
    ),
    "payload_too_large": (
        "413",
        "The body is over 1 MiB.",
        "Send a smaller body; no command needs anywhere near that much.",
    ),
    "validation_failed": (
        "422",
        "The body or query does not fit the schema: a wrong type, an unknown code, "
        "a value out of range, an unknown field. `errors` lists every bad field.",
        "Fix the fields named in `errors`.",
    ),
    "idempotency_key_reused": (
        "422",
        "The Idempotency-Key was used before for a different request (another "
        "path or body).",
        "Use a new key for a new request; reuse a key only to retry the same one.",
    ),
    "too_many_subscriptions": (
        "409",
        "The clinic already has the most live webhook subscriptions allowed (25).",
        "Delete a subscription the clinic no longer needs, then subscribe again.",
    ),
    "erasure_unsupported": (
        "409",
        "The case was written before cases had data keys of their own: its data "
        "is encrypted under the key ring and cannot be shredded alone.",
        "Keep the case until its retention ends under the clinic's other "
        "procedures; `docs/api-guide.md` (Retention) says why there is no migration.",
    ),
    "case_erased": (
        "410",
        "The case was erased: its data key was destroyed, and only its receipt "
        "(who, when, basis), phase and version remain.",
        "Read `GET /cases/{id}` for the receipt; nothing else can be exported.",
    ),
    "position_not_reached": (
        "422",
        "`min_position` is beyond the log: no answer could have given that "
        "position, so waiting would never end.",
        "Pass the `position` of an answer you received.",
    ),
    "rate_limited": (
        "429",
        "The token has used up its requests for now (see the X-RateLimit-* "
        "headers of every answer), or this client address failed authentication "
        "too often.",
        "Wait `Retry-After` seconds, then retry (with a valid token).",
    ),
    "headers_too_large": (
        "431",
        "The request line and headers together are over 32 KiB.",
        "Send shorter headers; no request of the API needs anywhere near that much.",
    ),
    "unavailable": (
        "503",
        "The database cannot be reached, a case changed too often while the "
        "command was decided, or stored records need a key the server lacks. "
        "Nothing was written.",
        "Retry after `Retry-After` seconds, with the same Idempotency-Key.",
    ),
    "projection_lagging": (
        "503",
        "A `min_position` wait ran out: the read models have not reached that "
        "position within 5 s.",
        "Retry after `Retry-After` seconds.",
    ),
    "internal_error": (
        "500",
        "An unexpected error. It is a defect of the service; nothing was written.",
        "Report it with the answer's X-Request-ID.",
    ),
}
"""Per code: the status it comes with, what it means, and what to do about it."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{code}: {title}</title></head>
<body><h1>{title}</h1>
<p>Problem code <code>{code}</code>, HTTP status {status}.</p>
<h2>What it means</h2><p>{meaning}</p>
<h2>What to do</h2><p>{action}</p>
<p><a href="/problems">Every problem code</a></p>
</body></html>
"""

HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {"schema": {"type": "string"}}}},
}


@router.get(
    "", response_class=HTMLResponse, responses=HTML, openapi_extra={"security": []}
)
def list_problems() -> HTMLResponse:
    """Every problem code the API answers with, each linking to its page."""
    items = "".join(
        f'<li><a href="/problems/{code}"><code>{code}</code></a>: '
        f"{escape(TITLES[code])}</li>"
        for code in PAGES
    )
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Problem codes</title></head><body><h1>Problem codes</h1>"
        f"<ul>{items}</ul></body></html>"
    )


@router.get(
    "/{code}",
    response_class=HTMLResponse,
    responses={**HTML, **responses(404)},
    openapi_extra={"security": []},
)
def problem_page(code: str) -> HTMLResponse:
    """What one problem code means and what a caller can do about it."""
    if code not in PAGES:
        raise ApiError(404, "not_found", "No such problem code.")
    status, meaning, action = PAGES[code]
    return HTMLResponse(
        PAGE.format(
            code=code,
            title=escape(TITLES[code]),
            status=status,
            meaning=escape(meaning),
            action=escape(action),
        )
    )
