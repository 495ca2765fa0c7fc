"""Dependencies of the routes: who is calling, what they may do, and the services."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from ipt_workflow.api.errors import ApiError
from ipt_workflow.composition.bootstrap import Services
from ipt_workflow.storage.keys import Role

IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    actor: str
    role: Role
    clinics: frozenset[str] | None
    """None: every clinic."""
    token_id: str

    @property
    def home_clinic(self) -> str:
        """A clinician's one clinic, where its idempotency keys and new cases live."""
        assert self.clinics is not None and len(self.clinics) == 1
        return next(iter(self.clinics))


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


def authenticate(
    svc: ServicesDep,
    authorization: Annotated[
        str | None, Header(description="`Bearer <token>`", include_in_schema=False)
    ] = None,
) -> Principal:
    if not authorization:
        raise _unauthorized("An Authorization: Bearer <token> header is required.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("The Authorization header must be `Bearer <token>`.")
    key = svc.find_key(token.strip())
    if key is None:
        raise _unauthorized("This token is unknown or revoked.")
    svc.limiter.check(key.key_id)
    return Principal(
        actor=key.actor,
        role=key.role,
        clinics=None if key.all_clinics else frozenset(key.clinics),
        token_id=key.key_id,
    )


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency that lets only these roles through, before any lookup."""

    def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in roles:
            allowed = " or ".join(roles)
            raise ApiError(403, "forbidden", f"This route is for the {allowed} role.")
        return principal

    return check


Clinician = Annotated[Principal, Depends(require("clinician"))]
Reader = Annotated[Principal, Depends(require("clinician", "auditor"))]
Auditor = Annotated[Principal, Depends(require("auditor"))]
AnyRole = Annotated[Principal, Depends(authenticate)]


def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="1–200 printable characters; a retry with the same key and "
            "body returns the first answer",
        ),
    ] = None,
) -> str | None:
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(
            400, "bad_request", "Idempotency-Key must be 1–200 printable characters."
        )
    return key


def expected_version(
    if_match: Annotated[
        str | None,
        Header(alias="If-Match", description='the case version as a strong ETag: "12"'),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    match = re.fullmatch(r'\s*"(\d{1,12})"\s*', if_match)
    if match is None:
        raise ApiError(
            400, "bad_request", 'If-Match must be a strong ETag such as "12".'
        )
    return int(match.group(1))


def read_your_writes(
    svc: ServicesDep,
    min_position: Annotated[
        int | None,
        Query(ge=0, description="wait up to 5 s until the read models reach it"),
    ] = None,
) -> None:
    """Honour `?min_position=` on a read: wait for the projections, or 503."""
    if min_position is None or svc.read_models is None:
        return
    if not svc.read_models.wait(min_position):
        raise ApiError(
            503,
            "projection_lagging",
            f"The read models have not reached position {min_position} in 5 s.",
            headers={"Retry-After": "1"},
        )


ReadYourWrites = Annotated[None, Depends(read_your_writes)]
