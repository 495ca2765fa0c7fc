"""The `ipt-workflow` command line: the composition root for everything but the API."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ipt_workflow import __version__
from ipt_workflow.cli import audit as audit_cli
from ipt_workflow.cli import retention as retention_cli
from ipt_workflow.cli import webhooks as webhooks_cli

if TYPE_CHECKING:
    from ipt_workflow.composition.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ipt-workflow", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="drive a demo course of every protocol")
    commands.add_parser("diagram", help="print docs/phases.md from the phase machine")

    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--dev",
        action="store_true",
        help="accept the dev tokens for demo-clinic; no cipher key needed",
    )

    db = commands.add_parser("db", help="database administration")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("init", help="create the tables (also done on first start)")
    grants = db_commands.add_parser(
        "grants",
        help="print the PostgreSQL GRANTs a runtime role without DDL rights needs",
    )
    grants.add_argument("role", help="the role the API and workers connect as")

    projections = commands.add_parser("projections", help="read models")
    projection_commands = projections.add_subparsers(
        dest="projections_command", required=True
    )
    run = projection_commands.add_parser(
        "run", help="keep every read model up to date until stopped"
    )
    run.add_argument(
        "--heartbeat",
        metavar="FILE",
        help="touch FILE every half second while every read model's runner runs",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics of the runners on this port (/metrics)",
    )
    run.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="the address the metrics port listens on (default 127.0.0.1)",
    )
    rebuild = projection_commands.add_parser(
        "rebuild", help="rebuild read models from position 0 (stop `run` first)"
    )
    rebuild.add_argument("name", nargs="?", help="one read model; all if left out")

    keys = commands.add_parser(
        "keys", help="API keys; re-wrapping case data keys under the newest ring key"
    )
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    add = key_commands.add_parser("add", help="create a key and print its token once")
    add.add_argument(
        "--role", required=True, choices=["clinician", "auditor", "ops", "admin"]
    )
    add.add_argument(
        "--clinic",
        action="append",
        required=True,
        help="a clinic the key covers; repeat for several, or '*' for all",
    )
    add.add_argument("--actor", required=True, help="who uses the key")
    key_commands.add_parser("list", help="list keys (never their tokens)")
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    key_commands.add_parser(
        "rewrap",
        help="re-wrap every case data key under IPT_CIPHER_KEY's first key, "
        "then say what each ring key still seals",
    )
    audit_cli.add_parser(commands)
    webhooks_cli.add_parser(commands)
    retention_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `ipt-workflow` command."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from ipt_workflow.cli.demo import run_demo

        run_demo(sys.stdout)
        return 0
    if args.command == "diagram":
        from ipt_workflow.cli.diagram import phases_markdown

        sys.stdout.write(phases_markdown())
        return 0
    if args.command == "db":
        return _db_grants(args.role) if args.db_command == "grants" else _db_init()
    if args.command == "keys" and args.keys_command == "rewrap":
        from ipt_workflow.cli import keyring

        return keyring.run(_settings())
    if args.command == "keys":
        return _keys(args)
    if args.command == "projections":
        return _projections(args)
    if args.command == "audit":
        return audit_cli.run(args, _settings())
    if args.command == "retention":
        return retention_cli.run(args, _settings())
    if args.command == "webhooks":
        webhooks_cli.dev_requested(args)
        return webhooks_cli.run(args, _settings())
    return _serve(args)


def _settings() -> Settings:
    """The settings from the environment, or exit 2 naming what is wrong."""
    from ipt_workflow.composition.settings import settings_or_exit

    settings = settings_or_exit()
    from ipt_workflow.ops.logging import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    return settings


def _db_init() -> int:
    from ipt_workflow.composition.bootstrap import prepare_storage

    settings = _settings()
    prepare_storage(settings)
    sys.stdout.write(f"tables ready ({settings.backend})\n")
    return 0


def _db_grants(role: str) -> int:
    from ipt_workflow.composition.grants import runtime_grants

    try:
        lines = runtime_grants(role)
    except ValueError as bad:
        sys.stderr.write(f"{bad}\n")
        return 2
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


def _keys(args: argparse.Namespace) -> int:
    from ipt_workflow.composition.builders import build_key_store
    from ipt_workflow.domain.inputs import IDENTIFIER
    from ipt_workflow.storage.keys import ALL_CLINICS, make_key

    store = build_key_store(_settings())
    try:
        if args.keys_command == "add":
            clinics: list[str] = args.clinic
            for clinic in clinics:
                if clinic != ALL_CLINICS and not IDENTIFIER.fullmatch(clinic):
                    sys.stderr.write(f"not a clinic id: {clinic!r}\n")
                    return 2
            if args.role == "clinician" and (
                len(clinics) != 1 or ALL_CLINICS in clinics
            ):
                sys.stderr.write("a clinician key names exactly one clinic\n")
                return 2
            if not IDENTIFIER.fullmatch(args.actor):
                sys.stderr.write(
                    "--actor must be 1–64 characters of A–Z a–z 0–9 . _ : -\n"
                )
                return 2
            key, token = make_key(args.role, clinics, args.actor)
            store.add(key, token)
            sys.stdout.write(f"{token}\n")
            sys.stderr.write(
                f"key {key.key_id} for {key.actor} ({key.role}); "
                "the token is shown only this once\n"
            )
        elif args.keys_command == "list":
            for key in store.list():
                state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
                sys.stdout.write(
                    f"{key.key_id}\t{key.role}\t{','.join(key.clinics)}\t"
                    f"{key.actor}\t{key.created_at}\t{state}\n"
                )
        elif not store.revoke(args.key_id):
            sys.stderr.write(f"no active key {args.key_id}\n")
            return 1
        else:
            sys.stdout.write(f"revoked {args.key_id}\n")
        return 0
    finally:
        store.close()


def _projections(args: argparse.Namespace) -> int:
    from ipt_workflow.composition import readmodels
    from projections.catalog import CATALOG

    settings = _settings()
    if args.projections_command == "rebuild":
        names = [args.name] if args.name else list(CATALOG)
        for name in names:
            if name not in CATALOG:
                sys.stderr.write(
                    f"unknown read model {name!r}; known: {', '.join(CATALOG)}\n"
                )
                return 2
        from ipt_workflow.ops.progress import progress

        with progress(f"rebuild {', '.join(names)}", None, unit="positions") as bar:
            report = readmodels.rebuild(settings, names, on_batch=bar.update)
        sys.stdout.write(
            f"{', '.join(names)}: {report.events} events in {report.seconds:.2f} s "
            f"({report.rate:,.0f} events/s), one pass\n"
        )
        for name, seconds in report.writing.items():
            sys.stdout.write(f"  {name}: {seconds:.2f} s folding and writing\n")
        return 0
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    heartbeat = Path(args.heartbeat) if args.heartbeat else None
    # A runner that fails (the database went away) is replaced, not fatal (D31).
    runners = readmodels.supervised_projections(settings, heartbeat=heartbeat).start()
    served = None
    if args.metrics_port is not None:
        from ipt_workflow.composition.projection_metrics import (
            serve_projection_metrics,
        )

        served = serve_projection_metrics(
            settings, runners, args.metrics_host, args.metrics_port
        )
    sys.stdout.write(f"projections running: {', '.join(CATALOG)}\n")
    if served is not None:
        where = f"{args.metrics_host}:{served.server.port}"
        sys.stdout.write(f"metrics on http://{where}/metrics\n")
    sys.stdout.flush()
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        if served is not None:
            served.close()
        # Each runner finishes the event it is on; rows and position are one
        # transaction, so nothing is left half-written.
        runners.stop()
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ipt_workflow.api.http import ProblemHttpToolsProtocol
    from ipt_workflow.composition.bootstrap import (
        DEV_FLAG,
        SERVE_PID,
        is_loopback,
        prepare_storage,
        production_problems,
    )

    if not args.dev and os.environ.get("IPT_DEV", "").strip().lower() not in (
        "",
        "0",
        "false",
        "no",
        "off",
    ):
        sys.stderr.write(
            "refusing to start: IPT_DEV is set in the environment; "
            "development mode needs the --dev flag\n"
        )
        return 2
    if args.dev and not is_loopback(args.host):
        sys.stderr.write(
            f"refusing to start: --dev serves the public dev tokens; it listens on "
            f"a loopback address only, not {args.host}\n"
        )
        return 2
    # Workers are separate processes: they read their settings from here.
    os.environ["IPT_DEV"] = "true" if args.dev else "false"
    os.environ[DEV_FLAG] = "1" if args.dev else "0"
    # One worker runs the projections itself; several leave them to
    # `ipt-workflow projections run`, so that no two runners share a read model.
    os.environ.setdefault(
        "IPT_RUN_PROJECTIONS", "true" if args.workers == 1 else "false"
    )
    # Likewise the webhook dispatcher: `ipt-workflow webhooks run` beside several.
    os.environ.setdefault("IPT_RUN_WEBHOOKS", "true" if args.workers == 1 else "false")
    settings = _settings()
    problems = production_problems(settings, dev_flag=args.dev)
    if problems:
        for problem in problems:
            sys.stderr.write(f"refusing to start: {problem}\n")
        sys.stderr.write("(for trying the service out, use --dev)\n")
        return 2
    prepare_storage(settings)  # create tables once, not in every worker
    os.environ["IPT_CREATE_TABLES"] = "false"  # the workers read their settings anew
    base = f"http://{args.host}:{args.port}"
    sys.stdout.write(f"ipt-workflow on {base} — interactive docs: {base}/docs\n")
    if settings.dev:
        sys.stdout.write(
            "dev tokens for demo-clinic: dev-clinician, dev-auditor, dev-ops, "
            "dev-admin (send `Authorization: Bearer dev-clinician`)\n"
        )
    sys.stdout.flush()
    from ipt_workflow.ops import metrics

    # Several workers share their metrics through files (D32); the folder must
    # start empty, and every worker process inherits where it is.
    made_here = None
    limits = None
    if args.workers > 1:
        # Each worker exits when this process is gone, however it went (D45).
        os.environ[SERVE_PID] = str(os.getpid())
        folder, made = metrics.prepare_multiprocess_dir(
            os.environ.get(metrics.MULTIPROC_DIR)
        )
        os.environ[metrics.MULTIPROC_DIR] = folder
        made_here = folder if made else None
        if settings.rate_limit_state is None:
            # The workers share one token bucket per API key through this file.
            limits = Path(tempfile.mkdtemp(prefix="ipt-ratelimit-")) / "buckets.db"
            os.environ["IPT_RATE_LIMIT_STATE"] = str(limits)
    try:
        uvicorn.run(
            "ipt_workflow.api.app:app_from_environment",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="warning",
            log_config=None,  # our handler formats uvicorn's lines too
            access_log=False,  # the app writes one access line per request
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
            # A worker is killed (its connections reset) when it misses a ping for
            # this long: on a busy machine 5 s is reached by a healthy worker (D46).
            timeout_worker_healthcheck=settings.worker_healthcheck_seconds,
            http=ProblemHttpToolsProtocol,
        )
    finally:
        if made_here is not None:
            metrics.remove_multiprocess_dir(made_here)
        if limits is not None:
            shutil.rmtree(limits.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
