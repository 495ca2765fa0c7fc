"""fidelity: how closely each case followed the protocol (auditors, supervisors)."""

from __future__ import annotations

from datetime import date
from typing import Any

from projections.base import ReadModelProjection
from projections.facts import Facts, counted, strategies_used, valid_measures
from projections.store import PostgresReadModelView, ReadModel, SQLiteReadModelView

RISK_REVIEW_DAYS = 7
"""A risk flag is to be followed up within a week (domain.md §8)."""


class Fidelity(ReadModel):
    name = "fidelity"
    per_case = True

    def row(self, facts: Facts) -> dict[str, Any]:
        sessions = counted(facts)
        measures = len(valid_measures(facts))
        flags = facts["risk_flags"]
        return {
            "case_id": facts["case_id"],
            "clinic_id": facts["clinic_id"],
            "clinician_id": facts["clinician_id"],
            "protocol": facts["protocol"],
            "phase": facts["phase"],
            "focus_agreed_at_session": facts["focus_at_session"],
            "sessions_held": sessions,
            "measures": measures,
            "measures_per_4_sessions": round(measures * 4 / sessions, 2)
            if sessions
            else None,
            "middle_strategies": strategies_used(facts),
            "termination_tasks": facts["termination_tasks"],
            "termination_tasks_done": len(facts["termination_tasks"]),
            "end_phase_sessions": facts["end_sessions_at_conclusion"],
            "maintenance_discussed": facts["maintenance_discussed"],
            "deviations": facts["deviations"],
            "risk_flags": len(flags),
            "risk_reviews_within_7_days": sum(1 for f in flags if _in_time(f)),
            "outcome_revised_after_decision": facts["outcome_revised_after_decision"],
        }


class FidelityProjection(ReadModelProjection):
    name = "fidelity"
    model = Fidelity()


class SQLiteFidelityView(SQLiteReadModelView):
    model = Fidelity()


class PostgresFidelityView(PostgresReadModelView):
    model = Fidelity()


def _in_time(flag: dict[str, Any]) -> bool:
    if flag["reviewed_on"] is None:
        return False
    waited = date.fromisoformat(flag["reviewed_on"]) - date.fromisoformat(
        flag["flagged_on"]
    )
    return waited.days <= RISK_REVIEW_DAYS
