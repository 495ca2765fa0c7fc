"""A real FHIR R4 server (Medplum's router over its in-memory repository, a node
process on loopback) and the R4 models of fhir.resources, in their own virtualenv.

Both are installed by `make test` (tests/fhir_server/package.json with npm ci,
tests/fhir_r4/requirements.txt with pip); nothing is fetched while tests run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).parents[2]
SERVER_DIR = ROOT / "tests" / "fhir_server"
R4_PYTHON = ROOT / ".venv-fhir-r4" / "bin" / "python"
R4_VALIDATOR = ROOT / "tests" / "fhir_r4" / "validate.py"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


@dataclass(frozen=True)
class FhirServer:
    base: str

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        answer = httpx.post(f"{self.base}/", json=bundle, headers=FHIR_JSON, timeout=60)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def search(self, kind: str, **params: str) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{self.base}/{kind}", params={"_count": "1000", **params}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        return [e["resource"] for e in answer.json().get("entry", [])]

    def read(self, reference: str) -> httpx.Response:
        return httpx.get(f"{self.base}/{reference}", timeout=30)


@contextmanager
def fhir_server() -> Iterator[FhirServer]:
    """The server on a free loopback port; stopped (and waited for) on exit."""
    node = shutil.which("node")
    assert node, "node is not installed (.ci/run installs nodejs)"
    assert (SERVER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir(), (
        "the FHIR server is not installed: `make test` runs npm ci in tests/fhir_server"
    )
    process = subprocess.Popen(
        [node, "--experimental-websocket", "server.mjs", "0"],
        cwd=SERVER_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening "), (
            line,
            process.stderr and process.stderr.read(),
        )
        yield FhirServer(f"http://127.0.0.1:{int(line.split()[1])}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def r4_errors(resources: Iterable[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Validate with fhir.resources' R4 models: (resourceType, errors) of each
    resource that does not validate."""
    assert R4_PYTHON.exists(), "the R4 validator is not installed: run `make test`"
    lines = "".join(json.dumps(r) + "\n" for r in resources)
    done = subprocess.run(
        [str(R4_PYTHON), str(R4_VALIDATOR)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == lines.count("\n")
    return [(r["resourceType"], r["errors"]) for r in results if r["errors"]]
