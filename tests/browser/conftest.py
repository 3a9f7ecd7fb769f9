"""A live server on its own SQLite file and Debian's Chromium driven by Playwright (sync API).

The browser is never downloaded: if /usr/bin/chromium is missing the tests fail, they do not
skip (CI installs it with apt-get).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from policy_service import create_app
from policy_service.extensions import db

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "correct-horse-battery"
ROLES = ("admin", "coordinator", "scheduler", "biller")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@dataclass
class LiveServer:
    """The running app: its base URL and the ids of the seeded records."""

    url: str
    authorization_id: int
    version_id: int
    # The served app, for tests that add their own records to its database.
    app: Flask | None = None


def _seed() -> tuple[int, int]:
    from policy_service.auth import create_user
    from tests.factories import make_admin_records

    for role in ROLES:
        create_user(f"{role}@example.org", role, PASSWORD)
    # The admin tests' data set, with most of the authorization's units used (dashboard lists).
    records = make_admin_records(used_units=150, used_visits=1, therapies=False)
    db.session.commit()
    return records.authorization.id, records.version.id


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app served by werkzeug on a free localhost port, on a fresh SQLite file."""
    root = tmp_path_factory.mktemp("browser")
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{root / 'browser.db'}",
        "SECRET_KEY": "browser-test-secret-key",
        "SECURITY_PASSWORD_HASH": "plaintext",
        "SECURITY_PASSWORD_SALT": "browser-salt",
    })
    with app.app_context():
        from policy_service.database import migrate_database

        migrate_database()
        authorization_id, version_id = _seed()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", authorization_id, version_id,
                         app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with 'apt-get install -y chromium'.")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test."""
    browser_context = browser.new_context(viewport={"width": 1400, "height": 900})
    yield browser_context
    browser_context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """One tab of the fresh profile."""
    return context.new_page()


@pytest.fixture
def sign_in(live_server: LiveServer) -> Callable[[Page, str], None]:
    """Sign a page in as the seeded user of ``role`` through the login form."""

    def do(page: Page, role: str) -> None:
        page.goto(f"{live_server.url}/login")
        page.fill("input[name=email]", f"{role}@example.org")
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")

    return do


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """Save a full-page screenshot as a test artifact."""

    def save(page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


# axe-core is loaded from npm at test time (never vendored): .ci/run installs it, and this
# fixture installs it on first use on a developer's machine.
AXE_DIR = Path(os.environ.get("AXE_CORE_DIR",
                              Path(__file__).resolve().parents[2] / ".cache" / "axe-core"))
AXE_SCRIPT = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
AXE_VERSION = "4"


@pytest.fixture(scope="session")
def axe_source() -> str:
    """The text of axe.min.js, installed with npm into AXE_DIR when missing."""
    if not AXE_SCRIPT.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is missing: install it ('apt-get install -y npm') for axe-core.")
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix",
                        str(AXE_DIR), f"axe-core@{AXE_VERSION}"], check=True, timeout=300)
    return AXE_SCRIPT.read_text()


@dataclass
class AxeViolation:
    """One axe rule that failed on a page, with how many elements it found."""

    rule: str
    impact: str
    help: str
    targets: list[str]


def run_axe(page: Page, source: str) -> list[AxeViolation]:
    """Run axe-core on the page as it stands and return every rule it reports as violated.

    The script is evaluated through the DevTools protocol, which the page's CSP does not block
    (an injected <script> tag would need 'unsafe-inline').
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(source)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [AxeViolation(v["id"], v["impact"] or "minor", v["help"],
                         [", ".join(node["target"]) for node in v["nodes"]])
            for v in results["violations"]]


@pytest.fixture
def axe(axe_source: str) -> Callable[[Page], list[AxeViolation]]:
    """Run axe-core on a page: ``axe(page)`` returns its violations."""
    return lambda page: run_axe(page, axe_source)
