"""The facts of one case that the read models need, folded from its events.

Every read model derives its rows from these facts, so all of them agree on what a
session, a measure or an outcome is. The facts hold no client data: no client_ref,
no inventory, no notes.
"""

from __future__ import annotations

from datetime import UTC
from functools import singledispatch
from typing import Any

from ipt_workflow.domain import events

Facts = dict[str, Any]

ACUTE = ("beginning", "middle", "end")


def new_facts(event: events.CaseOpened) -> Facts:
    return {
        "case_id": str(event.originator_id),
        "clinic_id": event.clinic_id,
        "clinician_id": event.clinician_id,
        "protocol": event.protocol,
        "phase": event.phase,
        "opened_on": event.timestamp.date().isoformat(),
        "opened_at": moment(event),
        "updated_at": moment(event),
        "ended_at": None,
        "version": event.originator_version,
        "contract_sessions": None,
        "frequency": None,
        "focus_area": None,
        "focus_at_session": None,
        "sessions": [],
        "measures": [],
        "outcome": None,
        "sessions_at_conclusion": None,
        "offer_open": None,
        "follow_up_offered": False,
        "follow_up_accepted": False,
        "follow_up_contract": None,
        "maintenance_discussed": False,
        "deviations": 0,
        "end_started_left": None,
        "withdrawn": False,
        **ADDED,
    }


ADDED: Facts = {
    "termination_tasks": [],
    "end_sessions_at_conclusion": None,
    "risk_flags": [],
    "relapse_suspected": False,
    "outcome_revised": False,
    "outcome_revised_after_decision": False,
}
"""Facts added in the second round, with what a case folded before them had: facts
stored by the first release are read with these filled in."""


def moment(event: events.CaseEvent) -> str:
    """When the event was recorded, RFC 3339 in UTC with microseconds: one fixed
    width, so that the text sorts as the time does."""
    return event.timestamp.astimezone(UTC).isoformat(timespec="microseconds")


def evolve(facts: Facts | None, event: events.CaseEvent) -> Facts | None:
    """The facts after one event; a case's first event creates them."""
    if isinstance(event, events.CaseOpened):
        return new_facts(event)
    if facts is None:
        return None
    facts = {
        **ADDED,
        **facts,
        "version": event.originator_version,
        "updated_at": moment(event),
    }
    _apply(event, facts)
    return facts


# --- derived values ------------------------------------------------------------


def counted(facts: Facts, phase: str | None = None, follow_up: bool = False) -> int:
    return sum(
        1
        for s in facts["sessions"]
        if not s["voided"]
        and s["follow_up"] == follow_up
        and (phase is None or s["phase"] == phase)
    )


def numbered(facts: Facts) -> int:
    """The highest acute session number given: a voided number is not given again."""
    numbers = [s["number"] for s in facts["sessions"] if not s["follow_up"]]
    return max(numbers, default=0)


def valid_measures(facts: Facts) -> list[dict[str, Any]]:
    return [m for m in facts["measures"] if not m["voided"]]


def last_session_on(facts: Facts) -> str | None:
    days = [s["held_on"] for s in facts["sessions"] if not s["voided"]]
    return max(days) if days else None


def sessions_since_measure(facts: Facts) -> int:
    """Counted sessions recorded after the last valid measure."""
    measured = [m["seq"] for m in valid_measures(facts)]
    after = measured[-1] if measured else -1
    return sum(
        1
        for s in facts["sessions"]
        if not s["voided"] and not s["follow_up"] and s["seq"] > after
    )


def parent_sessions(facts: Facts, phase: str | None = None) -> int:
    """Counted acute sessions with a parent (in one phase, or all)."""
    return sum(
        1
        for s in facts["sessions"]
        if not s["voided"]
        and not s["follow_up"]
        and s["parent"]
        and (phase is None or s["phase"] == phase)
    )


def open_risk_flag(facts: Facts) -> dict[str, Any] | None:
    """The latest risk flag, while nobody has reviewed it."""
    flags = facts["risk_flags"]
    if flags and flags[-1]["reviewed_on"] is None:
        found: dict[str, Any] = flags[-1]
        return found
    return None


def strategies_used(facts: Facts) -> list[str]:
    used = {
        strategy
        for s in facts["sessions"]
        if not s["voided"] and s["phase"] == "middle"
        for strategy in s["strategies"]
    }
    return sorted(used)


# --- event handlers --------------------------------------------------------------


def _seq(facts: Facts) -> int:
    return len(facts["sessions"]) + len(facts["measures"])


@singledispatch
def _apply(_event: events.CaseEvent, facts: Facts) -> None:
    """Events no read model needs change nothing but the version."""


@_apply.register
def _(event: events.PhaseEvent, facts: Facts) -> None:
    facts["phase"] = event.phase


@_apply.register
def _(event: events.EndPhaseStarted, facts: Facts) -> None:
    facts["phase"] = event.phase
    if facts["contract_sessions"] is not None:
        facts["end_started_left"] = facts["contract_sessions"] - counted(facts)


@_apply.register
def _(event: events.AcuteTreatmentConcluded, facts: Facts) -> None:
    facts["phase"] = event.phase
    facts["outcome"] = dict(event.outcome)
    facts["sessions_at_conclusion"] = counted(facts)
    facts["end_sessions_at_conclusion"] = counted(facts, "end")
    facts["maintenance_discussed"] = event.maintenance_discussed
    facts["termination_tasks"] = list(event.termination_tasks)


@_apply.register
def _(event: events.FollowUpAccepted, facts: Facts) -> None:
    facts["phase"] = event.phase
    facts["offer_open"] = None
    facts["follow_up_accepted"] = True
    facts["follow_up_contract"] = (
        None if event.contract is None else dict(event.contract)
    )


@_apply.register
def _(event: events.CaseClosed, facts: Facts) -> None:
    facts["phase"] = event.phase
    facts["offer_open"] = None
    facts["ended_at"] = moment(event)


@_apply.register
def _(event: events.CaseWithdrawn, facts: Facts) -> None:
    facts["phase"] = event.phase
    facts["offer_open"] = None
    facts["withdrawn"] = True
    facts["ended_at"] = moment(event)


@_apply.register
def _(event: events.FocusAgreed, facts: Facts) -> None:
    facts["focus_area"] = event.primary_area
    facts["focus_at_session"] = counted(facts)


@_apply.register
def _(event: events.ContractAgreed, facts: Facts) -> None:
    facts["contract_sessions"] = event.sessions
    facts["frequency"] = event.frequency


@_apply.register
def _(event: events.ContractRenegotiated, facts: Facts) -> None:
    facts["contract_sessions"] = event.sessions
    facts["frequency"] = event.frequency


@_apply.register
def _(_event: events.ProtocolDeviationRecorded, facts: Facts) -> None:
    facts["deviations"] += 1


@_apply.register
def _(event: events.CaseReassigned, facts: Facts) -> None:
    facts["clinician_id"] = event.clinician_id


@_apply.register
def _(event: events.SymptomsMeasured, facts: Facts) -> None:
    facts["measures"] = [
        *facts["measures"],
        {
            "instrument": event.instrument,
            "score": event.score,
            "measured_on": event.measured_on,
            "phase": event.phase,
            "voided": False,
            "seq": _seq(facts),
        },
    ]


@_apply.register
def _(event: events.MeasureEnteredInError, facts: Facts) -> None:
    facts["measures"] = [
        {**m, "voided": True} if i == event.index else m
        for i, m in enumerate(facts["measures"])
    ]


@_apply.register
def _(event: events.SessionHeld, facts: Facts) -> None:
    if event.number is None:
        return  # uncounted meetings count toward nothing any read model shows
    facts["sessions"] = [
        *facts["sessions"],
        {
            "number": event.number,
            "follow_up": event.follow_up,
            "phase": event.phase,
            "held_on": event.held_on,
            "parent": "parent" in event.attendees,
            "strategies": list(event.strategies),
            "voided": False,
            "seq": _seq(facts),
        },
    ]


@_apply.register
def _(event: events.SessionEnteredInError, facts: Facts) -> None:
    facts["sessions"] = [
        {**s, "voided": True}
        if s["number"] == event.number and s["follow_up"] == event.follow_up
        else s
        for s in facts["sessions"]
    ]


@_apply.register
def _(event: events.FollowUpOffered, facts: Facts) -> None:
    facts["follow_up_offered"] = True
    facts["offer_open"] = {
        "kind": event.kind,
        "offered_on": event.timestamp.date().isoformat(),
    }


@_apply.register
def _(_event: events.FollowUpDeclined, facts: Facts) -> None:
    facts["offer_open"] = None


@_apply.register
def _(event: events.OutcomeRevised, facts: Facts) -> None:
    facts["outcome"] = dict(event.outcome)
    facts["outcome_revised"] = True
    if event.after_decision:
        facts["outcome_revised_after_decision"] = True


@_apply.register
def _(event: events.FollowUpOfferRevised, facts: Facts) -> None:
    if event.kind is None:
        facts["offer_open"] = None
        return
    facts["follow_up_offered"] = True
    facts["offer_open"] = {
        "kind": event.kind,
        "offered_on": event.timestamp.date().isoformat(),
    }


@_apply.register
def _(event: events.RiskFlagged, facts: Facts) -> None:
    flag = {"flagged_on": event.timestamp.date().isoformat(), "reviewed_on": None}
    facts["risk_flags"] = [*facts["risk_flags"], flag]


@_apply.register
def _(event: events.RiskReviewed, facts: Facts) -> None:
    flags = facts["risk_flags"]
    if flags:
        reviewed = {**flags[-1], "reviewed_on": event.timestamp.date().isoformat()}
        facts["risk_flags"] = [*flags[:-1], reviewed]


@_apply.register
def _(_event: events.RelapseSuspected, facts: Facts) -> None:
    facts["relapse_suspected"] = True
