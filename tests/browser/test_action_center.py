"""The Action Center in real Chromium: semi-auto mode switched on the API key page, orders from
the REST API held for approval and shown live, approve and reject (a reason in a dialog, by
keyboard too), "Approve all" / "Reject all", an approval the kill switch refuses, the
Dashboard's pending count, the order book's origin of an approved order, and the accessibility of
the reject dialog and the risk limits page (which is no nav link, so SIGNED_IN_PAGES cannot hold
it).

These share the package's desk (tests/browser/conftest.py, package scope) with test_pages.py, so
every test leaves it as it found it: the admin back in auto mode (CLI), nothing of its own
pending, its resting orders cancelled, the kill switch off. Orders are BUY LIMITs 5% under the
market, so an approved one rests (nothing fills, no position is left behind).
Selectors are the accessible names of tests/browser/CONTRACT.md.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import pytest
from playwright.sync_api import Locator, Page, Request, expect

from tests.browser.a11y import audit, chromium_name
from tests.browser.conftest import ADMIN, watch_of
from tests.support import RunningDesk

pytestmark = [pytest.mark.slow, pytest.mark.browser]

STRATEGY = "ac-browser"
ALGO_ID = "ACBROWSER01"
ORIGIN = f"api · {STRATEGY} · {ALGO_ID}"
LIVE_MS = 10_000  # a push must show within this long
SETTLE_MS = 750  # after "load": late scripts, the Socket.IO handshake
KEY_CACHE_S = 1.2  # services/api_keys.py OWNER_TTL_SECONDS (1 s), plus a margin
MAX_TABS = 80
AUTO_RADIO = "Auto: sent to the broker at once"
SEMI_AUTO_RADIO = "Semi-auto: held in the Action Center until you approve them"
EMPTY_PENDING = "Nothing is waiting for approval."
QUEUED_MESSAGE = "Order queued for approval in Action Center"
Theme = Literal["light", "dark"]


# --- the REST API: the program whose orders wait ----------------------------------------------


class Program:
    """The admin's REST client (httpx): queues orders in semi-auto mode, cancels in auto."""

    def __init__(self, desk: RunningDesk) -> None:
        self.desk = desk
        self.key = desk.cli("apikey", "create", ADMIN).strip().splitlines()[-1]
        self.http = httpx.Client(base_url=desk.url + "/api/v1", timeout=60)
        self.placed: list[str] = []  # order ids our approvals made, cancelled after each test

    def call(self, endpoint: str, **body: Any) -> dict[str, Any]:
        response = self.http.post("/" + endpoint, json={"apikey": self.key, **body})
        answer: dict[str, Any] = response.json()
        return answer

    def limit_price(self, symbol: str) -> float:
        quote = self.call("quotes", symbol=symbol, exchange="NSE")
        assert quote["status"] == "success", quote
        return float(int(float(quote["data"]["ltp"]) * 0.95))  # whole rupees: on the tick grid

    def queue(self, symbol: str, quantity: int) -> int:
        """POST /api/v1/placeorder in semi-auto mode: the pending order's id."""
        answer = self.call(
            "placeorder", strategy=STRATEGY, algo_id=ALGO_ID, symbol=symbol, exchange="NSE",
            action="BUY", quantity=quantity, pricetype="LIMIT", product="MIS",
            price=self.limit_price(symbol),
        )  # fmt: skip
        assert answer.get("status") == "success", answer
        assert answer.get("mode") == "semi_auto", f"not held for approval: {answer}"
        assert answer.get("message") == QUEUED_MESSAGE, answer
        assert "orderid" not in answer, answer
        return int(answer["pending_order_id"])

    def order_status(self, order_id: str) -> str:
        answer = self.call("orderstatus", orderid=order_id, strategy=STRATEGY)
        assert answer["status"] == "success", answer
        return str(answer["data"]["order_status"])

    def cancel_placed(self) -> None:
        for order_id in self.placed:
            self.call("cancelorder", orderid=order_id, strategy=STRATEGY)  # may be done already
        self.placed.clear()

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def program(desk: RunningDesk) -> Iterator[Program]:
    client = Program(desk)
    yield client
    client.close()


def set_order_mode(desk: RunningDesk, mode: str) -> None:
    """`flask --app app order-mode admin MODE`, then outlast the desk's one-second key cache
    (the CLI is another process, so the desk cannot forget its cached owner at once)."""
    desk.cli("order-mode", ADMIN, mode)
    time.sleep(KEY_CACHE_S)


def csrf_token(page: Page) -> str:
    return str(page.locator('meta[name="csrf-token"]').get_attribute("content") or "")


def reject_leftovers(page: Page, base_url: str) -> None:
    """Reject whatever a failed test left pending (the page's own form endpoint)."""
    page.goto(base_url + "/action-center")
    token = csrf_token(page)
    page.request.post(
        base_url + "/action-center/reject-all",
        form={"csrf_token": token, "reason": "browser test clean-up"},
        headers={"Accept": "application/json", "X-CSRFToken": token},
    )


@pytest.fixture
def clean_desk(page: Page, base_url: str, desk: RunningDesk, program: Program) -> Iterator[Program]:
    """After the test: auto mode, nothing pending, our resting orders cancelled."""
    yield program
    set_order_mode(desk, "auto")
    program.cancel_placed()
    reject_leftovers(page, base_url)


@pytest.fixture
def semi_auto(clean_desk: Program, desk: RunningDesk) -> Program:
    """The admin in semi-auto mode (CLI) for the test."""
    set_order_mode(desk, "semi_auto")
    return clean_desk


# --- helpers -----------------------------------------------------------------------------------


def visit(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, (
        f"{url}: HTTP {response.status if response else '(none)'}"
    )
    page.wait_for_load_state("load")
    page.wait_for_timeout(SETTLE_MS)


def mark_document(page: Page) -> None:
    """Tag the loaded document: a reload or navigation would lose the tag."""
    page.evaluate("window.__dalalNoReload = 'kept'")


def assert_not_reloaded(page: Page) -> None:
    kept = page.evaluate("window.__dalalNoReload")
    navigations = page.evaluate("performance.getEntriesByType('navigation').length")
    assert kept == "kept" and navigations == 1, "the page reloaded or navigated"


def pending_table(page: Page) -> Locator:
    return page.get_by_role("table", name="Pending orders")


def decisions_table(page: Page) -> Locator:
    return page.get_by_role("table", name="Decisions")


def pending_row(page: Page, pending_id: int) -> Locator:
    return pending_table(page).locator(f'tr[data-pending-id="{pending_id}"]')


def decision_row(page: Page, pending_id: int) -> Locator:
    return decisions_table(page).locator(f'tr[data-pending-id="{pending_id}"]')


def cells(row: Locator) -> dict[str, str]:
    """A row's cells by its table's column headings (as the trader reads them)."""
    found: dict[str, str] = row.evaluate(
        """row => {
            const heads = [...row.closest('table').querySelectorAll('thead th')]
                .map(th => th.textContent.trim());
            const out = {};
            [...row.cells].forEach((cell, i) => {
                out[heads[i] || String(i)] = cell.innerText.replace(/\\s+/g, ' ').trim();
            });
            return out;
        }"""
    )
    return found


def page_status(page: Page) -> Locator:
    return page.locator('[data-role="action-status"]')


def page_alert(page: Page) -> Locator:
    return page.locator('[data-role="action-alert"]')


def is_focused(locator: Locator) -> bool:
    return bool(locator.evaluate("el => el === document.activeElement"))


def tab_to(page: Page, locator: Locator, what: str) -> None:
    """Press Tab (at most MAX_TABS times) until `locator` has the focus."""
    for _ in range(MAX_TABS):
        if locator.count() and is_focused(locator.first):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {what}")


def decided_order_id(page: Page, pending_id: int) -> str:
    """The order id the Decisions row shows for an approved pending order."""
    row = decision_row(page, pending_id)
    expect(row).to_be_visible(timeout=LIVE_MS)
    expect(row.locator("span.status")).to_have_text("approved")
    code = row.locator("code")
    expect(code).to_have_count(1)
    return code.inner_text().strip()


def reject_through_dialog(page: Page, opener: Locator, title: str, reason: str) -> None:
    opener.click()
    dialog = page.get_by_role("dialog", name=title)
    expect(dialog).to_be_visible()
    dialog.get_by_label("Reason", exact=True).fill(reason)
    dialog.get_by_role("button", name="Reject", exact=True).click()
    expect(dialog).to_be_hidden()


def no_crash_and_only(page: Page, allowed: list[str]) -> None:
    """No uncaught script error; HTTP errors only from requests whose URL contains one of
    `allowed` (an action the desk was meant to refuse; Chromium also logs those to the
    console as "Failed to load resource")."""
    watch = watch_of(page)
    crashes = [e for e in watch.console_errors if not e.startswith("Failed to load resource")]
    assert not crashes, crashes
    unexpected = [r for r in watch.failed_requests if not any(a in r for a in allowed)]
    assert not unexpected, unexpected


# --- the semi-auto day ---------------------------------------------------------------------------


def test_semi_auto_day(page: Page, base_url: str, clean_desk: Program) -> None:
    program = clean_desk
    # The API key page switches the mode, says so, and shows it after a reload.
    visit(page, base_url + "/apikey")
    mode = page.get_by_role("region", name="Order mode")
    semi = mode.get_by_role("radio", name=SEMI_AUTO_RADIO)
    expect(mode.get_by_role("radio", name=AUTO_RADIO)).to_be_checked()
    semi.check()
    mode.get_by_role("button", name="Save order mode").click()
    expect(
        page.get_by_role("status").filter(has_text="Order mode is now Semi-auto.")
    ).to_be_visible()
    page.reload()
    expect(
        page.get_by_role("region", name="Order mode").get_by_role("radio", name=SEMI_AUTO_RADIO)
    ).to_be_checked()
    expect(page.get_by_role("radio", name=AUTO_RADIO)).not_to_be_checked()

    # The Action Center: nothing waiting yet.
    page.get_by_role("banner").get_by_role("link", name="Action Center", exact=True).click()
    expect(page).to_have_url(base_url + "/action-center")
    expect(page.get_by_role("heading", level=1)).to_have_text("Action Center")
    expect(page.locator('[data-field="order-mode-note"]')).to_contain_text("Semi-auto")
    expect(pending_table(page).get_by_text(EMPTY_PENDING)).to_be_visible()
    page.wait_for_timeout(SETTLE_MS)  # Socket.IO connected
    watch_of(page).clear()  # loads the reload and the link click cut short are not this page's
    mark_document(page)

    # Two orders from a program appear live, no reload.
    first = program.queue("SBIN", 3)
    second = program.queue("INFY", 2)
    for pending_id, symbol, quantity in ((first, "SBIN", 3), (second, "INFY", 2)):
        row = pending_row(page, pending_id)
        expect(row).to_be_visible(timeout=LIVE_MS)
        shown = cells(row)
        assert shown["Source"] == "api", shown
        assert shown["Strategy"].startswith(STRATEGY), shown
        assert ALGO_ID in shown["Strategy"], shown
        assert shown["Symbol"].split()[0] == symbol, shown
        assert shown["Side"] == "BUY", shown
        assert shown["Qty"] == str(quantity), shown
        expect(row.get_by_role("button", name=f"Approve order {pending_id}")).to_be_visible()
        expect(row.get_by_role("button", name=f"Reject order {pending_id}")).to_be_visible()
    expect(pending_table(page).get_by_text(EMPTY_PENDING)).to_be_hidden()

    # Approve the first: it leaves the queue and becomes an order, with its origin.
    pending_row(page, first).get_by_role("button", name=f"Approve order {first}").click()
    expect(page_status(page)).to_have_text(re.compile(rf"^Order {first} approved: \S+"))
    expect(pending_row(page, first)).to_have_count(0)
    order_id = decided_order_id(page, first)
    program.placed.append(order_id)
    assert program.order_status(order_id) == "open"
    expect(pending_row(page, second)).to_be_visible()

    # Reject the second, by keyboard: reachable by Tab, Enter opens, Escape closes.
    reject = pending_row(page, second).get_by_role("button", name=f"Reject order {second}")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    tab_to(page, reject, f'"Reject order {second}"')
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=f"Reject order {second}")
    expect(dialog).to_be_visible()
    reason = dialog.get_by_label("Reason", exact=True)
    expect(reason).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(reject).to_be_focused()  # back where the trader was
    expect(pending_row(page, second)).to_be_visible()

    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(reason).to_be_focused()
    # An empty reason goes nowhere (the field is required).
    sent: list[str] = []

    def on_request(request: Request) -> None:
        if request.method == "POST" and "/action-center/" in request.url:
            sent.append(request.url)

    page.on("request", on_request)
    dialog.get_by_role("button", name="Reject", exact=True).click()
    page.wait_for_timeout(300)
    refused_in_browser = bool(reason.evaluate("el => !el.checkValidity()"))
    if refused_in_browser:
        assert not sent, f"an empty reason was sent: {sent}"
    else:
        expect(dialog.get_by_role("alert")).to_have_text(re.compile(r"reason", re.I))
    expect(dialog).to_be_visible()
    # Blanks pass the browser's check; the desk refuses them and says why, in the dialog.
    reason.fill("   ")
    dialog.get_by_role("button", name="Reject", exact=True).click()
    expect(dialog.get_by_role("alert")).to_have_text(re.compile(r"reason", re.I))
    expect(dialog).to_be_visible()
    expect(pending_row(page, second)).to_be_visible()
    # A real reason: it moves to Decisions with the reason.
    reason.fill("Spread too wide")
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page_status(page)).to_have_text(f"Order {second} rejected")
    expect(pending_row(page, second)).to_have_count(0)
    rejected = decision_row(page, second)
    expect(rejected).to_be_visible(timeout=LIVE_MS)
    expect(rejected.locator("span.status")).to_have_text("rejected")
    expect(rejected).to_contain_text("Spread too wide")
    expect(rejected.locator("code")).to_have_count(0)  # no order was made
    shown = cells(rejected)
    assert shown["Source"] == "api" and shown["Strategy"] == STRATEGY, shown
    assert shown["By"] == ADMIN, shown
    expect(pending_table(page).get_by_text(EMPTY_PENDING)).to_be_visible()
    assert_not_reloaded(page)
    page.remove_listener("request", on_request)
    no_crash_and_only(page, [f"/action-center/{second}/reject"])

    # The order book shows where the approved order came from.
    visit(page, base_url + "/orders")
    row = page.get_by_role("table", name="Order book").locator(f'tr[data-order-id="{order_id}"]')
    expect(row.locator('[data-field="origin"]')).to_have_text(ORIGIN)
    expect(row.locator('[data-field="status"]')).to_have_text(re.compile(r"^\s*open\s*$"))

    # The Dashboard: nothing pending; the decisions survive a reload of the Action Center.
    visit(page, base_url + "/")
    expect(page.locator('[data-field="pending"]')).to_have_text("0 pending")
    visit(page, base_url + "/action-center")
    expect(decision_row(page, first).locator("code")).to_have_text(order_id)
    expect(decision_row(page, second)).to_contain_text("Spread too wide")


# --- approve all, reject all ---------------------------------------------------------------------


def test_approve_all_and_reject_all(page: Page, base_url: str, semi_auto: Program) -> None:
    program = semi_auto
    # The Dashboard counts the queue live.
    visit(page, base_url + "/")
    pending = page.locator('[data-field="pending"]')
    expect(pending).to_have_text("0 pending")
    mark_document(page)
    queued = [program.queue(symbol, 1) for symbol in ("TCS", "ITC", "WIPRO")]
    expect(pending).to_have_text("3 pending", timeout=LIVE_MS)
    assert_not_reloaded(page)

    visit(page, base_url + "/action-center")
    watch_of(page).clear()  # loads of the last page cut short by leaving it are no fault here
    mark_document(page)
    for pending_id in queued:
        expect(pending_row(page, pending_id)).to_be_visible()
    page.get_by_role("button", name="Approve all", exact=True).click()
    expect(page_status(page)).to_have_text("3 orders approved")
    order_ids = []
    for pending_id in queued:
        expect(pending_row(page, pending_id)).to_have_count(0)
        order_ids.append(decided_order_id(page, pending_id))
    program.placed.extend(order_ids)
    assert len(set(order_ids)) == 3, order_ids
    assert [program.order_status(order_id) for order_id in order_ids] == ["open"] * 3

    # One more, then "Reject all" asks for a reason in the same dialog.
    last = program.queue("HDFCBANK", 1)
    expect(pending_row(page, last)).to_be_visible(timeout=LIVE_MS)
    reject_through_dialog(
        page,
        page.get_by_role("button", name="Reject all", exact=True),
        "Reject all pending orders",
        "End of the session",
    )
    expect(page_status(page)).to_have_text("1 order rejected")
    expect(pending_row(page, last)).to_have_count(0)
    expect(decision_row(page, last).locator("span.status")).to_have_text(
        "rejected", timeout=LIVE_MS
    )
    expect(decision_row(page, last)).to_contain_text("End of the session")
    expect(pending_table(page).get_by_text(EMPTY_PENDING)).to_be_visible()
    assert_not_reloaded(page)
    no_crash_and_only(page, [])


# --- an approval the risk rules refuse -----------------------------------------------------------


def set_kill_switch(page: Page, base_url: str, on: bool) -> None:
    """Through the risk limits page (Settings → Risk limits)."""
    visit(page, base_url + "/settings/risk")
    switch = page.get_by_label("Kill switch", exact=True)
    switch.set_checked(on)
    page.get_by_role("button", name="Save risk limits").click()
    saved = "The kill switch is on" if on else "Risk limits saved."
    expect(page.get_by_role("status").filter(has_text=saved)).to_be_visible()
    expect(page.locator('[data-field="kill_switch"]')).to_contain_text("On" if on else "Off")
    expect(page.get_by_label("Kill switch", exact=True)).to_be_checked(checked=on)


@pytest.fixture
def kill_switch_off(page: Page, base_url: str) -> Iterator[None]:
    """Whatever happens, the kill switch is off after the test."""
    yield
    page.goto(base_url + "/settings/risk")
    if page.get_by_label("Kill switch", exact=True).is_checked():
        set_kill_switch(page, base_url, on=False)


def test_refused_approval_says_why(
    page: Page, base_url: str, semi_auto: Program, kill_switch_off: None
) -> None:
    program = semi_auto
    page.goto(base_url + "/settings")
    page.get_by_role("link", name=re.compile("Risk limits")).first.click()
    expect(page).to_have_url(base_url + "/settings/risk")
    set_kill_switch(page, base_url, on=True)

    pending_id = program.queue("RELIANCE", 1)  # held: the risk rules are checked at approval
    visit(page, base_url + "/action-center")
    watch_of(page).clear()  # loads of the last page cut short by leaving it are no fault here
    mark_document(page)
    row = pending_row(page, pending_id)
    approve = row.get_by_role("button", name=f"Approve order {pending_id}")
    approve.click()
    alert = page.get_by_role("alert").filter(has_text="Approval refused")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(re.compile("kill switch", re.I))
    expect(row).to_be_visible()  # still pending
    expect(approve).to_be_enabled()
    expect(decision_row(page, pending_id)).to_have_count(0)
    assert_not_reloaded(page)
    no_crash_and_only(page, [f"/action-center/{pending_id}/approve"])

    # With the kill switch off again the same order goes through.
    set_kill_switch(page, base_url, on=False)
    visit(page, base_url + "/action-center")
    pending_row(page, pending_id).get_by_role("button", name=f"Approve order {pending_id}").click()
    expect(pending_row(page, pending_id)).to_have_count(0)
    program.placed.append(decided_order_id(page, pending_id))


# --- keyboard users keep their place; decisions show without the push ---------------------------


def focused_element(page: Page) -> str:
    found: str = page.evaluate(
        """() => {
            const e = document.activeElement;
            if (!e || e === document.body) return "<body>";
            return e.tagName.toLowerCase() + " " + (e.getAttribute("aria-label") || e.textContent
                || "").trim().slice(0, 60);
        }"""
    )
    return found


def focus_is_in_pending_orders(page: Page) -> bool:
    inside: bool = page.evaluate(
        """() => {
            const table = document.querySelector('table[data-book="pending"]');
            const region = table && table.closest('[role="region"]');
            return !!region && region.contains(document.activeElement);
        }"""
    )
    return inside


def test_keyboard_focus_survives_live_updates_and_decisions(
    page: Page, base_url: str, semi_auto: Program
) -> None:
    first = semi_auto.queue("SBIN", 1)
    visit(page, base_url + "/action-center")
    approve = pending_row(page, first).get_by_role("button", name=f"Approve order {first}")
    approve.focus()
    # A new order arrives while the trader is on the first row's Approve button.
    second = semi_auto.queue("INFY", 1)
    expect(pending_row(page, second)).to_be_visible(timeout=LIVE_MS)
    page.wait_for_timeout(300)
    assert is_focused(approve), (
        f"a live update moved the focus from 'Approve order {first}' to {focused_element(page)}"
    )
    # Deciding by keyboard leaves the focus in the pending orders, not on the page's <body>.
    page.keyboard.press("Enter")
    expect(pending_row(page, first)).to_have_count(0)
    semi_auto.placed.append(decided_order_id(page, first))
    assert focus_is_in_pending_orders(page), (
        f"after approving by keyboard the focus is on {focused_element(page)}"
    )


def test_a_decision_shows_without_the_push(page: Page, base_url: str, semi_auto: Program) -> None:
    """The action's own answer updates the page (the push may come later, or not at all)."""
    pending_id = semi_auto.queue("ITC", 1)
    visit(page, base_url + "/action-center")
    expect(pending_row(page, pending_id)).to_be_visible()
    page.evaluate("window.dalalLive && window.dalalLive.socket.disconnect()")
    reject_through_dialog(
        page,
        pending_row(page, pending_id).get_by_role("button", name=f"Reject order {pending_id}"),
        f"Reject order {pending_id}",
        "Socket down",
    )
    expect(page_status(page)).to_have_text(f"Order {pending_id} rejected")
    expect(pending_row(page, pending_id)).to_have_count(0)
    expect(decision_row(page, pending_id), "no Decisions row without Socket.IO").to_contain_text(
        "Socket down"
    )


# --- accessibility of what test_pages.py cannot reach -------------------------------------------


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_accessibility_of_the_reject_dialog(
    page: Page, base_url: str, semi_auto: Program, theme: Theme
) -> None:
    pending_id = semi_auto.queue("SBIN", 1)
    page.emulate_media(color_scheme=theme)
    visit(page, base_url + "/action-center")
    findings = audit(page)  # the page with a row in each table
    pending_row(page, pending_id).get_by_role("button", name=f"Reject order {pending_id}").click()
    dialog = page.get_by_role("dialog", name=f"Reject order {pending_id}")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Reject", exact=True).click()  # empty: the browser refuses
    findings += audit(page, "dialog[open]")
    assert not findings, f"Action Center with a pending order ({theme}):\n" + "\n".join(findings)
    dialog.get_by_role("button", name="Back", exact=True).click()
    expect(dialog).to_be_hidden()


RISK_FIELDS = {
    "max_order_value": "Maximum order value (₹)",
    "max_open_positions": "Maximum open positions",
    "max_daily_loss": "Maximum daily loss (₹)",
    "kill_switch": "Kill switch",
}


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_risk_limits_page_loads_clean_and_accessible(
    page: Page, base_url: str, theme: Theme
) -> None:
    page.emulate_media(color_scheme=theme)
    visit(page, base_url + "/settings/risk")
    problems = watch_of(page).problems()
    assert not problems, "\n".join(problems)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Risk limits")
    current = page.get_by_role("banner").get_by_role("link", name="Settings", exact=True)
    expect(current).to_have_attribute("aria-current", "page")
    findings = audit(page)
    # Each field is named exactly its label (a hint belongs in aria-describedby, not the name).
    for field_id, label in RISK_FIELDS.items():
        name = chromium_name(page, f"#{field_id}")
        if name != label:
            findings.append(f"#{field_id}: accessible name {name!r}, not {label!r}")
    assert not findings, f"risk limits ({theme}):\n" + "\n".join(findings)
