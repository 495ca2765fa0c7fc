"""Retention, legal holds and erasure of cases (the `admin` role's work on cases).

Erasing a case records its `CaseErased` receipt and destroys its data key in one
transaction (storage/case_keys.py), so a crash leaves it either erased or not; the
same transaction drops its snapshots and idempotency records. The read models
drop the case's rows when they reach the receipt.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, cast
from uuid import UUID

from ipt_workflow.application.cases import (
    CaseApplication,
    CaseNotFoundError,
    IdempotencyClaim,
    Outcome,
    _position,
    _record,
)
from ipt_workflow.domain import events
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.commands import CommandContext, CommandResult
from ipt_workflow.domain.erasure import (
    EraseCase,
    LiftLegalHold,
    PlaceLegalHold,
    RetentionPolicy,
    retention_until,
)
from ipt_workflow.domain.errors import DomainError
from ipt_workflow.storage.audit import AuditRecorder


class ErasureUnsupportedError(DomainError):
    """Raised when a case's payloads are not under a data key of its own."""

    def __init__(self, case_id: UUID) -> None:
        self.case_id = case_id
        super().__init__(
            "this case was written before cases had data keys of their own; "
            "its data cannot be shredded"
        )


@dataclass(frozen=True)
class RetentionStatus:
    """What an admin sees of a case: no client data."""

    case_id: UUID
    clinic_id: str
    phase: str
    version: int
    retention_until: date | None
    legal_hold: dict[str, str] | None
    erasure: dict[str, str | None] | None
    erasure_supported: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.case_id),
            "clinic_id": self.clinic_id,
            "phase": self.phase,
            "version": self.version,
            "retention_until": None
            if self.retention_until is None
            else self.retention_until.isoformat(),
            "legal_hold": self.legal_hold,
            "erased": self.erasure is not None,
            "erasure": self.erasure,
            "erasure_supported": self.erasure_supported,
        }


@dataclass(frozen=True)
class DueCase:
    """A case whose retention ended: erasable unless it cannot be shredded."""

    case_id: UUID
    clinic_id: str
    retention_until: date
    erasure_supported: bool


class Retention:
    """Holds and erasures over the case application."""

    def __init__(
        self, cases: CaseApplication, policy_of: Callable[[str], RetentionPolicy]
    ) -> None:
        self.cases = cases
        self.policy_of = policy_of

    # --- reading --------------------------------------------------------------------

    def until(self, case: TherapyCase) -> date | None:
        """The first day the case may be erased for retention; None while open."""
        if case.erased is not None:
            kept = case.erased.get("retention_until")
            return None if kept is None else date.fromisoformat(kept)
        if not case.is_final:
            return None
        ended = case.ended_on or self._ended_from_events(case.id)
        return retention_until(
            self.policy_of(case.clinic_id),
            # Every case has one (cases of 0.1.0: their opening day, by upcasting).
            intake_on=date.fromisoformat(case.intake_on),
            ended_on=ended,
            age_at_intake=case.client_age,
        )

    def _ended_from_events(self, case_id: UUID) -> date:
        # Only a case snapshotted before `ended_at` existed gets here.
        ended: date | None = None
        for event in self.cases.case_events(case_id):
            if isinstance(event, events.CaseClosed | events.CaseWithdrawn):
                ended = cast(Any, event).timestamp.date()
        assert ended is not None, "a final case has a final event"
        return ended

    def supported(self, case_id: UUID) -> bool:
        keys = self.cases.case_keys
        return keys is not None and keys.has_key(case_id)

    def status(self, case: TherapyCase) -> RetentionStatus:
        return RetentionStatus(
            case_id=case.id,
            clinic_id=case.clinic_id,
            phase=case.phase,
            version=case.version,
            retention_until=self.until(case),
            legal_hold=case.held,
            erasure=case.erased,
            erasure_supported=case.erased is None and self.supported(case.id),
        )

    def status_of(
        self, case_id: UUID, clinics: Collection[str] | None
    ) -> RetentionStatus:
        return self.status(self.cases.get_case(case_id, clinics=clinics))

    def due(
        self, today: date, clinics: Collection[str] | None = None
    ) -> Iterator[DueCase]:
        """Every ended case, not held or erased, whose retention is over today."""
        recorder = cast(AuditRecorder, cast(Any, self.cases.recorder))
        for case_id in sorted(recorder.select_aggregate_ids()):
            try:
                case = self.cases.get_case(case_id, clinics=clinics)
            except CaseNotFoundError:
                continue  # the client index, or another clinic's case
            if case.erased is not None or case.held is not None:
                continue
            until = self.until(case)
            if until is not None and until <= today:
                yield DueCase(case.id, case.clinic_id, until, self.supported(case.id))

    # --- commands -------------------------------------------------------------------

    def place_hold(
        self,
        case_id: UUID,
        command: PlaceLegalHold | LiftLegalHold,
        ctx: CommandContext,
        *,
        clinics: Collection[str] | None,
        idempotency: IdempotencyClaim | None = None,
    ) -> Outcome:
        """Place or lift a legal hold (the command says which)."""
        return self.cases.execute(
            case_id, command, ctx, clinics=clinics, idempotency=idempotency
        )

    def erase(
        self,
        case_id: UUID,
        command: EraseCase,
        ctx: CommandContext,
        *,
        clinics: Collection[str] | None,
        idempotency: IdempotencyClaim | None = None,
    ) -> Outcome:
        """Erase a case: the receipt and the key's destruction in one transaction."""
        app = self.cases

        def attempt() -> Outcome:
            if idempotency is not None and (done := app._answered(idempotency)):
                return done
            case = app.get_case(case_id, clinics=clinics)
            if case.erased is not None:
                return self._unchanged(case)
            if not self.supported(case.id):
                raise ErasureUnsupportedError(case.id)
            result = case.erase_case(ctx, command, self.until(case))
            if result.replayed:
                return self._unchanged(app.get_case(case_id, version=result.version))
            recordings = app.save(
                case, idempotency=_record(idempotency, case), shred_cases=[case.id]
            )
            keys = app.case_keys
            assert keys is not None, "a supported case has a key"
            keys.forget(case.id)
            keys.keys.scrub()
            return Outcome(case, result, _position(recordings, case.id))

        with app._case_lock(case_id):
            return app._observed(command.label, case_id, attempt)

    def _unchanged(self, case: TherapyCase) -> Outcome:
        return Outcome(
            case,
            CommandResult(case.version, replayed=True),
            self.cases.position_of(case.id, case.version),
        )
