"""fidelity: how closely each case followed the protocol (auditors, supervisors)."""

from __future__ import annotations

from typing import Any

from projections.base import ReadModelProjection
from projections.facts import Facts, counted, strategies_used, valid_measures
from projections.store import PostgresReadModelView, ReadModel, SQLiteReadModelView

TERMINATION_NOTICE = 2
"""Termination is discussed at least two sessions before the end (research R11)."""


class Fidelity(ReadModel):
    name = "fidelity"
    per_case = True

    def row(self, facts: Facts) -> dict[str, Any]:
        sessions = counted(facts)
        measures = len(valid_measures(facts))
        left = facts["end_started_left"]
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
            "termination_raised_on_time": None
            if left is None
            else left >= TERMINATION_NOTICE,
            "maintenance_discussed": facts["maintenance_discussed"],
            "deviations": facts["deviations"],
        }


class FidelityProjection(ReadModelProjection):
    name = "fidelity"
    model = Fidelity()


class SQLiteFidelityView(SQLiteReadModelView):
    model = Fidelity()


class PostgresFidelityView(PostgresReadModelView):
    model = Fidelity()
