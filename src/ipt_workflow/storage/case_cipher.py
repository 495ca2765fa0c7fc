"""The mapper that encrypts each case's payloads under the case's own data key.

A payload about a case that has a data key is stored as

    0x02 | case id (16) | length (4) | envelope | nonce (12) | tag (16) | body

where the *envelope* (time, actor, and for a first event the aggregate's topic) is
encrypted by the key ring, and the *body* (every field of the event) by the case's
data key, AES-GCM with the row's id, version and topic as associated data. Erasure
destroys the data key; the envelope stays readable, so an erased case's history
still says when, by whom and what kind of thing happened, and nothing else.

Payloads of cases without a data key (written before this format, or the erasure
receipt itself) keep the key ring's format, `KeyRingCipher`.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import Aggregate, DomainEventProtocol, Snapshot
from eventsourcing.persistence import (
    Cipher,
    Compressor,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import get_topic, resolve_topic

from ipt_workflow.storage.case_keys import CaseKeyStore
from ipt_workflow.storage.gcm import Gcm

FORMAT = b"\x02"
KEY_CACHE_SIZE = 10_000
KEY_CACHE_SECONDS = 30.0
"""How long a process trusts what it learnt of a key: another process's erasure
is seen by this one at the latest this much later."""
ENVELOPE_FIELDS = ("timestamp", "recorded_by", "on_behalf_of", "originator_topic")


class ErasedEvent(Aggregate.Event):
    """An event whose data was destroyed with its case's key: only its envelope."""

    erased_topic: str
    erased_subject: UUID
    """The case whose key was destroyed (the aggregate, or the case it names)."""
    recorded_by: str | None
    on_behalf_of: str | None

    @property
    def erased_type(self) -> str:
        """The event's public type name (the last part of its topic)."""
        return self.erased_topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1]

    def apply(self, aggregate: Any) -> None:
        """What it changed is not known; an aggregate that refers to erased cases
        (the client index) is told, so that a copy cached from before the erasure
        forgets the case too."""
        forget = getattr(aggregate, "forget_erased_case", None)
        if callable(forget):
            forget(self.erased_subject)


class ErasedCreation(ErasedEvent, Aggregate.Created):
    """The erased first event of an aggregate: creates it empty."""


def is_erased(event: object) -> bool:
    return isinstance(event, ErasedEvent)


def subject_of(event: object) -> UUID | None:
    """Whose data key encrypts an event: the case it names, else its aggregate."""
    named = getattr(event, "case_id", None)
    if isinstance(named, UUID):
        return named
    found = getattr(event, "originator_id", None)
    return found if isinstance(found, UUID) else None


class CaseKeyMapper(Mapper[UUID]):
    """Per-case data keys over the key ring; reads the ring's format too."""

    def __init__(
        self,
        transcoder: Transcoder,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
        *,
        keys: CaseKeyStore,
    ) -> None:
        if cipher is None:
            raise ValueError("per-case keys are wrapped by the key ring: set one")
        super().__init__(transcoder, compressor, cipher)
        self.ring = cipher
        self.keys = keys
        self._cache: OrderedDict[UUID, tuple[float, bytes | None]] = OrderedDict()
        self._lock = threading.Lock()

    # --- keys ----------------------------------------------------------------

    def new_key(self, case_id: UUID) -> bytes:
        """A new data key for a case: kept here, returned wrapped for storing
        with the case's first events."""
        key = secrets.token_bytes(32)
        self._remember(case_id, key)
        return self.ring.encrypt(key)

    def key_of(self, case_id: UUID) -> bytes | None:
        """The case's data key, or None (no key, or destroyed)."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(case_id)
            if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
                self._cache.move_to_end(case_id)
                return cached[1]
        wrapped = self.keys.wrapped(case_id)
        key = None if wrapped is None else self.ring.decrypt(wrapped)
        self._remember(case_id, key)
        return key

    def has_key(self, case_id: UUID) -> bool:
        return self.key_of(case_id) is not None

    def forget(self, case_id: UUID) -> None:
        """The key was destroyed: never use a copy of it again."""
        self._remember(case_id, None)

    def _remember(self, case_id: UUID, key: bytes | None) -> None:
        with self._lock:
            self._cache[case_id] = (time.monotonic(), key)
            self._cache.move_to_end(case_id)
            while len(self._cache) > KEY_CACHE_SIZE:
                self._cache.popitem(last=False)

    # --- writing ----------------------------------------------------------------

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        subject = subject_of(domain_event)
        if subject is None or _outlives_erasure(domain_event):
            return super().to_stored_event(domain_event)
        key = self.key_of(subject)
        if key is None:
            return super().to_stored_event(domain_event)
        topic = get_topic(domain_event.__class__)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        envelope = {k: state[k] for k in ENVELOPE_FIELDS if k in state}
        body = self.transcoder.encode(state)
        if self.compressor:
            body = self.compressor.compress(body)
        sealed_envelope = self.ring.encrypt(self.transcoder.encode(envelope))
        # A data key's cipher is made for each use, never kept: erasure must leave
        # no copy of the key in memory (D102).
        sealed = Gcm(key).encrypt(body, _associated(originator_id, version, topic))
        stored = b"".join(
            (
                FORMAT,
                subject.bytes,
                len(sealed_envelope).to_bytes(4, "big"),
                sealed_envelope,
                sealed,
            )
        )
        return StoredEvent(originator_id, version, topic, stored)

    # --- reading ----------------------------------------------------------------

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        state = bytes(stored_event.state)
        if state[:1] != FORMAT:
            return super().to_domain_event(stored_event)
        try:
            subject = UUID(bytes=state[1:17])
            length = int.from_bytes(state[17:21], "big")
            sealed_envelope = state[21 : 21 + length]
            rest = state[21 + length :]
            envelope = self.transcoder.decode(self.ring.decrypt(sealed_envelope))
            key = self.key_of(subject)
            if key is None:
                return self._erased(stored_event, envelope, subject)
            associated = _associated(
                stored_event.originator_id,
                stored_event.originator_version,
                stored_event.topic,
            )
            body = Gcm(key).decrypt(rest, associated)
            if self.compressor:
                body = self.compressor.decompress(body)
            event_state: dict[str, Any] = self.transcoder.decode(body)
        except MapperDeserialisationError:
            raise
        except Exception as e:
            raise MapperDeserialisationError(
                f"Failed to deserialise state of stored event with "
                f"topic '{stored_event.topic}', "
                f"originator_id '{stored_event.originator_id}' and "
                f"originator_version {stored_event.originator_version}: {e}"
            ) from e
        cls = resolve_topic(stored_event.topic)
        event_state["originator_id"] = _uuid(stored_event.originator_id)
        event_state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", event_state)
        return cast(DomainEventProtocol[UUID], domain_event)

    def _erased(
        self, stored: StoredEvent, envelope: dict[str, Any], subject: UUID
    ) -> DomainEventProtocol[UUID]:
        if stored.topic == get_topic(Snapshot):
            raise MapperDeserialisationError(
                f"the snapshot of {stored.originator_id} at version "
                f"{stored.originator_version} was encrypted under a destroyed key"
            )
        cls = ErasedCreation if "originator_topic" in envelope else ErasedEvent
        state = {
            "originator_id": _uuid(stored.originator_id),
            "originator_version": stored.originator_version,
            "timestamp": envelope["timestamp"],
            "erased_topic": stored.topic,
            "erased_subject": subject,
            "recorded_by": envelope.get("recorded_by"),
            "on_behalf_of": envelope.get("on_behalf_of"),
        }
        if "originator_topic" in envelope:
            state["originator_topic"] = envelope["originator_topic"]
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return cast(DomainEventProtocol[UUID], event)


def _outlives_erasure(event: object) -> bool:
    """The erasure receipt, and a snapshot taken of an erased case, stay readable."""
    if getattr(type(event), "outlives_erasure", False):
        return True
    if isinstance(event, Snapshot):
        return bool(event.state.get("erasure"))
    return False


def _associated(originator_id: UUID | str, version: int, topic: str) -> bytes:
    return f"{_uuid(originator_id)}\x00{version}\x00{topic}".encode()


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)
