"""Browser tests: Playwright drives Debian's Chromium against pytest-django's live server."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import restore_data_migration_rows

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test body are safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _role_groups(transactional_db):
    """Browser tests are transactional (the live server runs in another thread and must see committed rows),
    so they need the rows the data migrations made put back after an earlier test's flush."""
    restore_data_migration_rows()


@pytest.fixture
def page(browser, request):
    """A fresh browser context per test. A page that logs a JavaScript error or gets a 5xx answer fails
    the test; a failed test leaves a full-page screenshot in test-artifacts/."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"JavaScript error: {exc}"))
    page.on(
        "response",
        lambda response: (
            problems.append(f"HTTP {response.status} from {response.request.method} {response.url}")
            if response.status >= 500
            else None
        ),
    )
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        screenshot(page, request.node.name)
    context.close()
    if report is not None and report.passed and problems:
        pytest.fail("The browser saw problems:\n" + "\n".join(problems), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def screenshot(page, name: str) -> Path:
    """A full-page screenshot in test-artifacts/ (gitignored); returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, live_server, username: str, password: str) -> None:
    """Sign in through the login page, as a person would; ends on the home page."""
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


def sign_out(page, username: str | None = None) -> None:
    """Open the user menu in the navbar (the button named after the person) and press "Sign out"; ends on
    the login page."""
    from playwright.sync_api import expect

    navbar = page.get_by_role("navigation", name="Main")
    menu = navbar.get_by_role("button", name=username, exact=True) if username else navbar.locator("#user-menu")
    menu.click()
    sign_out_button = page.get_by_role("button", name="Sign out")
    expect(sign_out_button).to_be_visible()
    sign_out_button.click()
    page.wait_for_url(re.compile(r"/login/"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
