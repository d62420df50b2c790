"""Every signed-in page in real Chromium: loads clean offline, navigation, accessibility, the
order ticket by keyboard alone, the dark theme, and live updates from orders placed by a program.

These share one desk whose admin was made with the CLI (tests/browser/conftest.py); the trader's
day from /setup onwards is tests/browser/test_trading_desk.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from openalgo import api as OpenAlgo
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.a11y import audit, chromium_name
from tests.browser.conftest import (
    ADMIN,
    SIGNED_IN_PAGES,
    close_context,
    open_context,
    watch_of,
)
from tests.support import RunningDesk

pytestmark = [pytest.mark.slow, pytest.mark.browser]

NAV_ORDER = [
    "Dashboard", "Orders", "Trades", "Positions", "Holdings", "Funds", "Market", "Sandbox",
    "Action Center", "API key", "API logs", "Audit", "Settings", "API docs",
]  # fmt: skip
Theme = Literal["light", "dark"]
SETTLE_MS = 750  # after "load": late scripts, the Socket.IO handshake
LIVE_MS = 10_000
TICKET_LABELS = ["Instrument", "Exchange", "Quantity", "Price type", "Product", "Price",
                 "Trigger price"]  # fmt: skip
MAX_TABS = 60
# The ticket and the theme live in base.html: test them on a page that has been stable for long,
# so a fault on the dashboard does not hide theirs.
STABLE_PAGE = "/apikey"


def main_nav(page: Page) -> Locator:
    """The top bar's navigation (pages may have navigation landmarks of their own)."""
    return page.get_by_role("banner").get_by_role("navigation")


def visit(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, (
        f"{url}: HTTP {response.status if response else '(none)'}"
    )
    page.wait_for_load_state("load")
    page.wait_for_timeout(SETTLE_MS)


@pytest.fixture(scope="package")
def program(desk: RunningDesk) -> OpenAlgo:
    """The admin's API client: a program trading on the same account as the pages."""
    key = desk.cli("apikey", "create", ADMIN).strip().splitlines()[-1]
    return OpenAlgo(api_key=key, host=desk.url, timeout=60)


# --- pages load, offline and clean ------------------------------------------------------------


@pytest.mark.parametrize("name", list(SIGNED_IN_PAGES))
def test_page_loads_clean_offline(page: Page, base_url: str, name: str) -> None:
    visit(page, base_url + SIGNED_IN_PAGES[name])
    assert page.url.startswith(base_url + SIGNED_IN_PAGES[name]), f"redirected to {page.url}"
    problems = watch_of(page).problems()
    assert not problems, "\n".join(problems)
    expect(page.get_by_role("heading", level=1).first).to_be_visible()
    current = main_nav(page).get_by_role("link", name=name, exact=True)
    expect(current).to_have_attribute("aria-current", "page")
    expect(main_nav(page).locator('[aria-current="page"]')).to_have_count(1)


def test_pages_with_orders_and_positions_load_clean(
    page: Page, base_url: str, flat: OpenAlgo
) -> None:
    """The same, with rows in every book: an open order, a trade, a position."""
    resting_limit(flat, "SBIN")
    placed = flat.placeorder(symbol="INFY", exchange="NSE", action="BUY", price_type="MARKET",
                             product="MIS", quantity=1, strategy="browser")  # fmt: skip
    assert placed["status"] == "success", placed
    broken = []
    for name, path in SIGNED_IN_PAGES.items():
        tab = page.context.new_page()  # a tab each: no aborted request of the last page counts
        watch_of(tab).clear()
        response = tab.goto(base_url + path)
        tab.wait_for_load_state("load")
        tab.wait_for_timeout(SETTLE_MS)
        status = response.status if response else 0
        problems = watch_of(tab).problems()
        if status != 200 or problems:
            broken.append(f"{name} ({path}): HTTP {status}\n    " + "\n    ".join(problems))
        tab.close()
    assert not broken, "\n".join(broken)


def test_navigation_follows_the_contract(page: Page, base_url: str) -> None:
    visit(page, base_url + "/")
    links = main_nav(page).get_by_role("link")
    expect(links).to_have_text(NAV_ORDER)
    for name, path in SIGNED_IN_PAGES.items():
        link = main_nav(page).get_by_role("link", name=name, exact=True)
        expect(link).to_have_attribute("href", path)
    expect(page.get_by_role("button", name="New order")).to_be_visible()


def test_new_order_opens_the_ticket_on_every_page(page: Page, base_url: str) -> None:
    missing = []
    for name, path in SIGNED_IN_PAGES.items():
        visit(page, base_url + path)
        page.get_by_role("button", name="New order").click()
        ticket = page.get_by_role("dialog", name="Order ticket")
        try:
            expect(ticket).to_be_visible(timeout=3_000)
        except AssertionError:
            missing.append(name)
            continue
        page.keyboard.press("Escape")
        expect(ticket).to_be_hidden()
    assert not missing, f"no order ticket on: {missing}"


# --- accessibility -----------------------------------------------------------------------------


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("name", list(SIGNED_IN_PAGES))
def test_accessibility(page: Page, base_url: str, name: str, theme: Theme) -> None:
    page.emulate_media(color_scheme=theme)  # the desk's "auto" theme follows the system
    visit(page, base_url + SIGNED_IN_PAGES[name])
    findings = audit(page)
    assert not findings, f"{name} ({theme}):\n" + "\n".join(findings)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_accessibility_of_the_order_ticket(page: Page, base_url: str, theme: Theme) -> None:
    page.emulate_media(color_scheme=theme)
    visit(page, base_url + STABLE_PAGE)
    page.get_by_role("button", name="New order").click()
    ticket = page.get_by_role("dialog", name="Order ticket")
    expect(ticket).to_be_visible()
    ticket.get_by_label("Price type", exact=True).select_option("SL")  # every field showing
    findings = audit(page, 'dialog[open], [role="dialog"]')
    assert not findings, f"order ticket ({theme}):\n" + "\n".join(findings)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_accessibility_signed_out(browser: Browser, desk: RunningDesk, theme: str) -> None:
    context = open_context(browser, color_scheme=theme)
    try:
        page = context.new_page()
        visit(page, desk.url + "/login")
        findings = audit(page)
        assert not findings, f"sign-in page ({theme}):\n" + "\n".join(findings)
        assert not watch_of(page).problems(), watch_of(page).problems()
        assert not watch_of(page).blocked, watch_of(page).blocked
    finally:
        close_context(context)


# --- the order ticket --------------------------------------------------------------------------


def open_ticket(page: Page, base_url: str) -> Locator:
    visit(page, base_url + STABLE_PAGE)
    page.get_by_role("button", name="New order").click()
    ticket = page.get_by_role("dialog", name="Order ticket")
    expect(ticket).to_be_visible()
    return ticket


def test_every_ticket_input_has_its_label(page: Page, base_url: str) -> None:
    ticket = open_ticket(page, base_url)
    for label in TICKET_LABELS:
        expect(ticket.get_by_label(label, exact=True), label).to_have_count(1)
    expect(ticket.get_by_role("combobox", name="Instrument")).to_have_attribute(
        "aria-autocomplete", "list"
    )
    side = ticket.get_by_role("radiogroup", name="Side")
    expect(side.get_by_role("radio", name="Buy", exact=True)).to_have_count(1)
    expect(side.get_by_role("radio", name="Sell", exact=True)).to_have_count(1)
    price_type = ticket.get_by_label("Price type", exact=True)
    expect(price_type.locator("option")).to_have_text(["MARKET", "LIMIT", "SL", "SL-M"])
    expect(ticket.get_by_label("Product", exact=True).locator("option")).to_have_text(
        ["MIS", "CNC", "NRML"]
    )
    price_type.select_option("SL")
    for label in ("Price", "Trigger price"):
        expect(ticket.get_by_label(label, exact=True), label).to_be_visible()
    for field_name, label in (("margin", "Margin required"), ("charges", "Charges")):
        selector = f'dialog[aria-label="Order ticket"] [data-field="{field_name}"]'
        expect(page.locator(selector), field_name).to_have_count(1)
        assert label in chromium_name(page, selector), f"{field_name} is not labelled {label!r}"
    expect(ticket.get_by_role("button", name="Place order")).to_be_visible()
    # No input, select or textarea in the dialog without a label.
    unlabelled = ticket.locator("input:not([type=hidden]), select, textarea").evaluate_all(
        """els => els.filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                && !e.getAttribute('aria-labelledby')).map(e => e.outerHTML.slice(0, 120))"""
    )
    assert not unlabelled, unlabelled


def is_focused(locator: Locator) -> bool:
    return bool(locator.evaluate("el => el === document.activeElement"))


def tab_to(page: Page, locator: Locator, what: str) -> None:
    """Press Tab (at most MAX_TABS times) until `locator` has the focus."""
    for _ in range(MAX_TABS):
        if locator.count() and is_focused(locator.first):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {what}")


def test_order_ticket_by_keyboard_alone(page: Page, base_url: str, program: OpenAlgo) -> None:
    visit(page, base_url + STABLE_PAGE)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    tab_to(page, page.get_by_role("button", name="New order"), '"New order"')
    page.keyboard.press("Enter")
    ticket = page.get_by_role("dialog", name="Order ticket")
    expect(ticket).to_be_visible()
    inside = ticket.evaluate("el => el.contains(document.activeElement)")
    assert inside, "opening the ticket did not move the focus into it"

    box = ticket.get_by_role("combobox", name="Instrument")
    tab_to(page, box, "Instrument")
    page.keyboard.type("SBIN")
    expect(page.get_by_role("option", name=re.compile(r"^SBIN NSE\b")).first).to_be_visible()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(box).to_have_value(re.compile("SBIN"))

    exchange = ticket.get_by_label("Exchange", exact=True)
    tab_to(page, exchange, "Exchange")
    if exchange.input_value() != "NSE":
        page.keyboard.type("NSE")
    expect(exchange).to_have_value("NSE")

    buy = ticket.get_by_role("radio", name="Buy", exact=True)
    sell = ticket.get_by_role("radio", name="Sell", exact=True)
    tab_to(page, buy.or_(sell), "Side")
    if is_focused(sell):
        page.keyboard.press("ArrowUp")  # arrows move (and check) within a radio group
    page.keyboard.press("Space")
    expect(buy).to_be_checked()

    quantity = ticket.get_by_label("Quantity", exact=True)
    tab_to(page, quantity, "Quantity")
    page.keyboard.press("Control+A")
    page.keyboard.type("1")
    expect(quantity).to_have_value("1")

    price_type = ticket.get_by_label("Price type", exact=True)
    tab_to(page, price_type, "Price type")
    page.keyboard.type("MARKET")
    expect(price_type).to_have_value("MARKET")

    product = ticket.get_by_label("Product", exact=True)
    tab_to(page, product, "Product")
    page.keyboard.type("MIS")
    expect(product).to_have_value("MIS")

    tab_to(page, ticket.get_by_role("button", name="Place order"), '"Place order"')
    page.keyboard.press("Space")
    status = ticket.get_by_role("status").filter(has_text=re.compile(r"Order \S+ placed"))
    expect(status).to_be_visible()
    order_id = re.search(r"Order (\S+) placed", status.inner_text())
    assert order_id
    placed = program.orderstatus(order_id=order_id.group(1))["data"]
    assert placed["action"] == "BUY" and int(placed["quantity"]) == 1, placed

    page.keyboard.press("Escape")
    expect(ticket).to_be_hidden()


def test_ticket_shows_server_errors(page: Page, base_url: str) -> None:
    ticket = open_ticket(page, base_url)
    box = ticket.get_by_role("combobox", name="Instrument")
    box.fill("SBIN")
    page.get_by_role("option", name=re.compile(r"^SBIN NSE\b")).first.click()
    ticket.get_by_label("Quantity", exact=True).fill("1")
    ticket.get_by_label("Price type", exact=True).select_option("LIMIT")
    ticket.get_by_label("Price", exact=True).fill("0.01")  # far outside the price band
    ticket.get_by_role("button", name="Place order").click()
    expect(ticket.get_by_role("alert")).to_have_text(re.compile(r"\w"))
    expect(ticket).to_be_visible()


# --- the theme ---------------------------------------------------------------------------------


def background_luminance(page: Page) -> float:
    value: Any = page.evaluate(
        """() => {
            const c = document.createElement('canvas').getContext('2d');
            c.fillStyle = getComputedStyle(document.body).backgroundColor;
            c.fillRect(0, 0, 1, 1);
            const [r, g, b] = c.getImageData(0, 0, 1, 1).data;
            return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
        }"""
    )
    return float(value)


def test_dark_theme_toggles_and_sticks(page: Page, base_url: str) -> None:
    page.emulate_media(color_scheme="light")
    visit(page, base_url + STABLE_PAGE)
    assert background_luminance(page) > 0.5
    toggle = page.locator("#theme-toggle")
    toggle.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert background_luminance(page) < 0.3
    visit(page, base_url + "/settings")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert background_luminance(page) < 0.3, "the choice did not survive a page change"
    page.locator("#theme-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert background_luminance(page) > 0.5


def test_theme_toggle_says_what_it_does(page: Page, base_url: str) -> None:
    visit(page, base_url + STABLE_PAGE)
    expect(page.locator("#theme-toggle")).to_have_accessible_name(
        re.compile(r"theme|dark|light", re.I)
    )


# --- pages follow a program's orders live ------------------------------------------------------


@pytest.fixture
def flat(program: OpenAlgo) -> Iterator[OpenAlgo]:
    """No open orders or positions before or after."""
    program.cancelallorder(strategy="browser")
    program.closeposition(strategy="browser")
    yield program
    program.cancelallorder(strategy="browser")
    program.closeposition(strategy="browser")


def mark_document(page: Page) -> None:
    page.evaluate("window.__dalalNoReload = 'kept'")


def assert_not_reloaded(page: Page) -> None:
    kept = page.evaluate("window.__dalalNoReload")
    navigations = page.evaluate("performance.getEntriesByType('navigation').length")
    assert kept == "kept" and navigations == 1, "the page reloaded or navigated"


def test_order_book_adds_a_programs_order_live(page: Page, base_url: str, flat: OpenAlgo) -> None:
    visit(page, base_url + "/orders")
    mark_document(page)
    ltp = float(flat.quotes(symbol="INFY", exchange="NSE")["data"]["ltp"])
    placed = flat.placeorder(symbol="INFY", exchange="NSE", action="BUY", price_type="LIMIT",
                             product="MIS", quantity=1, price=float(int(ltp * 0.95)),
                             strategy="browser")  # fmt: skip
    assert placed["status"] == "success", placed
    row = page.get_by_role("table", name="Order book").locator(
        f'tr[data-order-id="{placed["orderid"]}"]'
    )
    expect(row.locator('[data-field="status"]')).to_have_text(
        re.compile(r"^\s*open\s*$"), timeout=LIVE_MS
    )
    flat.cancelorder(order_id=placed["orderid"], strategy="browser")
    expect(row.locator('[data-field="status"]')).to_have_text(
        re.compile(r"^\s*cancelled\s*$"), timeout=LIVE_MS
    )
    assert_not_reloaded(page)


@pytest.mark.parametrize("path", ["/positions", "/"])
def test_positions_and_funds_follow_a_programs_trade_live(
    page: Page, base_url: str, flat: OpenAlgo, path: str
) -> None:
    visit(page, base_url + path)
    mark_document(page)
    placed = flat.placeorder(symbol="TCS", exchange="NSE", action="BUY", price_type="MARKET",
                             product="MIS", quantity=3, strategy="browser")  # fmt: skip
    assert placed["status"] == "success", placed
    row = page.get_by_role("table", name="Positions").locator(
        'tr[data-symbol="TCS"][data-exchange="NSE"][data-product="MIS"]'
    )
    expect(row.locator('[data-field="quantity"]')).to_have_text(
        re.compile(r"^\s*\+?3\s*$"), timeout=LIVE_MS
    )
    ltp = row.locator('[data-field="ltp"]')
    first = ltp.inner_text()
    expect(ltp).not_to_have_text(first, timeout=LIVE_MS)  # prices tick on the page
    assert_not_reloaded(page)


def test_funds_page_follows_a_programs_trade_live(
    page: Page, base_url: str, flat: OpenAlgo
) -> None:
    visit(page, base_url + "/funds")
    mark_document(page)
    available = page.locator('[data-field="available"]').first
    before = available.inner_text()
    placed = flat.placeorder(symbol="ITC", exchange="NSE", action="BUY", price_type="MARKET",
                             product="CNC", quantity=5, strategy="browser")  # fmt: skip
    assert placed["status"] == "success", placed
    expect(available).not_to_have_text(before, timeout=LIVE_MS)
    assert_not_reloaded(page)


def resting_limit(program: OpenAlgo, symbol: str) -> str:
    """A BUY LIMIT 5% under the market, so it rests; its order id."""
    ltp = float(program.quotes(symbol=symbol, exchange="NSE")["data"]["ltp"])
    placed = program.placeorder(symbol=symbol, exchange="NSE", action="BUY", price_type="LIMIT",
                                product="MIS", quantity=1, price=float(int(ltp * 0.95)),
                                strategy="browser")  # fmt: skip
    assert placed["status"] == "success", placed
    return str(placed["orderid"])


def test_modify_dialog_follows_the_contract(page: Page, base_url: str, flat: OpenAlgo) -> None:
    order_id = resting_limit(flat, "HDFCBANK")
    visit(page, base_url + "/orders")
    row = page.get_by_role("table", name="Order book").locator(f'tr[data-order-id="{order_id}"]')
    row.get_by_role("button", name="Modify").click()
    dialog = page.get_by_role("dialog", name="Modify order")
    expect(dialog).to_be_visible()
    wrong = []
    for label in ("Quantity", "Price type", "Price", "Trigger price"):
        if dialog.get_by_label(label, exact=True).count() != 1:
            wrong.append(label)
    assert not wrong, (
        f"no control labelled exactly {wrong} (a <select> inside its <label> "
        "takes its options' text into the label)"
    )
    expect(dialog.get_by_role("button", name="Save changes")).to_be_visible()
    findings = audit(page, "dialog[open]")
    assert not findings, "\n".join(findings)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_cancel_all_orders_from_the_order_book(page: Page, base_url: str, flat: OpenAlgo) -> None:
    orders = [resting_limit(flat, "INFY"), resting_limit(flat, "ITC")]
    visit(page, base_url + "/orders")
    mark_document(page)
    book = page.get_by_role("table", name="Order book")
    page.get_by_role("button", name="Cancel all orders").click()
    for order_id in orders:
        expect(book.locator(f'tr[data-order-id="{order_id}"] [data-field="status"]')).to_have_text(
            re.compile(r"^\s*cancelled\s*$"), timeout=LIVE_MS
        )
    assert_not_reloaded(page)


def test_close_all_positions(page: Page, base_url: str, flat: OpenAlgo) -> None:
    for symbol in ("RELIANCE", "WIPRO"):
        placed = flat.placeorder(symbol=symbol, exchange="NSE", action="BUY", price_type="MARKET",
                                 product="MIS", quantity=2, strategy="browser")  # fmt: skip
        assert placed["status"] == "success", placed
    visit(page, base_url + "/positions")
    mark_document(page)
    table = page.get_by_role("table", name="Positions")
    expect(table.get_by_role("button", name="Close", exact=True)).not_to_have_count(0)
    page.get_by_role("button", name="Close all positions").click()
    expect(table.get_by_role("button", name="Close", exact=True)).to_have_count(0, timeout=LIVE_MS)
    book = flat.positionbook()["data"]
    assert all(int(p["quantity"]) == 0 for p in book), book
    assert_not_reloaded(page)
