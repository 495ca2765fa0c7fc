"""The read models over HTTP (architecture.md, Projections).

Ops never see client-level fields: the case-level read models answer ops with case
ids and coded facts only, and outcome cells of one to four cases are suppressed for ops.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ipt_workflow.api.deps import Principal, ServicesDep, require
from ipt_workflow.api.errors import ApiError, responses
from ipt_workflow.api.schemas import Day
from ipt_workflow.composition.readmodels import ReadModels
from ipt_workflow.domain.protocols import PROTOCOLS
from projections.alerts import open_alerts
from projections.outcomes import figures

router = APIRouter(prefix="/projections", tags=["projections"])
ERRORS = responses(401, 403, 422, 429, 503)
SMALL_CELL = range(1, 5)
"""Cells counting one to four cases identify people: ops see them suppressed."""

Anyone = Annotated[Principal, Depends(require("clinician", "auditor", "ops"))]
CaseReaders = Annotated[Principal, Depends(require("clinician", "auditor"))]
MinPosition = Annotated[
    int | None,
    Query(ge=0, description="wait up to 5 s until the read model has reached it"),
]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _read_models(svc: ServicesDep) -> ReadModels:
    if svc.read_models is None:
        raise ApiError(503, "unavailable", "The read models are not configured here.")
    return svc.read_models


def _caught_up(models: ReadModels, name: str, min_position: int | None) -> int:
    if min_position is not None and not models.wait(min_position, [name]):
        raise ApiError(
            503,
            "projection_lagging",
            f"The {name} read model has not reached position {min_position} in 5 s.",
            headers={"Retry-After": "1"},
        )
    return models.position(name)


def _page(
    view: Any, clinics: Any, limit: int, after: str | None, **equals: list[str]
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of rows in case-id order, and the cursor of the next one."""
    wanted = {k: v for k, v in equals.items() if v}
    rows = view.rows(clinics, equals=wanted, after=after, limit=limit + 1)
    page = rows[:limit]
    return page, page[-1]["case_id"] if len(rows) > limit else None


def _versions_of(name: str) -> list[str]:
    """`ipt` filters every version of the protocol; `ipt@1` only that one."""
    return [p for p in PROTOCOLS if p.split("@")[0] == name]


@router.get("/caseload", responses=ERRORS)
def caseload(
    principal: CaseReaders,
    svc: ServicesDep,
    clinician_id: str | None = None,
    phase: str | None = None,
    protocol: str | None = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """One row per case of the caller's clinics, by case id; no client_ref."""
    models = _read_models(svc)
    position = _caught_up(models, "caseload", min_position)
    protocols = [] if protocol is None else [protocol, *_versions_of(protocol)]
    items, next_after = _page(
        models.views["caseload"],
        principal.clinics,
        limit,
        after,
        clinician_id=[] if clinician_id is None else [clinician_id],
        phase=[] if phase is None else [phase],
        protocol=protocols,
    )
    return _paged(items, next_after, position)


def _paged(
    items: list[dict[str, Any]], next_after: str | None, position: int
) -> dict[str, Any]:
    """A page; `next_after` is absent on the last one, as on every list (D75)."""
    page: dict[str, Any] = {"items": items, "position": position}
    if next_after is not None:
        page["next_after"] = next_after
    return page


@router.get("/phase_board", responses=ERRORS)
def phase_board(
    principal: Anyone, svc: ServicesDep, min_position: MinPosition = None
) -> dict[str, Any]:
    """How many cases stand in each phase, per clinic and protocol."""
    models = _read_models(svc)
    position = _caught_up(models, "phase_board", min_position)
    counts = models.views["phase_board"].counters(principal.clinics)
    items = [
        {"clinic_id": k[0], "protocol": k[1], "phase": k[2], "cases": v.get("cases", 0)}
        for k, v in sorted(counts.items())
    ]
    return {"items": items, "position": position}


@router.get("/outcomes", responses=ERRORS)
def outcomes(
    principal: Anyone, svc: ServicesDep, min_position: MinPosition = None
) -> dict[str, Any]:
    """Results of acute treatment per clinic, protocol and focus area (§5)."""
    models = _read_models(svc)
    position = _caught_up(models, "outcomes", min_position)
    items = []
    for key, counters in sorted(
        models.views["outcomes"].counters(principal.clinics).items()
    ):
        cell: dict[str, Any] = {
            "clinic_id": key[0],
            "protocol": key[1],
            "focus_area": key[2],
        }
        if principal.role == "ops" and counters.get("cases", 0) in SMALL_CELL:
            cell["suppressed"] = True
        else:
            cell |= {"suppressed": False, **figures(counters)}
        items.append(cell)
    return {"items": items, "position": position}


@router.get("/alerts", responses=ERRORS)
def alerts(
    principal: Anyone,
    svc: ServicesDep,
    as_of: Annotated[
        Day | None, Query(description="the day to judge on, YYYY-MM-DD (UTC today)")
    ] = None,
    clinician_id: str | None = None,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """Open alerts by case id."""
    models = _read_models(svc)
    position = _caught_up(models, "alerts", min_position)
    today = as_of or datetime.now(UTC).date()
    items = []
    for row in models.views["alerts"].rows(principal.clinics):
        if clinician_id is not None and row["clinician_id"] != clinician_id:
            continue
        found = open_alerts(row, today)
        if found:
            item = {
                "case_id": row["case_id"],
                "clinic_id": row["clinic_id"],
                "alerts": found,
            }
            if principal.role != "ops":
                item["clinician_id"] = row["clinician_id"]
            items.append(item)
    return {"items": items, "as_of": today.isoformat(), "position": position}


@router.get("/fidelity", responses=ERRORS)
def fidelity(
    principal: CaseReaders,
    svc: ServicesDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """Per case: how closely the course followed the protocol."""
    models = _read_models(svc)
    position = _caught_up(models, "fidelity", min_position)
    items, next_after = _page(models.views["fidelity"], principal.clinics, limit, after)
    return _paged(items, next_after, position)


@router.get("/status", responses=ERRORS)
def status(_: Anyone, svc: ServicesDep) -> dict[str, Any]:
    """Per read model: its position, the head of the log, and the lag."""
    return {"items": _read_models(svc).status()}
