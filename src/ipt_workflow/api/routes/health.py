"""Liveness, readiness and metrics, for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg_pool
from eventsourcing.persistence import MapperDeserialisationError
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ipt_workflow.api.deps import ServicesDep
from ipt_workflow.api.errors import problem
from ipt_workflow.composition.bootstrap import Services
from ipt_workflow.ops import metrics
from ipt_workflow.ops.supervisor import ProjectionSupervisor
from ipt_workflow.ops.webhooks import WebhookGauges
from ipt_workflow.storage.cipher import UnknownCipherKeyError

NO_TOKEN: dict[str, Any] = {"security": []}
"""Probes and scrapes take no token (api.md: role none)."""

router = APIRouter(tags=["operations"])

DATABASE_CHECK_SECONDS = 2.0
"""A probe answers quickly: a pooled connection not had by then is a failure."""

NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "A check failed: `checks` names each with what is wrong",
        "content": {
            "application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}
            }
        },
    }
}


@router.get("/healthz", openapi_extra=NO_TOKEN)
def healthz() -> dict[str, Any]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses=NOT_READY, openapi_extra=NO_TOKEN)
def readyz(request: Request, svc: ServicesDep) -> Any:
    """The database answers, the projections run and do not lag past the limits."""
    checks = readiness(svc, supervisor_of(request))
    failed = {name: what for name, what in checks.items() if what != "ok"}
    if failed:
        detail = "Not ready: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
        return problem(
            503, "unavailable", detail, headers={"Retry-After": "5"}, checks=checks
        )
    return JSONResponse({"status": "ready", "checks": checks})


@router.get(
    "/metrics",
    openapi_extra=NO_TOKEN,
    response_class=Response,
    responses={200: {"content": {metrics.CONTENT_TYPE: {}}}},
)
def prometheus_metrics(request: Request, svc: ServicesDep) -> Response:
    """Prometheus text format: requests, commands, guard failures, projection lag."""
    supervisor = supervisor_of(request)
    metrics.refresh_pools(lambda: service_pools(svc), force=True)
    status = None
    if svc.read_models is not None:
        # Ask for the status only when the database answers quickly: a scrape during
        # an outage must not wait for the pool's connect timeout.
        status = svc.read_models.status if _database(svc) == "ok" else _unreachable
    collector = metrics.ScrapeTimeCollector(
        status, supervisor.running if supervisor is not None else None
    )
    extra: list[Any] = [collector]
    if svc.webhooks is not None and status is not _unreachable:
        extra.append(WebhookGauges(svc.webhooks))
    return Response(metrics.exposition(*extra), media_type=metrics.CONTENT_TYPE)


def _unreachable() -> list[dict[str, Any]]:
    raise ConnectionError("the database did not answer within 2 s")


def supervisor_of(request: Request) -> ProjectionSupervisor | None:
    """The projection runners of this process, if it runs them."""
    found = getattr(request.app.state, "projections", None)
    return found if isinstance(found, ProjectionSupervisor) else None


def readiness(svc: Services, supervisor: ProjectionSupervisor | None) -> dict[str, str]:
    """Each check's verdict: "ok" or what is wrong (names of read models, numbers)."""
    checks = {"database": _database(svc)}
    if checks["database"] == "ok":
        checks["events"] = _latest_event(svc)
    if supervisor is not None:
        stopped = sorted(n for n, alive in supervisor.running().items() if not alive)
        checks["projections"] = "stopped: " + ", ".join(stopped) if stopped else "ok"
    if svc.read_models is None:
        return checks
    if checks["database"] != "ok":
        checks["lag"] = "unknown: the database cannot be reached"
        return checks
    settings = svc.settings
    try:
        status = svc.read_models.status()
    except Exception as error:
        checks["lag"] = f"unknown: {type(error).__name__}"
        return checks
    behind = [
        f"{row['projection']} ({row['lag_events']} events, {row['lag_seconds']} s)"
        for row in status
        if (0 < settings.ready_max_lag_events < row["lag_events"])
        or (0 < settings.ready_max_lag_seconds < row["lag_seconds"])
    ]
    checks["lag"] = "behind: " + ", ".join(behind) if behind else "ok"
    return checks


def _database(svc: Services) -> str:
    pool = _events_pool(svc)
    try:
        if pool is None:
            svc.cases.recorder.max_notification_id()
        else:
            with pool.connection(timeout=DATABASE_CHECK_SECONDS) as connection:
                connection.execute("SELECT 1")
    except Exception as error:
        return f"unreachable ({type(error).__name__})"
    return "ok"


def _latest_event(svc: Services) -> str:
    """Can the latest stored event be read with this server's keys?"""
    recorder = svc.cases.recorder
    try:
        head = recorder.max_notification_id() or 0
        found = recorder.select_notifications(start=head, limit=1) if head else []
        for notification in found:
            svc.cases.mapper.to_domain_event(notification)
    except MapperDeserialisationError as error:
        cause = error.__cause__
        if isinstance(cause, UnknownCipherKeyError):
            return f"unreadable: written with key {cause.fingerprint}, not configured"
        return "unreadable: the latest event cannot be decrypted with these keys"
    except Exception as error:
        return f"unknown ({type(error).__name__})"
    return "ok"


def _events_pool(svc: Services) -> psycopg_pool.ConnectionPool[Any] | None:
    pool = getattr(getattr(svc.cases.recorder, "datastore", None), "pool", None)
    return pool if isinstance(pool, psycopg_pool.ConnectionPool) else None


def service_pools(svc: Services) -> Iterator[tuple[str, Any]]:
    """The PostgreSQL connection pools of this process, by name (none on SQLite)."""
    found: list[tuple[str, Any]] = [
        ("events", _events_pool(svc)),
        ("api_keys", getattr(svc.keys, "pool", None)),
        ("access_log", getattr(svc.access, "pool", None)),
    ]
    if svc.read_models is not None:
        for name, view in svc.read_models.views.items():
            datastore = getattr(view, "datastore", None)
            found.append((f"read_model_{name}", getattr(datastore, "pool", None)))
    for name, pool in found:
        if isinstance(pool, psycopg_pool.ConnectionPool):
            yield name, pool
