"""Load from outside the server: Debian's wrk with the Lua script beside this file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("wrk") / "bench.lua"


def require_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk not found: `apt-get install -y wrk` (Debian's package)")
    return found


@dataclass(frozen=True)
class WrkResult:
    """What wrk saw: rates, latency percentiles and every status counted."""

    requests: int
    sent: int
    seconds: float
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    pairs: list[tuple[str, int]]
    """(case id, version) of every 2xx, when asked to check."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.statuses.items() if 200 <= code < 300)

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)

    @property
    def other_errors(self) -> int:
        """Answers that are neither 2xx nor 5xx (4xx, e.g. a refused command)."""
        return self.requests - self.ok - self.server_errors

    @property
    def failed(self) -> int:
        """Everything that was not a 2xx, socket errors and timeouts included."""
        return self.requests - self.ok + sum(self.socket_errors.values())

    def brief(self) -> dict[str, Any]:
        return {
            "rate": round(self.rate, 1),
            "requests": self.requests,
            "p50_ms": self.latency_ms["p50"],
            "p99_ms": self.latency_ms["p99"],
            "p999_ms": self.latency_ms["p999"],
            "max_ms": self.latency_ms["max"],
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "socket_errors": self.socket_errors,
        }

    def describe(self, unit: str) -> str:
        errors = self.failed
        return (
            f"{self.rate:,.0f} {unit}/s, p50 {self.latency_ms['p50']:.1f} ms, "
            f"p99 {self.latency_ms['p99']:.1f} ms, {self.server_errors} 5xx"
            + (f", {errors} not 2xx" if errors != self.server_errors else "")
        )


def run(
    url: str,
    *,
    mode: str,
    items: Sequence[str],
    connections: int,
    seconds: float,
    token: str | None = None,
    tag: str = "bench",
    day: str = "2026-01-05",
    delay_ms: float | None = None,
    ports: Sequence[int] = (),
    check: bool = False,
    threads: int = 2,
) -> WrkResult:
    """Run wrk once against `url` and read back its summary."""
    with tempfile.TemporaryDirectory(prefix="ipt-wrk-") as work:
        listing = Path(work) / "items"
        listing.write_text("\n".join(items) + "\n")
        out = Path(work) / "out.json"
        env = {
            **os.environ,
            "BENCH_MODE": mode,
            "BENCH_LIST": str(listing),
            "BENCH_TAG": tag,
            "BENCH_DAY": day,
            "BENCH_OUT": str(out),
            "BENCH_CHECK": "1" if check else "0",
            "BENCH_PORTS": ",".join(str(p) for p in ports),
        }
        if token is not None:
            env["BENCH_TOKEN"] = token
        if delay_ms is not None:
            env["BENCH_DELAY"] = str(int(delay_ms))
        threads = max(1, min(threads, connections))
        command = [
            require_wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(SCRIPT),
            url,
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
        data = json.loads(out.read_text())
        pairs: list[tuple[str, int]] = []
        pairs_file = Path(str(out) + ".pairs")
        if check and pairs_file.exists():
            for line in pairs_file.read_text().splitlines():
                case_id, _, version = line.partition(" ")
                pairs.append((case_id, int(version) if version.isdigit() else -1))
    latency = {k: round(v / 1000, 2) for k, v in data["latency_us"].items()}
    return WrkResult(
        requests=int(data["requests"]),
        sent=int(data["sent"]),
        seconds=data["duration_us"] / 1e6,
        statuses={int(k): int(v) for k, v in data["statuses"].items()},
        socket_errors={
            k: int(v) for k, v in data["errors"].items() if k != "status" and v
        },
        latency_ms=latency,
        pairs=pairs,
    )
