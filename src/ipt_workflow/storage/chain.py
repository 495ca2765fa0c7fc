"""The tamper-evident hash chain over each case's stored events (reliability.md).

Each stored event's hash covers the previous hash of the same aggregate and the
event *as stored*: its id, version, topic and (encrypted) payload bytes. Upcasting
never changes stored bytes, so it never breaks the chain; editing a row does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import StoredEvent

GENESIS = bytes(32)
"""The 'previous hash' of an aggregate's first event."""


@dataclass(frozen=True)
class ChainLink:
    """The hash stored beside one event."""

    originator_id: UUID | str
    originator_version: int
    hash: bytes


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def event_hash(previous: bytes, event: StoredEvent) -> bytes:
    """SHA-256 over the previous hash and the event as stored, length-prefixed."""
    return hashlib.sha256(previous + hashed_after_previous(event)).digest()


def hashed_after_previous(event: StoredEvent) -> bytes:
    """What an event's hash covers after the previous hash: the event as stored.

    PostgreSQL computes the same hash as `sha256(previous || this)` in the insert's
    transaction, reading the previous hash there (D115).
    """
    return b"".join(
        (
            _field(str(event.originator_id).encode()),
            event.originator_version.to_bytes(8, "big"),
            _field(event.topic.encode()),
            _field(bytes(event.state)),
        )
    )


def link(
    events: Sequence[StoredEvent],
    previous_hash: Callable[[UUID | str, int], bytes | None],
) -> list[ChainLink]:
    """The links for events about to be stored, in order.

    `previous_hash(id, version)` reads an already stored hash; it is asked only for
    the event just before the first new event of each aggregate.
    """
    last: dict[UUID | str, tuple[int, bytes]] = {}
    links = []
    for event in events:
        key = event.originator_id
        version = event.originator_version
        if key in last and last[key][0] == version - 1:
            previous = last[key][1]
        elif version == 1:
            previous = GENESIS
        else:
            found = previous_hash(key, version - 1)
            # A missing predecessor means the insert is about to fail its
            # version check anyway; chain from genesis so the error is the
            # library's own conflict, not ours.
            previous = found if found is not None else GENESIS
        digest = event_hash(previous, event)
        last[key] = (version, digest)
        links.append(ChainLink(key, version, digest))
    return links


@dataclass(frozen=True)
class ChainCheck:
    """The result of recomputing one aggregate's chain."""

    intact: bool
    events_checked: int
    first_broken_version: int | None


def verify(events: Iterable[StoredEvent], stored: dict[int, bytes]) -> ChainCheck:
    """Recompute the chain of one aggregate's events against the stored hashes."""
    previous = GENESIS
    checked = 0
    expected_version = 1
    for event in events:
        checked += 1
        digest = event_hash(previous, event)
        if (
            event.originator_version != expected_version
            or stored.get(event.originator_version) != digest
        ):
            return ChainCheck(False, checked, event.originator_version)
        previous = digest
        expected_version += 1
    if len(stored) != checked:
        return ChainCheck(False, checked, checked + 1)
    return ChainCheck(True, checked, None)
