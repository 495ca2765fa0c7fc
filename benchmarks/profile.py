"""Where a request's time goes, from py-spy's raw (collapsed) stacks.

    .venv/bin/python -m benchmarks.profile FILE [--requests N] [--rate HZ]

`make bench BENCH_ARGS="--profile DIR"` records DIR/commands-wall.txt (every
thread, waiting included: where a request's wall time goes) and
DIR/commands-cpu.txt (only threads running Python: where the CPU goes) during
an extra command run, and writes this summary beside them.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CATEGORIES: dict[str, tuple[str, ...]] = {
    "write transaction (insert_events: lock, inserts, commit)": (
        "insert_events (eventsourcing/postgres.py",
    ),
    "  of it: LOCK TABLE … EXCLUSIVE": ("_lock_table (eventsourcing/postgres.py",),
    "  of it: hash chain, idempotency row, clinic index": (
        "_insert_stored_events (ipt_workflow/storage/postgres.py",
    ),
    "pool checkout (psycopg_pool getconn)": ("getconn (psycopg_pool/",),
    "  of it: pre-ping check query": ("check_connection (psycopg_pool/",),
    "in-process case lock wait": ("_case_lock (ipt_workflow/application.py",),
    "idempotency lookup (select)": ("select_idempotency (",),
    "position lookup (select)": ("position_of (ipt_workflow/storage",),
    "load the case (repository.get)": ("get (eventsourcing/application.py",),
    "aggregate command (domain)": ("ipt_workflow/domain/",),
    "case view with every transition's why-not": ("case_view (ipt_workflow/api/",),
    "JSON rendering of the answer": ("render (starlette/responses.py", "dumps (json/"),
    "request validation (pydantic, FastAPI deps)": (
        "solve_dependencies (fastapi/",
        "validate_python (pydantic",
        "_validate_value_with_model_field (fastapi",
    ),
    "response model serialisation": ("serialize_response (fastapi/",),
    "access log write": ("ipt_workflow/storage/access_log.py",),
    "structured logging": ("ipt_workflow/logging.py", "structlog/"),
    "metrics": ("prometheus_client/", "ipt_workflow/metrics.py"),
    "cipher (AES)": ("ipt_workflow/storage/cipher.py", "Crypto/"),
    "API key lookup": ("find_key (ipt_workflow/api/deps.py",),
    "psycopg waiting on PostgreSQL (all statements)": (
        "Connection.wait (psycopg/connection.py",
    ),
    "event loop thread (uvicorn, middleware)": ("run_forever (asyncio/base_events.py",),
    "thread pool dispatch (anyio)": ("run_sync_in_worker_thread (anyio",),
}
"""Each category: a frame containing one of these strings is in the stack."""

REQUEST_FRAMES = ("ipt_workflow/api/routes/", "run_endpoint_function (fastapi/")
DEPENDENCY_FRAMES = (
    "ipt_workflow/api/deps.py",
    "ipt_workflow/api/access.py",
    "command_runner (ipt_workflow/api/routes/commands.py",
)
THREADS: dict[str, tuple[str, ...]] = {
    "a route's code (the endpoint in a pool thread)": REQUEST_FRAMES,
    "a sync dependency (auth, role, runner, headers: a pool thread each)": (
        DEPENDENCY_FRAMES
    ),
    "the event loop thread (uvicorn, middleware, C code of uvloop)": (
        "Runner.run (asyncio/runners.py",
    ),
    "an idle pool thread": ("WorkerThread.run (anyio",),
    "checkpointer thread": ("Checkpointer._run",),
    "idle psycopg pool maintenance threads": ("ConnectionPool.worker (psycopg_pool",),
    "idle psycopg pool scheduler": ("Scheduler.run (psycopg_pool",),
    "uvicorn master and its worker pings": ("Multiprocess.run", "Process.always_pong"),
    "multiprocessing resource tracker": ("resource_tracker.py",),
    "projection runner threads": ("eventsourcing/projection.py",),
}
"""What a sampled thread was doing; the first match counts."""


@dataclass(frozen=True)
class Stack:
    process: str
    frames: tuple[str, ...]
    samples: int


def parse(lines: Iterable[str]) -> list[Stack]:
    stacks = []
    for line in lines:
        text, _, count = line.rstrip("\n").rpartition(" ")
        if not text or not count.isdigit():
            continue
        # --subprocesses prefixes a frame per parent; the last is the process's
        # own. A command line may hold ";" itself, so cut those frames out first.
        process = ""
        while text.startswith("process "):
            head, quote, rest = text.partition(':"')
            _, _, text = rest.partition('";')
            process = head.removeprefix("process ")
            if not quote:
                break
        stacks.append(Stack(process, tuple(text.split(";")), int(count)))
    return stacks


def _has(stack: Stack, needles: Iterable[str]) -> bool:
    return any(n in f for f in stack.frames for n in needles)


def summary(stacks: list[Stack], *, requests: int = 0, rate: float = 200) -> str:
    total = sum(s.samples for s in stacks)
    in_requests = [s for s in stacks if _has(s, REQUEST_FRAMES)]
    request_samples = sum(s.samples for s in in_requests)
    processes = Counter[str]()
    for s in stacks:
        processes[s.process] += s.samples
    kinds = Counter[str]()
    for s in stacks:
        kind = next((k for k, v in THREADS.items() if _has(s, v)), "other")
        kinds[kind] += s.samples
    lines = [
        f"{total:,} samples at {rate:.0f} Hz in {len(processes)} processes; "
        f"{request_samples:,} inside a route's code "
        f"({request_samples / rate:.1f} thread-seconds)"
        + (f" for {requests:,} requests" if requests else ""),
        "",
        "| threads sampled in | share | thread-ms per request |",
        "|---|---|---|",
        *(
            f"| {k} | {_pct(n, total)} | "
            + (f"{n / rate / requests * 1000:.1f}" if requests else "—")
            + " |"
            for k, n in kinds.most_common()
        ),
        "",
        "| where | share of all samples | share inside routes | ms per request |",
        "|---|---|---|---|",
    ]
    for name, needles in CATEGORIES.items():
        everywhere = sum(s.samples for s in stacks if _has(s, needles))
        routed = sum(s.samples for s in in_requests if _has(s, needles))
        per_request = (
            f"{routed / rate / requests * 1000:.2f}" if requests and routed else "—"
        )
        lines.append(
            f"| {name} | {_pct(everywhere, total)} | {_pct(routed, request_samples)} "
            f"| {per_request} |"
        )
    lines += ["", "Top functions by own samples (leaf frames):", ""]
    leaves = Counter[str]()
    inclusive = Counter[str]()
    for s in stacks:
        if s.frames:
            leaves[s.frames[-1]] += s.samples
        for frame in set(s.frames):
            inclusive[frame] += s.samples
    for frame, n in leaves.most_common(15):
        lines.append(f"- {_pct(n, total)} {frame}")
    lines += ["", "Top project and library functions, inclusive:", ""]
    ours = [
        (f, n)
        for f, n in inclusive.most_common()
        if any(p in f for p in ("ipt_workflow/", "projections/", "eventsourcing/"))
    ]
    for frame, n in ours[:25]:
        lines.append(f"- {_pct(n, total)} {frame}")
    return "\n".join(lines) + "\n"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--requests", type=int, default=0)
    parser.add_argument("--rate", type=float, default=200)
    args = parser.parse_args()
    stacks = parse(args.file.read_text().splitlines())
    print(summary(stacks, requests=args.requests, rate=args.rate), end="")


if __name__ == "__main__":
    main()
