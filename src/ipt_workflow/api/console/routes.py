"""The console's pages: sign-in, the operations board, and the auditors' case pages.

Server-rendered HTML; htmx (vendored, under static/) refreshes the board's panels and
swaps the replayed case under the version slider. Every page reads through the same
services and scoping as the API; every read of a case is in the access log first.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ipt_workflow.api.access import CaseReads
from ipt_workflow.api.console import charts, panels
from ipt_workflow.api.console.auth import (
    AuditViewer,
    ConfigDep,
    ConsoleError,
    OpsViewer,
    SignInRequired,
    Viewer,
    ViewerDep,
    check_csrf,
    session_cookie,
    signin_cookie,
    viewer,
)
from ipt_workflow.api.console.lookup import cases_of_client
from ipt_workflow.api.deps import ServicesDep, failed_authentication, key_of
from ipt_workflow.api.fhir import fhir_bundle
from ipt_workflow.api.views import case_view, history_item
from ipt_workflow.application import auditing as audit
from ipt_workflow.application.cases import CaseNotFoundError
from ipt_workflow.composition.bootstrap import Services
from ipt_workflow.composition.console import ConsoleConfig
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.inputs import IDENTIFIER
from ipt_workflow.domain.protocols import PROTOCOLS
from ipt_workflow.ops.console_sessions import SESSION_SECONDS, new_nonce
from ipt_workflow.storage.access_log import AccessEntry

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix="/console", include_in_schema=False)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
"""Only our own assets, never framed; pages may hold client data, so never cached."""

PANELS = ("board", "alerts", "outcomes", "projections", "webhooks")
MAX_TOKEN = 512
CASE_LIST_LIMIT = 50
ACCESS_SHOWN = 50
FHIR = "application/fhir+json"
VERSION = re.compile(r"[0-9]{1,12}")


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    response: HTMLResponse = templates.TemplateResponse(
        request,
        name,
        context,
        status_code=status,
        headers={**SECURITY_HEADERS, **(headers or {})},
    )
    return response


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _clinics_label(who: Viewer) -> str:
    clinics = who.principal.clinics
    return "every clinic" if clinics is None else ", ".join(sorted(clinics))


def page_context(who: Viewer, section: str, **context: Any) -> dict[str, Any]:
    return {
        "viewer": who,
        "section": section,
        "clinics_label": _clinics_label(who),
        "refreshed_at": datetime.now(UTC).strftime("%H:%M:%S UTC"),
        **context,
    }


# --- signing in and out ---------------------------------------------------------------


def _sign_in_page(
    request: Request,
    cfg: ConsoleConfig,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    nonce = new_nonce()
    response = render(
        request,
        "sign_in.html",
        {
            "csrf": cfg.sealer.csrf_token("sign-in:" + nonce),
            "error": error,
            "notice": notice,
            "viewer": None,
        },
        status=status,
        headers=headers,
    )
    response.set_cookie(
        signin_cookie(cfg),
        nonce,
        max_age=3600,
        path="/",
        secure=cfg.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("", response_class=HTMLResponse)
def home(request: Request, svc: ServicesDep, cfg: ConfigDep) -> Response:
    """The console's first page: the sections of the viewer's role."""
    try:
        who = viewer(request, svc, cfg)
    except SignInRequired:
        return RedirectResponse("/console/sign-in", status_code=303)
    return render(request, "home.html", page_context(who, "home"))


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(
    request: Request, cfg: ConfigDep, signed_out: str | None = None
) -> Response:
    """The sign-in form: paste an API token."""
    notice = "You are signed out." if signed_out is not None else None
    return _sign_in_page(request, cfg, notice=notice)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    svc: ServicesDep,
    cfg: ConfigDep,
    token: Annotated[str | None, Form()] = None,
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """Exchange a token for a session cookie."""
    nonce = request.cookies.get(signin_cookie(cfg))
    binding = None if nonce is None else "sign-in:" + nonce
    if not cfg.sealer.csrf_valid(binding, csrf_token):
        return _sign_in_page(
            request,
            cfg,
            status=403,
            error="The sign-in form had expired or came from another page. "
            "It has been renewed: paste your token again.",
        )
    pasted = (token or "").strip()
    if not pasted:
        return _sign_in_page(
            request, cfg, status=422, error="Paste your API token into the field."
        )
    if len(pasted) > MAX_TOKEN or not pasted.isascii() or not pasted.isprintable():
        return _sign_in_page(
            request,
            cfg,
            status=422,
            error=f"That is not an API token (tokens are at most {MAX_TOKEN} "
            "printable characters).",
        )
    if key_of(svc, request, pasted) is None:
        # A failed sign-in spends from the address's budget like any (D36).
        limited = failed_authentication(svc, request)
        if limited is not None:
            return _sign_in_page(
                request,
                cfg,
                status=429,
                error="Too many failed sign-ins from this address; wait a moment.",
                headers={"Retry-After": str(limited.retry_after)},
            )
        return _sign_in_page(
            request, cfg, status=401, error="This token is unknown or revoked."
        )
    value, _ = cfg.sealer.seal(pasted, time.time())
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(
        session_cookie(cfg),
        value,
        max_age=SESSION_SECONDS,
        path="/",
        secure=cfg.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(signin_cookie(cfg), path="/")
    return response


@router.post("/sign-out")
def sign_out(
    who: ViewerDep,
    cfg: ConfigDep,
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """End the session in this browser."""
    check_csrf(who, csrf_token, cfg)
    response = RedirectResponse("/console/sign-in?signed_out", status_code=303)
    response.delete_cookie(
        session_cookie(cfg),
        path="/",
        secure=cfg.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


# --- operations -----------------------------------------------------------------------


def _read_models(svc: Services) -> Any:
    if svc.read_models is None:
        raise ConsoleError(
            503, "Read models unavailable", "The read models are not configured here."
        )
    return svc.read_models


def _panel(name: str, request: Request, svc: Services, who: Viewer) -> dict[str, Any]:
    models = _read_models(svc)
    principal = who.principal
    if name == "board":
        return {"board": panels.phase_board(models, principal), "phases": panels.PHASES}
    if name == "alerts":
        today = datetime.now(UTC).date()
        rows = panels.alerts_by_kind_and_age(models, principal, today)
        return {
            "alerts": rows,
            "buckets": [b[0] for b in panels.AGE_BUCKETS],
            "alerts_chart": charts.alert_chart(rows),
            "as_of": today.isoformat(),
        }
    if name == "outcomes":
        found = panels.outcomes(models, principal)
        return {"outcomes": found, "outcomes_chart": charts.outcome_chart(found)}
    if name == "projections":
        supervisor = getattr(request.app.state, "projections", None)
        running = None if supervisor is None else supervisor.running()
        return {"projections": panels.projection_status(models, svc.settings, running)}
    if name == "webhooks":
        return {
            "webhooks": panels.webhook_status(svc.webhook_status, principal.clinics)
        }
    raise ConsoleError(404, "Not found", f"There is no panel {name!r}.")


@router.get("/ops", response_class=HTMLResponse)
def operations(
    request: Request, who: OpsViewer, svc: ServicesDep, cfg: ConfigDep
) -> Response:
    """The operations board: every panel, each refreshing itself."""
    context = page_context(who, "ops", refresh=cfg.refresh_seconds, panels=PANELS)
    for name in PANELS:
        context |= _panel(name, request, svc, who)
    return render(request, "ops.html", context)


@router.get("/ops/panels/{name}", response_class=HTMLResponse)
def panel(
    name: str, request: Request, who: OpsViewer, svc: ServicesDep, cfg: ConfigDep
) -> Response:
    """One panel of the board, as htmx asks for it every few seconds."""
    if name not in PANELS:
        raise ConsoleError(404, "Not found", f"There is no panel {name!r}.")
    context = page_context(who, "ops", refresh=cfg.refresh_seconds, panels=PANELS)
    context |= _panel(name, request, svc, who)
    return render(request, f"panels/{name}.html", context)


# --- cases ----------------------------------------------------------------------------


def _case_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise ConsoleError(
            404, "Not found", "That is not a case id (a UUID such as 6f1c…-…)."
        ) from None


def _load(svc: Services, who: Viewer, case_id: UUID) -> TherapyCase:
    try:
        return svc.cases.get_case(case_id, clinics=who.principal.clinics)
    except CaseNotFoundError:
        raise ConsoleError(
            404, "No such case", "No case with this id in your clinics."
        ) from None


def _reads(request: Request, svc: Services, who: Viewer) -> CaseReads:
    if svc.access is None:
        raise RuntimeError("no access log is configured")
    route = getattr(request.scope.get("route"), "path", request.url.path)
    return CaseReads(who.principal, svc.access, route)


def _version(text: str | None, case: TherapyCase) -> int:
    if text is None or text == "":
        return case.version
    if not VERSION.fullmatch(text) or not 1 <= int(text) <= case.version:
        raise ConsoleError(
            422,
            "No such version",
            f"The version must be a whole number from 1 to {case.version}.",
        )
    return int(text)


def _as_of(
    svc: Services, who: Viewer, case: TherapyCase, version: int
) -> dict[str, Any]:
    then = (
        case
        if version == case.version
        else audit.replay(
            svc.cases, case.id, version=version, clinics=who.principal.clinics
        )
    )
    event = svc.cases.case_events(case.id, after_version=version - 1, limit=1)[0]
    return {
        "then": case_view(then, None),
        "then_event": history_item(event),
        "version": version,
        "latest": case.version,
    }


def latest_reads(
    svc: Services, who: Viewer, case_id: UUID, shown: int = ACCESS_SHOWN
) -> tuple[list[AccessEntry], int]:
    """The newest reads of a case (newest first) and how many there are in all."""
    assert svc.access is not None
    newest: list[AccessEntry] = []
    total, after = 0, 0
    while True:
        page = svc.access.query(
            clinics=who.principal.clinics, case_id=case_id, after=after, limit=1000
        )
        total += len(page)
        newest = [*newest, *page][-shown:]
        if len(page) < 1000:
            break
        after = page[-1].id
    return list(reversed(newest)), total


@router.get("/cases", response_class=HTMLResponse)
def cases(
    request: Request,
    who: AuditViewer,
    svc: ServicesDep,
    clinic: str | None = None,
    protocol: str | None = None,
    phase: str | None = None,
    after: str | None = None,
) -> Response:
    """Find a case; from the board, the cases of a clinic, protocol and phase."""
    listing = None
    next_after = None
    if clinic or protocol or phase:
        errors = []
        if clinic is None or not IDENTIFIER.fullmatch(clinic):
            errors.append("clinic must be a clinic id")
        if protocol is None or protocol not in PROTOCOLS:
            errors.append(f"protocol must be one of {', '.join(PROTOCOLS)}")
        if phase is None or phase not in panels.PHASES:
            errors.append(f"phase must be one of {', '.join(panels.PHASES)}")
        if after is not None and not _is_uuid(after):
            errors.append("after must be a case id")
        if errors:
            raise ConsoleError(422, "Not a listing", "; ".join(errors) + ".")
        assert clinic is not None and protocol is not None and phase is not None
        listing, next_after = _listing(svc, who, clinic, protocol, phase, after)
    return render(
        request,
        "cases.html",
        page_context(
            who,
            "cases",
            listing=listing,
            next_after=next_after,
            clinic=clinic,
            protocol=protocol,
            phase=phase,
            form={},
            errors={},
        ),
    )


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def _listing(
    svc: Services,
    who: Viewer,
    clinic: str,
    protocol: str,
    phase: str,
    after: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    scope = who.principal.clinics
    if scope is not None and clinic not in scope:
        return [], None
    view = _read_models(svc).views["caseload"]
    rows = view.rows(
        [clinic],
        equals={"protocol": [protocol], "phase": [phase]},
        after=after,
        limit=CASE_LIST_LIMIT + 1,
    )
    page = rows[:CASE_LIST_LIMIT]
    return page, page[-1]["case_id"] if len(rows) > CASE_LIST_LIMIT else None


@router.post("/cases/find", response_class=HTMLResponse)
def find_case(
    request: Request,
    who: AuditViewer,
    svc: ServicesDep,
    cfg: ConfigDep,
    csrf_token: Annotated[str | None, Form()] = None,
    case_id: Annotated[str | None, Form()] = None,
    client_ref: Annotated[str | None, Form()] = None,
    clinic: Annotated[str | None, Form()] = None,
) -> Response:
    """Go to a case by its id, or by a client's reference at a clinic."""
    check_csrf(who, csrf_token, cfg)
    given_id = (case_id or "").strip()
    ref = (client_ref or "").strip()
    clinic_id = (clinic or "").strip()
    scope = who.principal.clinics
    if not clinic_id and scope is not None and len(scope) == 1:
        clinic_id = next(iter(scope))
    errors: dict[str, str] = {}
    if given_id and ref:
        errors["case_id"] = "Give a case id or a client reference, not both."
    elif not given_id and not ref:
        errors["case_id"] = "Give a case id, or a client reference and its clinic."
    elif given_id and not _is_uuid(given_id):
        errors["case_id"] = "A case id is a UUID, such as 3f2b9c1e-…-…."
    elif ref:
        if not IDENTIFIER.fullmatch(ref):
            errors["client_ref"] = (
                "A client reference is 1–64 characters of A–Z a–z 0–9 . _ : -."
            )
        if not IDENTIFIER.fullmatch(clinic_id):
            errors["clinic"] = "Name the clinic of the client (a clinic id)."
        elif scope is not None and clinic_id not in scope:
            errors["clinic"] = "That clinic is not one of yours."
    found: list[UUID] = []
    status = 422
    if not errors:
        if given_id:
            found = [UUID(given_id)]
            try:
                _load(svc, who, found[0])
            except ConsoleError:  # unknown, or of a clinic not the viewer's
                status = 404
                errors["case_id"] = "No case with this id in your clinics."
        else:
            found = cases_of_client(svc.cases, clinic_id, ref)
            if not found:
                status = 404
                errors["client_ref"] = (
                    "No open case of this client reference at this clinic."
                )
    if errors:
        form = {"case_id": given_id, "client_ref": ref, "clinic": clinic_id}
        return render(
            request,
            "cases.html",
            page_context(who, "cases", listing=None, form=form, errors=errors),
            status=status,
        )
    return RedirectResponse(f"/console/cases/{found[0]}", status_code=303)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def casepage_context(
    case_id: str,
    request: Request,
    who: AuditViewer,
    svc: ServicesDep,
    cfg: ConfigDep,
    version: str | None = None,
) -> Response:
    """A case: as it is and as it was, its events, checks, measures and readers."""
    case = _load(svc, who, _case_id(case_id))
    shown_version = _version(version, case)
    _reads(request, svc, who).record(case)  # before anything of the case is sent
    events = svc.cases.case_events(case.id)[: case.version]
    reads, reads_total = latest_reads(svc, who, case.id)
    check = audit.verify_case(svc.cases, case.id, list(cfg.checkpoint_keys))
    context = page_context(
        who,
        "cases",
        case=case_view(case, svc.cases.position_of(case.id, case.version)),
        timeline=[history_item(e) for e in events],
        check=check,
        trajectories=charts.trajectories([dict(m) for m in case.measures]),
        reads=reads,
        reads_total=reads_total,
        **_as_of(svc, who, case, shown_version),
    )
    return render(request, "case.html", context)


@router.get("/cases/{case_id}/replay", response_class=HTMLResponse)
def replay(
    case_id: str,
    request: Request,
    who: AuditViewer,
    svc: ServicesDep,
    version: str | None = None,
) -> Response:
    """The case as it was at a version: the part under the slider."""
    case = _load(svc, who, _case_id(case_id))
    shown_version = _version(version, case)
    _reads(request, svc, who).record(case)
    context = page_context(
        who, "cases", case={"id": str(case.id)}, **_as_of(svc, who, case, shown_version)
    )
    return render(request, "panels/as_of.html", context)


@router.get("/cases/{case_id}/fhir")
def fhir(
    case_id: str, request: Request, who: AuditViewer, svc: ServicesDep
) -> Response:
    """The case as an HL7 FHIR R4 Bundle, as a file to save."""
    case = _load(svc, who, _case_id(case_id))
    events = svc.cases.case_events(case.id)[: case.version]
    _reads(request, svc, who).record(case)
    bundle = fhir_bundle(case, events, timestamp=datetime.now(UTC))
    return JSONResponse(
        bundle,
        media_type=FHIR,
        headers={
            "Content-Disposition": f'attachment; filename="case-{case.id}.fhir.json"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/{rest:path}", response_class=HTMLResponse)
def unknown(rest: str) -> Response:  # noqa: ARG001 (the path is the route's)
    """Any other path under /console."""
    raise ConsoleError(404, "Not found", "There is no such page in the console.")
