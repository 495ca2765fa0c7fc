"""Finding a client's cases through the keyed client index, never by scanning.

The one place the console turns a `client_ref` into case ids (D83). Today the index
(`ClientReference`) remembers the client's open case only; when it also remembers
ended cases, this function is the one to change.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.domain.client_reference import ClientReference


def cases_of_client(
    app: CaseApplication, clinic_id: str, client_ref: str
) -> list[UUID]:
    """The ids of the cases the index knows for a client of a clinic."""
    try:
        ref: object = app.repository.get(app.reference_id(clinic_id, client_ref))
    except AggregateNotFoundError:
        return []
    if not isinstance(ref, ClientReference) or ref.open_case_id is None:
        return []
    return [ref.open_case_id]
