"""A throw-away PostgreSQL cluster for the test suite.

Debian's server binaries refuse to run as root, so as root the cluster runs as the
`postgres` user. It listens on a free loopback port with password authentication
and lives in a temporary folder that is removed when it stops.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

USER = "ipt"
PASSWORD = "ipt-test-password"


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: install Debian's `postgresql` package"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    """A running cluster and how to reach it."""

    port: int
    datadir: Path
    run_as: list[str]

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{dbname}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(), autocommit=True)

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(_bindir() / "pg_ctl"), "-D", str(self.datadir), *args],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        self.pg_ctl("stop", "-m", "fast", "-w")

    def start(self) -> None:
        self.pg_ctl("start", "-w", "-l", str(self.datadir / "server.log"))

    def wait_ready(self, seconds: float = 30) -> None:
        """Until the cluster accepts connections (a started one may not yet)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                with self.admin():
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@contextmanager
def cluster() -> Iterator[Cluster]:
    """Start a fresh cluster; stop and remove it on exit, also after a failure."""
    root = Path(tempfile.mkdtemp(prefix="ipt-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    datadir = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD)
    if run_as:
        shutil.chown(pwfile, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        [
            *run_as,
            str(_bindir() / "initdb"),
            "-D",
            str(datadir),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "-A",
            "scram-sha-256",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    with open(datadir / "postgresql.conf", "a") as conf:
        conf.write(
            f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{root}'\nmax_connections = 300\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        )
    running = Cluster(port, datadir, run_as)
    try:
        running.start()
        running.wait_ready()
        yield running
    finally:
        try:
            running.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
