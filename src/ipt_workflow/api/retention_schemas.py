"""Bodies and answers of the retention routes (legal holds, erasure)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ipt_workflow.api.schemas import Identifier
from ipt_workflow.domain.erasure import ErasureBasis


def _example(**values: Any) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [values]})


class LegalHoldBody(BaseModel):
    model_config = _example(reason="MATTER-2026-114")
    reason: Identifier = Field(
        description="a reference (matter or ticket id), never text about the client"
    )


class ErasureBody(BaseModel):
    model_config = _example(basis="retention_expired", reason="RUN-2033-12-01")
    basis: ErasureBasis
    reason: Identifier = Field(
        description="a reference to the request or the run, never text about the "
        "client: it is kept in the receipt"
    )


class RetentionView(BaseModel):
    """A case as the admin role sees it: its record-keeping state, no case detail."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f1c7b5e-8d0a-4b7e-9a63-2f1d8c4e5a90",
                    "clinic_id": "demo-clinic",
                    "phase": "closed",
                    "version": 31,
                    "retention_until": "2033-11-30",
                    "legal_hold": None,
                    "erased": False,
                    "erasure": None,
                    "erasure_supported": True,
                }
            ]
        }
    )
    id: str
    clinic_id: str
    phase: str
    version: int
    retention_until: str | None
    legal_hold: dict[str, str] | None
    erased: bool
    erasure: dict[str, str | None] | None
    erasure_supported: bool
