"""The OpenAPI document as a client generator needs it.

- `operationId`s are readable and stable: named here, not derived from paths;
- every response header the service sends is documented (components/headers);
- every schema, field and parameter has a description: the models' own where they
  give one, else the glossary below, one sentence per name used across the API;
- every error answer is a Problem (RFC 9457), never FastAPI's default 422 schema.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

OPERATION_IDS = {
    "list_cases": "listCases",
    "open_case": "openCase",
    "get_case": "getCase",
    "history": "listCaseHistory",
    "record_inventory": "recordInventory",
    "agree_focus": "agreeFocus",
    "change_dispute_stage": "changeDisputeStage",
    "contract": "setContract",
    "record_deviation": "recordDeviation",
    "record_measure": "recordMeasure",
    "record_session": "recordSession",
    "record_missed_session": "recordMissedSession",
    "correct_entry": "correctEntry",
    "reassign": "reassignCase",
    "transition": "transitionCase",
    "offer_follow_up": "offerFollowUp",
    "decide_follow_up": "decideFollowUp",
    "caseload": "getCaseload",
    "phase_board": "getPhaseBoard",
    "outcomes": "getOutcomes",
    "alerts": "getAlerts",
    "fidelity": "getFidelity",
    "status": "getProjectionStatus",
    "replay": "replayCase",
    "verify": "verifyCase",
    "fhir": "getCaseFhir",
    "events": "listEvents",
    "access": "listAccessLog",
    "metadata": "getFhirMetadata",
    "export": "startFhirExport",
    "export_status": "getFhirExportStatus",
    "cancel_export": "cancelFhirExport",
    "export_file": "getFhirExportFile",
    "healthz": "getHealth",
    "readyz": "getReadiness",
    "prometheus_metrics": "getMetrics",
    "list_problems": "listProblemTypes",
    "problem_page": "getProblemType",
}
"""Route function → operationId. A route not named here gets its function's name
in camelCase; renaming a function must not rename an operation."""


def operation_id(route: APIRoute) -> str:
    """The operationId of a route (FastAPI's generate_unique_id_function)."""
    return OPERATION_IDS.get(route.name) or re.sub(
        r"_([a-z0-9])", lambda m: m.group(1).upper(), route.name
    )


def _header(description: str, kind: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": _header(
        "The request's id (the caller's own X-Request-ID if it sent a valid one); "
        "quote it when reporting a problem"
    ),
    "X-RateLimit-Limit": _header(
        "Requests the token may send at once (its bucket's size)", "integer"
    ),
    "X-RateLimit-Remaining": _header(
        "Requests the token may still send at once", "integer"
    ),
    "X-RateLimit-Reset": _header(
        "Seconds until the token's bucket is full again", "integer"
    ),
    "Retry-After": _header("Seconds to wait before trying again", "integer"),
    "ETag": _header('The case\'s version as a strong entity tag, such as `"12"`'),
    "X-Position": _header(
        "The log position of the case's last event: pass it as `min_position` to "
        "read your write",
        "integer",
    ),
    "Location": _header("The URL of the case"),
    "Idempotent-Replayed": _header(
        "`true` when this is the first answer given again to a retry with the same "
        "Idempotency-Key"
    ),
}

RATE_LIMIT = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
CASE_SCHEMAS = {"#/components/schemas/CaseView", "#/components/schemas/SessionAnswer"}

SCHEMA_DOCS = {
    "AccessItem": "One read of a case: who, when, through which route.",
    "AccessPage": "A page of the access log, oldest first.",
    "AttachmentStyle": "The client's attachment style (interpersonal inventory).",
    "Attendee": "Who attended a session.",
    "CaseCreate": "What opening a case takes.",
    "CommunicationAspect": "An aspect of communication analysed in a session.",
    "CommunicationStyle": "The client's communication style (interpersonal inventory).",
    "ContractAgree": "A contract to agree, or a renegotiation of the one agreed.",
    "ContractView": "A contract: how many sessions, how often.",
    "CorrectedEntry": "The kind of entry a correction marks as entered in error.",
    "CorrectionReason": "Why an entry is marked as entered in error.",
    "CorrectionRecord": "Which entry to mark as entered in error, and why.",
    "DeviationReason": "Why a protocol limit is departed from.",
    "DeviationRecord": "A deliberate departure from a protocol limit.",
    "DeviationRule": "The protocol limit a deviation departs from.",
    "DeviationView": "A recorded departure from a protocol limit.",
    "DisputeStage": "The stage of a role dispute.",
    "DisputeStageChange": "A role dispute's move to another stage.",
    "FeedItem": "One event of the feed, with its log position.",
    "FeedPage": "A page of the event feed, in log order.",
    "FocusAgree": "The focus to agree: the problem areas the treatment works on.",
    "FocusView": "The agreed focus.",
    "FollowUpDecision": "The client's answer to the open follow-up offer.",
    "FollowUpFrequency": "How often follow-up sessions take place.",
    "FollowUpKind": "The kind of follow-up after acute treatment.",
    "FollowUpOffer": "Follow-up to offer after acute treatment.",
    "Frequency": "How often acute-phase sessions take place.",
    "HistoryItem": "One event of a case, as an auditor reads it.",
    "HistoryPage": "A page of a case's history, in version order.",
    "Instrument": "A symptom measure.",
    "InventoryRecord": "The interpersonal inventory: the client's relationships.",
    "MeasureRecord": "A symptom score to record.",
    "MeasureView": "A recorded symptom score.",
    "MissedReason": "Why a session did not take place.",
    "MissedSessionRecord": "A session that did not take place.",
    "Modality": "How a session was held.",
    "OfferView": "The open offer of follow-up.",
    "OutcomeClass": "The outcome of acute treatment, from baseline and final scores.",
    "OutcomeView": "The outcome of acute treatment.",
    "Phase": "A phase of the course.",
    "ProblemArea": "An IPT problem area.",
    "Reason": "One unmet rule: its stable code and a sentence for a clinician.",
    "Reassignment": "The clinician a case is handed to.",
    "Relationship": "One relationship of the interpersonal inventory.",
    "RelationshipRole": "Who the relationship is with.",
    "RenegotiationReason": "Why a contract is renegotiated.",
    "SecondaryAreaReason": "Why a secondary problem area is agreed.",
    "SessionAnswer": "A session command's answer: the session recorded, and the case.",
    "SessionKind": "The kind of a session; only `therapy` sessions are counted.",
    "SessionRecord": "A session held.",
    "SessionView": "A session, held or missed.",
    "SessionsHeld": "Counted sessions held, by phase.",
    "Strategy": "A middle-phase IPT strategy used in a session.",
    "TransitionBody": "What a transition may take (each takes only its own fields).",
    "TransitionName": "A transition of the phase table.",
    "TransitionView": "Whether a transition may happen now, and every reason not.",
}
"""Schemas whose model (often an enum of domain codes) has no docstring of its own."""

FIELD_DOCS = {
    "accepted": "Whether the client accepts the offer",
    "actor": "Who read the case (the token's actor)",
    "allowed": "Whether the transition may happen now",
    "at": "When it happened (RFC 3339, UTC)",
    "attachment_style": "The client's attachment style",
    "attendees": "Who attended",
    "automatic": "Whether the service offered it on concluding, by the protocol",
    "baseline": "The baseline measure (the first valid one)",
    "beginning": "Counted sessions of the beginning phase",
    "case": "The case after the command",
    "case_id": "The case id",
    "changed_at_onset": "Whether the relationship changed around the onset",
    "checkpoint": "The latest signed checkpoint covering the case's history",
    "classification": "remission, response, partial_response or no_response",
    "client_age": "The client's age in years at intake",
    "client_agreed": "Whether the client agrees the focus (it must)",
    "client_ref": "The clinic's own reference of the client (client data)",
    "clinic_id": "The clinic the case belongs to",
    "clinician_id": "The clinician the case is assigned to",
    "closeness": "1 inner, 2 middle, 3 outer circle",
    "code": "A machine-readable problem code; `type` links to its page",
    "command_id": "The Idempotency-Key of the request, or an id the server made",
    "communication_aspects": "Aspects of communication analysed",
    "communication_style": "The client's communication style",
    "conflict": "Whether the relationship is in conflict",
    "contract": "The acute contract, once agreed",
    "data": "The event's facts",
    "deceased": "Whether the person has died",
    "detail": "What went wrong with this request",
    "deviations": "Departures from protocol limits, in the order recorded",
    "dispute_stage": "The stage of the role dispute",
    "end": "Counted sessions of the end phase",
    "entry": "The kind of entry to mark as entered in error",
    "errors": "Every field that does not fit: `{field, message}`",
    "events_checked": "How many events were checked",
    "final": "The final score of acute treatment",
    "first_broken_version": "The first version whose chain hash does not match",
    "focus": "The agreed focus, once agreed",
    "follow_up": "Follow-up sessions held / whether the session is one",
    "follow_up_contract": "The follow-up contract, once accepted",
    "follow_up_offer": "The open offer of follow-up, if any",
    "frequency": "How often sessions take place",
    "held_on": "The day the session was held (YYYY-MM-DD)",
    "id": "The id",
    "instrument": "The symptom measure",
    "intact": "Whether every check passed",
    "items": "The entries of this page",
    "kind": "The kind",
    "latest_measure": "The latest valid measure",
    "message": "A sentence for a clinician",
    "middle": "Counted sessions of the middle phase",
    "minutes": "How long the session took, in minutes",
    "missed": "Whether the session did not take place",
    "modality": "How the session was held",
    "measured_on": "The day the score was measured (YYYY-MM-DD)",
    "next_after": "Pass as `after` for the next page; absent or null on the last",
    "next_after_version": "Pass as `after_version` for the next page; null on the last",
    "note": "Free text, only with the code `other` (client data; never exported)",
    "number": "The session number",
    "occurred_at": "When the event was recorded (RFC 3339, UTC)",
    "offered_at": "When the offer was made (RFC 3339, UTC)",
    "on_behalf_of": "The clinician the caller acted for, if not itself",
    "outcome": "The outcome of acute treatment, once concluded",
    "phase": "The phase",
    "position": "The log position of the last event",
    "primary_area": "The primary problem area",
    "prior_episodes": "Earlier depressive episodes of the client",
    "problems": "What is wrong, one sentence each",
    "protocol": "The protocol version, such as `ipt@1`",
    "reason": "The reason code",
    "reasons": "Every unmet rule",
    "recorded_at": "When it was recorded (RFC 3339, UTC)",
    "recorded_by": "The actor of the token that recorded it",
    "relationships": "The client's relationships",
    "residual": "Whether residual symptoms remain (follow-up is offered)",
    "role": "The role",
    "route": "The route template the case was read through",
    "rule": "A stable rule code",
    "scheduled_on": "The day the session was scheduled (YYYY-MM-DD)",
    "score": "The score",
    "secondary_area": "A secondary problem area, if agreed",
    "secondary_reason": "Why a secondary area is agreed",
    "session": "The session recorded",
    "sessions": "How many sessions",
    "sessions_held": "Counted sessions held, by phase",
    "sessions_remaining": "Sessions left of the current contract",
    "snapshot_version": "The version of the snapshot compared with a replay",
    "stage": "The new stage of the role dispute",
    "status": "The HTTP status",
    "strategies": "Middle-phase strategies used",
    "supportive": "Whether the relationship is supportive",
    "title": "A short summary of the problem code",
    "total": "Counted sessions of the acute course",
    "transitions": "For each transition: whether it may happen now, and why not",
    "type": "The type",
    "used": "Whether the deviation has taken effect",
    "version": "The case's version (the number of its events)",
    "violations": "Every unmet rule: `{rule, message}`",
}
"""One sentence per field name; a model's own description wins."""

PARAMETER_DOCS = {
    "case_id": "The case id",
    "job_id": "The export's id (from Content-Location)",
    "kind": "A resource type of the export",
    "code": "A problem code",
    "name": "The transition",
    "after": "The `next_after` of the previous page",
    "limit": "How many items a page holds at most",
    "min_position": "Wait up to 5 s until the read models reach this log position",
    "version": "The version to replay the case at",
    "after_version": "The `next_after_version` of the previous page",
    "clinician_id": "Only this clinician's cases",
    "phase": "Only cases in this phase",
    "protocol": "Only cases of this protocol (`ipt` for every version)",
    "actor": "Only reads by this actor",
}


def install(app: FastAPI, *extra: Callable[[dict[str, Any]], None]) -> None:
    """Replace the app's OpenAPI document with the completed one (built once)."""
    original: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        for step in extra:
            step(schema)
        complete(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any]) -> None:
    """Headers, descriptions and problem answers, everywhere they are missing."""
    components = schema.setdefault("components", {})
    components["headers"] = HEADERS
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for name, body in schemas.items():
        _describe(name, body)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            _complete_operation(path, method, operation)


def _describe(name: str, body: dict[str, Any]) -> None:
    if not body.get("description"):
        body["description"] = SCHEMA_DOCS.get(name, name)
    for field, prop in body.get("properties", {}).items():
        if not prop.get("description"):
            prop["description"] = FIELD_DOCS.get(field, field.replace("_", " "))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _complete_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None and "anyOf" in body["schema"]:
        # An optional body whose fields are all optional: documented as a required
        # object (`{}` will do), so that generators type it; none is still taken.
        (body["schema"],) = [s for s in body["schema"]["anyOf"] if "$ref" in s]
        operation["requestBody"]["required"] = True
    for parameter in operation.get("parameters", []):
        if not parameter.get("description"):
            parameter["description"] = PARAMETER_DOCS.get(
                parameter["name"], parameter["name"]
            )
    public = operation.get("security") == []
    for status, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        for media in content.values():
            if media.get("schema", {}).get("$ref", "").endswith("HTTPValidationError"):
                media["schema"] = {"$ref": "#/components/schemas/Problem"}
        if "application/json" in content and status[0] in "45":
            content["application/problem+json"] = content.pop("application/json")
        headers = response.setdefault("headers", {})
        names = ["X-Request-ID"]
        if not public:
            names += RATE_LIMIT
        if status in ("429", "503"):
            names.append("Retry-After")
        refs = {
            ref
            for m in content.values()
            if isinstance(m, dict)
            for ref in _refs(m.get("schema", {}))
        }
        if status in ("200", "201") and refs & CASE_SCHEMAS:
            names += ["ETag", "X-Position"]
            if method == "post":
                names.append("Idempotent-Replayed")
            if path == "/cases":
                names.append("Location")
        if status in ("304", "412"):
            names.append("ETag")
        if status == "409" and path == "/cases" and method == "post":
            names.append("Location")
        for name in names:
            headers.setdefault(name, _ref(name))


def _refs(schema: dict[str, Any]) -> set[str]:
    """The schemas an answer may be: its $ref, or each of a union's (an erased case
    answers with a view of its own)."""
    found = {schema["$ref"]} if "$ref" in schema else set()
    for member in schema.get("anyOf", []) + schema.get("oneOf", []):
        found |= _refs(member)
    return found
