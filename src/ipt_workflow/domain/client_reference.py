"""ClientReference: the one open case of a client at a clinic, and all its cases.

Its id is a keyed hash of clinic and `client_ref` (made by the application), so
the raw reference is never an id. Saving it with the case that claims it makes
"at most one open case per client" atomic: two concurrent opens both try to
write the same (id, version) and one of them loses. Every claim names its case,
so the reference also remembers the client's earlier, ended cases (the lookup by
client_ref); references stored before it remembered them fold the same way.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate


class ReferenceInUseError(Exception):
    """Raised when a reference is claimed while another case holds it."""


class ClientReference(Aggregate):
    """Which case, if any, holds a client's reference at a clinic."""

    class Claimed(Aggregate.Event):
        case_id: UUID

        def apply(self, ref: ClientReference) -> None:
            ref.open_case_id = self.case_id
            ref.case_ids = (*ref.case_ids, self.case_id)

    class Registered(Claimed, Aggregate.Created):
        pass

    class Released(Aggregate.Event):
        case_id: UUID

        def apply(self, ref: ClientReference) -> None:
            ref.open_case_id = None

    def __init__(self) -> None:
        self.open_case_id: UUID | None = None
        self.case_ids: tuple[UUID, ...] = ()
        """Every case that claimed the reference, oldest first."""

    @classmethod
    def register(cls, reference_id: UUID, case_id: UUID) -> ClientReference:
        """The first case of a client at a clinic claims the reference."""
        return cls._create(cls.Registered, id=reference_id, case_id=case_id)

    def claim(self, case_id: UUID) -> None:
        """A new case claims a reference no open case holds."""
        if self.open_case_id is not None:
            raise ReferenceInUseError(str(self.id))
        self.trigger_event(self.Claimed, case_id=case_id)

    def forget_erased_case(self, case_id: UUID) -> None:
        """A case this reference named was erased (it had ended, so it held the
        reference no more): nothing of it stays, even in a copy from before."""
        if self.open_case_id == case_id:
            self.open_case_id = None

    def release(self, case_id: UUID) -> None:
        """The case that holds the reference has ended."""
        if self.open_case_id == case_id:
            self.trigger_event(self.Released, case_id=case_id)
