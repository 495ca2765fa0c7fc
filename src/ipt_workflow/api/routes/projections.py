"""The read models over HTTP (architecture.md, Projections).

Ops never see client-level fields: the case-level read models answer ops with case
ids and coded facts only, and outcome cells of one to four cases are suppressed for ops.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query

from ipt_workflow.api.deps import Principal, ServicesDep, require, wait_for_position
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
Cursor = Annotated[str | None, Query(max_length=64)]
KeyCursor = Annotated[
    str | None,
    Query(max_length=300, description="the `next_after` of the previous page"),
]
ALERT_SCAN_ROWS = 2000
"""Case rows one alerts page reads at most; a quiet clinic's page ends early."""


def _read_models(svc: ServicesDep) -> ReadModels:
    if svc.read_models is None:
        raise ApiError(503, "unavailable", "The read models are not configured here.")
    return svc.read_models


def _caught_up(name: str) -> Callable[..., Awaitable[int]]:
    """A dependency: honour `?min_position=` for one read model; its position."""

    async def wait(svc: ServicesDep, min_position: MinPosition = None) -> int:
        models = _read_models(svc)
        if min_position is not None:
            await wait_for_position(models, min_position, [name])
        position: int = await anyio.to_thread.run_sync(models.position, name)
        return position

    return wait


CaseloadAt = Annotated[int, Depends(_caught_up("caseload"))]
PhaseBoardAt = Annotated[int, Depends(_caught_up("phase_board"))]
OutcomesAt = Annotated[int, Depends(_caught_up("outcomes"))]
AlertsAt = Annotated[int, Depends(_caught_up("alerts"))]
FidelityAt = Annotated[int, Depends(_caught_up("fidelity"))]


def _keyed_page(
    items: list[dict[str, Any]],
    key: Callable[[dict[str, Any]], list[str]],
    after: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of items sorted by `key`, after the cursor `after` (a JSON list)."""
    start: list[str] | None = None
    if after is not None:
        try:
            start = [str(part) for part in json.loads(after)]
        except (ValueError, TypeError):
            raise ApiError(
                422,
                "validation_failed",
                "after is not a cursor this list gave.",
                errors=[{"field": "after", "message": "not a cursor of this list"}],
            ) from None
    rest = [i for i in items if start is None or key(i) > start]
    page = rest[:limit]
    more = len(rest) > limit
    return page, json.dumps(key(page[-1])) if more and page else None


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
    position: CaseloadAt,
    clinician_id: str | None = None,
    phase: str | None = None,
    protocol: str | None = None,
    after: Cursor = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """One row per case of the caller's clinics, by case id; no client_ref."""
    models = _read_models(svc)
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
    principal: Anyone,
    svc: ServicesDep,
    position: PhaseBoardAt,
    after: KeyCursor = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """How many cases stand in each phase, per clinic and protocol."""
    models = _read_models(svc)
    counts = models.views["phase_board"].counters(principal.clinics)
    items = [
        {"clinic_id": k[0], "protocol": k[1], "phase": k[2], "cases": v.get("cases", 0)}
        for k, v in sorted(counts.items())
    ]
    page, next_after = _keyed_page(
        items, lambda i: [i["clinic_id"], i["protocol"], i["phase"]], after, limit
    )
    return _paged(page, next_after, position)


@router.get("/outcomes", responses=ERRORS)
def outcomes(
    principal: Anyone,
    svc: ServicesDep,
    position: OutcomesAt,
    after: KeyCursor = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Results of acute treatment per clinic, protocol and focus area (§5)."""
    models = _read_models(svc)
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
    page, next_after = _keyed_page(
        items, lambda i: [i["clinic_id"], i["protocol"], i["focus_area"]], after, limit
    )
    return _paged(page, next_after, position)


@router.get("/alerts", responses=ERRORS)
def alerts(
    principal: Anyone,
    svc: ServicesDep,
    position: AlertsAt,
    as_of: Annotated[
        Day | None, Query(description="the day to judge on, YYYY-MM-DD (UTC today)")
    ] = None,
    clinician_id: Annotated[
        str | None, Query(max_length=64, description="not for ops: hidden from them")
    ] = None,
    after: Cursor = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Open alerts by case id, a page at a time.

    A page reads at most ALERT_SCAN_ROWS cases: when they hold fewer alerts than
    `limit`, `next_after` is the last case read, so a quiet clinic is paged through
    in bounded steps; it is absent only at the end (D75).
    """
    if clinician_id is not None and principal.role == "ops":
        # Ops never see which clinician holds a case, so they may not select by it.
        raise ApiError(403, "forbidden", "The ops role may not filter by clinician_id.")
    models = _read_models(svc)
    today = as_of or datetime.now(UTC).date()
    equals = {} if clinician_id is None else {"clinician_id": [clinician_id]}
    items: list[dict[str, Any]] = []
    scanned, cursor, more = 0, after, True
    while more and len(items) <= limit and scanned < ALERT_SCAN_ROWS:
        batch = min(limit + 1, ALERT_SCAN_ROWS - scanned)
        rows = models.views["alerts"].rows(
            principal.clinics, equals=equals, after=cursor, limit=batch
        )
        more = len(rows) == batch
        for row in rows:
            scanned += 1
            cursor = row["case_id"]
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
                if len(items) > limit:
                    break
    if len(items) > limit:
        items = items[:limit]
        next_after: str | None = items[-1]["case_id"]
    else:
        next_after = cursor if more else None
    return {**_paged(items, next_after, position), "as_of": today.isoformat()}


@router.get("/fidelity", responses=ERRORS)
def fidelity(
    principal: CaseReaders,
    svc: ServicesDep,
    position: FidelityAt,
    after: Cursor = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Per case: how closely the course followed the protocol."""
    models = _read_models(svc)
    items, next_after = _page(models.views["fidelity"], principal.clinics, limit, after)
    return _paged(items, next_after, position)


@router.get("/status", responses=ERRORS)
def status(principal: Anyone, svc: ServicesDep) -> dict[str, Any]:
    """Per read model: its position, the head of the log, and the lag.

    Positions, the head and the lag in events count every clinic's events: only a
    key for all clinics sees them; other keys see how far behind in time each read
    model is and whether it has caught up.
    """
    found = _read_models(svc).status()
    if principal.clinics is None:
        return {"items": found}
    return {
        "items": [
            {
                "projection": row["projection"],
                "lag_seconds": row["lag_seconds"],
                "caught_up": row["lag_events"] == 0,
            }
            for row in found
        ]
    }
