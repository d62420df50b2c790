"""The order ticket's endpoints, the chart's candles and live ticks for pages.

The ticket answers with the REST API's own numbers: its margin is /api/v1/margin's, its charges
are what the trade book charges for the same fill, and its orders are the API's orders.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import socketio
from flask import Flask
from flask.testing import FlaskClient

from extensions import socketio as desk_socketio
from services.accounts import UserView
from services.market.model import Interval
from tests.conftest import STRONG_PASSWORD, csrf_token, desk_of, login, make_user
from tests.support import RunningDesk

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
UA = "Mozilla/5.0 (dalal ticket test)"


@pytest.fixture
def trader(app: Flask, client: FlaskClient, user: UserView) -> FlaskClient:
    assert login(client).status_code == 302
    return client


def page_token(client: FlaskClient, url: str = "/market") -> str:
    markup = client.get(url).get_data(as_text=True)
    match = _META.search(markup)
    assert match, "base.html has no csrf-token meta tag"
    return match.group(1)


def post(client: FlaskClient, path: str, body: dict[str, Any], token: str | None = None) -> Any:
    headers = {} if token is None else {"X-CSRFToken": token}
    return client.post(path, json=body, headers=headers)


def api(client: FlaskClient, key: str, path: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/{path}", json=body, headers={"X-API-KEY": key})
    assert response.status_code == 200, response.json
    found: dict[str, Any] = response.json
    return found


def order(**fields: Any) -> dict[str, Any]:
    return {"symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 1,
            "pricetype": "MARKET", "product": "MIS", **fields}  # fmt: skip


def on_tick(price: float, tick: Decimal = Decimal("0.05")) -> str:
    return str((Decimal(str(price)) / tick).quantize(Decimal(1), ROUND_HALF_UP) * tick)


# ---------------------------------------------------------------------- the layout


def test_every_signed_in_page_has_the_navigation_the_ticket_and_the_scripts(
    trader: FlaskClient,
) -> None:
    markup = trader.get("/market").get_data(as_text=True)
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', markup, re.DOTALL)
    assert nav is not None
    texts = re.findall(r">([^<]+)</a>", nav.group(1))
    expected = ["Dashboard", "Orders", "Trades", "Positions", "Holdings", "Funds", "Market",
                "Sandbox", "Action Center", "API key", "API logs", "Audit", "Settings",
                "API docs"]  # fmt: skip
    # Pages still being written are left out until their endpoint exists; the order holds.
    assert texts == [text for text in expected if text in texts]
    assert {"Dashboard", "Market", "API key", "API logs", "Settings", "API docs"} <= set(texts)
    assert '<a href="/market" aria-current="page">Market</a>' in nav.group(1)
    assert '<dialog id="order-ticket" class="ticket" aria-label="Order ticket">' in markup
    assert ">New order</button>" in markup
    for script in ("/static/vendor/socket.io.min.js", "/static/js/live.js", "/static/js/ticket.js"):
        assert f'<script src="{script}"></script>' in markup
    assert trader.get("/static/js/ticket.js").status_code == 200
    assert trader.get("/static/vendor/socket.io.min.js").status_code == 200


def test_signed_out_pages_carry_no_ticket(client: FlaskClient, user: UserView) -> None:
    markup = client.get("/login").get_data(as_text=True)
    assert "order-ticket" not in markup and "socket.io" not in markup
    assert _META.search(markup)


# ---------------------------------------------------------------------- search and preview


def test_search_suggests_tradable_contracts(trader: FlaskClient) -> None:
    found = trader.get("/ticket/search?q=SBIN").json["data"]
    assert found[0]["label"] == "SBIN NSE" and found[0]["lotsize"] == 1
    assert not found[0]["derivative"]
    nifty = trader.get("/ticket/search?q=NIFTY").json["data"]
    assert nifty and all(row["exchange"] != "NSE_INDEX" for row in nifty)
    assert trader.get("/ticket/search?q=").json["data"] == []


def test_instrument_lookup_gives_the_lot_size_of_a_derivative(
    app: Flask, trader: FlaskClient
) -> None:
    master = desk_of(app).market.master
    option = master.search("NIFTY CE", "NFO", limit=1)[0]
    data = trader.get(f"/ticket/instrument?symbol={option.symbol}&exchange=NFO").json["data"]
    assert data["derivative"] and data["lotsize"] == option.lot_size > 1
    missing = trader.get("/ticket/instrument?symbol=NOSUCH&exchange=NSE")
    assert missing.status_code == 404 and "NOSUCH" in missing.json["message"]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"pricetype": "LIMIT", "product": "CNC", "quantity": 7},
        {"action": "SELL", "quantity": 3},
        {"symbol": "NIFTYFUT", "exchange": "NFO", "product": "NRML"},
        {"symbol": "NIFTYOPT", "exchange": "NFO", "product": "NRML", "action": "SELL"},
    ],
)
def test_preview_margin_is_the_apis_margin(
    app: Flask, trader: FlaskClient, api_key: str, fields: dict[str, Any]
) -> None:
    market = desk_of(app).market
    body = order(**fields)
    if body["symbol"] in ("NIFTYFUT", "NIFTYOPT"):
        kind = "futures" if body["symbol"] == "NIFTYFUT" else "options"
        query = "NIFTY FUT" if kind == "futures" else "NIFTY PE"
        contract = market.master.search(query, "NFO", limit=1)[0]
        body["symbol"], body["quantity"] = contract.symbol, contract.lot_size
    if body["pricetype"] == "LIMIT":
        ltp = market.source.quote(market.instrument(body["symbol"], body["exchange"])).ltp
        body["price"] = on_tick(float(ltp) * 0.99)
    preview = post(trader, "/ticket/preview", body, page_token(trader))
    assert preview.status_code == 200, preview.json
    data = preview.json["data"]
    margin = api(trader, api_key, "margin", positions=[body])["data"]
    assert data["margin"]["total"] == margin["total_margin_required"] > 0
    assert data["margin"]["span"] == margin["span_margin"]
    assert data["margin"]["premium"] == margin["premium"]
    assert data["charges"]["total"] > 0
    assert data["value"] == pytest.approx(data["price"] * body["quantity"], abs=0.01)


def test_preview_charges_are_the_trades_charges(
    app: Flask, trader: FlaskClient, api_key: str
) -> None:
    token = page_token(trader)
    placed = post(trader, "/ticket/place", order(quantity=5), token)
    assert placed.status_code == 200, placed.json
    trades = [row for row in api(trader, api_key, "tradebook")["data"]
              if row["orderid"] == placed.json["orderid"]]  # fmt: skip
    assert len(trades) == 1, trades  # five shares fill at the best ask
    fill = trades[0]
    at_fill = order(quantity=5, pricetype="LIMIT", price=str(fill["average_price"]))
    preview = post(trader, "/ticket/preview", at_fill, token).json["data"]
    assert preview["charges"] == {**fill["charges"], "total": fill["total_charges"]}
    assert fill["total_charges"] > 0


# ---------------------------------------------------------------------- placing


def test_market_and_limit_orders_reach_the_apis_order_book(
    app: Flask, trader: FlaskClient, api_key: str
) -> None:
    token = page_token(trader)
    market_order = post(trader, "/ticket/place", order(quantity=2), token)
    assert market_order.status_code == 200, market_order.json
    assert market_order.json["status"] == "success"
    ltp = desk_of(app).market.source.quote(desk_of(app).market.instrument("SBIN", "NSE")).ltp
    limit = order(action="BUY", pricetype="LIMIT", price=on_tick(float(ltp) * 0.95), quantity=4)
    limit_order = post(trader, "/ticket/place", limit, token)
    assert limit_order.status_code == 200, limit_order.json
    book = {row["orderid"]: row for row in api(trader, api_key, "orderbook")["data"]["orders"]}
    first, second = book[market_order.json["orderid"]], book[limit_order.json["orderid"]]
    shape = ("pricetype", "quantity", "order_status")
    assert tuple(first[name] for name in shape) == ("MARKET", 2, "complete")
    assert tuple(second[name] for name in shape) == ("LIMIT", 4, "open")
    assert second["price"] == float(limit["price"])
    assert first["strategy"] == second["strategy"] == "ui"
    assert limit_order.json["order_status"] == "open"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"quantity": 0}, "quantity", "at least 1"),
        ({"quantity": "1.5"}, "quantity", "Fractional"),
        ({"action": "HOLD"}, "action", "BUY, SELL"),
        ({"pricetype": "LIMIT", "price": "812.33"}, "price", "tick"),
        ({"symbol": "NIFTY26FEB99FUT", "exchange": "NFO"}, "symbol", "NIFTY26FEB99FUT"),
        ({"product": "NRML"}, "product", "NRML"),
        ({"exchange": "NASDAQ"}, "exchange", "NASDAQ"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_places_nothing(
    app: Flask, trader: FlaskClient, api_key: str, fields: dict[str, Any], field: str, message: str
) -> None:
    token = page_token(trader)
    for path in ("/ticket/preview", "/ticket/place"):
        response = post(trader, path, order(**fields), token)
        assert response.status_code in (400, 404), response.json
        body = response.json
        assert body["status"] == "error" and message in body["message"], body
        if response.status_code == 400:
            assert field in body["errors"], body
    assert api(trader, api_key, "orderbook")["data"]["orders"] == []


def test_anonymous_requests_are_refused(client: FlaskClient, user: UserView) -> None:
    token = page_token(client, "/login")
    for response in (
        client.get("/ticket/search?q=SBIN"),
        post(client, "/ticket/preview", order(), token),
        post(client, "/ticket/place", order(), token),
    ):
        assert response.status_code == 401
        assert response.json["status"] == "error" and "Sign in" in response.json["message"]


def test_csrf_is_required(app: Flask, trader: FlaskClient, api_key: str) -> None:
    for token in (None, "forged"):
        response = post(trader, "/ticket/place", order(), token)
        assert response.status_code == 400
        assert "security token" in response.json["message"]
    assert api(trader, api_key, "orderbook")["data"]["orders"] == []
    # The form token of the pages works as the header, too.
    good = post(trader, "/ticket/place", order(), csrf_token(trader.get("/settings").data))
    assert good.status_code == 200, good.json


def test_orders_go_to_the_signed_in_traders_account(
    app: Flask, client: FlaskClient, user: UserView, api_key: str
) -> None:
    asha = make_user(app, "asha")
    assert login(client, "asha").status_code == 302
    placed = post(client, "/ticket/place", order(), page_token(client))
    assert placed.status_code == 200, placed.json
    own = api(client, desk_of(app).api_keys.create(asha.id), "orderbook")["data"]["orders"]
    assert [row["orderid"] for row in own] == [placed.json["orderid"]]
    assert api(client, api_key, "orderbook")["data"]["orders"] == []


# ---------------------------------------------------------------------- charts


def test_chart_page_and_candles(app: Flask, trader: FlaskClient, api_key: str) -> None:
    markup = trader.get("/charts/NSE/SBIN?interval=15m").get_data(as_text=True)
    assert 'data-candles-url="/charts/NSE/SBIN/candles"' in markup
    assert '<option value="15m" selected>' in markup
    assert "/static/vendor/lightweight-charts.js" in markup and "/static/js/chart.js" in markup
    candles = trader.get("/charts/NSE/SBIN/candles?interval=15m").json
    assert candles["seconds"] == Interval.M15.seconds and len(candles["data"]) > 20
    times = [row["timestamp"] for row in candles["data"]]
    assert times == sorted(times)
    day = candles["data"][-1]
    start = time.strftime("%Y-%m-%d", time.gmtime(day["timestamp"] + 19800))
    history = api(trader, api_key, "history", symbol="SBIN", exchange="NSE", interval="15m",
                  start_date=start, end_date=start)["data"]  # fmt: skip
    assert history[-1] == day
    assert trader.get("/charts/NSE/SBIN/candles?interval=7m").status_code == 400
    assert trader.get("/charts/NSE/NOSUCH").status_code == 404


def test_market_pages_link_to_the_chart_and_the_ticket(app: Flask, trader: FlaskClient) -> None:
    markup = trader.get("/market/NSE/SBIN").get_data(as_text=True)
    assert 'href="/charts/NSE/SBIN"' in markup
    assert 'data-ticket-symbol="SBIN" data-ticket-exchange="NSE" data-ticket-side="BUY"' in markup
    chain = trader.get("/market/chain?underlying=NIFTY&exchange=NSE_INDEX&strikes=2")
    text = chain.get_data(as_text=True)
    assert chain.status_code == 200
    buys = re.findall(r'data-ticket-symbol="(NIFTY\w+)" data-ticket-exchange="NFO" '
                      r'data-ticket-side="BUY"', text)  # fmt: skip
    assert len(buys) == 10  # five strikes, a call and a put each
    assert re.search(r'href="/charts/NFO/NIFTY\w+CE"', text)


# ---------------------------------------------------------------------- live ticks


def test_a_page_subscribed_to_an_instrument_hears_its_ticks(tmp_path: Path) -> None:
    from tests.support import desk_in_process

    app, _ws_url, _key = desk_in_process(tmp_path)
    try:
        make_user(app, "watcher")
        client = app.test_client()
        assert login(client, "watcher").status_code == 302
        sio = desk_socketio.test_client(app, flask_test_client=client)
        assert sio.is_connected()
        hub = desk_of(app).feed
        assert sio.emit("subscribe_ticks", {"symbol": "sbin", "exchange": "NSE"}, callback=True) \
            == {"status": "success", "room": "tick:NSE:SBIN"}  # fmt: skip
        assert hub.wanted(local_only=True).get(("NSE", "SBIN"))
        ticks = _wait_for_ticks(sio)
        assert ticks and {(t["symbol"], t["exchange"]) for t in ticks} == {("SBIN", "NSE")}
        assert isinstance(ticks[0]["ltp"], float) and ticks[0]["timestamp"] > 0
        bad = sio.emit("subscribe_ticks", {"symbol": "NOSUCH", "exchange": "NSE"}, callback=True)
        assert bad["status"] == "error"
        assert sio.emit("unsubscribe_ticks", {"symbol": "SBIN", "exchange": "NSE"},
                        callback=True) == {"status": "success"}  # fmt: skip
        assert ("NSE", "SBIN") not in hub.wanted(local_only=True)
        sio.get_received()
        time.sleep(2.5)
        assert [m for m in sio.get_received() if m["name"] == "tick"] == []
        # A socket that goes away gives its instruments back.
        sio.emit("subscribe_ticks", {"symbol": "INFY", "exchange": "NSE"}, callback=True)
        assert ("NSE", "INFY") in hub.wanted(local_only=True)
        sio.disconnect()
        assert ("NSE", "INFY") not in hub.wanted(local_only=True)
    finally:
        desk_of(app).close()


def _wait_for_ticks(sio: Any, seconds: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not found:
        found = [m["args"][0] for m in sio.get_received() if m["name"] == "tick"]
        time.sleep(0.2)
    return found


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDesk]:
    running = RunningDesk(Path(tmp_path_factory.mktemp("ticket-desk")))
    running.start()
    running.admin_key(STRONG_PASSWORD)
    yield running
    running.stop()


@pytest.mark.slow
def test_live_ticks_reach_a_real_socketio_client(live: RunningDesk) -> None:
    import httpx

    with httpx.Client(base_url=live.url, headers={"User-Agent": UA}, timeout=30) as http:
        token = csrf_token(http.get("/login").text)
        form = {"csrf_token": token, "username": "admin", "password": STRONG_PASSWORD}
        assert http.post("/login", data=form).status_code == 302
        cookie = http.cookies.get("dalal_session")
    heard: list[dict[str, Any]] = []
    arrived = threading.Event()
    page = socketio.Client(reconnection=False)

    @page.on("tick")
    def _tick(payload: dict[str, Any]) -> None:
        heard.append(payload)
        arrived.set()

    page.connect(live.url, headers={"User-Agent": UA, "Cookie": f"dalal_session={cookie}"},
                 transports=["websocket"], wait_timeout=10)  # fmt: skip
    try:
        ack = page.call("subscribe_ticks", {"symbol": "RELIANCE", "exchange": "NSE"}, timeout=10)
        assert ack["status"] == "success"
        assert arrived.wait(15), "no tick within 15 s"
        assert heard[0]["symbol"] == "RELIANCE" and heard[0]["ltp"] > 0
    finally:
        page.disconnect()
