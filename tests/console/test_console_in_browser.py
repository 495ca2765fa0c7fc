"""The console in Debian's Chromium against a real server: each role signs in, sees
its pages and is refused the others; an auditor follows a case from the board to its
timeline and replays it; the board refreshes itself. Screenshots are kept in
tests/artifacts/."""

from __future__ import annotations

import json
import re

import httpx
from playwright.sync_api import Page, expect

from ipt_workflow.domain.courses import Course
from tests.console.conftest import Clinic
from tests.support.browser import ARTIFACTS, Guarded, screenshot, sign_in
from tests.support.drivers import OverHttp

WAIT_MS = 15_000
"""A panel refreshes every 5 s; the read models follow within a second."""


def board_cell(page: Page, protocol: str, phase: str) -> str:
    row = page.locator("#panel-board tbody tr", has_text=protocol)
    return row.locator(f'td[data-phase="{phase}"]').inner_text().strip()


class TestSigningIn:
    def test_the_console_sends_a_visitor_without_a_session_to_sign_in(
        self, browse: Guarded
    ) -> None:
        page = browse.page()

        page.goto("/console/ops")

        assert page.url.endswith("/console/sign-in")
        expect(page.get_by_label("API token")).to_be_focused()
        screenshot(page, "sign-in")

    def test_an_unknown_token_is_refused_with_a_reason_and_no_session(
        self, browse: Guarded
    ) -> None:
        page = browse.page()
        page.goto("/console/sign-in")

        page.get_by_label("API token").fill("not-a-token")
        page.get_by_role("button", name="Sign in").click()

        expect(page.get_by_role("alert")).to_have_text(
            "This token is unknown or revoked."
        )
        assert [c["name"] for c in browse.context.cookies()] == ["ipt_console_signin"]

    def test_the_session_cookie_is_http_only_and_same_site_strict(
        self, browse: Guarded
    ) -> None:
        page = browse.page()

        sign_in(page, "dev-auditor")

        (cookie,) = browse.context.cookies()
        assert cookie["name"] == "ipt_console"
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["secure"] is False  # --dev serves plain HTTP
        assert "dev-auditor" not in cookie["value"]
        assert page.evaluate("document.cookie") == ""

    def test_signing_out_ends_the_session_in_the_browser(self, browse: Guarded) -> None:
        page = browse.page()
        sign_in(page, "dev-ops")

        page.get_by_role("button", name="Sign out").click()
        page.goto("/console/ops")

        assert page.url.endswith("/console/sign-in")
        assert [c["name"] for c in browse.context.cookies()] == ["ipt_console_signin"]

    def test_a_form_sent_without_its_csrf_token_is_refused_and_changes_nothing(
        self, browse: Guarded
    ) -> None:
        page = browse.page()
        sign_in(page, "dev-auditor")

        posted = page.request.post(
            "/console/sign-out", form={"csrf_token": "forged"}, max_redirects=0
        )
        still = page.request.get("/console/ops", max_redirects=0)

        assert posted.status == 403
        assert "not from your current session" in posted.text()
        assert still.status == 200


class TestOps:
    def test_ops_sees_the_board_with_small_cells_suppressed(
        self, browse: Guarded, clinic: Clinic
    ) -> None:
        page = browse.page()
        sign_in(page, "dev-ops")

        page.get_by_role("navigation", name="Sections").get_by_role(
            "link", name="Operations"
        ).click()

        expect(page.get_by_role("heading", name="Operations", level=1)).to_be_visible()
        assert board_cell(page, "ipt@1", "concluded") == "6"
        assert board_cell(page, "ipt@1", "middle") == "1–4"
        assert board_cell(page, "ipt-b@1", "concluded") == "1–4"
        assert page.locator("#panel-board a").count() == 0  # no way into a case
        outcomes = page.locator("#panel-outcomes")
        ipt = outcomes.locator('tr[data-clinic="demo-clinic"][data-protocol="ipt@1"]')
        expect(ipt.locator('[data-rate="remission"]')).to_have_text("50 %")
        expect(ipt.locator('[data-rate="responded"]')).to_have_text("83 %")
        brief = outcomes.locator('tr[data-protocol="ipt-b@1"]')
        expect(brief).to_contain_text("withheld: fewer than five cases")
        overdue = page.locator('#panel-alerts tr[data-alert="session_overdue"] td')
        expect(overdue).to_have_text(["0", "0", "1", "0", "1"])  # 42 days overdue
        expect(page.locator("#alerts-chart-title")).to_have_text("Open alerts by kind")
        expect(page.locator("#panel-alerts svg text.bar-label").first).to_have_text(
            "session overdue"
        )
        expect(page.get_by_test_id("webhooks-state")).to_have_text(
            "webhooks: no subscriptions"
        )
        for name in ("caseload", "phase_board", "outcomes", "alerts", "fidelity"):
            row = page.locator(f'#panel-projections tr[data-projection="{name}"]')
            expect(row).to_contain_text("ok")
        body = page.locator("main").inner_text()
        assert clinic.showcase_ref not in body
        assert clinic.showcase not in body
        screenshot(page, "ops-board")

    def test_ops_is_refused_the_case_pages(
        self, browse: Guarded, clinic: Clinic
    ) -> None:
        page = browse.page()
        sign_in(page, "dev-ops")

        answer = page.goto(f"/console/cases/{clinic.showcase}")

        assert answer is not None and answer.status == 403
        expect(page.get_by_role("alert")).to_contain_text(
            "The Cases pages are for the auditor role; you are signed in as ops."
        )
        assert page.get_by_role("link", name="Cases").count() == 0
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        screenshot(page, "refused")

    def test_a_clinician_sees_the_board_unsuppressed_and_is_refused_the_cases(
        self, browse: Guarded, clinic: Clinic
    ) -> None:
        page = browse.page()
        sign_in(page, "dev-clinician")

        page.goto("/console/ops")
        middle = board_cell(page, "ipt@1", "middle")
        refused = page.goto("/console/cases")

        assert middle == "2"
        assert refused is not None and refused.status == 403

    def test_the_board_refreshes_itself_without_reloading_the_page(
        self, browse: Guarded, clinic: Clinic
    ) -> None:
        page = browse.page()
        sign_in(page, "dev-auditor")
        page.goto("/console/ops")
        before = int(board_cell(page, "ipt@1", "beginning"))
        page.evaluate("window.__not_reloaded = true")
        middle = page.locator("#panel-board tbody tr", has_text="ipt@1").locator(
            'td[data-phase="middle"] a'
        )
        middle.focus()

        OverHttp(clinic.post).open(Course())

        cell = page.locator("#panel-board tbody tr", has_text="ipt@1").locator(
            'td[data-phase="beginning"]'
        )
        expect(cell).to_have_text(str(before + 1), timeout=WAIT_MS)
        assert page.evaluate("window.__not_reloaded") is True
        # A keyboard user's place survives the refresh.
        assert (
            page.evaluate("document.activeElement.id")
            == "cell-demo-clinic-ipt@1-middle"
        )


class TestAuditor:
    def test_an_auditor_follows_a_case_from_the_board_to_its_timeline(
        self, browse: Guarded, clinic: Clinic
    ) -> None:
        page = browse.page()
        sign_in(page, "dev-auditor")
        page.goto("/console/ops")

        page.locator("#panel-board tbody tr", has_text="ipt@1").locator(
            'td[data-phase="middle"] a'
        ).click()
        listed = page.locator("main table tbody tr a")
        ids = sorted(listed.all_inner_texts())
        screenshot(page, "cases-of-a-phase")
        page.get_by_role("link", name=clinic.middle[0]).click()

        assert ids == sorted(clinic.middle)
        expect(page.get_by_test_id("current-phase")).to_have_text("middle")
        rows = page.locator("table.timeline tbody tr")
        expect(rows.first).to_contain_text("CaseOpened")
        expect(rows.last).to_contain_text("MiddlePhaseStarted")
        expect(rows.first).to_contain_text("dev-clinician")

    def test_moving_the_replay_slider_shows_the_phase_the_case_was_in(
        self, browse: Guarded, clinic: Clinic
    ) -> None:
        page = browse.page()
        sign_in(page, "dev-auditor")
        page.goto(f"/console/cases/{clinic.showcase}")
        slider = page.get_by_label(re.compile("^Version"))
        latest = int(slider.get_attribute("max") or 0)

        slider.focus()
        page.keyboard.press("Home")
        expect(page.get_by_test_id("as-of-version")).to_have_text("1")
        at_start = page.get_by_test_id("as-of-phase").inner_text()
        page.locator("#h-replay").scroll_into_view_if_needed()
        page.locator("section", has=page.locator("#h-replay")).screenshot(
            path=str(ARTIFACTS / "replay-at-version-1.png")
        )
        page.keyboard.press("End")
        expect(page.get_by_test_id("as-of-version")).to_have_text(str(latest))
        at_end = page.get_by_test_id("as-of-phase").inner_text()

        assert at_start == "beginning"
        assert at_end == "concluded"
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid"  # the focused slider shows its focus

    def test_the_case_page_shows_the_check_the_trajectory_and_its_readers(
        self, browse: Guarded, clinic: Clinic
    ) -> None:
        page = browse.page()
        sign_in(page, "dev-auditor")

        page.goto(f"/console/cases/{clinic.showcase}")

        expect(page.get_by_test_id("verify")).to_have_text("intact")
        chart = page.locator('figure.trajectory[data-instrument="phq9"]')
        expect(chart.locator("circle.point")).to_have_count(4)
        expect(chart.get_by_test_id("remission-line")).to_have_count(1)
        expect(chart).to_contain_text("remission ≤ 4")
        reads = page.locator("table.reads tbody tr").first
        expect(reads).to_contain_text("dev-auditor")
        expect(reads).to_contain_text("/console/cases/{case_id}")
        screenshot(page, "case")

    def test_a_page_read_is_in_the_access_log_the_api_serves(
        self, browse: Guarded, clinic: Clinic
    ) -> None:
        page = browse.page()
        sign_in(page, "dev-auditor")

        page.goto(f"/console/cases/{clinic.middle[1]}")
        page.get_by_label(re.compile("^Version")).focus()
        page.keyboard.press("Home")
        expect(page.get_by_test_id("as-of-version")).to_have_text("1")

        log = clinic.get(f"/audit/access?case_id={clinic.middle[1]}").json()["items"]
        routes = [(e["actor"], e["route"]) for e in log]
        assert ("dev-auditor", "/console/cases/{case_id}") in routes
        assert ("dev-auditor", "/console/cases/{case_id}/replay") in routes

    def test_the_fhir_download_is_the_case_as_a_bundle(
        self, browse: Guarded, clinic: Clinic
    ) -> None:
        page = browse.page()
        sign_in(page, "dev-auditor")
        page.goto(f"/console/cases/{clinic.showcase}")

        with page.expect_download() as download:
            page.get_by_role("link", name="Download as FHIR (JSON)").click()
        saved = download.value.path()

        bundle = json.loads(saved.read_text())
        assert download.value.suggested_filename == f"case-{clinic.showcase}.fhir.json"
        assert bundle["resourceType"] == "Bundle"
        kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
        assert {"EpisodeOfCare", "Observation", "Encounter"} <= kinds

    def test_an_auditor_finds_a_case_by_its_client_reference(
        self, browse: Guarded, clinic: Clinic
    ) -> None:
        page = browse.page()
        sign_in(page, "dev-auditor")
        page.goto("/console/cases")

        page.get_by_label("Client reference").fill(clinic.showcase_ref)
        page.get_by_role("button", name="Find").click()

        page.wait_for_url(f"**/console/cases/{clinic.showcase}")
        expect(page.locator("p.summary")).to_contain_text(clinic.showcase_ref)

    def test_the_finder_says_what_is_wrong_with_what_was_given(
        self, browse: Guarded
    ) -> None:
        page = browse.page()
        sign_in(page, "dev-auditor")
        page.goto("/console/cases")

        page.get_by_role("button", name="Find").click()
        empty = page.locator("#case_id-error").inner_text()
        page.get_by_label("Case id").fill("not-a-uuid")
        page.get_by_role("button", name="Find").click()
        malformed = page.locator("#case_id-error").inner_text()
        page.get_by_label("Case id").fill("")
        page.get_by_label("Client reference").fill("NOBODY-1")
        with page.expect_response("**/console/cases/find") as answer:
            page.get_by_role("button", name="Find").click()

        assert empty == "Give a case id, or a client reference and its clinic."
        assert malformed.startswith("A case id is a UUID")
        assert answer.value.status == 404
        expect(page.locator("#client_ref-error")).to_have_text(
            "No open case of this client reference at this clinic."
        )
        expect(page.get_by_label("Client reference")).to_have_attribute(
            "aria-invalid", "true"
        )
        screenshot(page, "find-case")

    def test_every_form_field_on_every_page_has_a_label(
        self, browse: Guarded, clinic: Clinic
    ) -> None:
        page = browse.page()
        sign_in(page, "dev-auditor")
        unlabelled = {}

        for path in ("/console/cases", f"/console/cases/{clinic.showcase}"):
            page.goto(path)
            unlabelled[path] = page.evaluate(
                """[...document.querySelectorAll('input, select, textarea')]
                   .filter(e => e.type !== 'hidden' && e.labels.length === 0)
                   .map(e => e.name)"""
            )

        assert unlabelled == {p: [] for p in unlabelled}


def test_a_home_page_lists_only_the_sections_of_the_role(
    browse: Guarded,
) -> None:
    page = browse.page()
    sections = {}

    for token in ("dev-ops", "dev-auditor", "dev-clinician"):
        sign_in(page, token)
        nav = page.get_by_role("navigation", name="Sections")
        sections[token] = nav.get_by_role("link").all_inner_texts()
        if token == "dev-auditor":
            screenshot(page, "home")
        page.get_by_role("button", name="Sign out").click()

    assert sections == {
        "dev-ops": ["Operations"],
        "dev-auditor": ["Operations", "Cases"],
        "dev-clinician": ["Operations"],
    }


def test_an_htmx_request_without_a_session_is_sent_to_sign_in(
    clinic: Clinic,
) -> None:
    answer = httpx.get(
        f"{clinic.base}/console/ops/panels/board", headers={"HX-Request": "true"}
    )

    assert answer.status_code == 401
    assert answer.headers["HX-Redirect"] == "/console/sign-in"
