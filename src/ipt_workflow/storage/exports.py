"""Bulk export jobs (FHIR Bulk Data): their status and NDJSON files, on disk.

A job is a folder under the export directory: `status.json` (replaced atomically
at every change) and one `<ResourceType>.ndjson` file per type, written a line at
a time, so a job's memory does not grow with the clinic's size. Every worker
process of a server reads the same folder, so a poll may reach any of them; the
worker that runs a job beats its heartbeat into the status, and a job whose
heartbeat stopped (its worker died) reads as failed. Jobs are kept for
`keep_seconds`, then deleted with their files.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

HEARTBEAT_SECONDS = 2.0
DELETED = "deleted"
"""The name of a job's file of deleted resources (no resource type has it)."""
STALE_SECONDS = 30.0


def _owner_only(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


class ExportBusyError(Exception):
    """Raised when as many exports run as the server allows at once."""


class ExportCancelled(Exception):
    """Raised inside a job whose export was cancelled."""


@dataclass
class ExportJob:
    """What a poll of a job tells."""

    id: str
    owner: str
    """The key id of the token that started it: only that token may read it."""
    request: str
    transaction_time: str
    status: str = "running"
    """running, completed, failed or cancelled."""
    cases_done: int = 0
    outputs: dict[str, int] = field(default_factory=dict)
    """Resources written per type."""
    deleted: int = 0
    """Bundles of deleted resources written (`_since` exports: erased cases)."""
    error: str | None = None
    heartbeat: float = field(default_factory=time.time)
    created: float = field(default_factory=time.time)

    @property
    def running(self) -> bool:
        return self.status == "running"


class JobWriter:
    """What a job's producer writes through: resources, progress, cancellation."""

    def __init__(self, jobs: ExportJobs, job: ExportJob) -> None:
        self._jobs, self._job = jobs, job
        self._files: dict[str, IO[str]] = {}
        self._beat = 0.0

    def write(self, kind: str, resource: dict[str, Any]) -> None:
        self._line(kind, resource)
        self._job.outputs[kind] = self._job.outputs.get(kind, 0) + 1

    def write_deleted(self, bundle: dict[str, Any]) -> None:
        """A Bundle of the resources a client should delete (`deleted.ndjson`)."""
        self._line(DELETED, bundle)
        self._job.deleted += 1

    def _line(self, name: str, resource: dict[str, Any]) -> None:
        handle = self._files.get(name)
        if handle is None:
            handle = open(  # noqa: SIM115 - closed by close()
                self._jobs.folder(self._job.id) / f"{name}.ndjson",
                "w",
                encoding="utf-8",
                opener=_owner_only,
            )
            self._files[name] = handle
        handle.write(json.dumps(resource, separators=(",", ":")) + "\n")

    def case_done(self) -> None:
        """One more case is written."""
        self._job.cases_done += 1
        self.beat()

    def beat(self) -> None:
        """Show the job alive (now and then), and stop it if it was cancelled."""
        now = time.time()
        if now - self._beat >= HEARTBEAT_SECONDS:
            self._beat = now
            self._check_cancelled()
            self._job.heartbeat = now
            self._jobs.save(self._job)

    def _check_cancelled(self) -> None:
        if not (self._jobs.folder(self._job.id) / "status.json").exists():
            raise ExportCancelled(self._job.id)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()


Producer = Callable[[JobWriter], None]


class ExportJobs:
    """The export jobs of this server, in one folder all its workers share."""

    def __init__(
        self, directory: Path, *, max_running: int = 2, keep_seconds: float = 3600
    ) -> None:
        self.directory = directory
        self.max_running = max_running
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()

    def folder(self, job_id: str) -> Path:
        return self.directory / job_id

    def start(
        self, owner: str, request: str, transaction_time: str, produce: Producer
    ) -> ExportJob:
        """Start a job in a thread of this process; ExportBusyError when full."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._expire()
            if sum(1 for j in self._all() if j.running) >= self.max_running:
                raise ExportBusyError(str(self.max_running))
            job = ExportJob(uuid.uuid4().hex, owner, request, transaction_time)
            self.folder(job.id).mkdir(mode=0o700)  # records: the owner's only
            self.save(job)
        thread = threading.Thread(
            target=self._run, args=(job, produce), name=f"export-{job.id}", daemon=True
        )
        thread.start()
        return job

    def _run(self, job: ExportJob, produce: Producer) -> None:
        writer = JobWriter(self, job)
        try:
            produce(writer)
            job.status = "completed"
        except ExportCancelled:
            return
        except Exception as error:  # the job fails; the server goes on
            job.status, job.error = "failed", type(error).__name__
        finally:
            writer.close()
        if (self.folder(job.id) / "status.json").exists():
            self.save(job)

    def get(self, job_id: str, owner: str) -> ExportJob | None:
        """The job if this owner started it (and it has not expired)."""
        self._expire()
        job = self._load(job_id)
        if job is None or job.owner != owner:
            return None
        if job.running and time.time() - job.heartbeat > STALE_SECONDS:
            job.status, job.error = "failed", "the worker running it stopped"
        return job

    def file(self, job_id: str, owner: str, kind: str) -> Path | None:
        job = self.get(job_id, owner)
        if job is None or job.status != "completed":
            return None
        if kind not in job.outputs and not (kind == DELETED and job.deleted):
            return None
        return self.folder(job_id) / f"{kind}.ndjson"

    def cancel(self, job_id: str, owner: str) -> bool:
        """Stop a job and delete it with its files."""
        if self.get(job_id, owner) is None:
            return False
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
        return True

    def save(self, job: ExportJob) -> None:
        folder = self.folder(job.id)
        temporary = folder / f".status-{threading.get_ident()}.json"
        try:
            temporary.write_text(json.dumps(asdict(job)))
            os.replace(temporary, folder / "status.json")
        except FileNotFoundError:
            pass  # cancelled meanwhile: its folder is gone

    def _load(self, job_id: str) -> ExportJob | None:
        if not job_id.isalnum():
            return None
        try:
            values = json.loads((self.folder(job_id) / "status.json").read_text())
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
            return None
        return ExportJob(**values)

    def _all(self) -> list[ExportJob]:
        if not self.directory.exists():
            return []
        found = [self._load(p.name) for p in self.directory.iterdir() if p.is_dir()]
        now = time.time()
        return [
            j
            for j in found
            if j is not None and not (j.running and now - j.heartbeat > STALE_SECONDS)
        ]

    def _expire(self) -> None:
        if not self.directory.exists():
            return
        now = time.time()
        for folder in self.directory.iterdir():
            job = self._load(folder.name) if folder.is_dir() else None
            alive = (
                job is not None and job.running and now - job.heartbeat < STALE_SECONDS
            )
            if job is not None and not alive and now - job.created > self.keep_seconds:
                shutil.rmtree(folder, ignore_errors=True)
