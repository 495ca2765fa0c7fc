"""Response bodies of the case lookup and listing (api.md, second round)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SUMMARY: dict[str, Any] = {
    "id": "3f1c7b5e-8d0a-4b7e-9a63-2f1d8c4e5a90",
    "phase": "closed",
    "protocol": "ipt@1",
    "clinician_id": "t-7",
    "opened_at": "2026-01-05T09:12:30.123456+00:00",
    "ended_at": "2026-05-11T16:02:11.654321+00:00",
}


class CaseSummary(BaseModel):
    """A case as a list shows it: no client data, no transitions."""

    model_config = ConfigDict(json_schema_extra={"examples": [SUMMARY]})
    id: str = Field(description="The case id")
    phase: str = Field(description="The case's phase now")
    protocol: str = Field(description="The protocol version, such as `ipt@1`")
    clinician_id: str = Field(description="The clinician the case is assigned to")
    opened_at: str = Field(description="When the case was opened (RFC 3339, UTC)")
    ended_at: str | None = Field(
        description="When the case was closed or withdrawn; null while it is open"
    )


class CaseList(BaseModel):
    """A page of case summaries, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"items": [SUMMARY], "next_after": "MjAyNi0wMS0wNVQwOToxMjozMC4xMjM0"}
            ]
        }
    )
    items: list[CaseSummary] = Field(description="The cases of this page")
    next_after: str | None = Field(
        default=None,
        description="Pass as `after` for the next page; absent on the last page",
    )
