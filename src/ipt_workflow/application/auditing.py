"""What auditors do with the log: replay, the feed, integrity checks, checkpoints.

Everything here reads through the case application and its recorder; nothing here
writes an event. Checks never trust a snapshot or a checkpoint row: snapshots are
compared with a fold of the stored events, checkpoints are authenticated by MAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import StoredEvent

from ipt_workflow.application.cases import CaseApplication, CaseNotFoundError
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.events import CaseErased
from ipt_workflow.storage.audit import (
    AuditRecorder,
    Checkpoint,
    CheckpointHead,
    Head,
    RangeDigest,
    heads_digest,
    key_id,
    mac_is_valid,
    sign,
)
from ipt_workflow.storage.chain import verify

LOG = logging.getLogger(__name__)
LOG_BATCH = 5000
EXPORT_FORMAT = 1


class VersionNotFoundError(CaseNotFoundError):
    """Raised when a case has no such version, or did not exist at that time."""


def _recorder(app: CaseApplication) -> AuditRecorder:
    recorder: Any = app.recorder
    return cast(AuditRecorder, recorder)


def _now() -> datetime:
    return datetime.now(UTC)


# --- replay and the feed ----------------------------------------------------------


def replay(
    app: CaseApplication,
    case_id: UUID,
    *,
    version: int | None = None,
    at: datetime | None = None,
    clinics: Collection[str] | None = None,
) -> TherapyCase:
    """The case as it was at a version, or at a time, by the code that loads it now."""
    current = app.get_case(case_id, clinics=clinics)
    if at is not None:
        version = 0
        for event in app.case_events(case_id):
            if cast(Any, event).timestamp > at:
                break
            version = event.originator_version
        if version == 0:
            raise VersionNotFoundError(f"the case did not exist at {at.isoformat()}")
    if version is None or version == current.version:
        return current
    if version > current.version:
        raise VersionNotFoundError(f"the case has no version {version}")
    return app.get_case(case_id, version=version)


def case_clinic(
    app: CaseApplication, case_id: UUID, clinics: Collection[str] | None
) -> str:
    """A case's clinic from the index, without loading (or decrypting) the case.

    Raises CaseNotFoundError for an unknown case or one of a clinic not in scope.
    """
    clinic = _recorder(app).select_case_clinic(case_id)
    if clinic is None or (clinics is not None and clinic not in clinics):
        raise CaseNotFoundError(str(case_id))
    return clinic


@dataclass(frozen=True)
class FeedItem:
    """One case event with its log position and its case's clinic."""

    position: int
    event: DomainEventProtocol[UUID]
    clinic_id: str


@dataclass(frozen=True)
class FeedPage:
    """Case events of a page of the feed, and where the next page starts."""

    items: list[FeedItem]
    next_after: int


def feed(
    app: CaseApplication, *, after: int, limit: int, clinics: Collection[str] | None
) -> FeedPage:
    """Case events of these clinics (None: all) after a position, in log order.

    The recorder filters by a case-to-clinic index written with each new case, so
    nothing is decrypted to filter; positions may skip numbers but, since writers
    commit in position order, no event can appear later below a position read. A
    page looks at a bounded stretch of the log: `next_after` moves past it even
    when none of its events was of these clinics.
    """
    found = _recorder(app).select_feed(after, limit, clinics)
    items = [
        FeedItem(
            n.id,
            app.mapper.to_domain_event(
                StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)
            ),
            clinic,
        )
        for n, clinic in found.events
    ]
    return FeedPage(items, found.scanned_to)


# --- integrity --------------------------------------------------------------------


@dataclass
class CaseCheck:
    """The integrity of one case (or other aggregate)."""

    aggregate_id: UUID
    intact: bool = True
    events_checked: int = 0
    first_broken_version: int | None = None
    snapshot_version: int | None = None
    """The version of the snapshot compared with a replay, if there was one."""
    checkpoint: int | None = None
    """The latest checkpoint that vouches for this aggregate's head."""
    problems: list[str] = field(default_factory=list)
    erased: bool = False
    """The case was erased: its chain is checked over the ciphertext that remains."""

    def broken(self, problem: str, version: int | None = None) -> None:
        self.intact = False
        self.problems.append(problem)
        if version is not None and (
            self.first_broken_version is None or version < self.first_broken_version
        ):
            self.first_broken_version = version


@dataclass
class LogCheck:
    """The integrity of the whole log."""

    cases: list[CaseCheck]
    checkpoints: int
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems and all(c.intact for c in self.cases)


def _state(aggregate: object) -> dict[str, Any]:
    """An aggregate's state, as a snapshot would hold it."""
    state = dict(vars(aggregate))
    state.pop("_pending_events", None)
    return state


def _fold(events: Iterable[DomainEventProtocol[UUID]]) -> Any:
    aggregate: Any = None
    for event in events:
        aggregate = cast(Any, event).mutate(aggregate)
    return aggregate


def _check_snapshot(
    app: CaseApplication, check: CaseCheck, stored: Sequence[StoredEvent]
) -> None:
    if app.snapshots is None:
        return
    try:
        latest = list(app.snapshots.get(check.aggregate_id, desc=True, limit=1))
    except Exception as error:  # an unreadable snapshot is itself a finding
        check.broken(f"the latest snapshot cannot be read: {type(error).__name__}")
        return
    if not latest:
        return
    snapshot = cast(Any, latest[0])
    version = snapshot.originator_version
    check.snapshot_version = version
    events = [e for e in stored if e.originator_version <= version]
    if len(events) != version:
        check.broken(f"the snapshot at version {version} has no events to replay")
        return
    try:
        folded = _fold(app.mapper.to_domain_event(e) for e in events)
        matches = _state(snapshot.mutate(None)) == _state(folded)
    except Exception as error:
        check.broken(
            f"the events up to the snapshot at version {version} cannot be "
            f"replayed: {type(error).__name__}"
        )
        return
    if not matches:
        check.broken(
            f"the snapshot at version {version} differs from a replay of its events"
        )


def _check_heads(
    check: CaseCheck,
    rows: Sequence[CheckpointHead],
    stored_count: int,
    hashes: dict[int, bytes],
    positions: dict[int, int],
    trusted: Collection[int] | None,
) -> None:
    """Compare what checkpoints recorded of this aggregate with what is stored."""
    proven = 0
    for row in sorted(rows, key=lambda r: (r.head.version, r.seq)):
        if trusted is not None and row.seq not in trusted:
            continue  # an unauthenticated row proves nothing either way
        head = row.head
        where = f"checkpoint #{row.seq} recorded version {head.version}"
        if head.version not in positions:
            check.broken(
                f"{where} at position {head.position}; it is no longer stored",
                max(proven, stored_count) + 1,
            )
            return
        if positions[head.version] != head.position:
            check.broken(
                f"{where} at position {head.position}; it is now at "
                f"{positions[head.version]}",
                proven + 1,
            )
            return
        if hashes.get(head.version) != head.hash:
            check.broken(
                f"{where} with another chain hash: versions {proven + 1} to "
                f"{head.version} were rewritten",
                proven + 1,
            )
            return
        proven = head.version
        check.checkpoint = max(check.checkpoint or 0, row.seq)


def check_aggregate(
    app: CaseApplication,
    aggregate_id: UUID,
    *,
    head_rows: Sequence[CheckpointHead] | None = None,
    trusted: Collection[int] | None = None,
) -> CaseCheck:
    """Recompute the chain, compare the latest snapshot and the checkpoints' heads.

    `trusted` names the checkpoints whose MAC was verified; None trusts every row.
    """
    recorder = _recorder(app)
    stored = app.recorder.select_events(aggregate_id)
    hashes = recorder.select_hashes(aggregate_id)
    check = CaseCheck(aggregate_id)
    check.erased = bool(stored) and stored[-1].topic == CaseErased.TOPIC
    chain = verify(stored, hashes)
    check.events_checked = chain.events_checked
    if not chain.intact:
        version = chain.first_broken_version
        if version is not None and version > len(stored):
            problem = f"version {version} has a chain hash but no stored event"
        else:
            problem = f"version {version} does not match its chain hash"
        check.broken(problem, version)
    if head_rows is None:
        head_rows = recorder.select_checkpoint_heads(aggregate_id=aggregate_id)
    if head_rows:
        positions = recorder.select_positions(aggregate_id)
        _check_heads(check, head_rows, len(stored), hashes, positions, trusted)
    _check_snapshot(app, check, stored)
    return check


def _checkpoint_problems(
    checkpoints: Sequence[Checkpoint],
    heads: dict[int, list[Head]],
    keys: Sequence[bytes],
    *,
    links: bool = True,
) -> tuple[list[str], set[int]]:
    """Problems with the checkpoints themselves, and the numbers of those that
    authenticate (all of them when no key is configured).

    `links`: the checkpoints are all there are, so check that each follows the one
    before.
    """
    problems: list[str] = []
    trusted: set[int] = set()
    previous: Checkpoint | None = None
    for cp in checkpoints:
        name = f"checkpoint #{cp.seq}"
        expected = 1 if previous is None else previous.seq + 1
        if not links:
            pass
        elif cp.seq != expected:
            problems.append(f"checkpoints #{expected} to #{cp.seq - 1} are missing")
        elif cp.prev_mac != ("" if previous is None else previous.mac):
            problems.append(f"{name} does not follow checkpoint #{expected - 1}")
        elif cp.range_start != (0 if previous is None else previous.log_head):
            problems.append(f"{name} does not start where the one before ended")
        ok = True
        if keys:
            valid = mac_is_valid(cp, keys)
            if valid is None:
                problems.append(f"{name} is signed with a key that is not configured")
                ok = False
            elif not valid:
                problems.append(f"{name} has been altered: its MAC does not match")
                ok = False
        if heads_digest(heads.get(cp.seq, [])) != cp.heads_digest:
            problems.append(f"the heads stored with {name} have been altered")
            ok = False
        if ok:
            trusted.add(cp.seq)
        previous = cp
    return problems, trusted


def verify_case(
    app: CaseApplication, case_id: UUID, keys: Sequence[bytes]
) -> CaseCheck:
    """The integrity of one case: its chain, its snapshot, the checkpoints' heads."""
    recorder = _recorder(app)
    rows = recorder.select_checkpoint_heads(aggregate_id=case_id)
    seqs = {r.seq for r in rows}
    checkpoints = [cp for cp in recorder.select_checkpoints() if cp.seq in seqs]
    heads = {
        seq: [r.head for r in recorder.select_checkpoint_heads(seq=seq)] for seq in seqs
    }
    # Only some checkpoints are read, so their links are verify_log's business.
    problems, trusted = _checkpoint_problems(checkpoints, heads, keys, links=False)
    check = check_aggregate(app, case_id, head_rows=rows, trusted=trusted)
    for problem in problems:
        check.broken(problem)
    return check


Stage = Callable[[str, int, int], None]
"""Told how far a check has come: (stage, done, total)."""


def verify_log(
    app: CaseApplication, keys: Sequence[bytes], on_progress: Stage | None = None
) -> LogCheck:
    """The integrity of everything: checkpoints, the signed log ranges, every chain."""
    told = on_progress or (lambda _stage, _done, _total: None)
    recorder = _recorder(app)
    checkpoints = recorder.select_checkpoints()
    all_rows = recorder.select_checkpoint_heads()
    by_seq: dict[int, list[Head]] = defaultdict(list)
    by_aggregate: dict[UUID, list[CheckpointHead]] = defaultdict(list)
    for row in all_rows:
        by_seq[row.seq].append(row.head)
        by_aggregate[row.head.aggregate_id].append(row)
    problems, trusted = _checkpoint_problems(checkpoints, by_seq, keys)
    result = LogCheck([], len(checkpoints), problems)
    if not checkpoints:
        result.notes.append("no checkpoint has been taken: only the chains are checked")
    elif not keys:
        result.notes.append(
            "IPT_CHECKPOINT_KEY is not set: checkpoint signatures are not checked"
        )
    for n, cp in enumerate(checkpoints, 1):
        digest, heads = _scan(recorder, cp.range_start, cp.log_head)
        if (digest.count, digest.hexdigest()) != (cp.range_events, cp.range_digest):
            result.problems.append(
                f"the log between positions {cp.range_start + 1} and {cp.log_head} "
                f"is not what checkpoint #{cp.seq} signed ({cp.range_events} "
                f"events then, {digest.count} now): rows were removed, added, "
                "moved or re-chained"
            )
        elif heads_digest(heads.values()) != cp.heads_digest:
            result.problems.append(f"the heads of checkpoint #{cp.seq} do not match")
        told("signed ranges", n, len(checkpoints))
    ids = recorder.select_aggregate_ids() | set(by_aggregate)
    for n, aggregate_id in enumerate(sorted(ids, key=lambda i: i.hex), 1):
        result.cases.append(
            check_aggregate(
                app,
                aggregate_id,
                head_rows=by_aggregate.get(aggregate_id, []),
                trusted=trusted,
            )
        )
        told("aggregates", n, len(ids))
    return result


def _scan(
    recorder: AuditRecorder, start: int, end: int
) -> tuple[RangeDigest, dict[UUID, Head]]:
    """The digest of the log rows in (start, end] and each aggregate's last row."""
    digest = RangeDigest()
    heads: dict[UUID, Head] = {}
    for row in _log_rows(recorder, start, end):
        digest.add(row)
        heads[row.aggregate_id] = Head(
            row.aggregate_id, row.version, row.position, row.hash
        )
    return digest, heads


def _log_rows(recorder: AuditRecorder, after: int, upto: int) -> Iterator[Any]:
    while after < upto:
        rows = recorder.select_log_rows(after, upto, LOG_BATCH)
        if not rows:
            return
        yield from rows
        after = rows[-1].position


# --- checkpoints ------------------------------------------------------------------


def take_checkpoint(
    app: CaseApplication, key: bytes, *, now: datetime | None = None
) -> Checkpoint | None:
    """Sign the log up to its head; None when nothing was written since the last."""
    recorder = _recorder(app)
    checkpoints = recorder.select_checkpoints()
    previous = checkpoints[-1] if checkpoints else None
    start = 0 if previous is None else previous.log_head
    head = recorder.max_notification_id() or 0
    if head <= start:
        return None
    digest, heads = _scan(recorder, start, head)
    checkpoint = sign(
        Checkpoint(
            seq=1 if previous is None else previous.seq + 1,
            taken_at=(now or _now()).isoformat(timespec="seconds"),
            log_head=head,
            range_start=start,
            range_events=digest.count,
            range_digest=digest.hexdigest(),
            heads_digest=heads_digest(heads.values()),
            prev_mac="" if previous is None else previous.mac,
            key_id="",
        ),
        key,
    )
    if not recorder.insert_checkpoint(checkpoint, list(heads.values())):
        return None  # another process took this checkpoint first
    return checkpoint


def checkpoint_due(
    app: CaseApplication,
    *,
    every_events: int,
    every_seconds: float,
    now: datetime | None = None,
) -> bool:
    """Whether `every_events` events or `every_seconds` passed since the last one."""
    recorder = _recorder(app)
    checkpoints = recorder.select_checkpoints()
    head = recorder.max_notification_id() or 0
    if not checkpoints:
        return head > 0
    last = checkpoints[-1]
    if head <= last.log_head:
        return False
    if head - last.log_head >= every_events:
        return True
    age = (now or _now()) - datetime.fromisoformat(last.taken_at)
    return age.total_seconds() >= every_seconds


def checkpoint_if_due(
    app: CaseApplication,
    key: bytes,
    *,
    every_events: int,
    every_seconds: float,
    now: datetime | None = None,
) -> Checkpoint | None:
    """Take a checkpoint when one is due (the server calls this periodically)."""
    if not checkpoint_due(
        app, every_events=every_events, every_seconds=every_seconds, now=now
    ):
        return None
    return take_checkpoint(app, key, now=now)


class Checkpointer:
    """A background thread that takes checkpoints when they are due."""

    def __init__(
        self,
        app: CaseApplication,
        key: bytes,
        *,
        every_events: int,
        every_seconds: float,
        poll_seconds: float = 10.0,
    ) -> None:
        self.app, self.key = app, key
        self.every_events, self.every_seconds = every_events, every_seconds
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="checkpointer", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                taken = checkpoint_if_due(
                    self.app,
                    self.key,
                    every_events=self.every_events,
                    every_seconds=self.every_seconds,
                )
            except Exception:  # the next round tries again
                LOG.exception("checkpoint failed")
                continue
            if taken is not None:
                LOG.info("checkpoint %s at position %s", taken.seq, taken.log_head)


# --- export -----------------------------------------------------------------------


def _seal(lines: Sequence[str], key: bytes) -> str:
    digest = hashlib.sha256("".join(lines).encode()).digest()
    return hmac.new(
        key, b"ipt-workflow export v1\n" + digest, hashlib.sha256
    ).hexdigest()


def export_case(
    app: CaseApplication, case_id: UUID, keys: Sequence[bytes]
) -> list[str]:
    """A case's stored history as JSON lines that `verify_export` checks offline.

    Events as stored (topic, payload bytes, chain hash), the latest checkpoint that
    covers the case (with every head it signed, so its MAC can be checked), and,
    with a key, a seal over the whole file.
    """
    recorder = _recorder(app)
    stored = app.recorder.select_events(case_id)
    if not stored:
        raise CaseNotFoundError(str(case_id))
    hashes = recorder.select_hashes(case_id)
    positions = recorder.select_positions(case_id)
    lines = [
        _line(
            kind="export",
            format=EXPORT_FORMAT,
            case_id=str(case_id),
            exported_at=_now().isoformat(timespec="seconds"),
            events=len(stored),
        )
    ]
    for e in stored:
        digest = hashes.get(e.originator_version)
        lines.append(
            _line(
                kind="event",
                version=e.originator_version,
                position=positions.get(e.originator_version),
                topic=e.topic,
                state=base64.b64encode(e.state).decode(),
                hash=None if digest is None else digest.hex(),
            )
        )
    rows = recorder.select_checkpoint_heads(aggregate_id=case_id)
    if rows:
        seq = max(r.seq for r in rows)
        cp = next(c for c in recorder.select_checkpoints() if c.seq == seq)
        heads = [r.head for r in recorder.select_checkpoint_heads(seq=seq)]
        lines.append(
            _line(
                kind="checkpoint",
                **asdict(cp),
                heads=[
                    [
                        str(h.aggregate_id),
                        h.version,
                        h.position,
                        None if h.hash is None else h.hash.hex(),
                    ]
                    for h in heads
                ],
            )
        )
    if keys:
        lines.append(
            _line(kind="seal", key_id=key_id(keys[0]), mac=_seal(lines, keys[0]))
        )
    return lines


def _line(**values: Any) -> str:
    return json.dumps(values, sort_keys=True) + "\n"


class ExportFormatError(ValueError):
    """Raised when an export file is not in the format `export_case` writes."""


def verify_export(lines: Iterable[str], keys: Sequence[bytes]) -> CaseCheck:
    """Check an exported history offline: its chain, its checkpoint, its seal."""
    read: list[str] = []
    records: list[dict[str, Any]] = []
    for n, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            records.append(json.loads(text))
        except json.JSONDecodeError:
            raise ExportFormatError(f"line {n} is not JSON") from None
        read.append(text if text.endswith("\n") else text + "\n")
    if not records or records[0].get("kind") != "export":
        raise ExportFormatError("the file does not start with an export header")
    case_id = UUID(records[0]["case_id"])
    check = CaseCheck(case_id)
    events = [r for r in records if r.get("kind") == "event"]
    try:
        stored = [
            StoredEvent(case_id, r["version"], r["topic"], base64.b64decode(r["state"]))
            for r in events
        ]
        hashes = {r["version"]: bytes.fromhex(r["hash"]) for r in events if r["hash"]}
    except (KeyError, ValueError, TypeError) as error:
        raise ExportFormatError(f"an event line is malformed: {error}") from None
    check.erased = bool(stored) and stored[-1].topic == CaseErased.TOPIC
    chain = verify(stored, hashes)
    check.events_checked = chain.events_checked
    if not chain.intact:
        check.broken(
            f"version {chain.first_broken_version} does not match its chain hash",
            chain.first_broken_version,
        )
    if records[0].get("events") != len(events):
        check.broken(
            f"the header announces {records[0].get('events')} events; "
            f"the file holds {len(events)}",
            len(events) + 1,
        )
    _check_exported_checkpoint(check, records, events, hashes, keys)
    seals = [(i, r) for i, r in enumerate(records) if r.get("kind") == "seal"]
    if keys and not seals:
        check.problems.append("the file has no seal: it was exported without a key")
    for i, seal in seals:
        key = next((k for k in keys if key_id(k) == seal.get("key_id")), None)
        if key is None:
            check.problems.append("the seal was made with a key that is not given")
        elif not hmac.compare_digest(_seal(read[:i], key), str(seal.get("mac"))):
            check.broken("the seal does not match: the file was changed after export")
    return check


def _check_exported_checkpoint(
    check: CaseCheck,
    records: list[dict[str, Any]],
    events: list[dict[str, Any]],
    hashes: dict[int, bytes],
    keys: Sequence[bytes],
) -> None:
    found = [r for r in records if r.get("kind") == "checkpoint"]
    if not found:
        return
    raw = found[-1]
    try:
        cp = Checkpoint(**{k: v for k, v in raw.items() if k not in ("kind", "heads")})
        heads = [
            Head(UUID(i), v, p, None if h is None else bytes.fromhex(h))
            for i, v, p, h in raw["heads"]
        ]
    except (KeyError, ValueError, TypeError) as error:
        raise ExportFormatError(f"the checkpoint line is malformed: {error}") from None
    if heads_digest(heads) != cp.heads_digest:
        check.broken(f"the heads of checkpoint #{cp.seq} in the file were altered")
        return
    if keys:
        valid = mac_is_valid(cp, keys)
        if valid is None:
            check.problems.append(f"checkpoint #{cp.seq} is signed with another key")
            return
        if not valid:
            check.broken(f"checkpoint #{cp.seq} in the file has been altered")
            return
    mine = next((h for h in heads if h.aggregate_id == check.aggregate_id), None)
    if mine is None:
        check.broken(f"checkpoint #{cp.seq} does not name this case")
        return
    positions = {r["version"]: r["position"] for r in events}
    row = CheckpointHead(cp.seq, mine)
    _check_heads(check, [row], len(events), hashes, positions, None)
