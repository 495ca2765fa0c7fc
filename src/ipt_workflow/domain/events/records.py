"""The events of keeping and destroying the record: a legal hold, and the receipt of
an erasure (retention and erasure, api.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ipt_workflow.domain.events.base import CaseEvent

if TYPE_CHECKING:
    from ipt_workflow.domain.case import TherapyCase


class LegalHoldPlaced(CaseEvent):
    reason: str
    """A reference (a matter or ticket id), never prose about the client."""

    def apply(self, case: TherapyCase) -> None:
        case.legal_hold = {
            "reason": self.reason,
            "placed_at": self.timestamp.isoformat(),
            "placed_by": self.recorded_by,
        }


class LegalHoldLifted(CaseEvent):
    reason: str

    def apply(self, case: TherapyCase) -> None:
        case.legal_hold = None


class CaseErased(CaseEvent):
    """The receipt of an erasure: who, when, on what basis; no client data.

    It is stored under the key ring, not the case's data key, which the same
    transaction destroys: the receipt outlives what it erased.
    """

    outlives_erasure: ClassVar[bool] = True

    clinic_id: str
    phase: str
    basis: str
    reason: str
    retention_until: str | None

    def apply(self, case: TherapyCase) -> None:
        case.__init__()  # type: ignore[misc]  # nothing of the client stays in memory
        case.clinic_id, case.phase = self.clinic_id, self.phase
        case.erasure = {
            "erased_at": self.timestamp.isoformat(),
            "erased_by": self.recorded_by,
            "basis": self.basis,
            "reason": self.reason,
            "retention_until": self.retention_until,
        }
