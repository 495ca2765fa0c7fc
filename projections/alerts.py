"""alerts: open alerts by case id, for clinicians and ops (no client-level data).

What the projection stores are the inputs of each rule; whether an alert is open
depends on the day it is read, so the rules run at read time (`open_alerts`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from projections.base import ReadModelProjection
from projections.facts import (
    Facts,
    counted,
    last_session_on,
    numbered,
    open_risk_flag,
    parent_sessions,
    sessions_since_measure,
)
from projections.store import PostgresReadModelView, ReadModel, SQLiteReadModelView

ACTIVE = ("beginning", "middle", "end", "follow_up")
FINAL = ("closed", "withdrawn")
OVERDUE_AFTER_DAYS = {
    "weekly": 14,
    "twice_weekly": 7,
    "fortnightly": 28,
    "monthly": 60,
}
"""Twice the contracted interval between sessions."""
MEASURE_EVERY = 4
TERMINATION_WITHIN = 4
OFFER_DECISION_DAYS = 14
PARENT_PROTOCOLS = ("ipt-a", "fb-ipt")


class Alerts(ReadModel):
    name = "alerts"
    per_case = True

    def row(self, facts: Facts) -> dict[str, Any]:
        if facts["phase"] == "follow_up" and facts["follow_up_contract"]:
            frequency = facts["follow_up_contract"]["frequency"]
        else:
            frequency = facts["frequency"] or "weekly"
        contract = facts["contract_sessions"]
        offer = facts["offer_open"]
        risk = open_risk_flag(facts)
        return {
            "case_id": facts["case_id"],
            "clinic_id": facts["clinic_id"],
            "clinician_id": facts["clinician_id"],
            "protocol": facts["protocol"],
            "phase": facts["phase"],
            "last_activity_on": last_session_on(facts) or facts["opened_on"],
            "overdue_after_days": OVERDUE_AFTER_DAYS[frequency],
            "sessions_since_measure": sessions_since_measure(facts),
            "sessions_left": None if contract is None else contract - numbered(facts),
            "sessions_held": counted(facts),
            "parent_sessions": parent_sessions(facts, "beginning"),
            "offer_kind": None if offer is None else offer["kind"],
            "offer_on": None if offer is None else offer["offered_on"],
            "risk_flagged_on": None if risk is None else risk["flagged_on"],
            "relapse_suspected": facts["relapse_suspected"],
            "outcome_revised_after_decision": facts["outcome_revised_after_decision"],
        }


def open_alerts(row: dict[str, Any], today: date) -> list[dict[str, Any]]:
    """The alerts of one case that are open on a day."""
    found: list[dict[str, Any]] = []
    active = row["phase"] in ACTIVE
    idle = (today - date.fromisoformat(row["last_activity_on"])).days
    if active and idle > row["overdue_after_days"]:
        found.append({"alert": "session_overdue", "days_since_last_session": idle})
    if active and row["sessions_since_measure"] >= MEASURE_EVERY:
        found.append(
            {
                "alert": "measure_due",
                "sessions_since_measure": row["sessions_since_measure"],
            }
        )
    left = row["sessions_left"]
    if row["phase"] == "middle" and left is not None and left <= TERMINATION_WITHIN:
        found.append({"alert": "termination_to_be_raised", "sessions_left": left})
    protocol = row["protocol"].split("@")[0]
    if (
        active
        and protocol in PARENT_PROTOCOLS
        and row["sessions_held"] >= 1
        and row["parent_sessions"] == 0
    ):
        found.append({"alert": "parent_session_missing"})
    open_case = row["phase"] not in FINAL
    if open_case and row.get("risk_flagged_on") is not None:
        days = (today - date.fromisoformat(row["risk_flagged_on"])).days
        found.append({"alert": "risk_flagged", "days_since_flag": days})
    if open_case and row.get("relapse_suspected"):
        found.append({"alert": "relapse_suspected"})
    if open_case and row.get("outcome_revised_after_decision"):
        found.append({"alert": "outcome_revised_after_decision"})
    if row["offer_on"] is not None:
        waiting = (today - date.fromisoformat(row["offer_on"])).days
        if waiting > OFFER_DECISION_DAYS:
            found.append(
                {
                    "alert": "offer_awaiting_decision",
                    "offer": row["offer_kind"],
                    "days_waiting": waiting,
                }
            )
    return found


class AlertsProjection(ReadModelProjection):
    name = "alerts"
    model = Alerts()


class SQLiteAlertsView(SQLiteReadModelView):
    model = Alerts()


class PostgresAlertsView(PostgresReadModelView):
    model = Alerts()
