"""The benchmark harness's own pieces (the benchmark itself is `make bench`)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks import lag, wrk
from benchmarks.results import Criterion, Row, table


def test_a_row_is_met_only_when_every_criterion_is() -> None:
    row = Row(
        name="commands",
        figures={},
        summary="800 commands/s",
        criteria=[
            Criterion("commands/s", 800, ">=", 750),
            Criterion("p99 ms", 30, "<=", 25),
        ],
    )
    assert row.verdict == "missed: p99 ms <= 25"
    row.criteria[1] = Criterion("p99 ms", 20, "<=", 25)
    assert row.verdict == "met"
    assert Row(name="x", figures={}, summary="").verdict == "—"
    assert Criterion("events/s", None, ">=", 1).met is False


def test_the_table_has_a_line_per_row_and_escapes_bars() -> None:
    rows = [
        Row(name="a|b", figures={}, summary="1", baselines={"c /healthz": "2"}),
        Row(name="c", figures={}, summary="3"),
    ]
    lines = table(rows).splitlines()
    assert len(lines) == 4
    assert "a/b" in lines[2]
    assert "c /healthz: 2" in lines[2]


def test_lag_runs_from_the_poll_seeing_the_commit_to_the_one_seeing_it_read() -> None:
    watch = lag.LagWatch("unused", "cases_events", ["caseload"])
    watch.samples = [
        lag.Sample(at=0.0, head=10, slowest=10),
        lag.Sample(at=0.1, head=12, slowest=10),
        lag.Sample(at=0.2, head=13, slowest=12),
        lag.Sample(at=0.3, head=13, slowest=13),
    ]
    assert watch.lags_ms() == pytest.approx([100.0, 100.0, 100.0])
    assert lag.percentile([1.0, 2.0, 3.0, 4.0], 50) == 3.0


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"id": "x"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"1"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tiny_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="Debian's wrk not installed")
def test_the_wrk_script_counts_statuses_and_latency(tiny_server: str) -> None:
    result = wrk.run(
        tiny_server, mode="get", items=["/healthz"], connections=2, seconds=1
    )
    assert result.requests > 0
    assert result.statuses == {200: result.requests}
    assert result.server_errors == 0
    assert result.latency_ms["p99"] >= result.latency_ms["p50"] > 0
