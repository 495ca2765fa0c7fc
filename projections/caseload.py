"""caseload: one row per case for clinicians and clinic systems (no client_ref)."""

from __future__ import annotations

from typing import Any

from projections.base import ReadModelProjection
from projections.facts import Facts, counted, last_session_on, valid_measures
from projections.store import PostgresReadModelView, ReadModel, SQLiteReadModelView


class Caseload(ReadModel):
    name = "caseload"
    per_case = True

    def row(self, facts: Facts) -> dict[str, Any]:
        # The latest-dated measure, ties to the later recorded (domain.md §7, D53).
        measures = sorted(valid_measures(facts), key=lambda m: m["measured_on"])
        latest = measures[-1] if measures else None
        offer = facts["offer_open"]
        return {
            "case_id": facts["case_id"],
            "clinic_id": facts["clinic_id"],
            "clinician_id": facts["clinician_id"],
            "protocol": facts["protocol"],
            "phase": facts["phase"],
            "sessions_held": counted(facts),
            "sessions_contracted": facts["contract_sessions"],
            "follow_up_sessions_held": counted(facts, follow_up=True),
            "focus": facts["focus_area"],
            "last_session_on": last_session_on(facts),
            "latest_score": None
            if latest is None
            else {k: latest[k] for k in ("instrument", "score", "measured_on")},
            "open_offer": None if offer is None else offer["kind"],
            "version": facts["version"],
        }


class CaseloadProjection(ReadModelProjection):
    name = "caseload"
    model = Caseload()


class SQLiteCaseloadView(SQLiteReadModelView):
    model = Caseload()


class PostgresCaseloadView(PostgresReadModelView):
    model = Caseload()
