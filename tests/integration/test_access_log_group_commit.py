"""Reads of concurrent requests are committed together, each answered after its commit.

Real access logs of both back ends behind the group commit (D95); a second,
independent access log on the same database checks what is committed.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from uuid import UUID

import pytest

from ipt_workflow.composition.builders import access_log_path
from ipt_workflow.composition.settings import Settings, ensure_sqlite_directory
from ipt_workflow.storage.access_group import GroupCommitAccessLog
from ipt_workflow.storage.access_log import (
    PostgresAccessLog,
    RecordsReads,
    SQLiteAccessLog,
    _SqlAccessLog,
)

READERS = 24
READS_EACH = 10


def raw_log(settings: Settings) -> _SqlAccessLog:
    if settings.backend == "sqlite":
        ensure_sqlite_directory(settings)
        return SQLiteAccessLog(access_log_path(settings))
    return PostgresAccessLog(settings.database_url)


class Observed(RecordsReads):
    """The real log, counting its transactions; a row of actor `bad` fails its batch."""

    def __init__(self, log: _SqlAccessLog) -> None:
        self.log = log
        self.transactions = 0
        self.failed_batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.query = log.query
        self.close = log.close

    def insert_rows(self, rows: Sequence[tuple[str, ...]]) -> None:
        self.gate.wait()
        time.sleep(0.005)  # a transaction's round trips, so that reads queue up
        self.transactions += 1
        if any(row[1] == "bad" for row in rows):
            self.failed_batches.append(len(rows))
            raise ValueError("a row this log refuses")
        self.log.insert_rows(rows)

    def _write(self, rows: Sequence[tuple[str, ...]]) -> None:
        self.insert_rows(rows)


@pytest.fixture
def logs(
    settings: Settings,
) -> Iterator[tuple[GroupCommitAccessLog, Observed, _SqlAccessLog]]:
    observed = Observed(raw_log(settings))
    grouped = GroupCommitAccessLog(observed)
    checker = raw_log(settings)
    yield grouped, observed, checker
    grouped.close()
    checker.close()


def committed(checker: _SqlAccessLog, actor: str) -> list[UUID]:
    return [e.case_id for e in checker.query(clinics=None, actor=actor, limit=1000)]


def test_each_read_returns_only_after_its_row_is_committed_and_reads_share_transactions(
    logs: tuple[GroupCommitAccessLog, Observed, _SqlAccessLog],
) -> None:
    grouped, observed, checker = logs
    missing: list[tuple[str, UUID]] = []

    def reader(n: int) -> None:
        actor = f"reader-{n}"
        for _ in range(READS_EACH):
            case_id = uuid.uuid4()
            grouped.record(
                actor=actor,
                role="clinician",
                key_id="k",
                clinic_id="c1",
                case_id=case_id,
                route="/cases/{case_id}",
            )
            if case_id not in committed(checker, actor):
                missing.append((actor, case_id))

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert missing == []
    assert all(
        len(committed(checker, f"reader-{n}")) == READS_EACH for n in range(READERS)
    )
    assert observed.transactions < READERS * READS_EACH / 2


def test_a_read_whose_row_fails_fails_alone_and_the_others_of_its_batch_are_kept(
    logs: tuple[GroupCommitAccessLog, Observed, _SqlAccessLog],
) -> None:
    grouped, observed, checker = logs
    outcomes: dict[str, str] = {}

    def reader(actor: str) -> None:
        try:
            grouped.record(
                actor=actor,
                role="clinician",
                key_id="k",
                clinic_id="c1",
                case_id=uuid.uuid4(),
                route="/cases/{case_id}",
            )
        except ValueError:
            outcomes[actor] = "failed"
        else:
            outcomes[actor] = "recorded"

    # The writer is held on a first read while the nine queue up behind it.
    observed.gate.clear()
    first = threading.Thread(target=reader, args=("first",))
    first.start()
    time.sleep(0.2)
    actors = ["bad", *(f"good-{n}" for n in range(8))]
    threads = [threading.Thread(target=reader, args=(a,)) for a in actors]
    for t in threads:
        t.start()
    time.sleep(0.3)
    observed.gate.set()
    for t in [first, *threads]:
        t.join()
    actors.append("first")

    assert outcomes == {a: "failed" if a == "bad" else "recorded" for a in actors}
    assert observed.failed_batches[0] == 9  # all nine were in one transaction
    assert committed(checker, "bad") == []
    assert all(len(committed(checker, a)) == 1 for a in actors if a != "bad")


def test_a_closed_log_commits_what_was_queued_and_refuses_new_reads(
    logs: tuple[GroupCommitAccessLog, Observed, _SqlAccessLog],
) -> None:
    grouped, _, checker = logs
    case_id = uuid.uuid4()
    grouped.record(
        actor="last",
        role="auditor",
        key_id="k",
        clinic_id="c1",
        case_id=case_id,
        route="/cases/{case_id}",
    )
    grouped.close()
    assert committed(checker, "last") == [case_id]
    with pytest.raises(OSError, match="closed"):
        grouped.record(
            actor="late",
            role="auditor",
            key_id="k",
            clinic_id="c1",
            case_id=uuid.uuid4(),
            route="/cases/{case_id}",
        )
