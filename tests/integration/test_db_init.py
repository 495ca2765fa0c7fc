"""`ipt-workflow db init` creates the tables, as a real process, on both back ends."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID

import psycopg
from pydantic import SecretStr

from ipt_workflow.composition.bootstrap import bootstrap, prepare_storage
from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings, sqlite_path
from ipt_workflow.domain.commands import CommandContext
from ipt_workflow.domain.courses import Course
from tests.erasure.conftest import CLIENT_REF, erase, erasure_settings, withdrawn_case
from tests.erasure.test_erasure import caseload_ids
from tests.support.api import make_api
from tests.support.postgres import Cluster

CLI = [sys.executable, "-m", "ipt_workflow.cli.main"]
RING = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def tables(url: str) -> set[str]:
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url)) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            return {r[0] for r in rows}
    with psycopg.connect(url) as pg:
        found = pg.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        return {r[0] for r in found.fetchall()}


def test_db_init_creates_the_event_snapshot_and_chain_tables(database_url: str) -> None:
    env = {**os.environ, "IPT_DATABASE_URL": database_url}

    done = subprocess.run([*CLI, "db", "init"], env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    expected = (
        {"stored_events", "stored_snapshots", "event_hashes"}
        if database_url.startswith("sqlite")
        else {"cases_events", "cases_snapshots", "cases_events_hashes"}
    )
    assert expected <= tables(database_url)


def test_the_case_key_table_is_made_by_db_init_and_never_by_a_worker(
    database_url: str,
) -> None:
    settings = Settings(database_url=database_url, cipher_key=SecretStr(RING))
    worker = build_application(settings.model_copy(update={"create_tables": False}))
    assert worker.case_keys is not None  # the worker does use the key store
    worker.close()
    assert "case_data_keys" not in tables(database_url)

    env = {**os.environ, "IPT_DATABASE_URL": database_url, "IPT_CIPHER_KEY": RING}
    done = subprocess.run([*CLI, "db", "init"], env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert "case_data_keys" in tables(database_url)


def test_db_init_creates_the_sqlite_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new/folder/ipt.db"
    env = {**os.environ, "IPT_DATABASE_URL": url}

    done = subprocess.run([*CLI, "db", "init"], env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new" / "folder" / "ipt.db").exists()


def test_a_malformed_database_url_is_refused_with_a_clear_message() -> None:
    env = {**os.environ, "IPT_DATABASE_URL": "mysql://somewhere/db"}

    done = subprocess.run([*CLI, "db", "init"], env=env, capture_output=True, text=True)

    assert done.returncode == 2
    assert "IPT_DATABASE_URL must start sqlite:/// or postgresql://" in done.stderr
    assert "Traceback" not in done.stderr


def test_processes_starting_together_run_no_ddl_that_conflicts(
    postgres_url: str,
) -> None:
    """Caught by the benchmark: every start ran the library's CREATE OR REPLACE
    FUNCTION, and starts at the same moment failed on "tuple concurrently updated"
    (uvicorn then stopped the whole server)."""
    settings = Settings(database_url=postgres_url)
    prepare_storage(settings)
    app = build_application(settings)
    errors: list[BaseException] = []

    def start_repeatedly() -> None:
        try:
            for _ in range(15):
                app.recorder.create_table()  # type: ignore[attr-defined]
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=start_repeatedly) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    app.close()

    assert [repr(e) for e in errors] == []


@contextmanager
def runtime_role(url: str, grants: Callable[[str], list[str]]) -> Iterator[str]:
    """A login role that may not create anything, given `grants(role)` by the
    tables' owner: its database URL. Dropped afterwards."""
    role = f"runtime_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'runtime-password'")
        owner.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")
        for statement in grants(role):
            owner.execute(statement)
    parts = urlsplit(url)
    try:
        yield (
            f"postgresql://{role}:runtime-password@{parts.hostname}:{parts.port}"
            f"{parts.path}"
        )
    finally:
        with psycopg.connect(url, autocommit=True) as owner:
            owner.execute(f"DROP OWNED BY {role}")
            owner.execute(f"DROP ROLE {role}")


def rows_only(role: str) -> list[str]:
    return [
        f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}",
    ]


def printed_grants(role: str) -> list[str]:
    """What `ipt-workflow db grants ROLE` prints (docs/operations.md sends
    operators to it), one statement a line."""
    done = subprocess.run(
        [*CLI, "db", "grants", role], capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def test_with_create_tables_off_a_process_needs_no_ddl_rights(
    postgres: Cluster, postgres_url: str
) -> None:
    """What `serve` gives its workers (IPT_CREATE_TABLES=false): a role that may
    only read and write rows runs commands, reads, the read models' reads and the
    webhook subscriptions' reads."""
    prepare_storage(Settings(database_url=postgres_url))
    services = None
    with runtime_role(postgres_url, rows_only) as url:
        try:
            services = bootstrap(Settings(database_url=url, create_tables=False))
            course = Course(age=30, today=date(2026, 11, 20))
            case = services.cases.open_case(
                course.opening("clinic-a", "DDL-1", "t-1"),
                CommandContext(recorded_by="t-1", today=date(2026, 11, 20)),
            ).case
            services.access.record(  # type: ignore[union-attr]
                actor="t-1",
                role="clinician",
                key_id="k",
                clinic_id="clinic-a",
                case_id=case.id,
                route="/cases/{case_id}",
            )
            assert services.read_models is not None
            assert services.read_models.views["caseload"].rows(None) == []
            assert services.webhooks is not None
            assert list(services.webhooks.page(None, None, 10)) == []
        finally:
            if services is not None:
                services.close()


def key_exists(url: str, case_id: str) -> bool:
    with psycopg.connect(url) as db:
        found = db.execute(
            "SELECT 1 FROM case_data_keys WHERE case_id = %s", (UUID(case_id).hex,)
        ).fetchone()
    return found is not None


def test_a_role_given_the_printed_grants_erases_a_case_end_to_end(
    postgres_url: str,
) -> None:
    """Receipt, key, snapshots and idempotency records in the erasure's
    transaction, then the read models forgetting the case: all as the role."""
    prepare_storage(erasure_settings(postgres_url))
    with runtime_role(postgres_url, printed_grants) as url:
        for api in make_api(erasure_settings(url, create_tables=False)):
            case_id = withdrawn_case(api)
            kept = withdrawn_case(api, "ZQ-KEEP-ME-3030")

            answer = erase(api, case_id, **{"Idempotency-Key": "erase-1"})

            assert answer.status_code == 202, answer.text
            rows = caseload_ids(api, int(answer.headers["X-Position"]))
            assert case_id not in rows
            assert kept in rows
            assert api.get(f"/cases/{case_id}", "clinician").json()["erased"] is True
    assert not key_exists(postgres_url, case_id)
    assert key_exists(postgres_url, kept)


def test_without_the_delete_grants_an_erasure_fails_and_changes_nothing(
    postgres_url: str,
) -> None:
    """The DELETE grants are needed: with rows only, the erasure's transaction
    fails as a whole."""
    prepare_storage(erasure_settings(postgres_url))
    with runtime_role(postgres_url, rows_only) as url:
        for api in make_api(erasure_settings(url, create_tables=False)):
            case_id = withdrawn_case(api)

            answer = erase(api, case_id)

            # An operator's mistake, not a bug: 503, and the log names the grant.
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "unavailable"
            status = api.get(f"/cases/{case_id}/retention", "admin").json()
            assert status["erased"] is False, status
            assert status["erasure_supported"] is True
            case = api.get(f"/cases/{case_id}", "clinician").json()
            assert case["client_ref"] == CLIENT_REF
    assert key_exists(postgres_url, case_id)


def test_db_grants_refuses_a_role_name_it_would_have_to_quote() -> None:
    done = subprocess.run(
        [*CLI, "db", "grants", 'x"; DROP TABLE cases_events; --'],
        capture_output=True,
        text=True,
    )

    assert done.returncode == 2
    assert done.stdout == ""
    assert "role name" in done.stderr
