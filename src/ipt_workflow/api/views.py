"""How a case and its history look over HTTP (api.md, The case representation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.codes import FollowUpFrequency, Frequency, Phase
from ipt_workflow.domain.protocols import (
    COUNTED_KINDS,
    IntRange,
    ProblemArea,
    Protocol,
    SessionKind,
)
from ipt_workflow.domain.rules.measures import outcome_of
from ipt_workflow.storage.case_cipher import ErasedEvent

if TYPE_CHECKING:
    from ipt_workflow.application.cases import Outcome

_META = {
    "originator_id",
    "originator_version",
    "originator_topic",
    "timestamp",
    "recorded_by",
    "on_behalf_of",
    "command_id",
    "command_digest",
}


def _measure(m: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {k: m[k] for k in ("instrument", "score", "measured_on")}


def case_view(case: TherapyCase, position: int | None) -> dict[str, Any]:
    """The case representation, with every transition's why-not."""
    focus = case.focus
    return {
        "id": str(case.id),
        "clinic_id": case.clinic_id,
        "client_ref": case.client_ref,
        "protocol": case.protocol_id,
        "clinician_id": case.clinician_id,
        "client_age": case.client_age,
        "prior_episodes": case.prior_episodes,
        "phase": case.phase,
        "version": case.version,
        "position": position,
        "sessions_held": {
            "beginning": case.counted_sessions(Phase.beginning),
            "middle": case.counted_sessions(Phase.middle),
            "end": case.counted_sessions(Phase.end),
            "total": case.counted_sessions(),
            "follow_up": case.follow_up_sessions_held,
        },
        "contract": case.contract,
        "sessions_remaining": case.sessions_remaining,
        "focus": None
        if focus is None
        else {k: focus[k] for k in ("primary_area", "secondary_area", "dispute_stage")},
        "baseline": _measure(case.baseline),
        "latest_measure": _measure(case.latest_measure),
        "outcome": _outcome(case),
        "outcome_revised_after_decision": case.outcome_revised_after_decision,
        "follow_up_offer": case.follow_up_offer,
        "follow_up_contract": case.follow_up_contract,
        "deviations": case.deviations,
        "intake_on": case.intake_on,
        "inventory": case.inventory,
        "termination_tasks": list(case.termination_tasks),
        "risk": _risk(case),
        "relapse": case.relapse,
        "protocol_parameters": protocol_view(case.protocol),
        "transitions": {
            t.value: {
                "allowed": not reasons,
                "reasons": [{"rule": r.rule, "message": r.message} for r in reasons],
            }
            for t, reasons in case.why_not().items()
        },
    }


def _outcome(case: TherapyCase) -> Mapping[str, Any] | None:
    """Once concluded, the outcome the case's current measures give (domain.md §7)."""
    if case.outcome is None:
        return None
    current = outcome_of(case)
    return case.outcome if current is None else current.as_dict()


def _risk(case: TherapyCase) -> dict[str, Any] | None:
    risk = case.risk
    if risk is None:
        return None
    keys = ("item", "instrument", "measured_on", "flagged_at", "review")
    return {**{k: risk[k] for k in keys}, "followed_up": risk["review"] is not None}


def protocol_view(protocol: Protocol) -> dict[str, Any]:
    """A protocol version's parameters (domain.md §3 and §8), as GET /protocols
    and every case show them."""

    def span(r: IntRange) -> dict[str, int]:
        return {"low": r.low, "high": r.high}

    kinds = [k for k in SessionKind if k in protocol.session_kinds]
    return {
        "id": protocol.id,
        "name": protocol.name,
        "version": protocol.version,
        "title": protocol.title,
        "age": span(protocol.age),
        "contract_sessions": {
            **span(protocol.contract_sessions),
            "default": protocol.default_contract_sessions,
        },
        "beginning_sessions": span(protocol.beginning_sessions),
        "end_sessions": span(protocol.end_sessions),
        "counted_session_kinds": [k.value for k in kinds if k in COUNTED_KINDS],
        "uncounted_session_kinds": [k.value for k in kinds if k not in COUNTED_KINDS],
        "problem_areas": [a.value for a in ProblemArea if a in protocol.problem_areas],
        "frequencies": [f.value for f in Frequency],
        "follow_up_frequencies": [f.value for f in FollowUpFrequency],
        "parent_session_required_before_middle": (
            protocol.parent_session_required_before_middle
        ),
        "parent_session_expected_in_beginning": (
            protocol.parent_session_expected_in_beginning
        ),
        "pre_group_meeting_required": protocol.pre_group_meeting_required,
    }


def session_view(case: TherapyCase, number: int | None) -> dict[str, Any]:
    """The session a command just recorded: by number, or the last one recorded."""
    if number is None:
        session = case.sessions[-1]
    else:
        follow_up = case.phase == Phase.follow_up
        session = next(
            s
            for s in reversed(case.sessions)
            if s["number"] == number and s["follow_up"] == follow_up
        )
    return {k: v for k, v in session.items() if k != "voided"}


def session_answer(outcome: Outcome) -> dict[str, Any]:
    """A session command's answer: the session it recorded, and the case."""
    return {
        "session": session_view(outcome.case, outcome.result.session_number),
        "case": case_view(outcome.case, outcome.position),
    }


def missed_answer(outcome: Outcome) -> dict[str, Any]:
    """A missed-session command's answer: what was missed, and the case."""
    return {
        "session": missed_view(outcome.case),
        "case": case_view(outcome.case, outcome.position),
    }


def missed_view(case: TherapyCase) -> dict[str, Any]:
    missed = case.missed_sessions[-1]
    return {
        "number": None,
        "follow_up": missed["phase"] == Phase.follow_up,
        "kind": "therapy",
        "phase": missed["phase"],
        "missed": True,
        "scheduled_on": missed["scheduled_on"],
        "reason": missed["reason"],
    }


def erased_view(case: TherapyCase, position: int | None) -> dict[str, Any]:
    """An erased case: its receipt, phase and version, nothing else."""
    return {
        "id": str(case.id),
        "clinic_id": case.clinic_id,
        "phase": case.phase,
        "version": case.version,
        "position": position,
        "erased": True,
        "erasure": case.erased,
    }


def history_item(event: Any, *, erased: bool = False) -> dict[str, Any]:
    """One event as an auditor reads it: its public type name and its facts.

    Of an erased case only each event's envelope is shown, and the receipt.
    """
    if isinstance(event, ErasedEvent) or (
        erased and type(event) is not TherapyCase.CaseErased
    ):
        return {
            "version": event.originator_version,
            "type": event.erased_type
            if isinstance(event, ErasedEvent)
            else type(event).__name__,
            "occurred_at": event.timestamp.isoformat(),
            "recorded_by": event.recorded_by,
            "on_behalf_of": event.on_behalf_of,
            "command_id": None,
            "data": {},
            "erased": True,
        }
    facts = {k: v for k, v in vars(event).items() if k not in _META}
    return {
        "version": event.originator_version,
        "type": type(event).__name__,
        "occurred_at": event.timestamp.isoformat(),
        "recorded_by": event.recorded_by,
        "on_behalf_of": event.on_behalf_of,
        "command_id": event.command_id,
        "data": facts,
        "erased": False,
    }
