"""outcomes: results of acute treatment per clinic, protocol and focus area (§5)."""

from __future__ import annotations

from projections.base import ReadModelProjection
from projections.facts import Facts
from projections.store import (
    Counts,
    PostgresReadModelView,
    ReadModel,
    SQLiteReadModelView,
)

NO_FOCUS = "none_agreed"
METRICS = (
    "cases",
    "concluded",
    "remission",
    "response",
    "partial_response",
    "no_response",
    "residual",
    "follow_up_offered",
    "follow_up_accepted",
    "withdrawn",
    "revised",
    "sessions_at_conclusion",
)


class Outcomes(ReadModel):
    name = "outcomes"
    per_case = False

    def counts(self, facts: Facts) -> Counts:
        outcome = facts["outcome"]
        counters = {
            "cases": 1,
            "concluded": int(outcome is not None),
            "residual": int(outcome is not None and outcome["residual"]),
            "follow_up_offered": int(facts["follow_up_offered"]),
            "follow_up_accepted": int(facts["follow_up_accepted"]),
            "withdrawn": int(facts["withdrawn"]),
            # A revised outcome counts once, under its current class, and as revised.
            "revised": int(outcome is not None and facts["outcome_revised"]),
            "sessions_at_conclusion": facts["sessions_at_conclusion"] or 0,
        }
        if outcome is not None:
            counters[outcome["classification"]] = 1
        key = (facts["clinic_id"], facts["protocol"], facts["focus_area"] or NO_FOCUS)
        return {key: counters}


def figures(counters: dict[str, int]) -> dict[str, float | int | None]:
    """The published figures of one cell: counts, the residual rate, mean sessions."""
    concluded = counters.get("concluded", 0)
    shown: dict[str, float | int | None] = {m: counters.get(m, 0) for m in METRICS}
    del shown["sessions_at_conclusion"]
    shown["residual_rate"] = (
        round(counters.get("residual", 0) / concluded, 4) if concluded else None
    )
    shown["mean_sessions"] = (
        round(counters.get("sessions_at_conclusion", 0) / concluded, 2)
        if concluded
        else None
    )
    return shown


class OutcomesProjection(ReadModelProjection):
    name = "outcomes"
    model = Outcomes()


class SQLiteOutcomesView(SQLiteReadModelView):
    model = Outcomes()


class PostgresOutcomesView(PostgresReadModelView):
    model = Outcomes()
