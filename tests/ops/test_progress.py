"""Progress of long commands: a bar with rate and time left on a terminal (a real
pseudo-terminal for the real commands), periodic log lines elsewhere."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.commands import Withdraw
from ipt_workflow.domain.courses import Course
from ipt_workflow.ops.progress import Stages, progress
from tests.support.drivers import ThroughApplication


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestLogLines:
    def test_away_from_a_terminal_a_line_is_logged_at_most_every_interval(
        self,
    ) -> None:
        clock = FakeClock()

        with (
            capture_logs() as lines,
            progress(
                "rebuild x", 1000, terminal=False, log_every=10, clock=clock
            ) as bar,
        ):
            for _ in range(30):  # 30 batches of 10 over 30 s
                clock.now += 1
                bar.advance(10)

        kinds = [line["event"] for line in lines]
        assert kinds == [
            "progress",
            "progress",
            "progress",
            "progress",
            "progress_done",
        ]
        third = lines[2]
        assert third["done"] == 200
        assert third["rate_per_second"] == 10.0
        assert third["seconds_left"] == 80.0
        assert third["percent"] == 20.0
        assert lines[-1]["done"] == 300
        assert lines[-1]["elapsed_seconds"] == 30.0

    def test_stages_log_each_stage_under_its_own_name(self) -> None:
        with (
            capture_logs() as lines,
            Stages("verify", terminal=False, log_every=3600) as stages,
        ):
            stages("signed ranges", 1, 2)
            stages("signed ranges", 2, 2)
            stages("aggregates", 5, 5)

        done = [
            (line["task"], line["done"])
            for line in lines
            if line["event"] == "progress_done"
        ]
        assert done == [("verify: signed ranges", 2), ("verify: aggregates", 5)]


def test_on_a_terminal_the_bar_shows_count_rate_and_time_left() -> None:
    clock = FakeClock()
    screen = io.StringIO()

    with progress("rebuild x", 400, terminal=True, stream=screen, clock=clock) as bar:
        clock.now += 2
        bar.update(100)

    shown = screen.getvalue()
    assert "rebuild x" in shown
    assert "100/400" in shown
    assert "50/s, 0:00:06 left" in shown
    assert "━" in shown


@pytest.fixture
def a_log(tmp_path: Path) -> dict[str, str]:
    """A SQLite store with three cases' events, one of them withdrawn and (with a
    retention of 0 years) due at once, and the environment naming it."""
    url = f"sqlite:///{tmp_path / 'ipt.db'}"
    app = build_application(Settings(database_url=url))
    try:
        driver = ThroughApplication(app)
        cases = [driver.drive(Course(), Phase.middle) for _ in range(3)]
        driver.run(cases[0], Withdraw.parse(reason="other"))
    finally:
        app.close()
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("IPT_")},
        "IPT_DATABASE_URL": url,
        "IPT_LOG_FORMAT": "json",
        "IPT_RETENTION_YEARS_AFTER_END": "0",
    }


def on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the command with a pseudo-terminal as its stdout and stderr."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "ipt_workflow.cli.main", *args],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        env={**env, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the command closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            elif process.poll() is not None:
                break
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    return code, seen.decode(errors="replace")


@pytest.mark.parametrize(
    ("args", "bar"),
    [
        (["projections", "rebuild", "caseload"], "rebuild caseload"),
        (["audit", "verify", "--all"], "verify: aggregates"),
        (["retention", "run"], "retention run"),
    ],
)
def test_the_long_commands_draw_a_bar_on_a_terminal(
    a_log: dict[str, str], args: list[str], bar: str
) -> None:
    code, screen = on_a_terminal(args, a_log)

    assert code == 0, screen
    assert bar in screen
    assert "/s, 0:00:00 left" in screen
    assert '"event": "progress' not in screen


@pytest.mark.parametrize(
    ("args", "task"),
    [
        (["projections", "rebuild", "caseload"], "rebuild caseload"),
        (["audit", "verify", "--all"], "verify: aggregates"),
        (["retention", "run"], "retention run"),
    ],
)
def test_the_long_commands_log_progress_lines_away_from_a_terminal(
    a_log: dict[str, str], args: list[str], task: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ipt_workflow.cli.main", *args],
        env=a_log,
        capture_output=True,
        text=True,
        timeout=60,
    )

    lines = [
        json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")
    ]
    finished = [line for line in lines if line["event"] == "progress_done"]
    assert done.returncode == 0, done.stderr
    assert [line["task"] for line in finished] == [task]
    assert finished[0]["done"] == finished[0]["total"] > 0
    assert "━" not in done.stderr
