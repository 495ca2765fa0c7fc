"""Recording each read of a case in the access log (api.md, GET /audit/access)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request

from ipt_workflow.api.deps import Principal, ServicesDep, authenticate
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.storage.access_log import AccessLog


@dataclass(frozen=True)
class CaseReads:
    """Records that the caller read a case through this request's route."""

    principal: Principal
    log: AccessLog
    route: str

    def record(self, case: TherapyCase) -> None:
        self.record_id(case.id, case.clinic_id)

    def record_ids(self, cases: Collection[tuple[UUID, str]]) -> None:
        """Record a read of each (case, clinic), in one write."""
        self.log.record_many(
            actor=self.principal.actor,
            role=self.principal.role,
            key_id=self.principal.token_id,
            cases=cases,
            route=self.route,
        )

    def record_id(self, case_id: UUID, clinic_id: str) -> None:
        # Recorded before the answer is sent: a read that cannot be recorded fails.
        self.log.record(
            actor=self.principal.actor,
            role=self.principal.role,
            key_id=self.principal.token_id,
            clinic_id=clinic_id,
            case_id=case_id,
            route=self.route,
        )


async def case_reads(
    principal: Annotated[Principal, Depends(authenticate)],
    svc: ServicesDep,
    request: Request,
) -> CaseReads:
    if svc.access is None:
        raise RuntimeError("no access log is configured")
    route = getattr(request.scope.get("route"), "path", request.url.path)
    return CaseReads(principal, svc.access, route)


CaseReadsDep = Annotated[CaseReads, Depends(case_reads)]
