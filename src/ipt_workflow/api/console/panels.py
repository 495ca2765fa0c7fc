"""What the operations board shows, read from the read models as the API reads them.

Nothing here is client-level: counts per clinic, protocol and phase; alerts counted by
kind and age; outcome counts and rates; positions and lag. For the ops role, counts of
one to four cases are shown as "1 to 4" and their rates are withheld, the API's rule
for outcome cells (`api/routes/projections.py: SMALL_CELL`) applied to every cell.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any

from ipt_workflow.api.deps import Principal
from ipt_workflow.api.routes.projections import SMALL_CELL
from ipt_workflow.composition.readmodels import ReadModels
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.codes import NON_FINAL_PHASES, Phase
from ipt_workflow.storage.webhook_status import WebhookStatus, WebhookStatusSource
from projections.alerts import OFFER_DECISION_DAYS, open_alerts

PHASES: tuple[str, ...] = tuple(p.value for p in Phase)
CASELOAD_PHASES = frozenset(p.value for p in NON_FINAL_PHASES)
"""A case is on the caseload until it is closed or withdrawn."""

AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0–7 days", 0, 7),
    ("8–30 days", 8, 30),
    ("31–90 days", 31, 90),
    ("over 90 days", 91, None),
)
ALERT_KINDS = (
    "session_overdue",
    "measure_due",
    "termination_to_be_raised",
    "parent_session_missing",
    "offer_awaiting_decision",
)


@dataclass(frozen=True)
class Count:
    """A number of cases as a viewer may see it."""

    n: int
    hidden: bool = False

    @property
    def label(self) -> str:
        return "1–4" if self.hidden else str(self.n)


def count_for(principal: Principal, n: int) -> Count:
    return Count(n, hidden=hides_small_cells(principal) and n in SMALL_CELL)


def hides_small_cells(principal: Principal) -> bool:
    return principal.role == "ops"


# --- the phase board -------------------------------------------------------------


@dataclass(frozen=True)
class BoardRow:
    clinic_id: str
    protocol: str
    phases: dict[str, Count]
    caseload: Count


def phase_board(models: ReadModels, principal: Principal) -> list[BoardRow]:
    """Cases per phase and the caseload (cases not ended) per clinic and protocol."""
    counters = models.views["phase_board"].counters(principal.clinics)
    by_row: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for key, values in counters.items():
        clinic, protocol, phase = (str(k) for k in key)
        by_row[(clinic, protocol)][phase] = int(values.get("cases", 0))
    rows = []
    for (clinic, protocol), phases in sorted(by_row.items()):
        if not any(phases.values()):
            continue
        caseload = sum(n for p, n in phases.items() if p in CASELOAD_PHASES)
        rows.append(
            BoardRow(
                clinic,
                protocol,
                {p: count_for(principal, phases.get(p, 0)) for p in PHASES},
                count_for(principal, caseload),
            )
        )
    return rows


# --- alerts ----------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRow:
    kind: str
    buckets: list[int]
    total: int


def alert_age_days(alert: dict[str, Any], row: dict[str, Any], today: date) -> int:
    """How long an alert has been open, in days.

    An overdue session since it fell due, an offer since its decision was due; the
    other alerts are raised by the case's last activity, so since that day.
    """
    kind = alert["alert"]
    if kind == "session_overdue":
        age = int(alert["days_since_last_session"]) - int(row["overdue_after_days"])
    elif kind == "offer_awaiting_decision":
        age = int(alert["days_waiting"]) - OFFER_DECISION_DAYS
    else:
        age = (today - date.fromisoformat(row["last_activity_on"])).days
    return max(age, 0)


def bucket_of(days: int) -> int:
    for i, (_, low, high) in enumerate(AGE_BUCKETS):
        if days >= low and (high is None or days <= high):
            return i
    raise AssertionError(days)


def alerts_by_kind_and_age(
    models: ReadModels, principal: Principal, today: date
) -> list[AlertRow]:
    """Open alerts of the viewer's clinics, counted by kind and by age."""
    grid: dict[str, list[int]] = {k: [0] * len(AGE_BUCKETS) for k in ALERT_KINDS}
    for row in models.views["alerts"].rows(principal.clinics):
        for alert in open_alerts(row, today):
            buckets = grid.setdefault(alert["alert"], [0] * len(AGE_BUCKETS))
            buckets[bucket_of(alert_age_days(alert, row, today))] += 1
    return [AlertRow(k, b, sum(b)) for k, b in grid.items()]


# --- outcomes --------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeRow:
    """Results of acute treatment of one clinic and protocol, all focus areas."""

    clinic_id: str
    protocol: str
    cases: Count
    concluded: Count
    remission: int
    response: int
    partial_response: int
    no_response: int
    hidden: bool
    """Rates and classes are withheld: too few cases to publish them."""

    @property
    def remission_rate(self) -> float | None:
        return self._rate(self.remission)

    @property
    def response_rate(self) -> float | None:
        """Responded: remission or response (a 50 % reduction or more)."""
        return self._rate(self.remission + self.response)

    def _rate(self, n: int) -> float | None:
        if self.hidden or self.concluded.n == 0:
            return None
        return n / self.concluded.n


def outcomes(models: ReadModels, principal: Principal) -> list[OutcomeRow]:
    totals: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: defaultdict(int)
    )
    for key, counters in models.views["outcomes"].counters(principal.clinics).items():
        cell = totals[(str(key[0]), str(key[1]))]
        for metric, n in counters.items():
            cell[metric] += int(n)
    rows = []
    for (clinic, protocol), cell in sorted(totals.items()):
        cases, concluded = cell["cases"], cell["concluded"]
        if cases == 0:
            continue
        hidden = hides_small_cells(principal) and (
            cases in SMALL_CELL or concluded in SMALL_CELL
        )
        shown = 0 if hidden else 1
        rows.append(
            OutcomeRow(
                clinic,
                protocol,
                count_for(principal, cases),
                count_for(principal, concluded),
                cell["remission"] * shown,
                cell["response"] * shown,
                cell["partial_response"] * shown,
                cell["no_response"] * shown,
                hidden,
            )
        )
    return rows


# --- projections and webhooks ------------------------------------------------------


@dataclass(frozen=True)
class ProjectionRow:
    name: str
    position: int
    head: int
    lag_events: int
    lag_events_capped: bool
    lag_seconds: float
    running: bool | None
    """None: this process does not run the projections (a process of their own)."""
    behind: bool


def projection_status(
    models: ReadModels, settings: Settings, running: dict[str, bool] | None
) -> list[ProjectionRow]:
    """Each read model's position and lag, judged by the readiness limits."""
    rows = []
    for status in models.status():
        name = status["projection"]
        events, seconds = status["lag_events"], status["lag_seconds"]
        too_many = 0 < settings.ready_max_lag_events < events
        too_old = 0 < settings.ready_max_lag_seconds < seconds
        rows.append(
            ProjectionRow(
                name=name,
                position=status["position"],
                head=status["head"],
                lag_events=events,
                lag_events_capped=status["lag_events_capped"],
                lag_seconds=seconds,
                running=None if running is None else running.get(name, False),
                behind=too_many or too_old,
            )
        )
    return rows


def webhook_status(
    source: WebhookStatusSource | None, clinics: Collection[str] | None
) -> list[WebhookStatus] | None:
    """The subscriptions' delivery state; None while webhooks are not configured."""
    if source is None:
        return None
    return sorted(
        source.webhook_statuses(clinics),
        key=lambda s: (s.clinic_id, s.subscription_id),
    )
