"""The app factory of the HTTP API: routes, error mapping and middleware around the
services the composition root builds. Nothing is built at import."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ipt_workflow import __version__
from ipt_workflow.api import console, errors, openapi
from ipt_workflow.api.ratelimit_headers import RateLimitHeaders
from ipt_workflow.api.routes import (
    audit,
    bulk,
    cases,
    health,
    lookup,
    problems,
    projections,
    protocols,
    retention,
    subscriptions,
)
from ipt_workflow.composition.bootstrap import (
    DEV_FLAG,
    SERVE_PID,
    Services,
    bootstrap,
    production_problems,
    start_background,
)
from ipt_workflow.composition.console import build_console
from ipt_workflow.composition.settings import Settings, settings_or_exit
from ipt_workflow.ops.logging import RequestContext, configure_logging, register_secrets
from ipt_workflow.ops.metrics import worker_exiting

MAX_BODY = 1024 * 1024
MAX_JSON_ITEMS = 2000
"""Object members and array items in one JSON body: no command takes near this many
(the largest, an inventory of 50 relationships, has about 500)."""
ORPHAN_GRACE_SECONDS = 3.0
"""A worker whose `serve` parent is gone gets this long to finish, then exits."""
lifecycle = structlog.get_logger("ipt_workflow.lifecycle")

DESCRIPTION = """
Treatment records of Interpersonal Psychotherapy (IPT) cases, kept to the protocol.

Every error is `application/problem+json` with a machine-readable `code`; a refused
command lists every unmet rule in `violations`. Send `Authorization: Bearer <token>`.
"""


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    """The API over the configured store; the lifespan has the composition root
    build the services (unless given) and start the background threads."""
    configure_logging(settings.log_format, settings.log_level)
    register_secrets(*settings.secret_values())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = services or bootstrap(settings)
        app.state.services = built
        background = start_background(settings, built)
        app.state.projections = background.projections
        lifecycle.info(
            "api_started",
            backend=settings.backend,
            projections=background.projections is not None,
        )
        try:
            yield
        finally:
            # uvicorn gets here once in-flight requests have finished (or the grace
            # period ran out): stop the runners after their current event, then close.
            lifecycle.info("api_stopping")
            background.stop()
            worker_exiting()
            if services is None:
                built.close()
            lifecycle.info("api_stopped")

    # The interactive docs (/docs, /redoc) load their scripts from a pinned package,
    # never from a CDN, so they work offline and behind a strict firewall.
    app = FastAPIOffline(
        title="ipt-workflow",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        static_url="/docs-assets",
        generate_unique_id_function=openapi.operation_id,
    )
    errors.install(app)
    app.include_router(lookup.router)
    app.include_router(cases.router)
    app.include_router(protocols.router)
    app.include_router(projections.router)
    app.include_router(audit.cases_router)
    app.include_router(audit.router)
    app.include_router(retention.router)
    app.include_router(subscriptions.router)
    app.include_router(subscriptions.status_router)
    app.include_router(bulk.router)
    app.include_router(health.router)
    app.include_router(problems.router)
    console.install(app, build_console(settings))
    app.add_middleware(JsonShape)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(BodyLimit)
    app.add_middleware(
        RequestContext, pools=lambda: health.service_pools(app.state.services)
    )
    openapi.install(app, _problem_and_security)
    return app


def app_from_environment() -> FastAPI:
    """The factory uvicorn calls in each worker process.

    It refuses what `ipt-workflow serve` refuses, however uvicorn was started:
    outside development mode (which needs `serve --dev`) the keys must be set and
    an API key must exist.
    """
    settings = settings_or_exit()
    problems = production_problems(settings, dev_flag=os.environ.get(DEV_FLAG) == "1")
    if problems:
        for problem in problems:
            sys.stderr.write(f"refusing to start: {problem}\n")
        raise SystemExit(2)
    exit_with_parent()
    return create_app(settings)


def exit_with_parent() -> None:
    """In a worker of `serve --workers N`: stop when the serve process is gone.

    uvicorn's workers outlive a parent killed with SIGKILL, keeping the port and
    their connections. A thread notices the new parent within a quarter second,
    asks uvicorn to stop (SIGTERM: requests in flight may finish) and ends the
    process ORPHAN_GRACE_SECONDS later whatever happened.
    """
    expected = os.environ.get(SERVE_PID)
    if not expected or not expected.isdigit() or int(expected) == os.getpid():
        return
    parent = int(expected)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.25)
        lifecycle.warning("parent_gone", parent=parent)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(ORPHAN_GRACE_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class BodyLimit:
    """Refuse bodies over 1 MiB with 413, before they are read whole."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            await _too_large(scope, receive, send, bad=not length.isdigit())
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                seen += len(message.get("body", b""))
                if seen > MAX_BODY:
                    # Answer now; the app sees the client gone and stops reading.
                    refused = True
                    await _too_large(scope, receive, send, bad=False)
                    return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)


class JsonShape:
    """Refuse a JSON body of more than MAX_JSON_ITEMS members and items with 422.

    Validating such a body (60,000 unknown keys fit in 1 MiB) costs the schema
    tens of thousands of errors, each a Python object, before any can be refused.
    Counting them on a parse of the body (at most 1 MiB, so a few milliseconds) is
    cheap; a body that does not parse is left to the app's own answer (400).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        first: Message = {"type": "http.request", "body": b"", "more_body": True}
        while first.get("more_body", False):
            first = await receive()
            if first["type"] != "http.request":
                break
            chunks.append(first.get("body", b""))
        body = b"".join(chunks)
        if _is_json(scope) and not _utf8(body):
            # json.loads lets encoded surrogates (ED A0 80) through, which RFC 3629
            # and api.md do not: refuse the bytes before any field sees them.
            response = errors.problem(
                400, "bad_request", "The body is not valid UTF-8."
            )
            await response(scope, receive, send)
            return
        items = _json_items(body)
        if items is not None and items > MAX_JSON_ITEMS:
            response = errors.problem(
                422,
                "validation_failed",
                f"The body has {items} JSON members and items; no command takes "
                f"more than {MAX_JSON_ITEMS}.",
                errors=[{"field": "body", "message": "too many fields"}],
            )
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            if first["type"] != "http.request":
                return first
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return b"json" in value.lower()
    return False


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _json_items(body: bytes) -> int | None:
    """Members and items of every object and array in a JSON body; None if no JSON."""
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # the app answers these with its own 400
        return None
    count = 0
    stack = [parsed]
    while stack and count <= MAX_JSON_ITEMS:
        node = stack.pop()
        if isinstance(node, dict):
            count += len(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            count += len(node)
            stack.extend(node)
    return count


async def _too_large(scope: Scope, receive: Receive, send: Send, *, bad: bool) -> None:
    if bad:
        response = errors.problem(400, "bad_request", "Content-Length is not a number.")
    else:
        response = errors.problem(413, "payload_too_large", "The body is over 1 MiB.")
    await response(scope, receive, send)


def _problem_and_security(schema: dict[str, Any]) -> None:
    from ipt_workflow.api.schemas import Problem

    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    schema["components"]["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A token of `ipt-workflow keys add` (shown once)",
        }
    }
    schema["security"] = [{"bearer": []}]
