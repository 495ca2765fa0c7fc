"""The case application: the service layer, and the only code that loads and saves.

Each command loads the case, calls one aggregate method, and saves. Concurrent
commands on one case are serialised in this process by a lock and across
processes by optimistic concurrency: a loser is re-decided against the fresh state.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import IntegrityError, Mapper, Recording
from eventsourcing.utils import strtobool

from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.client_reference import ClientReference
from ipt_workflow.domain.commands import (
    Command,
    CommandContext,
    CommandResult,
    OpenCase,
)
from ipt_workflow.domain.errors import (
    CommandIdReused,
    DomainError,
    GuardFailed,
    InvalidInput,
)
from ipt_workflow.storage.case_cipher import CaseKeyMapper
from ipt_workflow.storage.case_keys import CaseKeyStore, open_case_key_store
from ipt_workflow.storage.chain import ChainCheck, verify
from ipt_workflow.storage.idempotency import IdempotencyRecord

T = TypeVar("T")
LOCK_STRIPES = 64
POSITIONS_KEPT = 100_000
"""Log positions remembered per process: a committed event's position never changes."""


class CaseNotFoundError(DomainError):
    """Raised when no case has this id (or it belongs to a clinic not in scope)."""


class CaseConflictError(DomainError):
    """Raised when an open case already holds this client_ref with other data."""

    def __init__(self, case_id: UUID) -> None:
        self.case_id = case_id
        super().__init__("an open case already has this client_ref with other data")


class BusyError(DomainError):
    """Raised when a command lost every race for a case and was not recorded."""


class IdempotencyKeyReusedError(DomainError):
    """Raised when an idempotency key comes back with a different request."""


class _Recorder(Protocol):
    def select_hashes(self, originator_id: UUID | str) -> dict[int, bytes]: ...
    def select_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None: ...
    def position_of(self, originator_id: UUID | str, version: int) -> int | None: ...


class CommandObserver(Protocol):
    """Told what became of each command: logs and metrics hang on this (D30)."""

    def retried(self, command: str, attempt: int) -> None: ...

    def finished(
        self,
        command: str,
        case_id: UUID | None,
        outcome: str,
        *,
        rules: Sequence[str] = (),
        position: int | None = None,
        error: BaseException | None = None,
    ) -> None: ...


class _Unobserved:
    def retried(self, command: str, attempt: int) -> None:
        pass

    def finished(
        self,
        command: str,
        case_id: UUID | None,
        outcome: str,
        *,
        rules: Sequence[str] = (),
        position: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        pass


@dataclass(frozen=True)
class IdempotencyClaim:
    """A request's idempotency key, its scope (the clinic) and what it asked."""

    scope: str
    key: str
    request_digest: str
    status: int

    def record(self, case: TherapyCase) -> IdempotencyRecord:
        return IdempotencyRecord(
            self.scope,
            self.key,
            self.request_digest,
            case.id,
            case.version,
            self.status,
        )


@dataclass(frozen=True)
class Outcome:
    """The case after a command, what the command returned, and its log position.

    `status` is set when this answers a retried request: the status of the first
    answer.
    """

    case: TherapyCase
    result: CommandResult
    position: int | None
    created: bool = False
    status: int | None = None


class CaseApplication(Application[UUID]):
    """Opens cases, runs their commands and reads them back."""

    name = "cases"
    snapshotting_intervals = {TherapyCase: 50}

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        case_keys: CaseKeyStore | None = None,
    ) -> None:
        self._case_keys = case_keys
        super().__init__(env)
        key = self.env.get("REFERENCE_KEY") or ""
        if not key:
            raise OSError("REFERENCE_KEY is required")
        self._reference_key = key.encode()
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]
        self._positions: dict[tuple[UUID, int], int] = {}
        self._positions_lock = threading.Lock()
        self._attempts = int(self.env.get("COMMAND_ATTEMPTS") or 30)
        self.observer: CommandObserver = _Unobserved()
        """Set by the composition root; told every command's outcome and retry."""

    def construct_mapper(self) -> Mapper[UUID]:
        """With a key store and a key ring: each new case under a key of its own."""
        mapper = super().construct_mapper()
        if mapper.cipher is None:
            return mapper
        if self._case_keys is None and (url := self.env.get("CASE_KEYS_URL")):
            # Applications the library builds (projection runners) get it this way;
            # the table is made where the events' tables are (CREATE_TABLE, D90).
            create = strtobool(self.env.get("CREATE_TABLE") or "y")
            self._case_keys = open_case_key_store(url, create_table=create)
        if self._case_keys is None:
            return mapper
        return CaseKeyMapper(
            mapper.transcoder, mapper.compressor, mapper.cipher, keys=self._case_keys
        )

    @property
    def case_keys(self) -> CaseKeyMapper | None:
        """The per-case keys (None: payloads are under the key ring alone)."""
        return self.mapper if isinstance(self.mapper, CaseKeyMapper) else None

    def close(self) -> None:
        super().close()
        if self._case_keys is not None:
            self._case_keys.close()

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """Save, indexing each new case under its clinic in the same transaction.

        The index lets the event feed filter by clinic without decrypting payloads.
        """
        clinics = {o.id: o.clinic_id for o in objs if isinstance(o, TherapyCase)}
        return super().save(*objs, case_clinics=clinics, **kwargs)

    # --- opening ----------------------------------------------------------------

    def reference_id(self, clinic_id: str, client_ref: str) -> UUID:
        """The index id of a client at a clinic: a keyed hash, never the raw value."""
        mac = hmac.new(
            self._reference_key, f"{clinic_id}\x00{client_ref}".encode(), hashlib.sha256
        )
        return UUID(bytes=mac.digest()[:16], version=5)

    def open_case(
        self,
        command: OpenCase,
        ctx: CommandContext,
        *,
        idempotency: IdempotencyClaim | None = None,
    ) -> Outcome:
        """Open a case, or return this client's open case if it has the same data."""

        def attempt() -> Outcome:
            if idempotency is not None and (done := self._answered(idempotency)):
                return done
            case = TherapyCase.open(ctx, command)
            ref_id = self.reference_id(command.clinic_id, command.client_ref)
            ref = self._get_or_none(ref_id)
            if ref is not None and ref.open_case_id is not None:
                return self._existing(ref.open_case_id, case)
            if ref is None:
                ref = ClientReference.register(ref_id, case.id)
            else:
                ref.claim(case.id)
            keys = self.case_keys
            new_key = {} if keys is None else {case.id: keys.new_key(case.id)}
            recordings = self.save(
                case, ref, idempotency=_record(idempotency, case), case_keys=new_key
            )
            position = _position(recordings, case.id)
            return Outcome(case, CommandResult(case.version), position, True)

        return self._observed(command.label, None, attempt)

    def _existing(self, case_id: UUID, wanted: TherapyCase) -> Outcome:
        open_case: TherapyCase = self.repository.get(case_id)
        # Compare with the data the case was opened with: a later reassignment
        # must not turn a retried opening into a conflict.
        opening: Any = self.case_events(case_id, limit=1)[0]
        same = (
            opening.protocol == wanted.protocol_id
            and opening.client_age == wanted.client_age
            and opening.clinician_id == wanted.clinician_id
            and opening.prior_episodes == wanted.prior_episodes
        )
        if not same:
            raise CaseConflictError(case_id)
        return Outcome(
            open_case,
            CommandResult(open_case.version, replayed=True),
            self.position_of(case_id, open_case.version),
        )

    # --- commands ----------------------------------------------------------------

    def execute(
        self,
        case_id: UUID,
        command: Command,
        ctx: CommandContext,
        *,
        clinics: Collection[str] | None = None,
        expected_version: int | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> Outcome:
        """Run one command on a case: load it, let the case decide, save.

        On a lost race the command is decided again against the new state.
        """

        first = True

        def answered() -> Outcome | None:
            """The first answer to this key, if it was used before."""
            if idempotency is None or (done := self._answered(idempotency)) is None:
                return None
            if done.case.id != case_id:
                raise IdempotencyKeyReusedError(idempotency.key)
            return done

        def attempt() -> Outcome:
            # A new key is the rule: it is looked up only when something says it
            # may not be new (a replay, a refusal, a lost race: its stored row fails
            # the save), saving a round trip per command (D117). A key seen before
            # answers as the first time, whatever the case says now.
            nonlocal first
            if not first and (done := answered()) is not None:
                return done
            try:
                return decided()
            except DomainError:
                if first and (done := answered()) is not None:
                    return done
                raise
            finally:
                first = False

        def decided() -> Outcome:
            case = self.get_case(case_id, clinics=clinics)
            if expected_version is not None and case.version != expected_version:
                raise VersionMismatchError(case.version)
            was_final = case.is_final
            result = case.handle(ctx, command)
            if result.replayed:
                earlier = answered()
                if earlier is not None:
                    return earlier
                replayed = self.get_case(case_id, version=result.version)
                return Outcome(
                    replayed, result, self.position_of(case_id, result.version)
                )
            aggregates: list[Any] = [case]
            if case.is_final and not was_final:
                ref: ClientReference = self.repository.get(
                    self.reference_id(case.clinic_id, case.client_ref)
                )
                ref.release(case.id)
                aggregates.append(ref)
            recordings = self.save(*aggregates, idempotency=_record(idempotency, case))
            return Outcome(case, result, _position(recordings, case.id))

        with self._case_lock(case_id):
            return self._observed(command.label, case_id, attempt)

    def _observed(
        self, name: str, case_id: UUID | None, attempt: Callable[[], Outcome]
    ) -> Outcome:
        """Run a command with retries and tell the observer what became of it."""
        try:
            outcome = self._retrying(attempt, name)
        except GuardFailed as refused:
            rules = [v.rule for v in refused.violations]
            self.observer.finished(name, case_id, "refused", rules=rules)
            raise
        except Exception as error:
            self.observer.finished(name, case_id, _outcome_of(error), error=error)
            raise
        if outcome.result.replayed:
            result = "replayed"
        else:
            result = "created" if outcome.created else "recorded"
        self.observer.finished(name, outcome.case.id, result, position=outcome.position)
        return outcome

    def _answered(self, claim: IdempotencyClaim) -> Outcome | None:
        """The first answer to a retried request, or None if the key is new."""
        found = self._recorder.select_idempotency(claim.scope, claim.key)
        if found is None:
            return None
        if found.request_digest != claim.request_digest:
            raise IdempotencyKeyReusedError(claim.key)
        case = self.get_case(found.case_id, version=found.version)
        session = case.applied_commands.get(claim.key, {}).get("session_number")
        return Outcome(
            case,
            CommandResult(found.version, replayed=True, session_number=session),
            self.position_of(found.case_id, found.version),
            status=found.status,
        )

    @property
    def _recorder(self) -> _Recorder:
        recorder: Any = self.recorder
        return cast(_Recorder, recorder)

    def position_of(self, case_id: UUID, version: int) -> int | None:
        """The log position of a case's event at a version."""
        key = (case_id, version)
        if (known := self._positions.get(key)) is not None:
            return known
        found = self._recorder.position_of(case_id, version)
        if found is not None:
            with self._positions_lock:
                if len(self._positions) >= POSITIONS_KEPT:
                    del self._positions[next(iter(self._positions))]
                self._positions[key] = found
        return found

    def _retrying(self, attempt: Callable[[], T], name: str = "command") -> T:
        for n in range(self._attempts):
            try:
                return attempt()
            except IntegrityError:
                self.observer.retried(name, n + 1)
                # Another process saved first: decide again against its state.
                time.sleep(min(0.05, 0.001 * 2**n) * random.random())
        raise BusyError("the case changed too often while this command was decided")

    @contextmanager
    def _case_lock(self, case_id: UUID) -> Iterator[None]:
        lock = self._locks[case_id.int % LOCK_STRIPES]
        with lock:
            yield

    # --- reads ---------------------------------------------------------------------

    def get_case(
        self,
        case_id: UUID,
        *,
        version: int | None = None,
        clinics: Collection[str] | None = None,
    ) -> TherapyCase:
        """The case now, or as it was at a version."""
        try:
            case: TherapyCase = self.repository.get(case_id, version=version)
        except AggregateNotFoundError:
            raise CaseNotFoundError(str(case_id)) from None
        if not isinstance(case, TherapyCase) or (
            clinics is not None and case.clinic_id not in clinics
        ):
            raise CaseNotFoundError(str(case_id))
        return case

    def case_events(
        self, case_id: UUID, *, after_version: int = 0, limit: int | None = None
    ) -> list[DomainEventProtocol[UUID]]:
        """The case's events in version order."""
        return list(
            self.repository.event_store.get(case_id, gt=after_version, limit=limit)
        )

    def verify_chain(self, case_id: UUID) -> ChainCheck:
        """Recompute the case's hash chain from its stored events."""
        stored = self.recorder.select_events(case_id)
        return verify(stored, self._recorder.select_hashes(case_id))

    def _get_or_none(self, ref_id: UUID) -> ClientReference | None:
        try:
            ref: ClientReference = self.repository.get(ref_id)
        except AggregateNotFoundError:
            return None
        return ref


class VersionMismatchError(DomainError):
    """Raised when a command expected another version of the case (If-Match)."""

    def __init__(self, current: int) -> None:
        self.current = current
        super().__init__(f"the case is at version {current}")


def _outcome_of(error: Exception) -> str:
    """The outcome label of a command that raised this error."""
    for kind, label in (
        (InvalidInput, "invalid"),
        (CaseNotFoundError, "not_found"),
        (CaseConflictError, "conflict"),
        (VersionMismatchError, "version_mismatch"),
        (IdempotencyKeyReusedError, "key_reused"),
        (CommandIdReused, "key_reused"),
        (BusyError, "busy"),
    ):
        if isinstance(error, kind):
            return label
    return "failed"


def _record(
    claim: IdempotencyClaim | None, case: TherapyCase
) -> IdempotencyRecord | None:
    return None if claim is None else claim.record(case)


def _position(recordings: list[Any], case_id: UUID) -> int | None:
    """The log position of the case's last new event."""
    ids = [
        r.notification.id for r in recordings if r.domain_event.originator_id == case_id
    ]
    return ids[-1] if ids else None
