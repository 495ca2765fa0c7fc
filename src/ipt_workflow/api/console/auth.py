"""Who is looking at the console, what they may see, and the forms' CSRF check.

A page is open to a role when the API lets that role make every read the page shows
(D81): the operations board reads what `/projections/*` gives any role; the case
pages read replays, checks and the access log, which are the auditor's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ipt_workflow.api.deps import Principal, ServicesDep, key_of
from ipt_workflow.composition.console import ConsoleConfig
from ipt_workflow.ops.console_sessions import ConsoleSession
from ipt_workflow.ops.ratelimit import RateLimited
from ipt_workflow.storage.keys import Role

SECTIONS: dict[str, tuple[Role, ...]] = {
    "ops": ("clinician", "auditor", "ops"),
    "cases": ("auditor",),
}
"""The console's sections and the roles that may open them."""

SECTION_TITLES = {"ops": "Operations", "cases": "Cases"}


class ConsoleError(Exception):
    """Raised by a console page for an answer shown as an HTML page."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        viewer: Viewer | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers or {}
        self.viewer = viewer
        """Who was refused, when known: the page keeps their navigation."""


class SignInRequired(ConsoleError):
    """Raised when a page is asked for without a valid session."""

    def __init__(self, detail: str = "Sign in to use the console.") -> None:
        super().__init__(401, "Sign in", detail)


def config(request: Request) -> ConsoleConfig:
    found: ConsoleConfig = request.app.state.console
    return found


ConfigDep = Annotated[ConsoleConfig, Depends(config)]


def session_cookie(config: ConsoleConfig) -> str:
    """`__Host-` binds the cookie to this host over HTTPS; `--dev` serves HTTP."""
    return "__Host-ipt_console" if config.secure_cookies else "ipt_console"


def signin_cookie(config: ConsoleConfig) -> str:
    if config.secure_cookies:
        return "__Host-ipt_console_signin"
    return "ipt_console_signin"


@dataclass(frozen=True)
class Viewer:
    """A signed-in person: the API principal of their token, and their session."""

    principal: Principal
    session: ConsoleSession
    csrf: str

    @property
    def sections(self) -> list[tuple[str, str]]:
        """(path segment, title) of every section this viewer may open."""
        return [
            (name, SECTION_TITLES[name])
            for name, roles in SECTIONS.items()
            if self.principal.role in roles
        ]

    def may(self, section: str) -> bool:
        return self.principal.role in SECTIONS[section]


def viewer(request: Request, svc: ServicesDep, cfg: ConfigDep) -> Viewer:
    """The signed-in viewer; the token is looked up on every request."""
    session = cfg.sealer.open(request.cookies.get(session_cookie(cfg)), time.time())
    if session is None:
        raise SignInRequired()
    key = key_of(svc, request, session.token)
    if key is None:
        raise SignInRequired("The token of this session is revoked; sign in again.")
    try:
        svc.limiter.check(key.key_id)
    except RateLimited as limited:
        raise ConsoleError(
            429,
            "Too many requests",
            "Too many requests for this token; wait a moment.",
            headers={"Retry-After": str(limited.retry_after)},
        ) from None
    principal = Principal(
        actor=key.actor,
        role=key.role,
        clinics=None if key.all_clinics else frozenset(key.clinics),
        token_id=key.key_id,
    )
    return Viewer(principal, session, cfg.sealer.csrf_token(session.session_id))


ViewerDep = Annotated[Viewer, Depends(viewer)]


def section(name: str) -> Callable[..., Viewer]:
    """A dependency that lets only the roles of a section through."""

    def check(who: ViewerDep) -> Viewer:
        if not who.may(name):
            roles = " or ".join(SECTIONS[name])
            raise ConsoleError(
                403,
                "Not for this role",
                f"The {SECTION_TITLES[name]} pages are for the {roles} role; "
                f"you are signed in as {who.principal.role}.",
                viewer=who,
            )
        return who

    return check


OpsViewer = Annotated[Viewer, Depends(section("ops"))]
AuditViewer = Annotated[Viewer, Depends(section("cases"))]


def check_csrf(who: Viewer, given: str | None, cfg: ConsoleConfig) -> None:
    """Every form of a signed-in page carries the session's CSRF token."""
    if not cfg.sealer.csrf_valid(who.session.session_id, given):
        raise ConsoleError(
            403,
            "Form expired",
            "This form is not from your current session; reload the page and "
            "send it again.",
        )
