"""`ipt-workflow webhooks run`: the webhook dispatcher as a process of its own.

Run one per database beside an API with several workers (a one-worker API runs the
dispatcher itself). A second one started anyway waits as a standby: only the holder
of the dispatch lock delivers, and the standby takes over when it dies.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipt_workflow.composition.settings import Settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `webhooks` command and its subcommands."""
    webhooks = commands.add_parser("webhooks", help="webhook deliveries")
    sub = webhooks.add_subparsers(dest="webhooks_command", required=True)
    run = sub.add_parser("run", help="deliver webhooks until stopped")
    run.add_argument(
        "--heartbeat",
        metavar="FILE",
        help="touch FILE after every healthy look at the subscriptions",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus metrics (deliveries, latency) on this port",
    )
    run.add_argument(
        "--metrics-host", default="127.0.0.1", help="the metrics listener's address"
    )
    run.add_argument(
        "--dev",
        action="store_true",
        help="development mode: http and loopback receivers are allowed",
    )


def dev_requested(args: argparse.Namespace) -> None:
    """`--dev` before the settings are read, as `serve --dev` does."""
    if getattr(args, "dev", False):
        os.environ["IPT_DEV"] = "true"


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the dispatcher until SIGTERM or SIGINT; attempts in flight finish."""
    from ipt_workflow.composition.builders import build_application
    from ipt_workflow.composition.webhooks import build_dispatcher

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.metrics_host)
    cases = build_application(settings)
    heartbeat = Path(args.heartbeat) if args.heartbeat else None
    dispatcher = build_dispatcher(settings, cases, heartbeat=heartbeat).start()
    sys.stdout.write("webhook dispatcher running\n")
    sys.stdout.flush()
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        dispatcher.stop()
        dispatcher.store.close()
        cases.close()
    return 0
