"""The app factory of the HTTP API: routes, error mapping and middleware around the
services the composition root builds. Nothing is built at import."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ipt_workflow.api import errors
from ipt_workflow.api.routes import (
    audit,
    cases,
    health,
    projections,
    retention,
    subscriptions,
)
from ipt_workflow.composition.bootstrap import Services, bootstrap, start_background
from ipt_workflow.composition.settings import Settings
from ipt_workflow.ops.logging import RequestContext, configure_logging
from ipt_workflow.ops.metrics import worker_exiting

MAX_BODY = 1024 * 1024
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

    app = FastAPI(
        title="ipt-workflow",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(cases.router)
    app.include_router(projections.router)
    app.include_router(audit.cases_router)
    app.include_router(audit.router)
    app.include_router(retention.router)
    app.include_router(subscriptions.router)
    app.include_router(subscriptions.status_router)
    app.include_router(health.router)
    app.add_middleware(BodyLimit)
    app.add_middleware(
        RequestContext, pools=lambda: health.service_pools(app.state.services)
    )
    _add_problem_schema(app)
    return app


def app_from_environment() -> FastAPI:
    """The factory uvicorn calls in each worker process."""
    return create_app(Settings())


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


async def _too_large(scope: Scope, receive: Receive, send: Send, *, bad: bool) -> None:
    if bad:
        response = errors.problem(400, "bad_request", "Content-Length is not a number.")
    else:
        response = errors.problem(413, "payload_too_large", "The body is over 1 MiB.")
    await response(scope, receive, send)


def _add_problem_schema(app: FastAPI) -> None:
    from ipt_workflow.api.schemas import Problem

    original: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        schema["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
        schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
