"""`make bench` and `make bench-quick`: every row of issue 12's table in one run.

    .venv/bin/python -m benchmarks.run [--quick] [--profile DIR] [--out FILE]

Starts a throw-away PostgreSQL, loads data through the application, runs the
service as deployed (`serve --workers N` + `projections run`), drives it with wrk
from outside, measures the baselines of the same run (pgbench, the application
without HTTP, GET /healthz), prints one table and writes it to
benchmarks/results/latest.json. Nothing is left running, also after Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg

from benchmarks import client, direct, lag, pgbench, procs, profile, rebuild, wrk
from benchmarks.results import Criterion, Row, machine_load, table, write
from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.composition.settings import Settings
from projections.catalog import CATALOG
from tests.support.postgres import cluster

RESULTS = Path(__file__).with_name("results") / "latest.json"
CLINIC = "bench-clinic"
CASES = 256
SHARED_CASES = 4
REPLAY_EVENTS = 60
CLIENTS = 32
SHARED_CLIENTS = 8
LAG_RATE = 1000
PROFILE_RATE = 200
PROFILE_SECONDS = 15


@dataclass(frozen=True)
class Plan:
    name: str
    wrk_seconds: float
    direct_seconds: float
    pgbench_seconds: float
    small_events: int
    big_events: int
    runner_seconds: float
    catch_up_seconds: float


QUICK = Plan("quick", 3, 2, 2, 2_000, 5_000, 2, 30)
FULL = Plan("full", 20, 10, 10, 10_000, 1_000_000, 30, 300)


@dataclass
class Tokens:
    writer: str
    reader: str
    auditor: str
    ops: str


@dataclass
class Bench:
    plan: Plan
    work: Path
    profile: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    loads: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    postgres_pid: int = 0

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    def measured(self, key: str, value: Any) -> Any:
        self.raw[key] = value
        self.loads[key] = machine_load()
        return value

    @contextmanager
    def step(self, key: str) -> Iterator[None]:
        """One measurement: a failure is recorded in its row, the run goes on."""
        started = time.monotonic()
        try:
            yield
        except Exception as error:
            self.failures[key] = f"{type(error).__name__}: {error}"[:500]
            traceback.print_exc(file=sys.stderr)
        finally:
            _say(f"  {key}: {time.monotonic() - started:.1f} s")

    # --- set-up -------------------------------------------------------------------

    def service_env(self, url: str, **extra: str) -> dict[str, str]:
        """What an operator would set: real keys (so no --dev), no rate limit."""
        return {
            **os.environ,
            "IPT_DATABASE_URL": url,
            "IPT_RATE_LIMIT_PER_SECOND": "0",
            "IPT_RUN_PROJECTIONS": "false",
            "IPT_LOG_FORMAT": "json",
            **extra,
        }

    def keys(self, env: dict[str, str], *, full: bool = True) -> Tokens:
        def add(role: str, actor: str, clinic: str = CLINIC) -> str:
            done = procs.cli(
                ["keys", "add", "--role", role, "--clinic", clinic, "--actor", actor],
                env,
            )
            return done.stdout.strip().splitlines()[-1]

        wanted = [("clinician", "bench-writer", CLINIC), ("ops", "bench-ops", "*")]
        if full:
            wanted += [
                ("clinician", "bench-reader", CLINIC),
                ("auditor", "bench-auditor", CLINIC),
            ]
        # Each is a process of its own, mostly start-up: make them together.
        with ThreadPoolExecutor(len(wanted)) as pool:
            made = list(pool.map(lambda k: add(*k), wanted))
        if not full:
            return Tokens(writer=made[0], reader=made[0], auditor="", ops=made[1])
        return Tokens(writer=made[0], reader=made[2], auditor=made[3], ops=made[1])

    @contextmanager
    def cpu(
        self, key: str, server: procs.Managed, runners: procs.Managed
    ) -> Iterator[None]:
        """CPU time of the API, the projections and PostgreSQL during a row."""
        groups: dict[str, Callable[[], list[int]]] = {
            "api": server.tree,
            "projections": runners.tree,
            "postgres": lambda: [
                self.postgres_pid,
                *procs.descendants(self.postgres_pid),
            ],
        }
        before = {k: procs.cpu_seconds(pids()) for k, pids in groups.items()}
        started = time.monotonic()
        yield
        self.raw[key] = {
            k: round(procs.cpu_seconds(pids()) - before[k], 2)
            for k, pids in groups.items()
        } | {"seconds": round(time.monotonic() - started, 2)}

    def tag(self, label: str) -> str:
        return f"b{self.run_id}-{label}"

    # --- HTTP rows -----------------------------------------------------------------

    def commands(
        self,
        base: str,
        tokens: Tokens,
        ids: Sequence[str],
        label: str,
        *,
        connections: int = CLIENTS,
        ports: Sequence[int] = (),
        check: bool = False,
        delay_ms: float | None = None,
    ) -> wrk.WrkResult:
        return wrk.run(
            base,
            mode="measure",
            items=ids,
            connections=connections,
            seconds=self.plan.wrk_seconds,
            token=tokens.writer,
            tag=self.tag(label),
            day=_yesterday(),
            ports=ports,
            check=check,
            delay_ms=delay_ms,
        )

    def caught_up(self, base: str, tokens: Tokens) -> bool:
        """Wait until every read model has processed every case event."""
        deadline = time.monotonic() + self.plan.catch_up_seconds
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {tokens.ops}"}
        ) as http:
            while time.monotonic() < deadline:
                items = http.get("/projections/status", timeout=30).json()["items"]
                if all(i["lag_events"] == 0 for i in items):
                    return True
                time.sleep(0.25)
        _say("  (read models still lagging; measuring anyway)")
        return False

    def head(self, base: str, tokens: Tokens) -> int:
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {tokens.ops}"}
        ) as http:
            items = http.get("/projections/status", timeout=30).json()["items"]
        return int(items[0]["head"])

    def profile_commands(
        self,
        server: procs.Managed,
        runners: procs.Managed,
        base: str,
        tokens: Tokens,
        ids: Sequence[str],
    ) -> None:
        """py-spy on the workers during an extra command run (not the measured one)."""
        if self.profile is None:
            return
        self.profile.mkdir(parents=True, exist_ok=True)
        seconds = PROFILE_SECONDS
        for kind, flags in (("wall", ["--idle"]), ("cpu", [])):
            spies = [
                subprocess.Popen(
                    [
                        str(procs.BIN / "py-spy"),
                        "record",
                        *("--pid", str(target.pid)),
                        "--subprocesses",
                        *("--rate", str(PROFILE_RATE)),
                        *("--duration", str(int(seconds))),
                        *("--format", "raw"),
                        *("--output", str(self.profile / f"{name}-{kind}.txt")),
                        *flags,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for name, target in (("commands", server), ("projections", runners))
            ]
            try:
                time.sleep(0.5)
                result = wrk.run(
                    base,
                    mode="measure",
                    items=ids,
                    connections=CLIENTS,
                    seconds=seconds,
                    token=tokens.writer,
                    tag=self.tag(f"profile-{kind}"),
                    day=_yesterday(),
                )
                self.raw[f"profiled_{kind}"] = result.brief()
            finally:
                for spy in spies:
                    try:
                        spy.wait(seconds + 30)
                    except subprocess.TimeoutExpired:
                        # py-spy writes what it has on SIGINT; a busy machine
                        # can keep it past its --duration.
                        spy.send_signal(signal.SIGINT)
                        spy.wait(60)
            for name in ("commands", "projections"):
                raw = self.profile / f"{name}-{kind}.txt"
                if raw.exists():
                    text = profile.summary(
                        profile.parse(raw.read_text().splitlines()),
                        requests=result.requests,
                        rate=PROFILE_RATE,
                    )
                    (self.profile / f"{name}-{kind}.md").write_text(text)
                    _say(f"  profile ({name}, {kind}) in {raw}:\n{text}")

    # --- the run -------------------------------------------------------------------

    def run(self) -> list[Row]:
        plan = self.plan
        with cluster() as pg:
            pid_file = pg.datadir / "postmaster.pid"
            self.postgres_pid = int(pid_file.read_text().split()[0])
            with pg.admin() as admin:
                admin.execute("CREATE DATABASE ipt")
                admin.execute("CREATE DATABASE pgb")
                admin.execute("CREATE DATABASE ipt_direct")
            _say("baseline (a): pgbench single-row inserts")
            with self.step("pgbench"):
                pgbench.prepare(pg.url("pgb"))
                for clients in (CLIENTS, SHARED_CLIENTS):
                    self.measured(
                        f"pgbench_{clients}",
                        pgbench.run(pg.url("pgb"), clients, plan.pgbench_seconds),
                    )
            url = pg.url("ipt")
            env = self.service_env(url)
            procs.cli(["db", "init"], env)
            tokens = self.keys(env)
            ids, shared, replay_id = self.load(url)
            procs.cli(["projections", "rebuild"], env)
            _say("starting the service")
            self.http_rows(env, tokens, ids, shared, replay_id)
            # Its own database, so that the projections need not catch up on it.
            direct_url = pg.url("ipt_direct")
            self.direct_rows(direct_url, *self.load(direct_url))
            self.scale_out_rows(env, tokens, ids)
            self.sqlite_row()
            self.big_rows(url, env, tokens, ids)
        return self.rows()

    def load(self, url: str) -> tuple[list[str], list[str], str]:
        """The bulk of events, then the cases of the rows, opened as the API does."""
        _say(f"loading {self.plan.small_events:,} events through the application")
        direct.fill(url, self.plan.small_events)
        settings = Settings(database_url=url)
        ids = direct.open_cases(settings, CLINIC, [f"bench-{i}" for i in range(CASES)])
        shared = direct.open_cases(
            settings, CLINIC, [f"shared-{i}" for i in range(SHARED_CASES)]
        )
        replay_id = direct.open_cases(
            settings, CLINIC, ["replay-0"], measures=REPLAY_EVENTS - 1
        )[0]
        return ids, shared, replay_id

    def http_rows(
        self,
        env: dict[str, str],
        tokens: Tokens,
        ids: list[str],
        shared: list[str],
        replay_id: str,
    ) -> None:
        plan = self.plan
        with (
            procs.projections(env, self.logs) as runners,
            procs.server(env, self.logs, workers=2) as (server, base),
        ):
            self.caught_up(base, tokens)
            self.raw["small_events"] = self.head(base, tokens)

            _say(f"commands: {CLIENTS} clients on {CASES} cases, 2 workers")
            with self.step("commands"), self.cpu("commands_cpu", server, runners):
                self.measured("commands", self.commands(base, tokens, ids, "cmd"))
                self.raw["rss_small"] = _rss(server)
            with self.step("healthz"):
                self.measured(
                    "healthz",
                    wrk.run(
                        base,
                        mode="get",
                        items=["/healthz"],
                        connections=CLIENTS,
                        seconds=plan.wrk_seconds,
                    ),
                )
            self.caught_up(base, tokens)

            _say(f"reads: GET /cases/{{id}}, {CLIENTS} clients")
            with self.step("reads"):
                before = client.access_entries(base, tokens.auditor, "bench-reader")
                with self.cpu("reads_cpu", server, runners):
                    result = self.measured(
                        "reads",
                        wrk.run(
                            base,
                            mode="get",
                            items=[f"/cases/{i}" for i in ids],
                            connections=CLIENTS,
                            seconds=plan.wrk_seconds,
                            token=tokens.reader,
                        ),
                    )
                time.sleep(0.5)  # the last in-flight reads finish
                logged = client.access_entries(
                    base,
                    tokens.auditor,
                    "bench-reader",
                    after=before[-1] if before else 0,
                )
                self.raw["reads_logged"] = len(logged)
                self.raw["reads_unanswered"] = result.sent - result.requests

            _say(f"shared cases: {SHARED_CLIENTS} clients on {SHARED_CASES} cases")
            with self.step("shared"):
                versions = {c: client.version(base, tokens.writer, c) for c in shared}
                result = self.measured(
                    "shared",
                    self.commands(
                        base,
                        tokens,
                        shared,
                        "shared",
                        connections=SHARED_CLIENTS,
                        check=True,
                    ),
                )
                time.sleep(0.5)
                self.raw["shared_check"] = client.check_writes(
                    base,
                    tokens.auditor,
                    versions,
                    result.pairs,
                    result.sent - result.requests,
                    self.tag("shared"),
                )

            _say(f"replay of a {REPLAY_EVENTS}-event case at a version, 1 client")
            with self.step("replay"):
                self.measured(
                    "replay",
                    wrk.run(
                        base,
                        mode="get",
                        items=[
                            f"/cases/{replay_id}/replay?version=45",
                            f"/cases/{replay_id}/replay?version={REPLAY_EVENTS}",
                        ],
                        connections=1,
                        seconds=plan.wrk_seconds,
                        token=tokens.auditor,
                    ),
                )
            self.caught_up(base, tokens)

            _say(f"live projection lag at about {LAG_RATE:,} commands/s offered")
            with self.step("lag"):
                p50 = (
                    self.raw["commands"].latency_ms["p50"]
                    if "commands" in self.raw
                    else 0
                )
                delay = max(1.0, CLIENTS * 1000 / LAG_RATE - p50)
                watch = lag.LagWatch(
                    env["IPT_DATABASE_URL"],
                    f"{CaseApplication.name}_events",
                    list(CATALOG),
                ).start()
                result = self.commands(base, tokens, ids, "lag", delay_ms=delay)
                caught_up = watch.stop_when_caught_up(self.plan.catch_up_seconds)
                lags = watch.lags_ms()
                self.measured(
                    "lag",
                    {
                        "wrk": result,
                        "delay_ms": delay,
                        "lags": len(lags),
                        "p50_ms": lag.percentile(lags, 50),
                        "p99_ms": lag.percentile(lags, 99),
                        "max_ms": max(lags, default=0.0),
                        "caught_up": caught_up,
                        "poll_ms": lag.POLL_SECONDS * 1000,
                    },
                )
            with self.step("profile"):
                self.caught_up(base, tokens)
                self.profile_commands(server, runners, base, tokens, ids)

    def direct_rows(
        self, url: str, ids: list[str], shared: list[str], replay_id: str
    ) -> None:
        """Baseline (b): the same work through the application, nothing else running."""
        plan = self.plan
        _say("baseline (b): the application object, no HTTP")
        settings = Settings(
            database_url=url, postgres_pool_size=CLIENTS, postgres_max_overflow=0
        )
        app = direct.build(settings)
        day = datetime.now(UTC).date() - timedelta(days=1)
        try:
            for key, items, threads in (
                ("direct_commands", ids, CLIENTS),
                ("direct_shared", shared, SHARED_CLIENTS),
            ):
                with self.step(key):
                    uuids = [UUID(i) for i in items]
                    self.measured(
                        key,
                        direct.drive(
                            lambda case_id: direct.record_measure(
                                app, case_id, secrets.randbelow(28), day, CLINIC
                            ),
                            uuids,
                            threads=threads,
                            seconds=plan.direct_seconds,
                        ),
                    )
            with self.step("direct_reads"):
                uuids = [UUID(i) for i in ids]
                self.measured(
                    "direct_reads",
                    direct.drive(
                        lambda case_id: direct.read_case(app, case_id, CLINIC),
                        uuids,
                        threads=CLIENTS,
                        seconds=plan.direct_seconds,
                    ),
                )
            with self.step("direct_replay"):
                case_id = UUID(replay_id)
                self.measured(
                    "direct_replay",
                    direct.drive(
                        lambda version: direct.replay(app, case_id, version),
                        [45, REPLAY_EVENTS],
                        threads=1,
                        seconds=plan.direct_seconds,
                    ),
                )
        finally:
            app.close()

    def scale_out_rows(
        self, env: dict[str, str], tokens: Tokens, ids: list[str]
    ) -> None:
        with procs.projections(env, self.logs):
            for workers in (1, 4):
                _say(f"scale-out: {workers} worker(s)")
                with (
                    self.step(f"workers_{workers}"),
                    procs.server(env, self.logs, workers=workers) as (_, base),
                ):
                    self.caught_up(base, tokens)
                    self.measured(
                        f"workers_{workers}",
                        self.commands(base, tokens, ids, f"w{workers}"),
                    )
            _say("scale-out: two API processes of 2 workers each")
            with (
                self.step("two_processes"),
                procs.servers(env, self.logs, workers=2, count=2) as started,
            ):
                base = started[0][1]
                ports = [int(b.rsplit(":", 1)[1]) for _, b in started]
                self.caught_up(base, tokens)
                self.measured(
                    "two_processes",
                    self.commands(base, tokens, ids, "two", ports=ports),
                )

    def sqlite_row(self) -> None:
        _say("SQLite, 1 worker (projections in the API process, as deployed)")
        url = f"sqlite:///{self.work}/sqlite-serve/ipt.db"
        env = self.service_env(url, IPT_RUN_PROJECTIONS="true")
        with self.step("sqlite"):
            procs.cli(["db", "init"], env)
            ids = direct.open_cases(
                Settings(database_url=url), CLINIC, [f"lite-{i}" for i in range(CASES)]
            )
            tokens = self.keys(env, full=False)
            with procs.server(env, self.logs, workers=1) as (_, base):
                self.caught_up(base, tokens)
                self.measured("sqlite", self.commands(base, tokens, ids, "lite"))

    def big_rows(
        self,
        url: str,
        env: dict[str, str],
        tokens: Tokens,
        ids: list[str],
    ) -> None:
        plan = self.plan
        lite_url = f"sqlite:///{self.work}/sqlite-rebuild/ipt.db"
        lite_env = self.service_env(lite_url)
        small = int(self.raw.get("small_events", plan.small_events))
        _say(
            f"loading to {plan.big_events:,} events (PostgreSQL and SQLite, "
            "batched saves through the application)"
        )
        started = time.monotonic()
        procs.cli(["db", "init"], lite_env)
        with ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            pg_fill = pool.submit(direct.fill, url, max(0, plan.big_events - small), 2)
            lite_fill = pool.submit(direct.fill, lite_url, plan.big_events, 3)
            pg_fill.result()
            lite_fill.result()
        self.raw["fill_seconds"] = round(time.monotonic() - started, 1)
        for key, store_env in (("rebuild_pg", env), ("rebuild_sqlite", lite_env)):
            _say(f"{key}: projections rebuild, then the library's runner")
            with self.step(key):
                report = rebuild.rebuild_all(store_env)
                settings = Settings(database_url=store_env["IPT_DATABASE_URL"])
                rate, reached = rebuild.runner_rate(settings, plan.runner_seconds)
                self.measured(
                    key,
                    {"rebuild": report, "runner_rate": rate, "runner_events": reached},
                )
        _say(f"growth: the command benchmark at {plan.big_events:,} events")
        # After a bulk load an operator's database has been vacuumed and analysed;
        # without it autovacuum works through the million new rows during the row.
        started = time.monotonic()
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("VACUUM (ANALYZE)")
        self.raw["vacuum_seconds"] = round(time.monotonic() - started, 1)
        with (
            self.step("commands_big"),
            procs.projections(env, self.logs),
            procs.server(env, self.logs, workers=2) as (server, base),
        ):
            self.caught_up(base, tokens)
            self.raw["big_events"] = self.head(base, tokens)
            self.measured("commands_big", self.commands(base, tokens, ids, "big"))
            self.raw["rss_big"] = _rss(server)

    # --- the table -----------------------------------------------------------------

    def rows(self) -> list[Row]:
        r = self.raw
        pg32: pgbench.PgbenchResult | None = r.get("pgbench_32")
        pg8: pgbench.PgbenchResult | None = r.get("pgbench_8")
        health: wrk.WrkResult | None = r.get("healthz")

        def base(
            a: pgbench.PgbenchResult | None = None,
            b: direct.Driven | None = None,
            b_unit: str = "commands",
            c: bool = True,
        ) -> dict[str, str]:
            found = {}
            if a is not None:
                found[f"a pgbench {a.clients}c"] = a.describe()
            if b is not None:
                found["b application"] = b.describe(b_unit)
            if c and health is not None:
                found["c /healthz"] = f"{health.rate:,.0f} req/s"
            return found

        rows: list[Row] = []

        def add(key: str, build: Callable[[], Row]) -> None:
            if key in self.failures or key not in r:
                rows.append(
                    Row(
                        name=key,
                        figures={},
                        summary="failed: " + self.failures.get(key, "not measured"),
                    )
                )
                return
            row = build()
            row.load = self.loads.get(key, (0.0, 0.0, 0.0))
            rows.append(row)

        def per_request(key: str, w: wrk.WrkResult) -> tuple[dict[str, Any], str]:
            used = r.get(key)
            if not used or not w.requests:
                return {}, ""
            ms = {
                k: round(v / w.requests * 1000, 2)
                for k, v in used.items()
                if k != "seconds"
            }
            cores = {
                k: round(v / used["seconds"], 2)
                for k, v in used.items()
                if k != "seconds"
            }
            text = (
                f"; CPU per request: API {ms['api']:.1f} ms, projections "
                f"{ms['projections']:.1f} ms, PostgreSQL {ms['postgres']:.1f} ms"
            )
            return {"cpu_ms_per_request": ms, "cpu_cores_used": cores}, text

        def commands_row() -> Row:
            w: wrk.WrkResult = r["commands"]
            cpu, cpu_text = per_request("commands_cpu", w)
            return Row(
                name=f"record-measure commands, {CLIENTS} clients on {CASES} cases",
                figures=w.brief() | cpu,
                summary=w.describe("commands") + cpu_text,
                target="≥ 750 commands/s, p99 ≤ 25 ms, no 5xx (moonshot 1,500/s)",
                criteria=[
                    Criterion("commands/s", w.rate, ">=", 750),
                    Criterion("p99 ms", w.latency_ms["p99"], "<=", 25),
                    Criterion("5xx", w.server_errors, "==", 0),
                ],
                baselines=base(pg32, r.get("direct_commands")),
            )

        def shared_row() -> Row:
            w: wrk.WrkResult = r["shared"]
            check: client.WriteCheck | None = r.get("shared_check")
            intact = check is not None and check.intact
            figures = {**w.brief()}
            if check is not None:
                figures |= {
                    "acknowledged": check.acknowledged,
                    "new_events": check.new_events,
                    "unanswered_in_flight": check.unanswered,
                    "problems": check.problems[:20],
                }
            return Row(
                name=f"the same, {SHARED_CLIENTS} clients sharing {SHARED_CASES} cases",
                figures=figures,
                summary=w.describe("commands")
                + (
                    f"; history: {check.acknowledged} 2xx → {check.new_events} "
                    f"new events, {'intact' if intact else 'NOT intact'}"
                    if check is not None
                    else "; history not checked"
                ),
                target="no 5xx, no lost or doubled write, p99 ≤ 50 ms",
                criteria=[
                    Criterion("5xx", w.server_errors, "==", 0),
                    Criterion(
                        "history problems",
                        len(check.problems) if check else None,
                        "==",
                        0,
                    ),
                    Criterion("p99 ms", w.latency_ms["p99"], "<=", 50),
                ],
                baselines=base(pg8, r.get("direct_shared")),
            )

        def reads_row() -> Row:
            w: wrk.WrkResult = r["reads"]
            logged = int(r.get("reads_logged", -1))
            unanswered = int(r.get("reads_unanswered", 0))
            missing = max(0, w.ok - logged)
            extra = logged - w.ok
            cpu, cpu_text = per_request("reads_cpu", w)
            return Row(
                name=f"GET /cases/{{id}}, {CLIENTS} clients",
                figures={
                    **cpu,
                    **w.brief(),
                    "access_log_entries": logged,
                    "unanswered": unanswered,
                },
                summary=w.describe("reads")
                + f"; access log: {logged} entries for {w.ok} 2xx"
                + cpu_text,
                target="≥ 2,000 reads/s, p99 ≤ 25 ms, every read in the access log",
                criteria=[
                    Criterion("reads/s", w.rate, ">=", 2000),
                    Criterion("p99 ms", w.latency_ms["p99"], "<=", 25),
                    Criterion("reads missing from the access log", missing, "==", 0),
                    Criterion(
                        "unexplained access log entries",
                        max(0, extra - unanswered),
                        "==",
                        0,
                    ),
                ],
                baselines=base(pg32, r.get("direct_reads"), "reads"),
            )

        def replay_row() -> Row:
            w: wrk.WrkResult = r["replay"]
            d: direct.Driven | None = r.get("direct_replay")
            baselines = base()
            if d is not None:
                baselines["b application"] = (
                    f"p50 {d.percentile(50):.2f} ms, p99 {d.percentile(99):.2f} ms"
                )
            return Row(
                name=f"replay of a {REPLAY_EVENTS}-event case at v45 and v60, 1 client",
                figures=w.brief(),
                summary=f"p50 {w.latency_ms['p50']:.1f} ms, "
                f"p99 {w.latency_ms['p99']:.1f} ms ({w.rate:,.0f}/s)",
                target="≤ 5 ms (p50)",
                criteria=[Criterion("p50 ms", w.latency_ms["p50"], "<=", 5)],
                baselines=baselines,
            )

        def rebuild_row(key: str, store: str) -> Callable[[], Row]:
            def build() -> Row:
                found = r[key]
                report: rebuild.Rebuilt = found["rebuild"]
                runner = float(found["runner_rate"])
                ratio = report.rate / runner if runner else 0.0
                return Row(
                    name=f"projection rebuild, all read models, "
                    f"{report.events:,} events, {store}",
                    figures={
                        "events": report.events,
                        "seconds": round(report.seconds, 1),
                        "wall_seconds": round(report.wall_seconds, 1),
                        "rate": round(report.rate),
                        "per_model_seconds": report.per_model,
                        "runner_rate": round(runner),
                        "runner_events": found["runner_events"],
                        "ratio": round(ratio, 1),
                    },
                    summary=f"{report.rate:,.0f} events/s ({report.seconds:.1f} s), "
                    f"{ratio:.1f}× the runner",
                    target="≥ 20,000 events/s and ≥ 10× the library's runner",
                    criteria=[
                        Criterion("events/s", report.rate, ">=", 20_000),
                        Criterion("× runner", ratio, ">=", 10),
                    ],
                    baselines={"library ProjectionRunner": f"{runner:,.0f} events/s"},
                )

            return build

        def lag_row() -> Row:
            found = r["lag"]
            w: wrk.WrkResult = found["wrk"]
            return Row(
                name=f"live projection lag, {LAG_RATE:,} commands/s offered",
                figures={
                    **{k: v for k, v in found.items() if k != "wrk"},
                    "commands": w.brief(),
                },
                summary=f"p99 {found['p99_ms']:.0f} ms, p50 {found['p50_ms']:.0f} ms "
                f"over {found['lags']} events at {w.rate:,.0f} commands/s achieved"
                + ("" if found["caught_up"] else " (never caught up: lower bound)"),
                target="p99 ≤ 250 ms",
                criteria=[Criterion("p99 ms", found["p99_ms"], "<=", 250)],
                baselines={"poll interval": f"{found['poll_ms']:.0f} ms"},
            )

        def growth_row() -> Row:
            small: wrk.WrkResult = r["commands"]
            big: wrk.WrkResult = r["commands_big"]
            rss_small, rss_big = r.get("rss_small", {}), r.get("rss_big", {})
            p99_ratio = big.latency_ms["p99"] / small.latency_ms["p99"]
            rss_ratio = (
                rss_big["total_mib"] / rss_small["total_mib"]
                if rss_small.get("total_mib")
                else None
            )
            n_small, n_big = r.get("small_events", 0), r.get("big_events", 0)
            return Row(
                name=f"growth: {n_big:,} stored events vs {n_small:,}",
                figures={
                    "small": {"events": n_small, **small.brief(), "rss": rss_small},
                    "big": {"events": n_big, **big.brief(), "rss": rss_big},
                    "p99_ratio": round(p99_ratio, 2),
                    "rss_ratio": round(rss_ratio, 2) if rss_ratio else None,
                },
                summary=f"p99 {small.latency_ms['p99']:.0f} → "
                f"{big.latency_ms['p99']:.0f} ms "
                f"(×{p99_ratio:.2f}); API RSS {rss_small.get('total_mib', 0):.0f} → "
                f"{rss_big.get('total_mib', 0):.0f} MiB (×{rss_ratio or 0:.2f}); "
                f"{big.rate:,.0f} commands/s at the larger size",
                target="p99 and API memory within 20 %",
                criteria=[
                    Criterion("p99 ratio", p99_ratio, "<=", 1.2),
                    Criterion("RSS ratio", rss_ratio, "<=", 1.2),
                ],
                baselines=base(pg32),
            )

        def simple(key: str, name: str, note: str = "") -> Callable[[], Row]:
            def build() -> Row:
                w: wrk.WrkResult = r[key]
                main: wrk.WrkResult | None = r.get("commands")
                baselines = base(pg32)
                if main is not None:
                    baselines["PostgreSQL, 2 workers"] = main.describe("commands")
                return Row(
                    name=name,
                    figures=w.brief(),
                    summary=w.describe("commands"),
                    baselines=baselines,
                    note=note,
                )

            return build

        add("commands", commands_row)
        add("shared", shared_row)
        add("reads", reads_row)
        add("replay", replay_row)
        add("rebuild_pg", rebuild_row("rebuild_pg", "PostgreSQL"))
        add("rebuild_sqlite", rebuild_row("rebuild_sqlite", "SQLite"))
        add("lag", lag_row)
        if "commands" in r:
            add("commands_big", growth_row)
        add(
            "sqlite",
            simple("sqlite", f"SQLite, 1 worker, {CLIENTS} clients on {CASES} cases"),
        )
        add("workers_1", simple("workers_1", "scale-out: 1 worker"))
        if "commands" in r:
            rows.append(
                Row(
                    name="scale-out: 2 workers (the first row)",
                    figures=r["commands"].brief(),
                    summary=r["commands"].describe("commands"),
                    baselines=base(pg32),
                    load=self.loads.get("commands", (0.0, 0.0, 0.0)),
                )
            )
        add("workers_4", simple("workers_4", "scale-out: 4 workers"))
        add(
            "two_processes",
            simple(
                "two_processes",
                "scale-out: two API processes × 2 workers, one PostgreSQL",
                "p99 is of both together (one wrk, a thread per process)",
            ),
        )
        return rows


def _rss(server: procs.Managed) -> dict[str, float]:
    workers = procs.python_children(server.pid) or [server.pid]
    per_worker = [procs.rss_kib(p) / 1024 for p in workers]
    return {
        "total_mib": round(server.rss_mib(), 1),
        "max_worker_mib": round(max(per_worker, default=0.0), 1),
        "workers": len(workers),
    }


def _yesterday() -> str:
    return (datetime.now(UTC).date() - timedelta(days=1)).isoformat()


_STARTED = time.monotonic()


def _say(text: str) -> None:
    print(f"[{time.monotonic() - _STARTED:5.0f} s] {text}", file=sys.stderr, flush=True)


def _meta(
    plan: Plan, started: float, load_before: tuple[float, float, float]
) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": plan.name,
        "seconds": round(time.monotonic() - started, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_before,
            "load_after": machine_load(),
        },
        "setup": {
            "wrk_seconds": plan.wrk_seconds,
            "clients": CLIENTS,
            "cases": CASES,
            "workers": 2,
            "postgresql": "15, tests/support/postgres.py cluster (fsync off, "
            "synchronous_commit off)",
            "service": "serve --workers N (no --dev: real API keys, cipher and "
            "checkpoint keys set), projections run as its own process, rate limit off",
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the whole run in < 2 min")
    parser.add_argument("--profile", type=Path, help="py-spy the workers into DIR")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work", type=Path, help="keep logs and stores in DIR")
    args = parser.parse_args(argv)
    wrk.require_wrk()
    procs.stop_on_signals()
    plan = QUICK if args.quick else FULL
    started = time.monotonic()
    load_before = machine_load()
    _say(f"ipt-workflow benchmark ({plan.name}); load average {load_before}")
    os.environ.setdefault(
        "IPT_CIPHER_KEY", base64.b64encode(secrets.token_bytes(32)).decode()
    )
    os.environ.setdefault("IPT_REFERENCE_KEY", secrets.token_urlsafe(32))
    os.environ.setdefault("IPT_CHECKPOINT_KEY", secrets.token_urlsafe(32))
    with ExitStack() as stack:
        work = args.work or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="ipt-bench-"))
        )
        work.mkdir(parents=True, exist_ok=True)
        bench = Bench(plan, work, args.profile)
        try:
            rows = bench.run()
        except BaseException:
            kept = "" if args.work else " (removed now; keep them with --work DIR)"
            _say(f"logs of the run's processes were in {work}/logs{kept}")
            raise
    meta = _meta(plan, started, load_before)
    meta["failures"] = bench.failures
    meta["profiled"] = {k: v for k, v in bench.raw.items() if k.startswith("profiled")}
    print(table(rows))
    print(
        f"\n{meta['mode']} run, {meta['seconds']:.0f} s; load average before "
        f"{load_before}, after {meta['machine']['load_after']} "
        f"on {os.cpu_count()} cores"
    )
    write(args.out, rows, meta)
    _say(f"written to {args.out}")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
