"""Finding cases again: every case of a client, through the keyed client index.

The index (`ClientReference`) is addressed by a keyed hash of clinic and
client_ref, so a lookup never scans or decrypts other clients' payloads: it reads
one index aggregate and the cases it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from eventsourcing.application import AggregateNotFoundError

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.domain import events
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.client_reference import ClientReference


@dataclass(frozen=True)
class CaseSummary:
    """A case as a list shows it: no client data."""

    id: str
    clinic_id: str
    phase: str
    protocol: str
    clinician_id: str
    opened_at: str
    ended_at: str | None


def moment(at: datetime) -> str:
    """RFC 3339 in UTC with microseconds: the read model's format, which sorts."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def cases_of_client(
    app: CaseApplication, clinic_id: str, client_ref: str
) -> list[CaseSummary]:
    """Every case of the client at the clinic, open or ended, newest first; not the
    erased ones."""
    try:
        ref: ClientReference = app.repository.get(
            app.reference_id(clinic_id, client_ref)
        )
    except AggregateNotFoundError:
        return []
    found = [app.get_case(case_id) for case_id in ref.case_ids]
    # An erased case is not found again by its client: nothing ties them any more.
    summaries = [summarise(app, case) for case in found if case.erased is None]
    return sorted(summaries, key=lambda s: (s.opened_at, s.id), reverse=True)


def summarise(app: CaseApplication, case: TherapyCase) -> CaseSummary:
    """The summary of a loaded case; an ended case's end is read from its events."""
    ended_at = None
    if case.is_final:
        ending = next(
            e
            for e in reversed(app.case_events(case.id))
            if isinstance(e, events.CaseClosed | events.CaseWithdrawn)
        )
        ended_at = moment(ending.timestamp)
    return CaseSummary(
        id=str(case.id),
        clinic_id=case.clinic_id,
        phase=case.phase,
        protocol=case.protocol_id,
        clinician_id=case.clinician_id,
        opened_at=moment(case.created_on),
        ended_at=ended_at,
    )
