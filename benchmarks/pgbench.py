"""Baseline (a): what the same PostgreSQL does with single-row inserts (pgbench)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

SCRIPT = """\
INSERT INTO bench_inserts (originator_id, originator_version, state)
VALUES (gen_random_uuid(), 1, '\\x00112233445566778899aabbccddeeff');
"""


@dataclass(frozen=True)
class PgbenchResult:
    clients: int
    tps: float
    p50_ms: float
    p99_ms: float
    failed: int

    def describe(self) -> str:
        return f"{self.tps:,.0f} tps, p99 {self.p99_ms:.1f} ms"


def prepare(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_inserts (id bigserial PRIMARY KEY, "
            "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
            "state bytea NOT NULL)"
        )


def run(url: str, clients: int, seconds: float) -> PgbenchResult:
    """pgbench with `clients` connections inserting one row per transaction."""
    binary = shutil.which("pgbench")
    if binary is None:
        raise SystemExit("pgbench not found: `apt-get install -y postgresql-client`")
    parts = urlsplit(url)
    env = {**os.environ, "PGPASSWORD": parts.password or ""}
    with tempfile.TemporaryDirectory(prefix="ipt-pgbench-") as work:
        script = Path(work) / "insert.sql"
        script.write_text(SCRIPT)
        done = subprocess.run(
            [
                binary,
                "-n",
                f"-c{clients}",
                f"-j{min(2, clients)}",
                f"-T{max(1, round(seconds))}",
                "-f",
                str(script),
                "-l",
                f"--log-prefix={work}/log",
                "-h",
                parts.hostname or "127.0.0.1",
                "-p",
                str(parts.port or 5432),
                "-U",
                parts.username or "postgres",
                parts.path.lstrip("/"),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed: {done.stderr.strip()[-1000:]}")
        tps = re.search(r"tps = ([\d.]+)", done.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
        latencies = sorted(
            int(line.split()[2])
            for log in Path(work).glob("log.*")
            for line in log.read_text().splitlines()
            if line.strip()
        )

    def at(p: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] / 1000

    return PgbenchResult(
        clients,
        float(tps.group(1)) if tps else 0.0,
        round(at(0.50), 2),
        round(at(0.99), 2),
        int(failed.group(1)) if failed else 0,
    )
