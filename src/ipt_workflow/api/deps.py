"""Dependencies of the routes: who is calling, what they may do, and the services.

They are `async` unless they block: FastAPI runs a sync dependency in a thread of
its pool, a hop per dependency that cost more than the work (D94). The one lookup
that can block (a token not in the cache) goes to a thread itself.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Header, Query, Request

from ipt_workflow.api.errors import ApiError
from ipt_workflow.composition.bootstrap import Services, is_loopback
from ipt_workflow.composition.readmodels import ReadModels
from ipt_workflow.ops.ratelimit import RateLimited
from ipt_workflow.storage.keys import ApiKey, Role

IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")
MAX_AUTHORIZATION = 128
"""Longer than `Bearer ` and any token this service issues: it cannot be ours."""
WAIT_POLL_SECONDS = (0.05, 0.5)
"""A `min_position` wait polls from every 50 ms, backing off to every 500 ms."""


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


async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


def client_address(request: Request) -> str:
    """Who failed authentication: the peer's address (a proxy's, behind one)."""
    return request.client.host if request.client else "unknown"


def key_of(svc: Services, request: Request, token: str) -> ApiKey | None:
    """The key a token stands for, as every entry point (API, console) accepts it.

    Past the address's budget of failed authentications an unknown token is not
    looked up (D36); dev tokens count only between loopback addresses (finding 6).
    """
    address = client_address(request)
    known, key = svc.cached_key(token)
    if not known:
        if svc.auth_failures.exhausted(address) and not svc.recently_good(token):
            return None
        key = svc.find_key(token)
    if key is not None and key.key_id.startswith("dev-"):
        server = request.scope.get("server") or ("", 0)
        if not (is_loopback(address) and is_loopback(str(server[0]))):
            return None
    return key


def failed_authentication(svc: Services, request: Request) -> RateLimited | None:
    """Spend one failure from the address's budget; RateLimited once it is spent."""
    wait = svc.auth_failures.take(client_address(request))
    if wait is None:
        return None
    return RateLimited(wait, "Too many failed authentications from this address.")


async def authenticate(
    svc: ServicesDep,
    request: Request,
    authorization: Annotated[
        str | None, Header(description="`Bearer <token>`", include_in_schema=False)
    ] = None,
) -> Principal:
    def refuse(detail: str) -> ApiError | RateLimited:
        # Every failure spends from the address's budget; once it is spent the
        # answer is 429, and unknown tokens are not even looked up.
        return failed_authentication(svc, request) or _unauthorized(detail)

    if not authorization:
        raise refuse("An Authorization: Bearer <token> header is required.")
    if len(authorization) > MAX_AUTHORIZATION:
        raise refuse("This token is unknown or revoked.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise refuse("The Authorization header must be `Bearer <token>`.")
    if svc.cached_key(token)[0]:
        key = key_of(svc, request, token)
    else:  # a database lookup: off the event loop (D94)
        key = await anyio.to_thread.run_sync(key_of, svc, request, token)
    if key is None:
        raise refuse("This token is unknown or revoked.")
    svc.limiter.check(key.key_id)
    return Principal(
        actor=key.actor,
        role=key.role,
        clinics=None if key.all_clinics else frozenset(key.clinics),
        token_id=key.key_id,
    )


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets only these roles through, before any lookup."""

    async def check(
        principal: Annotated[Principal, Depends(authenticate)],
    ) -> Principal:
        if principal.role not in roles:
            allowed = " or ".join(roles)
            raise ApiError(403, "forbidden", f"This route is for the {allowed} role.")
        return principal

    return check


Clinician = Annotated[Principal, Depends(require("clinician"))]
Reader = Annotated[Principal, Depends(require("clinician", "auditor"))]
Auditor = Annotated[Principal, Depends(require("auditor"))]
AnyRole = Annotated[Principal, Depends(authenticate)]


async def idempotency_key(
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


async def expected_version(
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


async def wait_for_position(
    models: ReadModels, position: int, names: list[str] | None = None
) -> None:
    """Wait until the read models reach `position`, holding no thread meanwhile.

    A position beyond the head of the log is refused at once (422): no write of the
    caller can have it. Each check runs briefly in a worker thread; between checks
    the request waits on the event loop, so waiting readers cannot starve the
    thread pool that every other route runs on.
    """
    head = await anyio.to_thread.run_sync(models.head)
    if position > head:
        raise ApiError(
            422,
            "position_not_reached",
            "No event has this position yet: min_position must be a position "
            "an answer gave you.",
            errors=[{"field": "min_position", "message": "beyond the log"}],
        )
    wanted = list(names or models.views)
    deadline = time.monotonic() + models.wait_seconds
    pause = WAIT_POLL_SECONDS[0]
    while True:
        wanted = await anyio.to_thread.run_sync(models.not_reached, position, wanted)
        if not wanted:
            return
        if time.monotonic() >= deadline:
            which = f"{wanted[0]} read model has" if names else "read models have"
            raise ApiError(
                503,
                "projection_lagging",
                f"The {which} not reached position {position} "
                f"in {models.wait_seconds:g} s.",
                headers={"Retry-After": "1"},
            )
        await anyio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, WAIT_POLL_SECONDS[1])


async def read_your_writes(
    svc: ServicesDep,
    min_position: Annotated[
        int | None,
        Query(ge=0, description="wait up to 5 s until the read models reach it"),
    ] = None,
) -> None:
    """Honour `?min_position=` on a read: wait for the projections, or 503."""
    if min_position is None or svc.read_models is None:
        return
    await wait_for_position(svc.read_models, min_position)


ReadYourWrites = Annotated[None, Depends(read_your_writes)]
