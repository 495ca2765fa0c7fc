"""The case routes of api.md: opening, commands, transitions, follow-up, reads."""

from __future__ import annotations

from dataclasses import fields
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from ipt_workflow.api import schemas as s
from ipt_workflow.api.access import CaseReadsDep
from ipt_workflow.api.conditional import IfNoneMatch, not_modified
from ipt_workflow.api.deps import Reader, ReadYourWrites, ServicesDep
from ipt_workflow.api.errors import responses
from ipt_workflow.api.routes.commands import Runner, answer, with_retention
from ipt_workflow.api.views import (
    case_view,
    erased_view,
    history_item,
    missed_answer,
    session_answer,
)
from ipt_workflow.application.cases import Outcome
from ipt_workflow.domain.codes import Transition
from ipt_workflow.domain.commands import (
    AgreeFocus,
    ChangeDisputeStage,
    CommandResult,
    CorrectEntry,
    DecideFollowUp,
    OfferFollowUp,
    OpenCase,
    Reassign,
    RecordDeviation,
    RecordInventory,
    RecordMeasure,
    RecordMissedSession,
    RecordRiskReview,
    RecordSession,
    SetContract,
)
from ipt_workflow.domain.errors import FieldError, InvalidInput
from ipt_workflow.domain.phases import TRANSITION_COMMANDS

router = APIRouter(prefix="/cases", tags=["cases"])

COMMAND_ERRORS = responses(400, 401, 403, 404, 409, 412, 413, 422, 429, 503)
READ_ERRORS = responses(401, 403, 404, 422, 429, 503)
CaseId = Annotated[UUID, "the case id"]

TransitionName = StrEnum(  # type: ignore[misc]
    "TransitionName", [(t.value, t.value) for t in TRANSITION_COMMANDS]
)
"""Every transition a case's `transitions` names has its route (the answers to a
follow-up offer also have the one-call /follow-up/decision)."""


@router.post(
    "",
    status_code=201,
    response_model=s.CaseView,
    responses={
        200: {"description": "The open case of this client_ref", "model": s.CaseView},
        **COMMAND_ERRORS,
    },
)
def open_case(body: s.CaseCreate, runner: Runner) -> JSONResponse:
    """Open a case; with the client_ref of an open case and the same data, return it."""
    command = runner.parse(OpenCase, body, clinic_id=runner.principal.home_clinic)
    outcome = runner.svc.cases.open_case(
        command, runner.context(body), idempotency=runner.claim(body, 201)
    )
    status = outcome.status or (201 if outcome.created else 200)
    # Only an answer stored under the Idempotency-Key is a replay; the open case
    # returned for its client_ref is an answer of its own (200).
    replayed = outcome.status is not None
    content = with_retention(
        runner.svc, outcome.case, case_view(outcome.case, outcome.position)
    )
    response = answer(outcome, content, status, replayed=replayed)
    response.headers["Location"] = f"/cases/{outcome.case.id}"
    return response


@router.get(
    "/{case_id}",
    response_model=s.CaseView | s.ErasedCaseView,
    responses={
        304: {"description": "The case is still at the version held"},
        **responses(400),
        **READ_ERRORS,
    },
)
def get_case(
    case_id: CaseId,
    principal: Reader,
    svc: ServicesDep,
    _: ReadYourWrites,
    reads: CaseReadsDep,
    held: IfNoneMatch,
) -> Response:
    """The case now, with every transition's why-not; an erased case, its receipt."""
    case = svc.cases.get_case(case_id, clinics=principal.clinics)
    reads.record(case)
    if unchanged := not_modified(held, case.version):
        return unchanged
    position = svc.cases.position_of(case.id, case.version)
    outcome = Outcome(case, CommandResult(case.version), position)
    if case.erased is not None:
        return answer(outcome, erased_view(case, position), 200)
    content = with_retention(svc, case, case_view(case, outcome.position))
    return answer(outcome, content, 200)


@router.get("/{case_id}/history", response_model=s.HistoryPage, responses=READ_ERRORS)
def history(
    case_id: CaseId,
    principal: Reader,
    svc: ServicesDep,
    _: ReadYourWrites,
    reads: CaseReadsDep,
    after: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    after_version: Annotated[
        int | None,
        Query(ge=0, le=2**53, deprecated=True, description="the old name of `after`"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """The case's events in version order, a page at a time; of an erased case,
    each event's envelope (version, type, time, actor) without its data."""
    case = svc.cases.get_case(case_id, clinics=principal.clinics)
    reads.record(case)
    start = after if after is not None else (after_version or 0)
    events = svc.cases.case_events(case_id, after_version=start, limit=limit + 1)
    page = events[:limit]
    more = len(events) > limit
    erased = case.erased is not None
    body: dict[str, Any] = {
        "items": [history_item(e, erased=erased) for e in page],
        "next_after_version": page[-1].originator_version if more else None,
    }
    if more:
        body["next_after"] = page[-1].originator_version
    return JSONResponse(body)


@router.post(
    "/{case_id}/inventory", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def record_inventory(
    case_id: CaseId, body: s.InventoryRecord, runner: Runner
) -> JSONResponse:
    """Record the interpersonal inventory (it replaces an earlier one)."""
    return runner.run(case_id, body, runner.parse(RecordInventory, body))


@router.post("/{case_id}/focus", response_model=s.CaseView, responses=COMMAND_ERRORS)
def agree_focus(case_id: CaseId, body: s.FocusAgree, runner: Runner) -> JSONResponse:
    """Agree the focus: one primary problem area, with the client's agreement."""
    return runner.run(case_id, body, runner.parse(AgreeFocus, body))


@router.post(
    "/{case_id}/dispute-stage", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def change_dispute_stage(
    case_id: CaseId, body: s.DisputeStageChange, runner: Runner
) -> JSONResponse:
    """Record that the role dispute moved to another stage."""
    return runner.run(case_id, body, runner.parse(ChangeDisputeStage, body))


@router.post("/{case_id}/contract", response_model=s.CaseView, responses=COMMAND_ERRORS)
def contract(case_id: CaseId, body: s.ContractAgree, runner: Runner) -> JSONResponse:
    """Agree the contract; when one exists, renegotiate it (a reason is required)."""
    return runner.run(case_id, body, runner.parse(SetContract, body))


@router.post(
    "/{case_id}/deviations", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def record_deviation(
    case_id: CaseId, body: s.DeviationRecord, runner: Runner
) -> JSONResponse:
    """Record a deliberate departure from a protocol limit, with a reason."""
    return runner.run(case_id, body, runner.parse(RecordDeviation, body))


@router.post("/{case_id}/measures", response_model=s.CaseView, responses=COMMAND_ERRORS)
def record_measure(
    case_id: CaseId, body: s.MeasureRecord, runner: Runner
) -> JSONResponse:
    """Record a symptom score; the first one is the baseline."""
    return runner.run(case_id, body, runner.parse(RecordMeasure, body))


@router.post(
    "/{case_id}/sessions",
    status_code=201,
    response_model=s.SessionAnswer,
    responses=COMMAND_ERRORS,
)
def record_session(
    case_id: CaseId, body: s.SessionRecord, runner: Runner
) -> JSONResponse:
    """Record a session held; a counted session gets the next number."""
    command = runner.parse(RecordSession, body)
    return runner.run(case_id, body, command, status=201, render=session_answer)


@router.post(
    "/{case_id}/missed-sessions",
    status_code=201,
    response_model=s.SessionAnswer,
    responses=COMMAND_ERRORS,
)
def record_missed_session(
    case_id: CaseId, body: s.MissedSessionRecord, runner: Runner
) -> JSONResponse:
    """Record a session that did not take place."""
    command = runner.parse(RecordMissedSession, body)
    return runner.run(case_id, body, command, status=201, render=missed_answer)


@router.post(
    "/{case_id}/corrections", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def correct_entry(
    case_id: CaseId, body: s.CorrectionRecord, runner: Runner
) -> JSONResponse:
    """Mark a session, meeting or measure as entered in error; a measure may be
    replaced in the same save (domain.md §7)."""
    return runner.run(case_id, body, runner.parse(CorrectEntry, body))


@router.post(
    "/{case_id}/risk-reviews", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def record_risk_review(
    case_id: CaseId, body: s.RiskReview, runner: Runner
) -> JSONResponse:
    """Record that the open risk flag was followed up, and how."""
    return runner.run(case_id, body, runner.parse(RecordRiskReview, body))


@router.post("/{case_id}/reassign", response_model=s.CaseView, responses=COMMAND_ERRORS)
def reassign(case_id: CaseId, body: s.Reassignment, runner: Runner) -> JSONResponse:
    """Hand the case to another clinician."""
    return runner.run(case_id, body, runner.parse(Reassign, body))


@router.post(
    "/{case_id}/transitions/{name}", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def transition(
    case_id: CaseId,
    name: TransitionName,
    runner: Runner,
    body: s.TransitionBody | None = None,
) -> JSONResponse:
    """Move the case on by one of the transitions its `transitions` lists."""
    kind = TRANSITION_COMMANDS[Transition(name.value)]
    takes = {f.name for f in fields(kind)}
    # A field sent as null is a field not sent (generated clients send defaults).
    given = set()
    if body is not None:
        given = {
            f
            for f in body.model_fields_set - {"on_behalf_of"}
            if getattr(body, f) is not None
        }
    if extra := sorted(given - takes):
        raise InvalidInput(
            [FieldError(f, f"{name.value} does not take this field") for f in extra]
        )
    values = {f: getattr(body, f) for f in given}
    return runner.run(case_id, body, kind.parse(today=runner.today(), **values))


@router.post(
    "/{case_id}/follow-up/offer", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def offer_follow_up(
    case_id: CaseId, body: s.FollowUpOffer, runner: Runner
) -> JSONResponse:
    """Offer continuation or maintenance IPT after acute treatment."""
    return runner.run(case_id, body, runner.parse(OfferFollowUp, body))


@router.post(
    "/{case_id}/follow-up/decision", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def decide_follow_up(
    case_id: CaseId, body: s.FollowUpDecision, runner: Runner
) -> JSONResponse:
    """Record the client's decision on the open offer."""
    return runner.run(case_id, body, runner.parse(DecideFollowUp, body))
