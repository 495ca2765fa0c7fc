"""A process dies cleanly: the workers of a SIGKILLed `serve` exit, and free the port.

A real `ipt-workflow serve --workers 2` over a real SQLite file; only the parent is
killed, as an OOM killer or `kill -9` would. The fixture kills the whole process group
at the end whatever happened, so no worker outlives the test.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.reliability.conftest import (
    ServerFactory,
    alive,
    port_is_free,
    wait_until,
)

EXIT_WITHIN = 5.0


def test_when_serve_is_sigkilled_its_workers_exit_within_5_s_and_the_port_is_free(
    servers: ServerFactory, tmp_path: Path
) -> None:
    """Caught: the workers of a killed server lived on, serving and holding the port
    (the suite itself once left two behind)."""
    server = servers(f"sqlite:///{tmp_path / 'ipt.db'}", "--workers", "2")
    wait_until(lambda: len(server.workers()) == 2, 30, "two workers")
    workers = server.workers()
    assert server.get("/healthz", who=None).status_code == 200

    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    killed_at = time.monotonic()
    while time.monotonic() - killed_at < EXIT_WITHIN + 1:
        if not any(alive(pid) for pid in workers) and port_is_free(server.port):
            break
        time.sleep(0.05)
    took = time.monotonic() - killed_at

    assert not [pid for pid in workers if alive(pid)], "workers outlived serve"
    assert port_is_free(server.port)
    assert took < EXIT_WITHIN, took
