"""Deliveries to a real receiver process on loopback, from the dispatcher that the
one-worker API runs, on each back end: order, signatures, envelopes, retries,
timeouts, failing and recovery, redelivery, deletion, DNS rebinding."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from standardwebhooks import Webhook

from ipt_workflow.composition.settings import Settings
from ipt_workflow.composition.webhooks import build_dispatcher
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.courses import Course
from ipt_workflow.storage import audit as audit_storage
from tests.support.drivers import OverHttp, unique_ref
from tests.support.receiver import Receiver
from tests.webhooks.conftest import FAST, Hooked, hooked_api, wait_for

WHOLE = Course(final=3, brief=True, today=date(2026, 10, 1))
"""A whole course, opening to closing in remission (about 15 events)."""
DATA_KEYS = {"position", "version", "phase", "case_id", "clinic_id"}


def course(hooked: Hooked, client_ref: str | None = None) -> tuple[str, list[Any]]:
    """A whole course over HTTP; the case id and its history."""
    driver = OverHttp(hooked.api.post)
    case_id = driver.drive(WHOLE, Phase.closed, client_ref)
    history = hooked.api.get(f"/cases/{case_id}/history", who="auditor", limit=1000)
    return case_id, history.json()["items"]


def acknowledged(received: list[dict[str, Any]]) -> list[str]:
    """The webhook ids the receiver answered 2xx, in arrival order."""
    return [r["headers"]["webhook-id"] for r in received if r["answer"] == 200]


def arrived(receiving: Receiver, n: int, path: str = "/hook") -> None:
    wait_for(lambda: len(acknowledged(receiving.received(path))) >= n, 20, f"{n}")


def deliveries(hooked: Hooked, sub_id: str) -> list[dict[str, Any]]:
    answer = hooked.api.get(
        f"/subscriptions/{sub_id}/deliveries", who="admin", limit=1000
    )
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def assert_duplicates_only_after_a_failure(received: list[dict[str, Any]]) -> None:
    """An id comes again only when the answer before it was not a 2xx."""
    last: dict[str, Any] = {}
    for r in received:
        wid = r["headers"]["webhook-id"]
        if wid in last:
            assert last[wid] != 200, f"{wid} delivered again after a 2xx"
        last[wid] = r["answer"]


class TestAWholeCourse:
    def test_every_event_arrives_once_in_order_signed_and_without_client_data(
        self, hooked: Hooked, receiving: Receiver
    ) -> None:
        sub = hooked.subscribe(receiving.url())
        client_ref = unique_ref("SECRET")

        case_id, history = course(hooked, client_ref)
        arrived(receiving, len(history))
        received = receiving.received("/hook")

        assert [r["headers"]["webhook-id"] for r in received] == [
            f"{case_id}:{item['version']}" for item in history
        ]
        positions = []
        for r, item in zip(received, history, strict=True):
            payload = Webhook(sub["secret"]).verify(r["body"], r["headers"])
            event = from_http_event(
                HTTPMessage(
                    {"content-type": r["headers"]["content-type"]}, r["body"].encode()
                )
            )
            assert event.get_specversion() == "1.0"
            assert event.get_id() == f"{case_id}:{item['version']}"
            assert event.get_source() == f"/cases/{case_id}"
            assert event.get_type() == f"ipt.{item['type']}"
            assert event.get_subject() == case_id
            assert event.get_time() is not None
            assert payload["datacontenttype"] == "application/json"
            assert set(payload["data"]) == DATA_KEYS
            assert payload["data"]["version"] == item["version"]
            assert payload["data"]["clinic_id"] == "clinic-a"
            assert r["headers"]["content-type"].startswith(
                "application/cloudevents+json"
            )
            positions.append(payload["data"]["position"])
            assert client_ref not in r["body"]
            assert client_ref not in json.dumps(r["headers"])
        assert positions == sorted(positions)
        phases = [json.loads(r["body"])["data"]["phase"] for r in received]
        assert phases[0] == "beginning"
        assert "middle" in phases and "end" in phases
        assert phases[-1] == "closed"
        log = deliveries(hooked, sub["id"])
        assert [d["outcome"] for d in log] == ["delivered"] * len(history)
        assert all(d["attempt"] == 1 for d in log)

    def test_a_subscription_gets_only_the_types_it_asked_for(
        self, sqlite_hooked: Hooked, receiving: Receiver
    ) -> None:
        sqlite_hooked.subscribe(receiving.url("/sessions"), "SessionHeld")
        sqlite_hooked.subscribe(receiving.url("/all"))

        _, history = course(sqlite_hooked)
        sessions = [i for i in history if i["type"] == "SessionHeld"]
        arrived(receiving, len(history), "/all")
        arrived(receiving, len(sessions), "/sessions")

        types = [json.loads(r["body"])["type"] for r in receiving.received("/sessions")]
        assert types == ["ipt.SessionHeld"] * len(sessions)


class TestRetries:
    def test_a_receiver_that_answers_500_three_times_then_200_gets_every_event(
        self, hooked: Hooked, receiving: Receiver
    ) -> None:
        receiving.plan("/hook", 500, 500, 500)
        sub = hooked.subscribe(receiving.url())

        case_id, history = course(hooked)
        arrived(receiving, len(history))
        received = receiving.received("/hook")
        log = deliveries(hooked, sub["id"])

        assert acknowledged(received) == [f"{case_id}:{i['version']}" for i in history]
        assert [r["answer"] for r in received[:4]] == [500, 500, 500, 200]
        assert len({r["headers"]["webhook-id"] for r in received[:4]}) == 1
        assert_duplicates_only_after_a_failure(received)
        for r in received:
            Webhook(sub["secret"]).verify(r["body"], r["headers"])
        assert [(d["attempt"], d["outcome"], d["status_code"]) for d in log[:4]] == [
            (1, "http_error", 500),
            (2, "http_error", 500),
            (3, "http_error", 500),
            (4, "delivered", 200),
        ]
        assert all(d["next_attempt_at"] for d in log[:3])
        assert log[3]["next_attempt_at"] is None
        assert (
            hooked.api.get(f"/subscriptions/{sub['id']}", who="admin").json()[
                "attempts"
            ]
            == 0
        )

    def test_a_receiver_that_hangs_is_timed_out_and_retried(
        self, hooked: Hooked, receiving: Receiver
    ) -> None:
        receiving.plan("/hook", "hang", hang_seconds=3)
        sub = hooked.subscribe(receiving.url())

        case_id, history = course(hooked)
        arrived(receiving, len(history))
        received = receiving.received("/hook")
        log = deliveries(hooked, sub["id"])

        assert acknowledged(received) == [f"{case_id}:{i['version']}" for i in history]
        assert received[0]["answer"] == "hang"
        assert received[1]["headers"]["webhook-id"] == f"{case_id}:1"
        assert log[0]["outcome"] == "timeout"
        assert 900 <= log[0]["duration_ms"] < 2500  # the 1 s timeout of FAST
        assert log[1]["outcome"] == "delivered"
        assert_duplicates_only_after_a_failure(received)

    def test_a_hanging_receiver_delays_neither_the_api_nor_other_subscriptions(
        self, sqlite_hooked: Hooked, receiving: Receiver
    ) -> None:
        receiving.plan("/slow", default="hang", hang_seconds=5)
        sqlite_hooked.subscribe(receiving.url("/slow"))
        sqlite_hooked.subscribe(receiving.url("/fast"))

        started = time.monotonic()
        _, history = course(sqlite_hooked)
        wrote = time.monotonic() - started
        arrived(receiving, len(history), "/fast")
        fast = time.monotonic() - started

        assert wrote < 5
        assert fast < wrote + 3
        assert len(receiving.received("/slow")) <= 3


class TestFailing:
    def test_past_the_retry_window_a_subscription_is_failing_until_it_recovers(
        self, tmp_path: Any, receiving: Receiver
    ) -> None:
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'f.db'}",
            **{**FAST, "webhook_retry_for_seconds": 0.5},
        )
        with hooked_api(settings) as hooked:
            receiving.plan("/hook", default=500)
            sub = hooked.subscribe(receiving.url())
            path = f"/subscriptions/{sub['id']}"
            case_id, history = course(hooked)

            wait_for(
                lambda: hooked.api.get(path, who="admin").json()["status"] == "failing",
                10,
                "failing",
            )
            status = hooked.api.get("/webhooks/status", who="ops").json()
            metrics = hooked.api.client.get("/metrics").text
            waiting = {r["headers"]["webhook-id"] for r in receiving.received()}
            failing = hooked.api.get(path, who="admin").json()
            receiving.plan("/hook", default=200)
            arrived(receiving, len(history))
            recovered = hooked.api.get(path, who="admin").json()

        assert waiting == {f"{case_id}:1"}  # later events wait behind it
        assert failing["failing_since"] is not None
        assert failing["attempts"] >= 3
        assert status["failing"] == 1
        assert status["items"][0]["status"] == "failing"
        assert status["items"][0]["lag_seconds"] > 0
        assert 'ipt_webhook_subscriptions{status="failing"} 1.0' in metrics
        assert "ipt_webhook_subscriptions_failed_total 1.0" in metrics
        assert recovered["status"] == "active"
        assert recovered["failing_since"] is None
        assert acknowledged(receiving.received()) == [
            f"{case_id}:{i['version']}" for i in history
        ]


class TestRedeliveryAndDeletion:
    def test_redelivery_sends_every_event_from_the_position_again_in_order(
        self, hooked: Hooked, receiving: Receiver
    ) -> None:
        sub = hooked.subscribe(receiving.url())
        case_id, history = course(hooked)
        arrived(receiving, len(history))
        third = deliveries(hooked, sub["id"])[2]["position"]

        answer = hooked.api.post(
            f"/subscriptions/{sub['id']}/redeliver",
            {"from_position": third},
            who="admin",
        )
        arrived(receiving, 2 * len(history) - 2)

        assert answer.status_code == 202
        assert acknowledged(receiving.received())[len(history) :] == [
            f"{case_id}:{i['version']}" for i in history[2:]
        ]

    def test_deleting_a_subscription_stops_its_deliveries(
        self, hooked: Hooked, receiving: Receiver
    ) -> None:
        sub = hooked.subscribe(receiving.url())
        _, history = course(hooked)
        arrived(receiving, len(history))

        deleted = hooked.api.client.delete(
            f"/subscriptions/{sub['id']}", headers=hooked.api.headers("admin")
        )
        stopped_at = time.time()
        course(hooked)
        time.sleep(1.0)

        assert deleted.status_code == 204
        assert [r for r in receiving.received() if r["at"] > stopped_at] == []

    def test_a_name_rebound_to_a_private_address_is_not_called(
        self, sqlite_hooked: Hooked, receiving: Receiver
    ) -> None:
        sub = sqlite_hooked.subscribe(f"http://receiver.test:{receiving.port}/hook")
        sqlite_hooked.dns.names["receiver.test"] = ["10.20.30.40"]

        case_id = OverHttp(sqlite_hooked.api.post).open(WHOLE)
        wait_for(lambda: len(deliveries(sqlite_hooked, sub["id"])) >= 2, 10, "tries")
        refused = deliveries(sqlite_hooked, sub["id"])
        sqlite_hooked.dns.names["receiver.test"] = ["127.0.0.1"]
        arrived(receiving, 1)

        assert {d["outcome"] for d in refused} == {"refused"}
        assert "10.20.30.40" in (refused[0]["error"] or "")
        assert acknowledged(receiving.received()) == [f"{case_id}:1"]


class TestAQuietClinic:
    def test_its_event_arrives_after_more_than_a_feed_stretch_of_other_clinics(
        self,
        subscriptions: Hooked,
        receiving: Receiver,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Caught in the merge with the bounded feed (D40): a stretch of the log with
        none of the clinic's events read as "nothing new up to the head", so an event
        past it was never delivered."""
        monkeypatch.setattr(audit_storage, "FEED_SCAN", 10)
        for module in ("sqlite_audit", "postgres_audit"):
            monkeypatch.setattr(f"ipt_workflow.storage.{module}.FEED_SCAN", 10)
        sub = subscriptions.subscribe(receiving.url())
        other = OverHttp(partial(subscriptions.api.post, who="other_clinician"))
        for _ in range(12):  # two events each (the case and its index): 24 positions
            other.open(WHOLE)
        mine = OverHttp(subscriptions.api.post).open(WHOLE)
        time.sleep(0.05)
        behind = subscriptions.api.get("/webhooks/status", who="admin").json()
        services = subscriptions.services
        dispatcher = build_dispatcher(
            services.settings, services.cases, resolver=subscriptions.dns
        )
        try:
            dispatcher.drain()
        finally:
            dispatcher.stop()

        assert behind["items"][0]["lag_seconds"] >= 0.05
        assert acknowledged(receiving.received()) == [f"{mine}:1"]
        log = deliveries(subscriptions, sub["id"])
        assert [d["outcome"] for d in log] == ["delivered"]


class TestTheConsolesStatus:
    def test_once_every_event_arrived_none_waits_and_the_last_delivery_is_named(
        self, hooked: Hooked, receiving: Receiver
    ) -> None:
        sub = hooked.subscribe(receiving.url())
        started = datetime.now(UTC).replace(microsecond=0)

        _, history = course(hooked)
        arrived(receiving, len(history))
        wait_for(
            lambda: len(deliveries(hooked, sub["id"])) == len(history), 10, "logged"
        )
        assert hooked.services.webhooks is not None
        (row,) = hooked.services.webhooks.webhook_statuses(None)

        assert (row.subscription_id, row.clinic_id) == (sub["id"], "clinic-a")
        assert (row.status, row.pending_events, row.lag_seconds) == ("active", 0, 0.0)
        assert row.last_delivered_at is not None
        assert datetime.fromisoformat(row.last_delivered_at) >= started
        assert hooked.services.webhooks.webhook_statuses(["clinic-b"]) == []
