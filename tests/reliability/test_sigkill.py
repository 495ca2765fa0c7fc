"""No acknowledged write is lost; nothing is written that no client sent.

A real `ipt-workflow serve --workers 2` over the real PostgreSQL cluster, under a
bounded load of commands from three client processes (tests/reliability/load_client.py),
is killed with SIGKILL (the parent and its workers, as a crashed machine or container
would be) at a moment drawn at random, and started again on the same port. The clients
retry what got no answer with the same Idempotency-Key, as api.md tells them to.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from tests.reliability.conftest import (
    Load,
    ServerFactory,
    check_exactly_once,
    port_is_free,
    wait_until,
)

CLIENTS = 3
COMMANDS = 40
SEED = 13


def test_every_command_acknowledged_before_a_sigkill_is_in_the_history_once(
    servers: ServerFactory, postgres_url: str, load: Callable[..., Load]
) -> None:
    """The proof reliability.md asks for: a 2xx is sent only after the commit."""
    rng = random.Random(SEED)
    server = servers(postgres_url, "--workers", "2")
    clients = load(server, CLIENTS, COMMANDS, seconds=150)
    wait_until(lambda: len(clients.acknowledged()) >= 5, 60, "the load is running")
    time.sleep(rng.uniform(0.2, 2.0))

    before = len(clients.acknowledged())
    server.kill_group()
    wait_until(lambda: port_is_free(server.port), 10, "the port is free again")
    restarted = servers(postgres_url, "--workers", "2", port=server.port)
    codes = clients.wait(150)
    attempts = clients.attempts()

    assert codes == [0] * CLIENTS, codes
    assert before < CLIENTS * (COMMANDS + 1), "the kill came after the load"
    assert any(a["status"] == 0 for a in attempts), "no request met the kill"
    assert not [a for a in attempts if a["status"] >= 500 and a["status"] != 503]
    checked = check_exactly_once(restarted, clients)
    assert checked == CLIENTS * (COMMANDS + 1)
