"""GET /protocols: every protocol version with its parameters (domain.md §8)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ipt_workflow.api import schemas as s
from ipt_workflow.api.deps import AnyRole
from ipt_workflow.api.errors import responses
from ipt_workflow.api.views import protocol_view
from ipt_workflow.domain.protocols import PROTOCOLS

router = APIRouter(prefix="/protocols", tags=["protocols"])


@router.get("", response_model=s.ProtocolList, responses=responses(401, 403, 429, 503))
def list_protocols(_: AnyRole) -> dict[str, Any]:
    """Every protocol version, with the parameters its cases are kept to."""
    return {"items": [protocol_view(p) for p in PROTOCOLS.values()]}
