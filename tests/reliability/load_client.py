"""A clinic system as a separate process: opens a case, then records commands on it.

Run as `python -m tests.reliability.load_client BASE TOKEN NAME COMMANDS OUT SECONDS`,
or as `... normal BASE TOKEN OUT PACE` for a paced normal load (see `normal`).
Every command carries an Idempotency-Key of its own; a command that gets no 2xx (the
server is gone, the database is down) is sent again with the same key until it does,
as api.md tells clients to. Every attempt is written to OUT as one JSON line, flushed
and synced before the next request, so a line survives whatever happens to the
server: `{"key", "status", "seconds", "case_id"}` (status 0: no answer, with `error`).
The process stops after COMMANDS acknowledged commands or SECONDS, whichever is first.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import httpx

ANSWER_WITHIN = 10.0
"""A client gives up on one attempt after this long, as a proxy would."""


def normal(base: str, token: str, out: str, pace: float) -> int:
    """A clinic system at a steady pace: reads its case, records an inventory, in
    turn, one request every `pace` seconds, until killed; one line per answer,
    `{"status", "seconds"}`. Measured here, in a process of its own, so that the
    test's other threads cannot delay the measurement."""
    headers = {"Authorization": f"Bearer {token}"}
    body = {"relationships": [{"role": "partner", "closeness": 1, "conflict": True}]}
    with open(out, "a") as log, httpx.Client(base_url=base, timeout=10) as client:
        opened = client.post(
            "/cases",
            json={
                "client_ref": f"NORMAL-{os.getpid()}",
                "protocol": "ipt",
                "client_age": 30,
                "clinician_id": "t-7",
            },
            headers=headers,
        )
        case_id = opened.json()["id"]
        n = 0
        while True:
            n += 1
            time.sleep(pace)
            started = time.perf_counter()
            if n % 2:
                answer = client.get(f"/cases/{case_id}", headers=headers)
            else:
                answer = client.post(
                    f"/cases/{case_id}/inventory", json=body, headers=headers
                )
            line = {
                "status": answer.status_code,
                "seconds": time.perf_counter() - started,
            }
            log.write(json.dumps(line) + "\n")
            log.flush()


def main(argv: list[str]) -> int:
    if argv[0] == "normal":
        return normal(argv[1], argv[2], argv[3], float(argv[4]))
    base, token, name, commands, out, seconds = argv
    deadline = time.monotonic() + float(seconds)
    headers = {"Authorization": f"Bearer {token}"}
    with open(out, "a") as log, httpx.Client(timeout=ANSWER_WITHIN) as client:

        def send(path: str, body: Any, key: str) -> dict[str, Any] | None:
            """Send until acknowledged or out of time; the answer's body if 2xx."""
            while time.monotonic() < deadline:
                started = time.monotonic()
                line: dict[str, Any] = {"key": key, "path": path}
                try:
                    answer = client.post(
                        f"{base}{path}",
                        json=body,
                        headers={**headers, "Idempotency-Key": key},
                    )
                    line["status"] = answer.status_code
                except httpx.HTTPError as error:
                    answer = None
                    line |= {"status": 0, "error": type(error).__name__}
                line["seconds"] = round(time.monotonic() - started, 3)
                found: dict[str, Any] | None = None
                if answer is not None and 200 <= answer.status_code < 300:
                    found = answer.json()
                    case = found.get("case", found)
                    line |= {"case_id": case["id"], "position": case["position"]}
                log.write(json.dumps(line) + "\n")
                log.flush()
                os.fsync(log.fileno())
                if found is not None:
                    return found
                time.sleep(0.2)
            return None

        opened = send(
            "/cases",
            {
                "client_ref": f"LOAD-{name}",
                "protocol": "ipt",
                "client_age": 30,
                "clinician_id": "t-7",
            },
            f"{name}-open",
        )
        if opened is None:
            return 1
        for n in range(int(commands)):
            body = {
                "relationships": [
                    {"role": "partner", "closeness": 1 + n % 3, "conflict": n % 2 == 0}
                ]
            }
            if send(f"/cases/{opened['id']}/inventory", body, f"{name}-{n}") is None:
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
