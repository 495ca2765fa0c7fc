"""Re-wrap every case data key under the ring's newest key, and count what each
ring key still seals.

Re-wrapping changes only `case_data_keys` rows, never an event: the chain is over
the stored events' bytes (D108). So a ring key stays needed for whatever it sealed
directly: the envelope (time, actor, type) of every event and snapshot written while
it was the newest, and whole payloads in the ring's own format (cases without a data
key, erasure receipts, snapshots of erased cases). `ring_census` finds them (D111).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, ApplicationRecorder

from ipt_workflow.storage.case_cipher import FORMAT as CASE_KEY_FORMAT
from ipt_workflow.storage.case_keys import CaseKeyStore
from ipt_workflow.storage.cipher import KeyRingCipher, ring_key_of

BATCH = 500


@dataclass
class Rewrapped:
    """What a re-wrap did: keys seen, re-wrapped, already under the newest key."""

    seen: int = 0
    rewrapped: int = 0
    current: int = 0


def rewrap_case_keys(
    keys: CaseKeyStore,
    ring: KeyRingCipher,
    *,
    batch: int = BATCH,
    on_batch: Callable[[int], None] = lambda _: None,
) -> Rewrapped:
    """Re-wrap, a batch per transaction, every data key not under the newest ring
    key. Idempotent: a second run finds them all current. `on_batch(seen)`."""
    done = Rewrapped()
    after = ""
    while rows := keys.page(after, batch):
        stale = [(c, w) for c, w in rows if ring_key_of(w) != ring.newest]
        done.current += len(rows) - len(stale)
        done.rewrapped += keys.replace(
            [(c, w, ring.encrypt(ring.decrypt(w))) for c, w in stale]
        )
        done.seen += len(rows)
        after = rows[-1][0]
        on_batch(done.seen)
    keys.scrub()
    return done


@dataclass
class RingUse:
    """What one ring key seals."""

    data_keys: int = 0
    envelopes: int = 0
    """Events under a case's data key whose envelope (time, actor, type) it seals."""
    whole_events: int = 0
    """Events in the ring's own format: cases without a data key, receipts."""
    snapshots: int = 0
    cases: set[UUID] = field(default_factory=set)
    """The aggregates with an event it seals."""

    @property
    def anything(self) -> bool:
        return bool(
            self.data_keys or self.envelopes or self.whole_events or self.snapshots
        )


def sealed_by(state: bytes) -> tuple[bytes | None, bool]:
    """(the ring key a stored payload needs, whether only for its envelope)."""
    if state[:1] == CASE_KEY_FORMAT and len(state) >= 21:
        length = int.from_bytes(state[17:21], "big")
        return ring_key_of(state[21 : 21 + length]), True
    return ring_key_of(state), False


def ring_census(
    keys: CaseKeyStore,
    events: ApplicationRecorder,
    snapshots: AggregateRecorder | None,
    aggregate_ids: Iterable[UUID],
    *,
    batch: int = BATCH,
    on_batch: Callable[[int], None] = lambda _: None,
) -> dict[bytes, RingUse]:
    """Per ring key fingerprint, what it seals: data keys, events, snapshots.
    `on_batch(events seen)`."""
    found: dict[bytes, RingUse] = {}

    def use(key: bytes | None) -> RingUse | None:
        return None if key is None else found.setdefault(key, RingUse())

    after = ""
    while rows := keys.page(after, batch):
        for _, wrapped in rows:
            if (u := use(ring_key_of(wrapped))) is not None:
                u.data_keys += 1
        after = rows[-1][0]
    start, seen = 1, 0
    while notes := events.select_notifications(start, batch):
        for note in notes:
            key, envelope_only = sealed_by(bytes(note.state))
            if (u := use(key)) is not None:
                if envelope_only:
                    u.envelopes += 1
                else:
                    u.whole_events += 1
                u.cases.add(UUID(str(note.originator_id)))
        seen += len(notes)
        start = notes[-1].id + 1
        on_batch(seen)
    if snapshots is not None:
        for aggregate_id in aggregate_ids:
            for stored in snapshots.select_events(aggregate_id):
                if (u := use(sealed_by(bytes(stored.state))[0])) is not None:
                    u.snapshots += 1
    return found
