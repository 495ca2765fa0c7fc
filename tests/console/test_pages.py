"""The console's pages over HTTP in process, on both back ends: bad input gets a
specific answer and changes nothing, the webhook panel reads its interface, and
every page carries its security headers."""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ipt_workflow.api.app import create_app
from ipt_workflow.composition.bootstrap import bootstrap
from ipt_workflow.composition.settings import Settings
from ipt_workflow.domain.codes import Phase
from ipt_workflow.domain.courses import Course
from ipt_workflow.storage.keys import make_key
from ipt_workflow.storage.webhook_status import WebhookStatus
from tests.support.drivers import OverHttp, unique_ref

CLINICIAN = {"Authorization": "Bearer dev-clinician"}


@dataclass
class FixedStatuses:
    """A delivery-state source as the subscriptions store will be one."""

    rows: list[WebhookStatus]
    asked: list[Collection[str] | None]

    def webhook_statuses(self, clinics: Collection[str] | None) -> list[WebhookStatus]:
        self.asked.append(clinics)
        return self.rows


@dataclass
class Console:
    client: TestClient
    statuses: FixedStatuses

    def csrf(self, path: str) -> str:
        found = re.search(
            r'name="csrf_token" value="([^"]+)"', self.client.get(path).text
        )
        assert found, path
        return found.group(1)

    def sign_in(self, token: str) -> None:
        answer = self.client.post(
            "/console/sign-in",
            data={"token": token, "csrf_token": self.csrf("/console/sign-in")},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text

    def open_case(self, phase: Phase = Phase.middle) -> tuple[str, str]:
        ref = unique_ref()
        case_id = OverHttp(
            lambda path, body: self.client.post(path, json=body, headers=CLINICIAN)
        ).drive(Course(contract=12), phase, ref)
        return case_id, ref


@pytest.fixture
def console(database_url: str) -> Iterator[Console]:
    """The console on each back end, for what reads the stores."""
    yield from make_console(database_url)


@pytest.fixture
def sqlite_console(tmp_path: Path) -> Iterator[Console]:
    """The console on SQLite, for what is not about storage."""
    yield from make_console(f"sqlite:///{tmp_path / 'ipt.db'}")


def make_console(
    database_url: str,
    client: tuple[str, int] = ("127.0.0.1", 50000),
    *,
    fixed_statuses: bool = True,
    **extra: Any,
) -> Iterator[Console]:
    settings = Settings(
        database_url=database_url,
        dev=True,
        rate_limit_per_second=0,
        run_projections=True,
        **extra,
    )
    services = bootstrap(settings)
    statuses = FixedStatuses([], [])
    if fixed_statuses:
        services.webhook_status = statuses
    try:
        # Dev tokens count only on a loopback address, from a loopback client.
        with TestClient(
            create_app(settings, services=services),
            base_url="http://127.0.0.1",
            client=client,
            raise_server_exceptions=False,
        ) as browser:
            yield Console(browser, statuses)
    finally:
        services.close()


class TestSignIn:
    def test_a_dev_token_from_an_address_that_is_not_loopback_is_refused(
        self, tmp_path: Path
    ) -> None:
        """Caught in the merge with issue 13: the API refused dev tokens from other
        addresses (finding 6), the console's sign-in took them."""
        url = f"sqlite:///{tmp_path / 'ipt.db'}"
        for remote in make_console(url, client=("192.0.2.7", 5000)):
            csrf = remote.csrf("/console/sign-in")
            answer = remote.client.post(
                "/console/sign-in", data={"token": "dev-ops", "csrf_token": csrf}
            )

            assert answer.status_code == 401
            assert "This token is unknown or revoked." in answer.text
            assert "ipt_console=" not in answer.headers.get("set-cookie", "")

    def test_failed_sign_ins_spend_the_addresss_budget_of_failures(
        self, tmp_path: Path
    ) -> None:
        """Caught in the merge with issue 13: the sign-in form looked up any number
        of wrong tokens from one address, past the API's limit (D36)."""
        url = f"sqlite:///{tmp_path / 'ipt.db'}"
        for limited in make_console(url, auth_failures_burst=2):
            statuses = []
            for _ in range(3):
                csrf = limited.csrf("/console/sign-in")
                answer = limited.client.post(
                    "/console/sign-in",
                    data={"token": "ipt_unknown_token", "csrf_token": csrf},
                )
                statuses.append(answer.status_code)

            assert statuses == [401, 401, 429]
            assert "Too many failed sign-ins" in answer.text
            assert int(answer.headers["Retry-After"]) >= 1

    def test_a_sign_in_without_the_forms_csrf_token_is_refused(
        self, sqlite_console: Console
    ) -> None:
        answer = sqlite_console.client.post(
            "/console/sign-in", data={"token": "dev-ops"}
        )

        assert answer.status_code == 403
        assert "sign-in form had expired" in answer.text
        assert "ipt_console=" not in answer.headers.get("set-cookie", "")

    @pytest.mark.parametrize(
        ("token", "status", "message"),
        [
            ("", 422, "Paste your API token into the field."),
            ("x" * 513, 422, "tokens are at most 512"),
            ("dev-\u00e9", 422, "printable characters"),
            ("ipt_unknown_token", 401, "This token is unknown or revoked."),
        ],
    )
    def test_a_bad_token_is_refused_with_a_specific_reason(
        self, sqlite_console: Console, token: str, status: int, message: str
    ) -> None:
        csrf = sqlite_console.csrf("/console/sign-in")

        answer = sqlite_console.client.post(
            "/console/sign-in", data={"token": token, "csrf_token": csrf}
        )

        assert answer.status_code == status
        assert message in answer.text
        assert "ipt_console=" not in answer.headers.get("set-cookie", "")

    def test_a_csrf_token_beyond_ascii_is_a_refusal_not_an_error(
        self, sqlite_console: Console
    ) -> None:
        sqlite_console.csrf("/console/sign-in")  # the nonce cookie is set

        answer = sqlite_console.client.post(
            "/console/sign-in", data={"token": "dev-ops", "csrf_token": "\u00e9t\u00e9"}
        )

        assert answer.status_code == 403

    def test_a_json_body_instead_of_the_form_is_a_refusal_not_an_error(
        self, sqlite_console: Console
    ) -> None:
        answer = sqlite_console.client.post(
            "/console/sign-in", json={"token": "dev-ops"}
        )

        assert answer.status_code == 403


class TestPages:
    def test_every_page_is_sent_with_its_security_headers(
        self, sqlite_console: Console
    ) -> None:
        sqlite_console.sign_in("dev-auditor")
        case_id, _ = sqlite_console.open_case()

        for path in ("/console/sign-in", "/console/ops", f"/console/cases/{case_id}"):
            headers = sqlite_console.client.get(path).headers
            assert headers["content-security-policy"].startswith("default-src 'self'")
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            assert headers["cache-control"] == "no-store"
            assert headers["x-frame-options"] == "DENY"
            assert headers["referrer-policy"] == "no-referrer"

    @pytest.mark.parametrize(
        ("path", "status", "message"),
        [
            ("/console/cases/not-a-uuid", 404, "That is not a case id"),
            (
                "/console/cases/00000000-0000-4000-8000-000000000000",
                404,
                "No case with this id in your clinics.",
            ),
            ("/console/cases/{case}?version=0", 422, "from 1 to 7"),
            ("/console/cases/{case}/replay?version=8", 422, "from 1 to 7"),
            ("/console/cases/{case}/replay?version=-1", 422, "from 1 to 7"),
            ("/console/cases/{case}/replay?version=\u00b2", 422, "from 1 to 7"),
            ("/console/cases/{case}?version=" + "9" * 5000, 422, "from 1 to 7"),
            ("/console/cases?clinic=demo-clinic&phase=nowhere", 422, "phase must be"),
            ("/console/ops/panels/secrets", 404, "There is no panel"),
            ("/console/no/such/page", 404, "no such page"),
        ],
    )
    def test_bad_input_gets_a_specific_page_and_reads_nothing(
        self, sqlite_console: Console, path: str, status: int, message: str
    ) -> None:
        sqlite_console.sign_in("dev-auditor")
        case_id, _ = sqlite_console.open_case()
        before = sqlite_console.client.get(
            "/audit/access", params={"case_id": case_id}, headers=auditor()
        ).json()["items"]

        answer = sqlite_console.client.get(path.format(case=case_id))

        after = sqlite_console.client.get(
            "/audit/access", params={"case_id": case_id}, headers=auditor()
        ).json()["items"]
        assert answer.status_code == status
        assert answer.headers["content-type"].startswith("text/html")
        assert message in answer.text
        assert after == before

    def test_a_case_of_a_clinic_the_token_does_not_cover_is_not_found(
        self, console: Console
    ) -> None:
        case_id, _ = console.open_case()
        key, token = make_key("auditor", ["clinic-b"], "clinic-b-audit")
        console.client.app.state.services.keys.add(key, token)  # type: ignore[attr-defined]
        console.sign_in(token)

        answer = console.client.get(f"/console/cases/{case_id}")
        replayed = console.client.get(f"/console/cases/{case_id}/replay?version=1")
        fhir = console.client.get(f"/console/cases/{case_id}/fhir")

        assert [answer.status_code, replayed.status_code, fhir.status_code] == [404] * 3
        assert "No case with this id in your clinics." in answer.text

    def test_the_board_links_a_phase_to_its_cases_for_an_auditor(
        self, console: Console
    ) -> None:
        first, _ = console.open_case()
        second, _ = console.open_case()
        console.sign_in("dev-auditor")
        services = console.client.app.state.services  # type: ignore[attr-defined]
        assert services.read_models.wait(services.cases.recorder.max_notification_id())

        listing = console.client.get(
            "/console/cases",
            params={"clinic": "demo-clinic", "protocol": "ipt@1", "phase": "middle"},
        )
        other_clinic = console.client.get(
            "/console/cases",
            params={"clinic": "clinic-b", "protocol": "ipt@1", "phase": "middle"},
        )

        assert listing.status_code == 200
        assert sorted(
            re.findall(r'href="/console/cases/([0-9a-f-]{36})"', listing.text)
        ) == (sorted([first, second]))
        assert (
            re.findall(r'href="/console/cases/([0-9a-f-]{36})"', other_clinic.text)
            == []
        )

    def test_finding_by_client_reference_goes_through_the_keyed_index(
        self, console: Console
    ) -> None:
        case_id, ref = console.open_case()
        ended, ended_ref = console.open_case(Phase.withdrawn)
        console.sign_in("dev-auditor")
        csrf = console.csrf("/console/cases")

        found = console.client.post(
            "/console/cases/find",
            data={"client_ref": ref, "clinic": "demo-clinic", "csrf_token": csrf},
            follow_redirects=False,
        )
        gone = console.client.post(
            "/console/cases/find",
            data={"client_ref": ended_ref, "csrf_token": csrf},
        )
        foreign = console.client.post(
            "/console/cases/find",
            data={"client_ref": ref, "clinic": "clinic-b", "csrf_token": csrf},
        )
        forged = console.client.post(
            "/console/cases/find", data={"case_id": case_id, "csrf_token": "x"}
        )
        unknown = console.client.post(
            "/console/cases/find",
            data={
                "case_id": "00000000-0000-4000-8000-000000000000",
                "csrf_token": csrf,
            },
        )

        assert found.status_code == 303
        assert found.headers["location"] == f"/console/cases/{case_id}"
        # The index remembers open cases only (for now): an ended case is not found.
        assert gone.status_code == 404
        assert ended not in gone.text
        assert foreign.status_code == 422
        assert "That clinic is not one of yours." in foreign.text
        assert forged.status_code == 403
        assert unknown.status_code == 404
        assert "No case with this id in your clinics." in unknown.text
        assert 'id="case_id" name="case_id"' in unknown.text  # the form, to try again


class TestWebhookPanel:
    def test_the_panel_shows_each_subscription_of_the_viewers_clinics(
        self, sqlite_console: Console
    ) -> None:
        sqlite_console.statuses.rows = [
            WebhookStatus("sub-2", "demo-clinic", "failing", 12, 3600.0, None),
            WebhookStatus(
                "sub-1", "demo-clinic", "active", 0, 0.0, "2026-11-01T10:00:00Z"
            ),
        ]
        sqlite_console.sign_in("dev-ops")

        panel = sqlite_console.client.get("/console/ops/panels/webhooks")

        rows = re.findall(r'data-subscription="([^"]+)"', panel.text)
        assert rows == ["sub-1", "sub-2"]
        assert "failing" in panel.text
        assert "3600.0" in panel.text
        assert "not configured" not in panel.text
        assert sqlite_console.statuses.asked[-1] == frozenset({"demo-clinic"})

    def test_the_panel_shows_the_subscriptions_the_store_holds(
        self, database_url: str
    ) -> None:
        """Caught in the merge with the webhooks: the panel said "not configured"
        beside a working subscription store, whose state it never read."""
        for real in make_console(database_url, fixed_statuses=False):
            sub = real.client.post(
                "/subscriptions",
                json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"]},
                headers={"Authorization": "Bearer dev-admin"},
            ).json()
            case_id, _ = real.open_case()  # no dispatcher runs: all of it waits
            history = real.client.get(
                f"/cases/{case_id}/history", params={"limit": 1000}, headers=auditor()
            ).json()["items"]
            real.sign_in("dev-ops")
            time.sleep(0.1)  # the oldest waiting event is a tenth of a second old

            panel = real.client.get("/console/ops/panels/webhooks").text

            row = re.search(
                rf'<tr data-subscription="{sub["id"]}">(.*?)</tr>', panel, re.S
            )
            assert row is not None, panel
            cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
            assert cells[0] == "demo-clinic"
            assert ">active<" in cells[1]
            assert cells[2] == str(len(history))
            assert float(cells[3]) > 0
            assert cells[4] == "never"

    def test_without_subscriptions_the_panel_says_so(
        self, sqlite_console: Console
    ) -> None:
        sqlite_console.sign_in("dev-ops")

        panel = sqlite_console.client.get("/console/ops/panels/webhooks")

        assert "webhooks: no subscriptions" in panel.text


def auditor() -> dict[str, str]:
    return {"Authorization": "Bearer dev-auditor"}
