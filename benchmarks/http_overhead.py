"""CPU per record-measure command through the ASGI app in process, beside the same
command through the application alone: what the HTTP layer costs, without a network,
a load tool or a second process (one thread, process CPU time, SQLite files).

    .venv/bin/python -m benchmarks.http_overhead [--commands N]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from benchmarks import direct
from ipt_workflow.composition.settings import Settings
from tests.support.api import Api, make_api

CASES = 16
WARM_UP = 50


def _cpu_ms(run: Callable[[int], None], n: int) -> float:
    for i in range(WARM_UP):
        run(i)
    started = time.process_time()
    for i in range(n):
        run(i)
    return (time.process_time() - started) / n * 1000


def _poster(
    api: Api, rng: random.Random, day: Callable[[], date]
) -> Callable[[int], None]:
    ids = [api.open_case(f"H-{i}") for i in range(CASES)]

    def post(i: int) -> None:
        body = {"instrument": "phq9", "score": rng.randint(0, 27)}
        answer = api.post(
            f"/cases/{ids[i % CASES]}/measures",
            {**body, "measured_on": str(day())},
            **{"Idempotency-Key": uuid.uuid4().hex},
        )
        assert answer.status_code == 200, answer.text

    return post


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=400)
    n = parser.parse_args().commands
    rng = random.Random(1)
    folder = Path(tempfile.mkdtemp(prefix="ipt-http-overhead-"))

    def day() -> date:
        return date.today() - timedelta(days=rng.randint(0, 9))

    over_http = Settings(database_url=f"sqlite:///{folder / 'http.db'}")
    for api in make_api(over_http.model_copy(update={"rate_limit_per_second": 0})):
        http_ms = _cpu_ms(_poster(api, rng, day), n)

    alone = Settings(database_url=f"sqlite:///{folder / 'alone.db'}")
    cases = direct.open_cases(alone, "clinic-a", [f"A-{i}" for i in range(CASES)])
    app = direct.build(alone)

    def execute(i: int) -> None:
        case_id = uuid.UUID(str(cases[i % CASES]))
        direct.record_measure(app, case_id, rng.randint(0, 27), day(), "clinic-a")

    try:
        alone_ms = _cpu_ms(execute, n)
    finally:
        app.close()
    print(f"through the ASGI app: {http_ms:.2f} ms of CPU per command")
    print(f"the application alone: {alone_ms:.2f} ms of CPU per command")
    print(
        f"the HTTP layer (client side of the test client included): "
        f"{http_ms - alone_ms:.2f} ms"
    )


if __name__ == "__main__":
    main()
