"""Webhooks of an erased case: the receipt is delivered, and a redelivery of the
case's earlier events says it is gone, with no client data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook

from ipt_workflow.composition.settings import Settings
from tests.erasure.conftest import CLIENT_REF, NOTE, RING, erase, withdrawn_case
from tests.support.receiver import Receiver, receiver
from tests.webhooks.conftest import FAST, Hooked, hooked_api, wait_for


@pytest.fixture
def keyed_hooked(tmp_path: Path) -> Iterator[Hooked]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'hooks.db'}",
        cipher_key=SecretStr(RING),
        **FAST,
    )
    with hooked_api(settings) as found:
        yield found


@pytest.fixture
def receiving() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def payloads(receiving: Receiver, secret: str) -> list[dict[str, Any]]:
    found = []
    for r in receiving.received("/hook"):
        if r["answer"] == 200:
            found.append(Webhook(secret).verify(r["body"], r["headers"]))
    return found


def test_an_erased_case_s_webhooks_say_it_is_gone_and_hold_no_client_data(
    keyed_hooked: Hooked, receiving: Receiver
) -> None:
    hooked = keyed_hooked
    sub = hooked.subscribe(receiving.url())
    case_id = withdrawn_case(hooked.api)
    versions = len(
        hooked.api.get(f"/cases/{case_id}/history", "auditor").json()["items"]
    )
    # Delivered live before the erasure: what the subscriber held already.
    wait_for(lambda: len(payloads(receiving, sub["secret"])) >= versions, 20, "live")

    assert erase(hooked.api, case_id).status_code == 202
    wait_for(lambda: len(payloads(receiving, sub["secret"])) >= versions + 1, 20, "all")
    answer = hooked.api.post(
        f"/subscriptions/{sub['id']}/redeliver", {"from_position": 0}, who="admin"
    )
    assert answer.status_code == 202, answer.text
    wait_for(
        lambda: len(payloads(receiving, sub["secret"])) >= 2 * (versions + 1),
        20,
        "the redelivery",
    )

    sent = payloads(receiving, sub["secret"])
    live, again = sent[: versions + 1], sent[versions + 1 :]
    assert live[-1]["type"] == "ipt.CaseErased"
    assert live[-1]["data"]["erased"] is True
    assert [p["type"] for p in again] == [p["type"] for p in live]
    assert all(p["data"]["erased"] is True for p in again)
    assert not any("erased" in p["data"] for p in live[:-1])
    bodies = json.dumps([r["body"] for r in receiving.received("/hook")])
    assert CLIENT_REF not in bodies
    assert NOTE not in bodies
