"""Group commit for the access log: many requests' reads in one transaction (D95).

A read still returns only once its rows are committed: `record_many` queues the
rows and blocks until the writer thread has committed the batch holding them, or
raises what stopped that. What changes is the number of transactions: one per
batch of concurrent reads instead of one per read, each holding the access log's
table lock (which keeps ids in commit order) for one insert of many rows.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from ipt_workflow.storage.access_log import AccessEntry, AccessLog, RecordsReads


class RowWriter(AccessLog, Protocol):
    """An access log that commits rows it is given in one transaction."""

    def insert_rows(self, rows: Sequence[tuple[str, ...]]) -> None: ...


class AccessLogBusyError(OSError):
    """A read could not be recorded in time: it is not answered (503)."""


@dataclass
class _Pending:
    rows: list[tuple[str, ...]]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class GroupCommitAccessLog(RecordsReads):
    """The access log, writing the reads of concurrent requests together.

    The queue is bounded (QUEUE_ROWS): a read finding it full waits for room, and
    a read not committed within WAIT_SECONDS fails, as a read whose row cannot be
    written always did. A batch that fails is written again request by request,
    so one bad row fails only its own read and never drops another's.
    """

    QUEUE_ROWS = 10_000
    BATCH_ROWS = 1_000
    WAIT_SECONDS = 10.0

    def __init__(self, log: RowWriter) -> None:
        self._log = log
        self._pending: deque[_Pending] = deque()
        self._rows = 0
        self._cond = threading.Condition()
        self._closed = False
        self._writer = threading.Thread(
            target=self._write_forever, name="access-log", daemon=True
        )
        self._writer.start()

    def _write(self, rows: Sequence[tuple[str, ...]]) -> None:
        """Queue the rows; return once they are committed, or raise why not."""
        pending = _Pending(list(rows))
        deadline = time.monotonic() + self.WAIT_SECONDS
        with self._cond:
            while self._rows >= self.QUEUE_ROWS and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AccessLogBusyError("the access log's queue is full")
                self._cond.wait(left)
            if self._closed:
                raise AccessLogBusyError("the access log is closed")
            self._pending.append(pending)
            self._rows += len(pending.rows)
            self._cond.notify_all()
        if not pending.done.wait(max(0.0, deadline - time.monotonic())):
            raise AccessLogBusyError("the access log did not commit in time")
        if pending.error is not None:
            raise pending.error

    def query(
        self,
        *,
        clinics: Collection[str] | None,
        case_id: UUID | None = None,
        actor: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[AccessEntry]:
        return self._log.query(
            clinics=clinics, case_id=case_id, actor=actor, after=after, limit=limit
        )

    def close(self) -> None:
        """Commit what is queued, stop the writer, release the connections."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._writer.join(self.WAIT_SECONDS)
        self._log.close()

    def _take(self) -> list[_Pending] | None:
        with self._cond:
            while not self._pending:
                if self._closed:
                    return None
                self._cond.wait()
            batch: list[_Pending] = []
            rows = 0
            while self._pending and (not batch or rows < self.BATCH_ROWS):
                taken = self._pending.popleft()
                batch.append(taken)
                rows += len(taken.rows)
            self._rows -= rows
            self._cond.notify_all()
            return batch

    def _write_forever(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self._log.insert_rows([row for p in batch for row in p.rows])
            except Exception as failed:
                if len(batch) == 1:
                    batch[0].error = failed
                else:
                    self._one_by_one(batch)
            for pending in batch:
                pending.done.set()

    def _one_by_one(self, batch: list[_Pending]) -> None:
        for pending in batch:
            try:
                self._log.insert_rows(pending.rows)
            except Exception as failed:
                pending.error = failed
