"""Bulk export jobs on disk: shared by every process that opens the folder, failed
when their worker stopped beating, gone after their time."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ipt_workflow.storage.exports import ExportBusyError, ExportJobs, JobWriter


def waiting(release: threading.Event) -> Callable[[JobWriter], None]:
    def produce(_writer: JobWriter) -> None:
        release.wait(10)

    return produce


def finished(jobs: ExportJobs, job_id: str, owner: str = "key-1") -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job = jobs.get(job_id, owner)
        assert job is not None
        if not job.running:
            return job.status
        time.sleep(0.01)
    raise AssertionError("the job did not finish")


def test_a_job_started_by_one_process_is_read_by_another_with_its_files(
    tmp_path: Path,
) -> None:
    here, there = ExportJobs(tmp_path), ExportJobs(tmp_path)

    def produce(writer: JobWriter) -> None:
        for n in range(3):
            writer.write("Encounter", {"resourceType": "Encounter", "id": str(n)})
            writer.case_done()

    job = here.start("key-1", "/fhir/$export", "2026-01-01T00:00:00+00:00", produce)

    assert finished(there, job.id) == "completed"
    seen = there.get(job.id, "key-1")
    assert seen is not None
    assert (seen.outputs, seen.cases_done) == ({"Encounter": 3}, 3)
    path = there.file(job.id, "key-1", "Encounter")
    assert path is not None
    assert len(path.read_text().splitlines()) == 3
    assert there.get(job.id, "key-2") is None


def test_a_running_job_whose_heartbeat_stopped_reads_as_failed(tmp_path: Path) -> None:
    jobs = ExportJobs(tmp_path)
    release = threading.Event()
    job = jobs.start("key-1", "/", "t", waiting(release))
    stale = jobs.get(job.id, "key-1")
    assert stale is not None
    stale.heartbeat -= 3600
    jobs.save(stale)

    seen = jobs.get(job.id, "key-1")
    release.set()

    assert seen is not None
    assert seen.status == "failed"


def test_a_producer_that_raises_fails_its_job_and_only_its_job(tmp_path: Path) -> None:
    jobs = ExportJobs(tmp_path)

    def broken(_writer: JobWriter) -> None:
        raise RuntimeError("boom")

    job = jobs.start("key-1", "/", "t", broken)

    assert finished(jobs, job.id) == "failed"
    failed = jobs.get(job.id, "key-1")
    assert failed is not None
    assert failed.error == "RuntimeError"


def test_no_more_jobs_run_than_allowed_and_old_ones_are_deleted(tmp_path: Path) -> None:
    jobs = ExportJobs(tmp_path, max_running=1, keep_seconds=0.05)
    release = threading.Event()
    first = jobs.start("key-1", "/", "t", waiting(release))

    with pytest.raises(ExportBusyError):
        jobs.start("key-1", "/", "t", lambda _writer: None)
    release.set()
    finished(jobs, first.id)
    time.sleep(0.1)

    assert jobs.get(first.id, "key-1") is None
    assert not (tmp_path / first.id).exists()


def test_an_exports_folder_and_files_are_readable_by_their_owner_only(
    tmp_path: Path,
) -> None:
    """Caught in the merge with issue 13: the NDJSON files (clinical records) were
    created with the umask's 0644 in a folder anyone on the machine could list."""
    jobs = ExportJobs(tmp_path / "exports")
    previous = os.umask(0o022)
    try:

        def produce(writer: JobWriter) -> None:
            writer.write("Condition", {"resourceType": "Condition", "id": "c"})
            writer.case_done()

        job = jobs.start("key-1", "/fhir/$export", "2026-01-01T00:00:00+00:00", produce)
        assert finished(jobs, job.id) == "completed"
    finally:
        os.umask(previous)
    path = jobs.file(job.id, "key-1", "Condition")
    assert path is not None

    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
