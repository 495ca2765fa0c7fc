"""One erasure stopped inside its transaction leaves the case untouched.

The erasure's transaction inserts the `CaseErased` receipt, then deletes the case's
data key. Another connection holds the key's row (`FOR UPDATE`), so the erasing
process (a real `retention run --apply`) waits on that DELETE with the receipt
already inserted; then PostgreSQL is stopped at once (a private cluster), or the
process is killed. Afterwards the case is as it was, and the next run erases it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import psycopg

from ipt_workflow.composition.builders import build_application
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.events import CaseErased
from ipt_workflow.storage.case_keys import TABLE
from tests.erasure.conftest import CHECKPOINT_KEY, COURSE, RING, erasure_settings
from tests.support.drivers import ThroughApplication
from tests.support.postgres import Cluster, cluster

CLI = [sys.executable, "-m", "ipt_workflow.cli.main"]
CLIENT_REF = "ZQ-HALF-WAY-5521"


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "IPT_DATABASE_URL": url,
        "IPT_CIPHER_KEY": RING,
        "IPT_CHECKPOINT_KEY": CHECKPOINT_KEY,
        "IPT_LOG_FORMAT": "json",
        "IPT_RETENTION_YEARS_AFTER_END": "0",
    }


def a_withdrawn_case(url: str) -> UUID:
    app = build_application(erasure_settings(url, run_projections=False))
    try:
        driver = ThroughApplication(app, "clinic-a", today=datetime.now(UTC).date())
        return driver.drive(COURSE, Phase.withdrawn, client_ref=CLIENT_REF)
    finally:
        app.close()


def state(url: str, case_id: UUID) -> tuple[bool, str]:
    """(the case's data key exists, the topic of its last event)."""
    with psycopg.connect(url) as db:
        key = db.execute(
            f"SELECT 1 FROM {TABLE} WHERE case_id = %s", (case_id.hex,)
        ).fetchone()
        last = db.execute(
            "SELECT topic FROM cases_events WHERE originator_id = %s "
            "ORDER BY originator_version DESC LIMIT 1",
            (case_id,),
        ).fetchone()
    assert last is not None
    return key is not None, str(last[0])


def readable(url: str, case_id: UUID) -> str:
    """The case's client_ref, read by a fresh application with the ring."""
    app = build_application(erasure_settings(url, run_projections=False))
    try:
        case = app.get_case(case_id)
        assert case.erased is None
        return case.client_ref
    finally:
        app.close()


def verified(url: str, *which: str) -> str:
    """What `audit verify` prints (the whole log by default); it must say intact."""
    done = subprocess.run(
        [*CLI, "audit", "verify", *which],
        env=_env(url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def retention_run(url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [*CLI, "retention", "run", "--apply"],
            env=_env(url),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )


@contextmanager
def key_row_held(
    url: str, case_id: UUID
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """Hold the case's key row with FOR UPDATE in an open transaction."""
    holder = psycopg.connect(url)
    try:
        found = holder.execute(
            f"SELECT 1 FROM {TABLE} WHERE case_id = %s FOR UPDATE", (case_id.hex,)
        ).fetchone()
        assert found is not None, "the case has a data key"
        yield holder
    finally:
        try:
            holder.rollback()
            holder.close()
        except psycopg.Error:
            pass  # the server was stopped under it


def the_blocked_delete(
    url: str, process: subprocess.Popen[bytes], holder_pid: int
) -> int:
    """The erasing backend, once it waits on the key's DELETE behind the holder,
    having inserted into the events and hashes tables in the same transaction."""
    deadline = time.monotonic() + 60
    with psycopg.connect(url, autocommit=True) as db:
        while time.monotonic() < deadline:
            assert process.poll() is None, "the retention run ended before the DELETE"
            row = db.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                f"AND query LIKE 'DELETE FROM {TABLE}%%' "
                "AND %s = ANY(pg_blocking_pids(pid))",
                (holder_pid,),
            ).fetchone()
            if row is not None:
                pid = int(str(row[0]))
                written = {
                    str(r[0])
                    for r in db.execute(
                        "SELECT relation::regclass::text FROM pg_locks "
                        "WHERE pid = %s AND mode = 'RowExclusiveLock'",
                        (pid,),
                    ).fetchall()
                }
                assert {"cases_events", "cases_events_hashes"} <= written, written
                return pid
            time.sleep(0.05)
    raise AssertionError("the erasure never reached the key's DELETE")


def ended(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError("the retention run did not end") from None


def assert_untouched_then_erased_by_the_next_run(
    url: str, case_id: UUID, log: Path
) -> None:
    has_key, last = state(url, case_id)
    assert has_key, "the key survived"
    assert last != CaseErased.TOPIC, "no receipt was committed"
    assert readable(url, case_id) == CLIENT_REF
    assert verified(url).startswith("intact: ")
    assert f"{case_id} intact: " in verified(url, "--case", str(case_id))

    again = retention_run(url, log)
    assert ended(again, timeout=120) == 0, log.read_text()

    assert state(url, case_id) == (False, CaseErased.TOPIC)
    assert f"{case_id} intact (erased)" in verified(url, "--all")


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A cluster of this test's own, running again when the test ends however it
    ended, so that it is stopped and removed like any other."""
    with cluster() as running:
        try:
            yield running
        finally:
            if not _running(running):
                running.start()


def _running(c: Cluster) -> bool:
    try:
        c.pg_ctl("status")
    except subprocess.CalledProcessError:
        return False
    return True


def test_postgresql_stopped_inside_the_erasure_leaves_the_case_untouched(
    tmp_path: Path,
) -> None:
    log = tmp_path / "retention.log"
    with private_cluster() as pg:
        with pg.admin() as admin:
            admin.execute("CREATE DATABASE erasure")
        url = pg.url("erasure")
        case_id = a_withdrawn_case(url)
        process = None
        try:
            with key_row_held(url, case_id) as holder:
                process = retention_run(url, log)
                the_blocked_delete(url, process, holder.info.backend_pid)
                pg.pg_ctl("stop", "-m", "immediate", "-w")
            assert ended(process) != 0, "the run saw its database go"
        finally:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if not _running(pg):
                pg.start()
            pg.wait_ready(60)

        assert_untouched_then_erased_by_the_next_run(url, case_id, log)


def test_the_erasing_process_killed_inside_the_erasure_leaves_the_case_untouched(
    postgres_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "retention.log"
    case_id = a_withdrawn_case(postgres_url)
    process = None
    try:
        with key_row_held(postgres_url, case_id) as holder:
            process = retention_run(postgres_url, log)
            backend = the_blocked_delete(postgres_url, process, holder.info.backend_pid)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        # The holder let go: the orphaned backend finishes its DELETE, finds its
        # client gone and rolls back. Wait until it has.
        deadline = time.monotonic() + 30
        with psycopg.connect(postgres_url, autocommit=True) as db:
            while db.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend,)
            ).fetchone():
                assert time.monotonic() < deadline, "the orphaned backend stayed"
                time.sleep(0.05)
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert_untouched_then_erased_by_the_next_run(postgres_url, case_id, log)
