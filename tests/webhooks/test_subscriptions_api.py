"""The subscription routes of api.md on each back end: the admin's clinics only,
idempotent writes, problem+json refusals, the SSRF rules at subscribe time."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ipt_workflow.storage.keys import make_key
from tests.api.test_endpoints import assert_problem
from tests.webhooks.conftest import PUBLIC_NAME, Hooked

URL = f"https://{PUBLIC_NAME}/hooks/ipt"
ROUTES = [
    ("POST", "/subscriptions"),
    ("GET", "/subscriptions"),
    ("GET", "/subscriptions/{id}"),
    ("DELETE", "/subscriptions/{id}"),
    ("GET", "/subscriptions/{id}/deliveries"),
    ("POST", "/subscriptions/{id}/redeliver"),
]


def body_for(method: str, path: str) -> dict[str, Any] | None:
    if path == "/subscriptions" and method == "POST":
        return {"url": URL, "event_types": ["*"]}
    if path.endswith("/redeliver"):
        return {"from_position": 0}
    return None


class TestCreate:
    def test_a_subscription_answers_201_with_its_secret_shown_once(
        self, subscriptions: Hooked
    ) -> None:
        head = subscriptions.services.cases.recorder.max_notification_id() or 0

        answer = subscriptions.api.post(
            "/subscriptions",
            {"url": URL, "event_types": ["SessionHeld"], "description": "EHR"},
            who="admin",
        )
        created = answer.json()
        again = subscriptions.api.get(f"/subscriptions/{created['id']}", who="admin")

        assert answer.status_code == 201, answer.text
        assert answer.headers["Location"] == f"/subscriptions/{created['id']}"
        assert "Idempotent-Replayed" not in answer.headers
        assert created["secret"].startswith("whsec_")
        assert created | {"secret": None} == {
            "id": created["id"],
            "clinic_id": "clinic-a",
            "url": URL,
            "event_types": ["SessionHeld"],
            "description": "EHR",
            "status": "active",
            "created_at": created["created_at"],
            "created_by": "admin-actor",
            "position": head,
            "attempts": 0,
            "next_attempt_at": None,
            "first_failed_at": None,
            "failing_since": None,
            "secret": None,
        }
        assert again.status_code == 200
        assert "secret" not in again.json()
        assert created["secret"] not in again.text

    def test_a_retry_with_the_same_key_gets_the_first_answer(
        self, subscriptions: Hooked
    ) -> None:
        body = {"url": URL, "event_types": ["*"]}

        first = subscriptions.api.post(
            "/subscriptions", body, who="admin", **{"Idempotency-Key": "sub-1"}
        )
        retry = subscriptions.api.post(
            "/subscriptions", body, who="admin", **{"Idempotency-Key": "sub-1"}
        )
        other = subscriptions.api.post(
            "/subscriptions",
            {**body, "description": "other"},
            who="admin",
            **{"Idempotency-Key": "sub-1"},
        )
        listed = subscriptions.api.get("/subscriptions", who="admin").json()

        assert first.status_code == retry.status_code == 201
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert retry.json() == first.json()
        assert_problem(other, 422, "idempotency_key_reused")
        assert [s["id"] for s in listed["items"]] == [first.json()["id"]]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"url": URL, "event_types": ["SessionHold"]}, "event_types[0]"),
            ({"url": URL, "event_types": ["*", "SessionHeld"]}, "event_types"),
            ({"url": URL, "event_types": []}, "event_types"),
            ({"url": URL}, "event_types"),
            ({"event_types": ["*"]}, "url"),
            ({"url": URL, "event_types": ["*"], "secret": "mine"}, "secret"),
            ({"url": 7, "event_types": ["*"]}, "url"),
            ({"url": URL, "event_types": ["*"], "description": "a\nb"}, "description"),
            ({"url": URL, "event_types": ["*"], "clinic_id": "clinic-b"}, "clinic_id"),
        ],
    )
    def test_a_body_that_does_not_fit_is_422_naming_the_field(
        self, sqlite_subscriptions: Hooked, body: dict[str, Any], field: str
    ) -> None:
        answer = sqlite_subscriptions.api.post("/subscriptions", body, who="admin")

        problem = assert_problem(answer, 422, "validation_failed")
        assert field in [e["field"] for e in problem["errors"]], problem

    @pytest.mark.parametrize(
        "url",
        [
            "http://hooks.example.org/x",
            "https://10.0.0.1/x",
            "https://localhost/x",
            "https://[::1]:8443/x",
            "https://169.254.169.254/latest",
            "https://internal.example.org/x",
            "https://unknown.example/x",
        ],
    )
    def test_a_url_the_ssrf_rules_refuse_is_422_on_url(
        self, sqlite_subscriptions: Hooked, url: str
    ) -> None:
        answer = sqlite_subscriptions.api.post(
            "/subscriptions", {"url": url, "event_types": ["*"]}, who="admin"
        )

        problem = assert_problem(answer, 422, "validation_failed")
        assert [e["field"] for e in problem["errors"]] == ["url"]
        assert sqlite_subscriptions.api.get("/subscriptions", who="admin").json() == {
            "items": []
        }

    def test_http_on_an_allowed_host_is_accepted(
        self, sqlite_subscriptions: Hooked
    ) -> None:
        # IPT_WEBHOOK_ALLOW_HOSTS=127.0.0.1 in these tests' settings.
        created = sqlite_subscriptions.subscribe("http://127.0.0.1:9/hook")

        assert created["url"] == "http://127.0.0.1:9/hook"

    def test_an_admin_of_several_clinics_names_the_clinic(
        self, sqlite_subscriptions: Hooked
    ) -> None:
        key, token = make_key("admin", ["clinic-a", "clinic-b"], "multi-admin")
        sqlite_subscriptions.services.keys.add(key, token)
        headers = {"Authorization": f"Bearer {token}"}
        client = sqlite_subscriptions.api.client

        unnamed = client.post(
            "/subscriptions", json={"url": URL, "event_types": ["*"]}, headers=headers
        )
        named = client.post(
            "/subscriptions",
            json={"url": URL, "event_types": ["*"], "clinic_id": "clinic-b"},
            headers=headers,
        )

        assert_problem(unnamed, 422, "validation_failed")
        assert named.status_code == 201
        assert named.json()["clinic_id"] == "clinic-b"

    def test_a_clinic_has_at_most_25_subscriptions(
        self, sqlite_subscriptions: Hooked
    ) -> None:
        for n in range(25):
            sqlite_subscriptions.subscribe(f"{URL}/{n}")

        answer = sqlite_subscriptions.api.post(
            "/subscriptions", {"url": URL, "event_types": ["*"]}, who="admin"
        )
        elsewhere = sqlite_subscriptions.api.post(
            "/subscriptions", {"url": URL, "event_types": ["*"]}, who="other_admin"
        )

        assert_problem(answer, 409, "too_many_subscriptions")
        assert elsewhere.status_code == 201


class TestReadAndDelete:
    def test_an_admin_sees_the_subscriptions_of_its_clinics_only(
        self, subscriptions: Hooked
    ) -> None:
        mine = [subscriptions.subscribe(f"{URL}/{n}") for n in range(3)]
        theirs = subscriptions.subscribe(URL, who="other_admin")

        page = subscriptions.api.get("/subscriptions", who="admin", limit=2).json()
        rest = subscriptions.api.get(
            "/subscriptions", who="admin", limit=2, after=page["next_after"]
        ).json()
        foreign = [
            subscriptions.api.client.request(
                method,
                path.replace("{id}", theirs["id"]),
                json=body_for(method, path),
                headers=subscriptions.api.headers("admin"),
            )
            for method, path in ROUTES
            if "{id}" in path
        ]
        unknown = subscriptions.api.get(
            f"/subscriptions/{uuid.uuid4()}", who="admin"
        ).json()

        assert [s["id"] for s in page["items"] + rest["items"]] == [
            s["id"] for s in mine
        ]
        assert page["next_after"] == mine[1]["id"]
        assert "next_after" not in rest
        for answer in foreign:
            assert_problem(answer, 404, "not_found")
            assert answer.json() == unknown
        assert (
            subscriptions.api.get(
                f"/subscriptions/{theirs['id']}", who="other_admin"
            ).status_code
            == 200
        )

    def test_a_deleted_subscription_is_gone_and_a_keyed_retry_is_204(
        self, subscriptions: Hooked
    ) -> None:
        sub = subscriptions.subscribe(URL)
        path = f"/subscriptions/{sub['id']}"
        key = {"Idempotency-Key": "del-1"}

        deleted = subscriptions.api.client.delete(
            path, headers=subscriptions.api.headers("admin", **key)
        )
        retried = subscriptions.api.client.delete(
            path, headers=subscriptions.api.headers("admin", **key)
        )
        again = subscriptions.api.client.delete(
            path, headers=subscriptions.api.headers("admin")
        )

        assert deleted.status_code == 204
        assert deleted.content == b""
        assert retried.status_code == 204
        assert retried.headers["Idempotent-Replayed"] == "true"
        assert_problem(again, 404, "not_found")
        assert_problem(subscriptions.api.get(path, who="admin"), 404, "not_found")
        assert subscriptions.api.get("/subscriptions", who="admin").json() == {
            "items": []
        }

    def test_redelivery_moves_the_position_back_never_forward(
        self, subscriptions: Hooked
    ) -> None:
        api = subscriptions.api
        api.open_case(f"R-{uuid.uuid4().hex[:8]}")
        sub = subscriptions.subscribe(URL)
        path = f"/subscriptions/{sub['id']}/redeliver"

        back = api.post(path, {"from_position": 1}, who="admin")
        forward = api.post(path, {"from_position": 10**6}, who="admin")
        bad = api.post(path, {"from_position": "1"}, who="admin")

        assert back.status_code == 202, back.text
        assert back.json()["position"] == 0
        assert forward.json()["position"] == 0
        assert_problem(bad, 422, "validation_failed")

    def test_the_delivery_log_of_a_new_subscription_is_empty(
        self, sqlite_subscriptions: Hooked
    ) -> None:
        sub = sqlite_subscriptions.subscribe(URL)

        answer = sqlite_subscriptions.api.get(
            f"/subscriptions/{sub['id']}/deliveries", who="admin"
        )

        assert answer.status_code == 200
        assert answer.json() == {"items": []}


class TestRoles:
    @pytest.mark.parametrize(("method", "path"), ROUTES)
    @pytest.mark.parametrize("who", ["clinician", "auditor", "ops"])
    def test_other_roles_are_403_before_any_lookup(
        self, sqlite_subscriptions: Hooked, method: str, path: str, who: str
    ) -> None:
        sub = sqlite_subscriptions.subscribe(URL)

        answers = [
            sqlite_subscriptions.api.client.request(
                method,
                path.replace("{id}", target),
                json=body_for(method, path),
                headers=sqlite_subscriptions.api.headers(who),
            )
            for target in (sub["id"], str(uuid.uuid4()), "not-a-uuid")
        ]

        for answer in answers:
            assert_problem(answer, 403, "forbidden")
        assert (
            sqlite_subscriptions.api.get(
                f"/subscriptions/{sub['id']}", who="admin"
            ).json()["url"]
            == URL
        )

    @pytest.mark.parametrize(("method", "path"), ROUTES)
    def test_no_token_is_401(
        self, sqlite_subscriptions: Hooked, method: str, path: str
    ) -> None:
        answer = sqlite_subscriptions.api.client.request(
            method, path.replace("{id}", str(uuid.uuid4())), json=body_for(method, path)
        )

        assert_problem(answer, 401, "unauthorized")

    def test_an_admin_reads_no_case_detail(self, sqlite_subscriptions: Hooked) -> None:
        case_id = sqlite_subscriptions.api.open_case(f"R-{uuid.uuid4().hex[:8]}")

        for path in (
            f"/cases/{case_id}",
            f"/cases/{case_id}/history",
            f"/cases/{case_id}/fhir",
            "/events",
            "/projections/caseload",
            "/projections/alerts",
        ):
            assert_problem(
                sqlite_subscriptions.api.get(path, who="admin"), 403, "forbidden"
            )

    def test_ops_and_admins_see_the_delivery_status_of_their_clinics(
        self, subscriptions: Hooked
    ) -> None:
        sub = subscriptions.subscribe(URL)
        subscriptions.subscribe(URL, who="other_admin")

        as_ops = subscriptions.api.get("/webhooks/status", who="ops").json()
        as_admin = subscriptions.api.get("/webhooks/status", who="admin").json()
        as_clinician = subscriptions.api.get("/webhooks/status", who="clinician")

        assert len(as_ops["items"]) == 2
        assert [i["subscription_id"] for i in as_admin["items"]] == [sub["id"]]
        assert as_admin["failing"] == 0
        assert URL not in str(as_ops)
        assert_problem(as_clinician, 403, "forbidden")
