"""/openapi.json is complete enough to generate a client from: stable readable
operationIds, every header the service sends documented, a description for every
schema, field and parameter, and problem answers only as Problem."""

from __future__ import annotations

import re
from typing import Any

from tests.support.api import Api

PINNED = {
    ("get", "/cases"): "listCases",
    ("post", "/cases"): "openCase",
    ("get", "/cases/{case_id}"): "getCase",
    ("get", "/cases/{case_id}/history"): "listCaseHistory",
    ("post", "/cases/{case_id}/inventory"): "recordInventory",
    ("post", "/cases/{case_id}/focus"): "agreeFocus",
    ("post", "/cases/{case_id}/dispute-stage"): "changeDisputeStage",
    ("post", "/cases/{case_id}/contract"): "setContract",
    ("post", "/cases/{case_id}/deviations"): "recordDeviation",
    ("post", "/cases/{case_id}/measures"): "recordMeasure",
    ("post", "/cases/{case_id}/sessions"): "recordSession",
    ("post", "/cases/{case_id}/missed-sessions"): "recordMissedSession",
    ("post", "/cases/{case_id}/corrections"): "correctEntry",
    ("post", "/cases/{case_id}/reassign"): "reassignCase",
    ("post", "/cases/{case_id}/transitions/{name}"): "transitionCase",
    ("post", "/cases/{case_id}/follow-up/offer"): "offerFollowUp",
    ("post", "/cases/{case_id}/follow-up/decision"): "decideFollowUp",
    ("get", "/cases/{case_id}/replay"): "replayCase",
    ("get", "/cases/{case_id}/verify"): "verifyCase",
    ("get", "/cases/{case_id}/fhir"): "getCaseFhir",
    ("get", "/events"): "listEvents",
    ("get", "/audit/access"): "listAccessLog",
    ("get", "/fhir/metadata"): "getFhirMetadata",
    ("get", "/fhir/$export"): "startFhirExport",
    ("get", "/fhir/bulkstatus/{job_id}"): "getFhirExportStatus",
    ("delete", "/fhir/bulkstatus/{job_id}"): "cancelFhirExport",
    ("get", "/projections/caseload"): "getCaseload",
    ("get", "/projections/status"): "getProjectionStatus",
    ("get", "/healthz"): "getHealth",
    ("get", "/readyz"): "getReadiness",
    ("get", "/problems/{code}"): "getProblemType",
}
"""operationIds clients are generated with: a change here breaks their code."""

SENT = {
    "etag",
    "x-position",
    "location",
    "retry-after",
    "x-request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "idempotent-replayed",
}


def document(api: Api) -> dict[str, Any]:
    found: dict[str, Any] = api.client.get("/openapi.json").json()
    return found


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    ]


def documented_headers(
    doc: dict[str, Any], method: str, path: str, status: int
) -> set[str]:
    response = doc["paths"][path][method]["responses"][str(status)]
    return {h.lower() for h in response.get("headers", {})}


class TestOperationIds:
    def test_operation_ids_are_unique_camel_case_and_pinned(
        self, sqlite_api: Api
    ) -> None:
        doc = document(sqlite_api)

        ids = {(m, p): op["operationId"] for m, p, op in operations(doc)}

        assert len(set(ids.values())) == len(ids)
        assert all(re.fullmatch(r"[a-z][a-zA-Z]+", i) for i in ids.values()), ids
        assert {k: ids.get(k) for k in PINNED} == PINNED


class TestHeaders:
    def test_every_answer_documents_its_request_id_and_counted_ones_their_limits(
        self, sqlite_api: Api
    ) -> None:
        doc = document(sqlite_api)
        defined = set(doc["components"]["headers"])

        for method, path, op in operations(doc):
            for status, response in op["responses"].items():
                headers = response.get("headers", {})
                where = f"{method} {path} {status}"
                assert "X-Request-ID" in headers, where
                if op.get("security") != []:
                    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining"} <= set(
                        headers
                    ), where
                if status in ("429", "503"):
                    assert "Retry-After" in headers, where
                for header in headers.values():
                    if "$ref" in header:
                        assert header["$ref"].rsplit("/", 1)[1] in defined

    def test_the_headers_real_answers_carry_are_the_documented_ones(
        self, sqlite_api: Api
    ) -> None:
        doc = document(sqlite_api)
        body = {
            "client_ref": "DOC-1",
            "protocol": "ipt",
            "client_age": 34,
            "clinician_id": "t-7",
        }
        opened = sqlite_api.post("/cases", body, **{"Idempotency-Key": "doc-1"})
        replayed = sqlite_api.post("/cases", body, **{"Idempotency-Key": "doc-1"})
        case = f"/cases/{opened.json()['id']}"
        answers = [
            ("post", "/cases", opened),
            ("post", "/cases", replayed),
            (
                "post",
                "/cases/{case_id}/reassign",
                sqlite_api.post(f"{case}/reassign", {"clinician_id": "t-8"}),
            ),
            ("get", "/cases/{case_id}", sqlite_api.get(case)),
            (
                "get",
                "/cases/{case_id}",
                sqlite_api.client.get(
                    case, headers=sqlite_api.headers(**{"If-None-Match": '"2"'})
                ),
            ),
            (
                "post",
                "/cases/{case_id}/transitions/{name}",
                sqlite_api.post(f"{case}/transitions/start_middle"),
            ),
            (
                "post",
                "/cases/{case_id}/reassign",
                sqlite_api.post(
                    f"{case}/reassign", {"clinician_id": "t-9"}, **{"If-Match": '"1"'}
                ),
            ),
        ]

        statuses = [a.status_code for _, _, a in answers]
        assert statuses == [201, 201, 200, 200, 304, 409, 412]
        for method, path, answer in answers:
            sent = SENT & {h.lower() for h in answer.headers}
            documented = documented_headers(doc, method, path, answer.status_code)
            assert sent <= documented, (method, path, answer.status_code)
        assert "idempotent-replayed" in {h.lower() for h in replayed.headers}


class TestDescriptions:
    def test_every_schema_and_field_has_a_description(self, sqlite_api: Api) -> None:
        schemas = document(sqlite_api)["components"]["schemas"]

        missing = [
            f"{name}.{field}"
            for name, schema in schemas.items()
            for field, prop in schema.get("properties", {}).items()
            if not prop.get("description")
        ] + [name for name, schema in schemas.items() if not schema.get("description")]

        assert missing == []

    def test_every_parameter_has_a_description(self, sqlite_api: Api) -> None:
        doc = document(sqlite_api)

        missing = [
            f"{method} {path} {p['name']}"
            for method, path, op in operations(doc)
            for p in op.get("parameters", [])
            if not p.get("description")
        ]

        assert missing == []

    def test_errors_are_documented_as_problems_only(self, sqlite_api: Api) -> None:
        doc = document(sqlite_api)

        assert "HTTPValidationError" not in doc["components"]["schemas"]
        for method, path, op in operations(doc):
            for status, response in op["responses"].items():
                if (
                    status.startswith(("4", "5"))
                    and path != "/fhir/bulkstatus/{job_id}"
                ):
                    assert set(response.get("content", {})) <= {
                        "application/problem+json"
                    }, (method, path, status)
