"""The broker login in the browser: Settings -> Broker, credentials, "Log in to Zerodha" through
the fake Kite Connect's login page and back to the desk's callback, trading live, and the
re-login banner when the broker stops accepting the token. Its own desk, pointed at the fake
(BROKER_ENDPOINTS); everything on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ADMIN, close_context, open_context, sign_in
from tests.conftest import STRONG_PASSWORD
from tests.fakes.kite import FakeKite
from tests.support import RunningDesk

TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def kite() -> Iterator[FakeKite]:
    fake = FakeKite.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def live_desk(tmp_path_factory: pytest.TempPathFactory, kite: FakeKite) -> Iterator[RunningDesk]:
    running = RunningDesk(
        Path(tmp_path_factory.mktemp("broker-login-desk")), BROKER_ENDPOINTS=kite.endpoints
    )
    running.start()
    running.cli("user", "create", ADMIN, "--email", "admin@example.com",
                "--password", STRONG_PASSWORD, "--admin")  # fmt: skip
    # The app registered at the (fake) broker sends logins back to this desk's callback.
    kite.redirect_url = f"{running.url}/settings/broker/zerodha/callback"
    yield running
    running.stop()


@pytest.fixture
def trader_page(browser: Browser, live_desk: RunningDesk) -> Iterator[Page]:
    context = open_context(browser)
    page = context.new_page()
    sign_in(page, live_desk.url)
    yield page
    close_context(context)


def test_log_in_to_zerodha_trade_live_and_log_in_again_after_expiry(
    trader_page: Page, live_desk: RunningDesk, kite: FakeKite
) -> None:
    page, base = trader_page, live_desk.url
    page.goto(base + "/settings")
    page.get_by_role("link", name="Broker", exact=True).click()
    expect(page.get_by_role("heading", name="Zerodha (Kite Connect)")).to_be_visible()

    section = page.locator(
        "section", has=page.get_by_role("heading", name="Zerodha (Kite Connect)")
    )
    section.get_by_label("API key").fill(kite.api_key)
    section.get_by_label("API secret").fill(kite.api_secret)
    section.get_by_label("Client ID").fill(kite.user_id)
    section.get_by_role("button", name="Save Zerodha (Kite Connect) credentials").click()
    expect(page.get_by_role("status").filter(has_text="credentials saved")).to_be_visible()
    assert kite.api_secret not in page.content()

    # The login round trip: the desk -> the broker's login page -> the desk's callback.
    section.get_by_role("button", name="Log in to Zerodha (Kite Connect)").click()
    page.wait_for_url(re.compile(re.escape(base) + r"/settings/broker(\?.*)?$"))
    expect(page.get_by_role("status").filter(has_text="Logged in to Zerodha")).to_be_visible()
    expect(section.get_by_text("Logged in until 06:00 IST")).to_be_visible()

    page.get_by_role("radio", name="Zerodha (Kite Connect)").check()
    page.get_by_role("button", name="Save broker").click()
    expect(page.get_by_role("status").filter(has_text="Orders now go to Zerodha")).to_be_visible()

    key = live_desk.cli("apikey", "create", ADMIN).strip().splitlines()[-1]
    placed = httpx.post(
        base + "/api/v1/placeorder",
        json={"apikey": key, "symbol": "SBIN", "exchange": "NSE", "action": "BUY",
              "quantity": 1, "pricetype": "MARKET", "product": "MIS", "strategy": "browser"},
        timeout=30,
    ).json()  # fmt: skip
    assert placed["status"] == "success" and placed["mode"] == "live", placed
    page.goto(base + "/orders")
    expect(page.locator(f'tr[data-order-id="{placed["orderid"]}"]')).to_be_visible()

    # The broker stops accepting the token: the next call ends the session, every page
    # shows the banner, and its button logs in again.
    kite.expire_tokens()
    page.goto(base + "/positions")
    banner = page.locator('[data-field="broker-banner"]')
    expect(banner).to_contain_text("Broker session expired at 06:00 IST", timeout=TIMEOUT_MS)
    banner.get_by_role("button", name="Log in to the broker").click()
    page.wait_for_url(re.compile(re.escape(base) + r"/settings/broker(\?.*)?$"))
    expect(page.get_by_role("status").filter(has_text="Logged in to Zerodha")).to_be_visible()
    page.goto(base + "/")
    expect(page.locator('[data-field="broker-banner"]')).to_have_count(0)
