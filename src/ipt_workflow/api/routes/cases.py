"""The case routes of api.md: opening, commands, transitions, follow-up, reads."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from ipt_workflow.api import schemas as s
from ipt_workflow.api.access import CaseReadsDep
from ipt_workflow.api.deps import Reader, ReadYourWrites, ServicesDep
from ipt_workflow.api.errors import responses
from ipt_workflow.api.routes.commands import Runner, answer
from ipt_workflow.api.views import case_view, history_item, missed_view, session_view
from ipt_workflow.application import Outcome
from ipt_workflow.domain.case import CommandContext, CommandResult
from ipt_workflow.domain.rules import FieldError, InvalidInput

router = APIRouter(prefix="/cases", tags=["cases"])

COMMAND_ERRORS = responses(400, 401, 403, 404, 409, 412, 413, 422, 429, 503)
READ_ERRORS = responses(401, 403, 404, 422, 429, 503)
CaseId = Annotated[UUID, "the case id"]


class TransitionName(StrEnum):
    start_middle = "start_middle"
    start_end = "start_end"
    conclude = "conclude"
    close = "close"
    withdraw = "withdraw"


@router.post(
    "",
    status_code=201,
    response_model=s.CaseView,
    responses={
        200: {"description": "The open case of this client_ref"},
        **COMMAND_ERRORS,
    },
)
def open_case(body: s.CaseCreate, runner: Runner) -> JSONResponse:
    """Open a case; with the client_ref of an open case and the same data, return it."""
    ctx = runner.context(body)
    outcome = runner.svc.cases.open_case(
        ctx,
        clinic_id=runner.principal.home_clinic,
        client_ref=body.client_ref,
        protocol=body.protocol,
        client_age=body.client_age,
        clinician_id=body.clinician_id,
        prior_episodes=body.prior_episodes,
        idempotency=runner.claim(body, 201),
    )
    status = outcome.status or (201 if outcome.created else 200)
    response = answer(outcome, case_view(outcome.case, outcome.position), status)
    response.headers["Location"] = f"/cases/{outcome.case.id}"
    return response


@router.get("/{case_id}", response_model=s.CaseView, responses=READ_ERRORS)
def get_case(
    case_id: CaseId,
    principal: Reader,
    svc: ServicesDep,
    _: ReadYourWrites,
    reads: CaseReadsDep,
) -> JSONResponse:
    """The case now, with every transition's why-not."""
    case = svc.cases.get_case(case_id, clinics=principal.clinics)
    reads.record(case)
    position = svc.cases.position_of(case.id, case.version)
    outcome = Outcome(case, CommandResult(case.version), position)
    return answer(outcome, case_view(case, outcome.position), 200)


@router.get("/{case_id}/history", response_model=s.HistoryPage, responses=READ_ERRORS)
def history(
    case_id: CaseId,
    principal: Reader,
    svc: ServicesDep,
    _: ReadYourWrites,
    reads: CaseReadsDep,
    after_version: Annotated[int, Query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The case's events in version order, a page at a time."""
    reads.record(svc.cases.get_case(case_id, clinics=principal.clinics))
    events = svc.cases.case_events(
        case_id, after_version=after_version, limit=limit + 1
    )
    page = events[:limit]
    more = len(events) > limit
    return {
        "items": [history_item(e) for e in page],
        "next_after_version": page[-1].originator_version if more else None,
    }


@router.post(
    "/{case_id}/inventory", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def record_inventory(
    case_id: CaseId, body: s.InventoryRecord, runner: Runner
) -> JSONResponse:
    """Record the interpersonal inventory (it replaces an earlier one)."""
    rows = [r.model_dump(exclude={"on_behalf_of"}) for r in body.relationships]
    return runner.run(
        case_id,
        body,
        lambda case, ctx: case.record_inventory(
            ctx, rows, body.attachment_style, body.communication_style
        ),
    )


@router.post("/{case_id}/focus", response_model=s.CaseView, responses=COMMAND_ERRORS)
def agree_focus(case_id: CaseId, body: s.FocusAgree, runner: Runner) -> JSONResponse:
    """Agree the focus: one primary problem area, with the client's agreement."""
    return runner.run(
        case_id,
        body,
        lambda case, ctx: case.agree_focus(
            ctx,
            body.primary_area,
            body.client_agreed,
            secondary_area=body.secondary_area,
            secondary_reason=body.secondary_reason,
            dispute_stage=body.dispute_stage,
            note=body.note,
        ),
    )


@router.post(
    "/{case_id}/dispute-stage", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def change_dispute_stage(
    case_id: CaseId, body: s.DisputeStageChange, runner: Runner
) -> JSONResponse:
    """Record that the role dispute moved to another stage."""
    return runner.run(
        case_id, body, lambda case, ctx: case.change_dispute_stage(ctx, body.stage)
    )


@router.post("/{case_id}/contract", response_model=s.CaseView, responses=COMMAND_ERRORS)
def contract(case_id: CaseId, body: s.ContractAgree, runner: Runner) -> JSONResponse:
    """Agree the contract; when one exists, renegotiate it (a reason is required)."""

    def act(case: Any, ctx: CommandContext) -> Any:
        if case.contract is None and body.reason is None:
            return case.agree_contract(ctx, body.sessions, body.frequency or "weekly")
        return case.renegotiate_contract(
            ctx, body.sessions, body.reason, body.frequency, body.note
        )

    return runner.run(case_id, body, act)


@router.post(
    "/{case_id}/deviations", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def record_deviation(
    case_id: CaseId, body: s.DeviationRecord, runner: Runner
) -> JSONResponse:
    """Record a deliberate departure from a protocol limit, with a reason."""
    return runner.run(
        case_id,
        body,
        lambda case, ctx: case.record_deviation(ctx, body.rule, body.reason, body.note),
    )


@router.post("/{case_id}/measures", response_model=s.CaseView, responses=COMMAND_ERRORS)
def record_measure(
    case_id: CaseId, body: s.MeasureRecord, runner: Runner
) -> JSONResponse:
    """Record a symptom score; the first one is the baseline."""
    return runner.run(
        case_id,
        body,
        lambda case, ctx: case.record_measure(
            ctx, body.instrument, body.score, body.measured_on
        ),
    )


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
    return runner.run(
        case_id,
        body,
        lambda case, ctx: case.record_session(
            ctx,
            body.held_on,
            body.minutes,
            body.modality,
            list(body.attendees),
            body.kind,
            list(body.strategies),
            list(body.communication_aspects),
        ),
        status=201,
        render=lambda o: {
            "session": session_view(o.case, o.result.session_number),
            "case": case_view(o.case, o.position),
        },
    )


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
    return runner.run(
        case_id,
        body,
        lambda case, ctx: case.record_missed_session(
            ctx, body.scheduled_on, body.reason, body.note
        ),
        status=201,
        render=lambda o: {
            "session": missed_view(o.case),
            "case": case_view(o.case, o.position),
        },
    )


@router.post(
    "/{case_id}/corrections", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def correct_entry(
    case_id: CaseId, body: s.CorrectionRecord, runner: Runner
) -> JSONResponse:
    """Mark a session or a measure as entered in error."""
    return runner.run(
        case_id,
        body,
        lambda case, ctx: case.correct_entry(
            ctx,
            body.entry,
            body.reason,
            number=body.number,
            measured_on=body.measured_on,
            instrument=body.instrument,
            note=body.note,
        ),
    )


@router.post("/{case_id}/reassign", response_model=s.CaseView, responses=COMMAND_ERRORS)
def reassign(case_id: CaseId, body: s.Reassignment, runner: Runner) -> JSONResponse:
    """Hand the case to another clinician."""
    return runner.run(
        case_id, body, lambda case, ctx: case.reassign(ctx, body.clinician_id)
    )


@router.post(
    "/{case_id}/transitions/{name}", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def transition(
    case_id: CaseId,
    name: TransitionName,
    runner: Runner,
    body: s.TransitionBody | None = None,
) -> JSONResponse:
    """Move the case on: start_middle, start_end, conclude, close or withdraw."""
    _fields_for(name, body)
    given = body or s.TransitionBody()

    def act(case: Any, ctx: CommandContext) -> Any:
        if name is TransitionName.start_middle:
            return case.start_middle(ctx)
        if name is TransitionName.start_end:
            return case.start_end(ctx)
        if name is TransitionName.conclude:
            return case.conclude(ctx, given.maintenance_discussed)
        if name is TransitionName.close:
            return case.close(ctx, given.reason, given.note)
        return case.withdraw(ctx, given.reason, given.note)

    return runner.run(case_id, body, act)


@router.post(
    "/{case_id}/follow-up/offer", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def offer_follow_up(
    case_id: CaseId, body: s.FollowUpOffer, runner: Runner
) -> JSONResponse:
    """Offer continuation or maintenance IPT after acute treatment."""
    return runner.run(
        case_id, body, lambda case, ctx: case.offer_follow_up(ctx, body.kind)
    )


@router.post(
    "/{case_id}/follow-up/decision", response_model=s.CaseView, responses=COMMAND_ERRORS
)
def decide_follow_up(
    case_id: CaseId, body: s.FollowUpDecision, runner: Runner
) -> JSONResponse:
    """Record the client's decision on the open offer."""

    def act(case: Any, ctx: CommandContext) -> Any:
        if body.accepted:
            return case.accept_follow_up(ctx, body.sessions, body.frequency)
        return case.decline_follow_up(ctx)

    return runner.run(case_id, body, act)


_TRANSITION_FIELDS = {
    TransitionName.start_middle: set(),
    TransitionName.start_end: set(),
    TransitionName.conclude: {"maintenance_discussed"},
    TransitionName.close: {"reason", "note"},
    TransitionName.withdraw: {"reason", "note"},
}


def _fields_for(name: TransitionName, body: s.TransitionBody | None) -> None:
    """Refuse fields this transition does not take, rather than ignore them."""
    if body is None:
        return
    given = body.model_fields_set - {"on_behalf_of"}
    extra = sorted(given - _TRANSITION_FIELDS[name])
    if extra:
        raise InvalidInput(
            [FieldError(f, f"{name.value} does not take this field") for f in extra]
        )
