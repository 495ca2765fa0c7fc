"""A real browser for the console's tests: Debian's Chromium driven by Playwright.

Playwright cannot download its own browser here, so it is pointed at
/usr/bin/chromium (`.ci/run` installs the package). Every request a page makes goes
through a guard that lets only the server under test through and records (and
aborts) anything else: a test fails if a page asks for an outside URL.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    WebError,
    sync_playwright,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ACTION_TIMEOUT_MS = 10_000
"""No step of a browser test waits longer than this."""
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
"""Screenshots each run keeps (gitignored); docs/console/ holds the published set."""


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless; closed (and the driver stopped) on the way out."""
    assert shutil.which(CHROMIUM), (
        f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Guarded:
    """A browser context that may reach only `base`, and what else it asked for."""

    context: BrowserContext
    base: str
    outside: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Script errors and console errors (a refused CSP shows here), less the
    failed loads of pages a test expects to be refused."""

    def console(self, message: ConsoleMessage) -> None:
        text = message.text
        if message.type == "error" and not text.startswith("Failed to load resource"):
            self.errors.append(text)

    def script_error(self, error: WebError) -> None:
        self.errors.append(str(error.error))

    def guard(self, route: Route) -> None:
        url = route.request.url
        self.seen.append(url)
        ours = urlsplit(self.base)
        asked = urlsplit(url)
        if (asked.scheme, asked.netloc) == (ours.scheme, ours.netloc):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def page(self) -> Page:
        page = self.context.new_page()
        page.set_default_timeout(ACTION_TIMEOUT_MS)
        return page


@contextmanager
def guarded_context(browser: Browser, base: str) -> Iterator[Guarded]:
    """A fresh context (no cookies) whose every request is checked; closed after."""
    context = browser.new_context(
        base_url=base, viewport={"width": 1366, "height": 900}, accept_downloads=True
    )
    guarded = Guarded(context, base)
    context.route("**/*", guarded.guard)
    context.on("console", guarded.console)
    context.on("weberror", guarded.script_error)
    try:
        yield guarded
    finally:
        context.close()
    assert guarded.outside == [], f"pages asked for outside URLs: {guarded.outside}"
    assert guarded.errors == [], f"pages reported errors: {guarded.errors}"


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot kept under tests/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, token: str) -> None:
    """Paste a token into the sign-in form and send it, as a person would."""
    page.goto("/console/sign-in")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console")
