"""Signed checkpoints over the event log, and what the recorders tell an auditor.

A checkpoint pins the log at a position (its *head*): an HMAC-SHA256, keyed from
the environment, over

- a digest of every stored row in the range since the previous checkpoint, in log
  order (position, aggregate id, version and the row's chain hash), so a row that
  is removed, added, moved or re-chained inside an already signed range is caught;
- the *heads* of the aggregates that moved in that range (id, version, position and
  chain hash of each one's last event), so a finding names the case and version;
- the previous checkpoint's MAC, so checkpoints form a chain of their own.

Only hashes, ids, versions and positions are signed: a checkpoint holds no client
data. Verification never trusts what a checkpoint row says without its MAC.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import Notification

MIN_KEY_LENGTH = 32
FORMAT = b"ipt-workflow checkpoint v1"


@dataclass(frozen=True)
class LogRow:
    """One stored event as the log orders it, without its payload."""

    position: int
    aggregate_id: UUID
    version: int
    hash: bytes | None
    """The chain hash stored beside the event; None when that row is missing."""


@dataclass(frozen=True)
class Head:
    """An aggregate's last event at a checkpoint."""

    aggregate_id: UUID
    version: int
    position: int
    hash: bytes | None


@dataclass(frozen=True)
class CheckpointHead:
    """A head as a checkpoint stored it, with the checkpoint's number."""

    seq: int
    head: Head


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint."""

    seq: int
    taken_at: str
    log_head: int
    range_start: int
    """The previous checkpoint's head: this one covers (range_start, log_head]."""
    range_events: int
    range_digest: str
    heads_digest: str
    prev_mac: str
    key_id: str
    mac: str = ""

    def message(self) -> bytes:
        fields = (
            FORMAT,
            str(self.seq).encode(),
            self.taken_at.encode(),
            str(self.log_head).encode(),
            str(self.range_start).encode(),
            str(self.range_events).encode(),
            self.range_digest.encode(),
            self.heads_digest.encode(),
            self.prev_mac.encode(),
            self.key_id.encode(),
        )
        return b"\n".join(fields)


class CheckpointKeyError(ValueError):
    """Raised when a checkpoint key is missing or too short."""


def parse_checkpoint_keys(text: str) -> list[bytes]:
    """Comma-separated secrets, newest first; each at least 32 characters."""
    keys = [k.strip().encode() for k in text.split(",") if k.strip()]
    if not keys:
        raise CheckpointKeyError("no checkpoint key given")
    for key in keys:
        if len(key) < MIN_KEY_LENGTH:
            raise CheckpointKeyError(
                f"a checkpoint key must be at least {MIN_KEY_LENGTH} characters"
            )
    return keys


def key_id(key: bytes) -> str:
    """A fingerprint naming a key without revealing it."""
    return hashlib.sha256(b"ipt-workflow checkpoint key\x00" + key).hexdigest()[:16]


def mac_of(checkpoint: Checkpoint, key: bytes) -> str:
    return hmac.new(key, checkpoint.message(), hashlib.sha256).hexdigest()


def sign(checkpoint: Checkpoint, key: bytes) -> Checkpoint:
    """The checkpoint with its key id and MAC filled in."""
    keyed = replace(checkpoint, key_id=key_id(key), mac="")
    return replace(keyed, mac=mac_of(keyed, key))


def mac_is_valid(checkpoint: Checkpoint, keys: Sequence[bytes]) -> bool | None:
    """True or False; None when none of the keys is the one it was signed with."""
    for key in keys:
        if key_id(key) == checkpoint.key_id:
            return hmac.compare_digest(mac_of(checkpoint, key), checkpoint.mac)
    return None


def _hex(value: bytes | None) -> str:
    return "-" if value is None else value.hex()


class RangeDigest:
    """SHA-256 over log rows, fed in position order."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.count = 0

    def add(self, row: LogRow) -> None:
        line = f"{row.position}:{row.aggregate_id.hex}:{row.version}:{_hex(row.hash)}\n"
        self._digest.update(line.encode())
        self.count += 1

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def heads_digest(heads: Iterable[Head]) -> str:
    """SHA-256 over heads, in aggregate id order."""
    digest = hashlib.sha256()
    for h in sorted(heads, key=lambda h: h.aggregate_id.hex):
        digest.update(
            f"{h.aggregate_id.hex}:{h.version}:{h.position}:{_hex(h.hash)}\n".encode()
        )
    return digest.hexdigest()


FEED_SCAN = 10_000
"""Log positions one feed page looks at, at most, whatever it finds there."""


@dataclass(frozen=True)
class FeedRows:
    """A page of the feed: case events with their clinics, and how far it looked.

    `scanned_to` is the last position the page looked at: every position up to it
    is committed (it is at most the head read first), so a reader may go on after
    it even when no event there was one of its clinics.
    """

    events: list[tuple[Notification, str]]
    scanned_to: int


class AuditRecorder(Protocol):
    """What the chained recorders offer an auditor, beside the library's methods."""

    def select_hashes(self, originator_id: UUID | str) -> dict[int, bytes]: ...
    def select_positions(self, originator_id: UUID) -> dict[int, int]: ...
    def max_notification_id(self) -> int | None: ...
    def select_case_clinic(self, case_id: UUID) -> str | None: ...
    def select_feed(
        self, after: int, limit: int, clinics: Collection[str] | None
    ) -> FeedRows: ...
    def select_log_rows(self, after: int, upto: int, limit: int) -> list[LogRow]: ...
    def select_aggregate_ids(self) -> set[UUID]: ...
    def select_checkpoints(self) -> list[Checkpoint]: ...
    def select_checkpoint_heads(
        self, *, seq: int | None = None, aggregate_id: UUID | None = None
    ) -> list[CheckpointHead]: ...
    def insert_checkpoint(self, checkpoint: Checkpoint, heads: Sequence[Head]) -> bool:
        """Store a checkpoint; False when another process took this number first."""
        ...
