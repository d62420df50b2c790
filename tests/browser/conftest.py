"""Browser tests: Playwright for Python driving Debian's Chromium headless against the real desk.

- `chromium` (session): /usr/bin/chromium (Debian's package; scripts/system-deps.sh installs it),
  never a browser Playwright downloads. Playwright gives each launch a fresh temporary profile
  (user-data dir), and the flags keep Chromium from phoning home (this machine refuses outside
  connections anyway).
- Every context is offline: a route aborts any request to a host other than 127.0.0.1 (HTTP and
  WebSocket) and the test fails, naming the URLs, even if the page coped without them.
- Every page records console errors, uncaught exceptions, failed requests and HTTP errors
  (`watch_of(page)`), for tests that demand a clean page.
- A failing test saves a screenshot and the page's HTML to tests/artifacts/ (gitignored) and
  names them in the report, with the desk's server log.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    Route,
    WebSocketRoute,
    sync_playwright,
)

from config import PROJECT_ROOT
from tests.conftest import STRONG_PASSWORD
from tests.support import RunningDesk

CHROMIUM = os.environ.get("DALAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
ALLOWED_HOST = "127.0.0.1"
ADMIN = "admin"
TIMEOUT_MS = 10_000

# Every page a signed-in trader can open (UI-CONTRACT.tmp.md), by its nav link name.
SIGNED_IN_PAGES = {
    "Dashboard": "/",
    "Orders": "/orders",
    "Trades": "/trades",
    "Positions": "/positions",
    "Holdings": "/holdings",
    "Funds": "/funds",
    "Market": "/market",
    "Sandbox": "/sandbox",
    "Action Center": "/action-center",
    "API key": "/apikey",
    "API logs": "/logs",
    "Audit": "/audit",
    "Settings": "/settings",
}


# --- offline guard and page watch -------------------------------------------------------------


def _outside(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname != ALLOWED_HOST


@dataclass
class Watch:
    """What went wrong in one context's pages, drained by the tests that care."""

    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [
            *(f"console: {m}" for m in self.console_errors),
            *(f"request: {r}" for r in self.failed_requests),
        ]

    def clear(self) -> None:
        self.console_errors.clear()
        self.failed_requests.clear()


_WATCHES: dict[int, Watch] = {}


def watch_of(target: Page | BrowserContext) -> Watch:
    context = target.context if isinstance(target, Page) else target
    return _WATCHES[id(context)]


def _watch_page(page: Page, watch: Watch) -> None:
    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if message.location else ""
            watch.console_errors.append(f"{message.text} ({where})" if where else message.text)

    def on_request_failed(request: Request) -> None:
        if _outside(request.url):
            return  # already reported as blocked
        watch.failed_requests.append(f"{request.method} {request.url}: {request.failure}")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            watch.failed_requests.append(
                f"{response.request.method} {response.url}: HTTP {response.status}"
            )

    page.on("console", on_console)
    page.on("pageerror", lambda error: watch.console_errors.append(f"uncaught: {error}"))
    page.on("requestfailed", on_request_failed)
    page.on("response", on_response)
    # A native confirm() must not be silently dismissed (Playwright's default).
    page.on("dialog", lambda dialog: dialog.accept())


def open_context(browser: Browser, **options: Any) -> BrowserContext:
    """A fresh context that cannot reach anything but 127.0.0.1."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(30_000)
    watch = Watch()
    _WATCHES[id(context)] = watch

    def block(route: Route) -> None:
        watch.blocked.append(f"{route.request.method} {route.request.url}")
        route.abort("blockedbyclient")

    def block_socket(socket: WebSocketRoute) -> None:
        watch.blocked.append(f"WebSocket {socket.url}")
        socket.close(code=1008, reason="offline test")

    context.route(_outside, block)
    context.route_web_socket(_outside, block_socket)
    context.on("page", lambda page: _watch_page(page, watch))
    return context


def close_context(context: BrowserContext) -> None:
    context.close()
    _WATCHES.pop(id(context), None)


# --- Chromium ----------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/system-deps.sh (Debian's chromium)")
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


# --- the desk ----------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDesk]:
    """A running desk whose admin (`admin`, STRONG_PASSWORD) already exists."""
    running = RunningDesk(Path(tmp_path_factory.mktemp("browser-desk")))
    running.start()
    running.cli("user", "create", ADMIN, "--email", "admin@example.com",
                "--password", STRONG_PASSWORD, "--admin")  # fmt: skip
    yield running
    running.stop()


def sign_in(page: Page, base_url: str, username: str = ADMIN) -> None:
    page.goto(base_url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^" + re.escape(base_url) + r"/(\?.*)?$"))


@pytest.fixture(scope="package")
def signed_in_state(
    browser: Browser, desk: RunningDesk, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The admin's signed-in cookies, taken once; each test's context starts with them."""
    path = tmp_path_factory.mktemp("browser-state") / "admin.json"
    context = open_context(browser)
    try:
        sign_in(context.new_page(), desk.url)
        context.storage_state(path=path)
    finally:
        close_context(context)
    return path


@pytest.fixture
def context(browser: Browser, signed_in_state: Path) -> Iterator[BrowserContext]:
    opened = open_context(browser, storage_state=signed_in_state)
    yield opened
    close_context(opened)


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A signed-in page of the shared desk (not yet navigated)."""
    return context.new_page()


@pytest.fixture
def base_url(desk: RunningDesk) -> str:
    return desk.url


# --- failures: offline violations fail the test; failing tests leave a screenshot --------------


def _pages_of(item: pytest.Item) -> list[Page]:
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    return [value for value in funcargs.values() if isinstance(value, Page)]


def _drain_blocked(item: pytest.Item) -> str:
    blocked: list[str] = []
    for page in _pages_of(item):
        watch = _WATCHES.get(id(page.context))
        if watch is not None:
            blocked += watch.blocked
            watch.blocked.clear()
    if not blocked:
        return ""
    return "the page tried to leave 127.0.0.1 (blocked):\n  " + "\n  ".join(blocked)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    try:
        result = yield
    except BaseException as error:
        if message := _drain_blocked(item):
            error.add_note(message)
        raise
    if message := _drain_blocked(item):
        pytest.fail(message)
    return result


def _slug(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])[:150]


def _save_artifacts(item: pytest.Item, pages: list[Page]) -> list[str]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    saved: list[str] = []
    for index, page in enumerate(pages):
        if page.is_closed():
            continue
        stem = ARTIFACTS / (_slug(item.nodeid) + (f"-{index}" if index else ""))
        try:
            page.screenshot(path=str(stem) + ".png", full_page=True, timeout=5_000)
            saved.append(f"screenshot: {stem}.png (at {page.url})")
            Path(str(stem) + ".html").write_text(page.content())
            saved.append(f"html: {stem}.html")
        except Exception as error:  # a broken page must not hide the test's own failure
            saved.append(f"screenshot failed: {error}")
    return saved


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    setattr(item, "rep_" + report.when, report)  # for fixtures that look at their test's fate
    if report.failed and report.when in ("setup", "call"):
        saved = _save_artifacts(item, _pages_of(item))
        desk = getattr(item, "funcargs", {}).get("desk") or getattr(item, "funcargs", {}).get(
            "fresh_desk"
        )
        if isinstance(desk, RunningDesk):
            saved.append(f"server log: {desk.log}")
            log = desk.log.read_text(errors="replace") if desk.log.exists() else ""
            if "Traceback" in log:
                last = log[log.rindex("Traceback") :].splitlines()[:60]
                saved.append("last server traceback (maybe an earlier test's):\n" + "\n".join(last))
        if saved:
            report.sections.append(("browser artifacts", "\n".join(saved)))
    return report
