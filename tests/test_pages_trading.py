"""The trader's pages: dashboard, orders, trades, positions, holdings, funds and sandbox.

Orders go through the real order pipeline into the real sandbox; pages are read and driven with
the Flask test client, their figures checked against the REST API's.
"""

from __future__ import annotations

import html
import re
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.accounts import UserView
from services.clock import FixedClock
from services.events import FUNDS
from services.orders.model import FundsReport, OrderRequest, PriceType, Product, Side
from services.orders.pipeline import Trader
from services.pnl_history import pnl_history
from tests.conftest import csrf_token, desk_of, login, make_user, post_form

PAGES = {
    "/": "Positions",
    "/orders": "Order book",
    "/trades": "Trades",
    "/positions": "Positions",
    "/holdings": "Holdings",
    "/funds": "Funds",
    "/sandbox": "Charges schedule",
}
JSON = {"Accept": "application/json"}


@pytest.fixture
def signed_in(client: FlaskClient, user: UserView) -> FlaskClient:
    assert login(client).status_code == 302
    return client


def trader_of(user: UserView) -> Trader:
    return Trader(user_id=user.id, broker=user.broker, order_mode=user.order_mode)


def place(
    app: Flask,
    user: UserView,
    side: Side = Side.BUY,
    quantity: int = 10,
    product: Product = Product.MIS,
    **kw: Any,
) -> str:
    request = OrderRequest("SBIN", "NSE", side, quantity, product, **kw)
    return desk_of(app).orders.place(trader_of(user), request).report.order_id


def resting_limit(app: Flask, user: UserView, quantity: int = 1) -> tuple[str, Decimal]:
    """A BUY LIMIT 5% under the market: it rests open."""
    desk = desk_of(app)
    quote = desk.market.source.quote(desk.market.instrument("SBIN", "NSE"))
    price = Decimal(int(quote.ltp * Decimal("0.95")))
    order_id = place(app, user, quantity=quantity, price_type=PriceType.LIMIT, price=price)
    return order_id, price


def api(client: FlaskClient, key: str, endpoint: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/{endpoint}", json={"apikey": key, **body})
    assert response.status_code == 200, response.json
    payload: dict[str, Any] = response.json  # type: ignore[assignment]
    return payload


def field(page: str, name: str) -> str:
    """The text of the first element with data-field=`name`."""
    match = re.search(rf'data-field="{name}"[^>]*>([^<]*)<', page)
    assert match, f"no data-field={name}"
    return html.unescape(match.group(1)).strip()


def amount(text: str) -> float:
    return float(text.replace("₹", "").replace(",", "").replace("\u2212", "-").replace("+", ""))


def row_of(page: str, marker: str) -> str:
    match = re.search(rf"<tr {marker}[^>]*>(.*?)</tr>", page, re.DOTALL)
    assert match, f"no row {marker}"
    return match.group(1)


def order_status(app: Flask, user: UserView, order_id: str) -> str:
    return desk_of(app).orders.broker(trader_of(user)).order(order_id).status.value


def flash_text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


# --- rendering and access --------------------------------------------------------------------


@pytest.mark.parametrize("path", list(PAGES))
def test_pages_need_a_sign_in(client: FlaskClient, user: UserView, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize(("path", "text"), list(PAGES.items()))
def test_pages_render_offline_assets_only(signed_in: FlaskClient, path: str, text: str) -> None:
    response = signed_in.get(path)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert text in page
    # Every asset comes from the desk itself: no CDN, no external fonts.
    assert not re.search(r'(src|href)="(https?:)?//', page)


@pytest.mark.parametrize("path", ["/orders/X/cancel", "/positions/close-all", "/sandbox/reset"])
def test_actions_refuse_a_post_without_csrf(signed_in: FlaskClient, path: str) -> None:
    assert signed_in.post(path, data={}).status_code == 400


def test_dashboard_shows_account_state(app: Flask, signed_in: FlaskClient, user: UserView) -> None:
    page = signed_in.get("/").get_data(as_text=True)
    assert field(page, "pending") == "0 pending"
    assert field(page, "order-mode").startswith("Auto")
    assert "Connected" in page
    assert field(page, "available") == "₹1,00,00,000.00"
    assert field(page, "utilised") == "₹0.00"
    assert "lightweight-charts.js" in page and "js/live.js" in page


# --- orders ----------------------------------------------------------------------------------


def test_order_book_lists_orders_with_actions_for_open_ones(
    app: Flask, signed_in: FlaskClient, user: UserView
) -> None:
    filled = place(app, user)
    resting, price = resting_limit(app, user)
    page = signed_in.get("/orders").get_data(as_text=True)
    assert "<caption>Order book</caption>" in page
    filled_row = row_of(page, f'data-order-id="{filled}"')
    resting_row = row_of(page, f'data-order-id="{resting}"')
    assert field(filled_row, "status") == "complete" and ">Cancel<" not in filled_row
    assert field(resting_row, "status") == "open"
    assert ">Modify<" in resting_row and ">Cancel<" in resting_row
    assert field(resting_row, "price") == f"{price:,.2f}"
    assert 'aria-label="Modify order"' in page and "Cancel all orders" in page


def test_cancel_from_the_order_book(app: Flask, signed_in: FlaskClient, user: UserView) -> None:
    order_id, _ = resting_limit(app, user)
    response = post_form(signed_in, "/orders", f"/orders/{order_id}/cancel", {})
    assert response.status_code == 303
    assert f"Order {order_id} cancelled" in flash_text(signed_in.get("/orders"))
    assert order_status(app, user, order_id) == "cancelled"


def test_modify_with_fetch_answers_json(app: Flask, signed_in: FlaskClient, user: UserView) -> None:
    order_id, price = resting_limit(app, user)
    token = csrf_token(signed_in.get("/orders").data)
    new_price = price - 1
    response = signed_in.post(
        f"/orders/{order_id}/modify",
        data={"csrf_token": token, "quantity": "2", "pricetype": "LIMIT", "price": str(new_price)},
        headers=JSON,
    )
    assert response.status_code == 200
    body = response.json
    assert body is not None and body["status"] == "success"
    assert body["order"]["price"] == float(new_price) and body["order"]["quantity"] == 2
    assert body["funds"]["availablecash"] > 0
    report = desk_of(app).orders.broker(trader_of(user)).order(order_id)
    assert (report.price, report.quantity) == (new_price, 2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"quantity": "abc", "pricetype": "LIMIT", "price": "10"}, "Quantity must be a whole"),
        ({"quantity": "1", "pricetype": "ICEBERG", "price": "10"}, "Price type must be one of"),
        ({"quantity": "1", "pricetype": "LIMIT", "price": "ten"}, "Price must be a number"),
        ({"quantity": "1", "pricetype": "LIMIT", "price": "-5"}, "Price must be a number"),
    ],
)
def test_modify_refuses_bad_input_with_a_message(
    app: Flask, signed_in: FlaskClient, user: UserView, data: dict[str, str], message: str
) -> None:
    order_id, price = resting_limit(app, user)
    response = post_form(signed_in, "/orders", f"/orders/{order_id}/modify", data)
    assert response.status_code == 303
    page = flash_text(signed_in.get("/orders"))
    assert message in page and "flash-error" in page
    report = desk_of(app).orders.broker(trader_of(user)).order(order_id)
    assert (report.price, report.quantity, report.status.value) == (price, 1, "open")

    token = csrf_token(signed_in.get("/orders").data)
    answer = signed_in.post(
        f"/orders/{order_id}/modify", data={"csrf_token": token, **data}, headers=JSON
    )
    assert answer.status_code == 400
    assert answer.json is not None and message in answer.json["message"]


def test_broker_refusals_show_as_messages_not_errors(
    app: Flask, signed_in: FlaskClient, user: UserView
) -> None:
    filled = place(app, user)
    token = csrf_token(signed_in.get("/orders").data)
    for order_id in (filled, "NOSUCHORDER"):
        answer = signed_in.post(
            f"/orders/{order_id}/cancel", data={"csrf_token": token}, headers=JSON
        )
        assert 400 <= answer.status_code < 500
        assert answer.json is not None and answer.json["status"] == "error"
        assert answer.json["message"]
    response = post_form(signed_in, "/orders", "/orders/NOSUCHORDER/cancel", {})
    assert response.status_code == 303
    assert "flash-error" in signed_in.get("/orders").get_data(as_text=True)


def test_cancel_all(app: Flask, signed_in: FlaskClient, user: UserView) -> None:
    first, _ = resting_limit(app, user)
    second, _ = resting_limit(app, user, quantity=2)
    token = csrf_token(signed_in.get("/orders").data)
    answer = signed_in.post("/orders/cancel-all", data={"csrf_token": token}, headers=JSON)
    assert answer.json is not None and answer.json["message"] == "Cancelled 2 orders"
    assert {row["order_status"] for row in answer.json["orders"]} == {"cancelled"}
    assert order_status(app, user, first) == order_status(app, user, second) == "cancelled"
    again = post_form(signed_in, "/orders", "/orders/cancel-all", {})
    assert again.status_code == 303
    assert "No open orders to cancel" in flash_text(signed_in.get("/orders"))


# --- positions -------------------------------------------------------------------------------


def test_close_one_position_through_the_pipeline(
    app: Flask, signed_in: FlaskClient, user: UserView, api_key: str
) -> None:
    place(app, user, quantity=10)
    page = signed_in.get("/positions").get_data(as_text=True)
    row = row_of(page, 'data-symbol="SBIN" data-exchange="NSE" data-product="MIS"')
    assert field(row, "quantity") == "10" and ">Close<" in row
    data = {"symbol": "SBIN", "exchange": "NSE", "product": "MIS"}
    token = csrf_token(page)
    answer = signed_in.post("/positions/close", data={"csrf_token": token, **data}, headers=JSON)
    assert answer.status_code == 200 and answer.json is not None
    assert answer.json["message"].startswith("Closed SBIN NSE MIS")
    assert [row["quantity"] for row in answer.json["positions"]] == [0]
    book = api(signed_in, api_key, "positionbook")["data"]
    assert [position["quantity"] for position in book] == [0]
    orders = api(signed_in, api_key, "orderbook")["data"]["orders"]
    closing = [order for order in orders if order["action"] == "SELL"]
    shapes = [(order["strategy"], order["quantity"], order["pricetype"]) for order in closing]
    assert shapes == [("ui", 10, "MARKET")]
    closed_row = row_of(signed_in.get("/positions").get_data(as_text=True), 'data-symbol="SBIN"')
    assert field(closed_row, "quantity") == "0" and ">Close<" not in closed_row


def test_close_all_and_closing_nothing(
    app: Flask, signed_in: FlaskClient, user: UserView, api_key: str
) -> None:
    place(app, user, quantity=5)
    place(app, user, quantity=3, product=Product.CNC)
    response = post_form(signed_in, "/positions", "/positions/close-all", {"next": "home.index"})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert "Closed 2 positions" in flash_text(signed_in.get("/"))
    book = api(signed_in, api_key, "positionbook")["data"]
    assert all(position["quantity"] == 0 for position in book) and len(book) == 2

    again = post_form(signed_in, "/positions", "/positions/close-all", {})
    assert again.status_code == 303
    assert "No open positions to close" in flash_text(signed_in.get("/positions"))
    missing = post_form(
        signed_in, "/positions", "/positions/close", {"symbol": "SBIN", "exchange": "NSE"}
    )
    assert missing.status_code == 303
    assert "No open  position in SBIN on NSE to close" in flash_text(signed_in.get("/positions"))


# --- figures reconcile with the API ----------------------------------------------------------


def test_pages_show_the_apis_numbers(
    app: Flask, signed_in: FlaskClient, user: UserView, api_key: str
) -> None:
    place(app, user, quantity=10)
    place(app, user, side=Side.SELL, quantity=4)
    resting_limit(app, user)
    funds = api(signed_in, api_key, "funds")["data"]
    for path in ("/funds", "/"):
        page = signed_in.get(path).get_data(as_text=True)
        assert amount(field(page, "available")) == funds["availablecash"]
        assert amount(field(page, "utilised")) == funds["utiliseddebits"]
        pnl = round(funds["today_realized_pnl"] + funds["m2munrealized"], 2)
        assert amount(field(page, "pnl")) == pytest.approx(pnl, abs=0.011)

    position = api(signed_in, api_key, "positionbook")["data"][0]
    row = row_of(signed_in.get("/positions").get_data(as_text=True), 'data-symbol="SBIN"')
    assert int(field(row, "quantity")) == position["quantity"] == 6
    assert amount(field(row, "ltp")) == position["ltp"]
    assert amount(field(row, "pnl")) == position["pnl"]
    assert amount(field(row, "realised")) == position["today_realized_pnl"]

    trades = api(signed_in, api_key, "tradebook")["data"]
    page = signed_in.get("/trades").get_data(as_text=True)
    assert "<caption>Trades</caption>" in page
    for trade in trades:
        row = row_of(page, f'data-trade-id="{trade["tradeid"]}"')
        for key, value in trade["charges"].items():
            assert amount(field(row, key)) == value, key
        assert amount(field(row, "total_charges")) == trade["total_charges"]
    total = sum(Decimal(str(trade["total_charges"])) for trade in trades)
    assert amount(field(page, "day_charges")) == pytest.approx(float(total), abs=0.02)

    orders = api(signed_in, api_key, "orderbook")["data"]["orders"]
    page = signed_in.get("/orders").get_data(as_text=True)
    for order in orders:
        row = row_of(page, f'data-order-id="{order["orderid"]}"')
        assert field(row, "status") == order["order_status"]
        if order["average_price"]:
            assert amount(field(row, "average_price")) == order["average_price"]


def test_holdings_page_matches_the_api(signed_in: FlaskClient, api_key: str) -> None:
    page = signed_in.get("/holdings").get_data(as_text=True)
    assert "<caption>Holdings</caption>" in page and "No holdings" in page
    assert api(signed_in, api_key, "holdings")["data"]["holdings"] == []


# --- sandbox ---------------------------------------------------------------------------------


def test_sandbox_page_shows_mode_and_charges(signed_in: FlaskClient) -> None:
    page = html.unescape(signed_in.get("/sandbox").get_data(as_text=True))
    assert "Always open" in page
    assert "0.03% or ₹20.00 per order, whichever is lower" in page  # intraday brokerage
    assert "NSE 0.00307%" in page and "₹10.00 per crore" in page and "GST 18%" in page
    assert 'aria-label="Reset sandbox"' in page and ">Keep<" in page and ">Reset<" in page


def test_reset_sandbox(app: Flask, signed_in: FlaskClient, user: UserView, api_key: str) -> None:
    place(app, user)
    resting_limit(app, user)
    token = csrf_token(signed_in.get("/sandbox").data)
    answer = signed_in.post("/sandbox/reset", data={"csrf_token": token}, headers=JSON)
    assert answer.json is not None and answer.json["message"] == "Sandbox reset"
    assert answer.json["sandbox"]["availablecash"] == 10_000_000.0
    assert api(signed_in, api_key, "orderbook")["data"]["orders"] == []
    assert api(signed_in, api_key, "funds")["data"]["reset_count"] == 1
    response = post_form(signed_in, "/sandbox", "/sandbox/reset", {})
    assert response.status_code == 303
    assert "Sandbox reset" in flash_text(signed_in.get("/sandbox"))
    assert api(signed_in, api_key, "funds")["data"]["reset_count"] == 2


def test_only_admins_reset_another_traders_sandbox(app: Flask, user: UserView) -> None:
    other = make_user(app, "other")
    place(app, user)
    place(app, other)
    as_other = app.test_client()
    assert login(as_other, "other").status_code == 302
    assert "Another trader" not in as_other.get("/sandbox").get_data(as_text=True)
    refused = post_form(as_other, "/sandbox", "/sandbox/reset", {"username": "trader"})
    assert refused.status_code == 303
    assert "Only an administrator" in flash_text(as_other.get("/sandbox"))
    broker = desk_of(app).orders.broker(trader_of(user))
    assert len(broker.orders()) == 1

    as_admin = app.test_client()
    assert login(as_admin).status_code == 302
    done = post_form(as_admin, "/sandbox", "/sandbox/reset", {"username": "other"})
    assert done.status_code == 303
    assert "Sandbox of other reset" in flash_text(as_admin.get("/sandbox"))
    assert desk_of(app).orders.broker(trader_of(other)).orders() == []
    assert len(broker.orders()) == 1
    unknown = post_form(as_admin, "/sandbox", "/sandbox/reset", {"username": "nobody"})
    assert unknown.status_code == 303
    assert "flash-error" in as_admin.get("/sandbox").get_data(as_text=True)


# --- the intraday P&L curve ------------------------------------------------------------------


def funds_report(today_realized: str, unrealized: str) -> FundsReport:
    zero = Decimal(0)
    capital = Decimal(10_000_000)
    return FundsReport(
        capital, zero, Decimal(today_realized), Decimal(unrealized), zero, zero, capital,
        today_realized_pnl=Decimal(today_realized),
    )  # fmt: skip


def test_pnl_history_follows_funds_events_for_today(
    app: Flask, signed_in: FlaskClient, user: UserView, clock: FixedClock
) -> None:
    desk = desk_of(app)
    history = pnl_history(desk)
    assert pnl_history(desk) is history  # one subscription however often it is asked for
    other = make_user(app, "other")
    desk.events.publish(FUNDS, user.id, funds_report("100", "-25.50"))
    clock.advance(timedelta(seconds=2))  # closer than the spacing: replaces the last point
    desk.events.publish(FUNDS, user.id, funds_report("100", "-20"))
    clock.advance(timedelta(minutes=1))
    desk.events.publish(FUNDS, user.id, funds_report("150", "10"))
    desk.events.publish(FUNDS, other.id, funds_report("-1", "0"))
    assert [point.pnl for point in history.today(user.id)] == [Decimal(80), Decimal(160)]
    assert [point.pnl for point in history.today(other.id)] == [Decimal(-1)]

    page = signed_in.get("/").get_data(as_text=True)
    points = re.search(r'id="pnl-points">(.*?)</script>', page, re.DOTALL)
    assert points and '"value":80.0' in points.group(1).replace(" ", "")
    assert "(2 points so far today)" in page

    clock.advance(timedelta(days=1))  # a new IST day starts an empty curve
    assert history.today(user.id) == []
    desk.events.publish(FUNDS, user.id, funds_report("5", "0"))
    assert [point.pnl for point in history.today(user.id)] == [Decimal(5)]


def test_orders_from_the_pipeline_feed_the_curve(app: Flask, user: UserView) -> None:
    desk = desk_of(app)
    history = pnl_history(desk)
    place(app, user)
    desk.sandbox.flush()
    deadline = time.monotonic() + 5  # the sandbox announces from its relay thread
    while not history.today(user.id) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert history.today(user.id), "no funds event reached the P&L history"
