"""When a case may not be erased, or held: open, held, retention not over."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from ipt_workflow.domain.erasure import EraseCase, ErasureBasis
from ipt_workflow.domain.errors import Violation


class ErasureFacts(Protocol):
    @property
    def is_final(self) -> bool: ...
    @property
    def legal_hold(self) -> dict[str, str] | None: ...


def erasure_refusal(
    case: ErasureFacts, command: EraseCase, today: date, until: date | None
) -> list[Violation]:
    """Why a case may not be erased today (empty: it may)."""
    if not case.is_final:
        return [
            Violation(
                "erasure.case_open", "An open case cannot be erased: end it first."
            )
        ]
    found = []
    if case.legal_hold is not None:
        found.append(
            Violation(
                "erasure.legal_hold",
                "The case is under a legal hold; lift it before erasing.",
            )
        )
    if (
        command.basis == ErasureBasis.retention_expired
        and until is not None
        and today < until
    ):
        found.append(
            Violation(
                "erasure.retention_not_over",
                f"The retention period runs until {until.isoformat()}; only a data "
                "subject's request may erase the case before then.",
            )
        )
    return found


def hold_refusal(case: ErasureFacts, placing: bool) -> list[Violation]:
    if placing and case.legal_hold is not None:
        return [Violation("legal_hold.placed", "The case is already under a hold.")]
    if not placing and case.legal_hold is None:
        return [Violation("legal_hold.none", "The case is not under a legal hold.")]
    return []


def erased_refusal(receipt: object | None) -> list[Violation]:
    if receipt is None:
        return []
    return [Violation("case.erased", "The case was erased.")]
