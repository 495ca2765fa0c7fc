"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ipt_workflow.api.deps import ServicesDep
from ipt_workflow.api.errors import DATABASE_DOWN, problem

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz", responses={503: {"description": "The database cannot be reached"}}
)
def readyz(svc: ServicesDep) -> Any:
    """The database answers."""
    try:
        svc.cases.recorder.max_notification_id()
    except DATABASE_DOWN:
        return problem(503, "unavailable", "The database cannot be reached.")
    return JSONResponse({"status": "ready"})
