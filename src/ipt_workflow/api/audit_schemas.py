"""Response bodies of the auditor routes (api.md), with an example each."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def _example(**values: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [values]})


class Verification(BaseModel):
    """The integrity of one case."""

    model_config = _example(
        intact=False,
        events_checked=12,
        first_broken_version=7,
        snapshot_version=None,
        checkpoint=3,
        problems=["version 7 does not match its chain hash"],
    )
    intact: bool
    events_checked: int
    first_broken_version: int | None
    snapshot_version: int | None
    """The snapshot compared with a replay of the events, if the case has one."""
    checkpoint: int | None
    """The latest signed checkpoint that vouches for the case's history."""
    problems: list[str]
    erased: bool = False
    """The case was erased: the chain is checked over the ciphertext that remains."""


class FeedItem(BaseModel):
    position: int
    case_id: str
    version: int
    type: str
    occurred_at: str
    recorded_by: str
    on_behalf_of: str | None
    command_id: str | None
    """None for an event of an erased case."""
    data: dict[str, Any]
    erased: bool = False
    """The event's data was erased: only its envelope remains."""


class FeedPage(BaseModel):
    """Events of the caller's clinics in log order; continue from `next_after`."""

    model_config = _example(
        items=[
            {
                "position": 1234,
                "case_id": "3f1c7b5e-8d0a-4b7e-9a63-2f1d8c4e5a90",
                "version": 4,
                "type": "SymptomsMeasured",
                "occurred_at": "2026-02-02T10:15:00+00:00",
                "recorded_by": "t-7",
                "on_behalf_of": None,
                "command_id": "9b2c…",
                "data": {"instrument": "phq9", "score": 12},
            }
        ],
        next_after=1234,
    )
    items: list[FeedItem]
    next_after: int = Field(
        description="Pass as `after` to go on: the feed is followed, so this is "
        "always present (the position to poll from when the page is empty)"
    )


class AccessItem(BaseModel):
    id: int
    at: str
    actor: str
    role: str
    case_id: str
    route: str


class AccessPage(BaseModel):
    """Who read which case, when, through which route; continue from `next_after`."""

    model_config = _example(
        items=[
            {
                "id": 17,
                "at": "2026-02-02T10:15:00.123456+00:00",
                "actor": "auditor-1",
                "role": "auditor",
                "case_id": "3f1c7b5e-8d0a-4b7e-9a63-2f1d8c4e5a90",
                "route": "/cases/{case_id}/history",
            }
        ],
        next_after=17,
    )
    items: list[AccessItem]
    next_after: int | None = Field(
        default=None,
        description="Pass as `after` for the next page; absent on the last page",
    )
