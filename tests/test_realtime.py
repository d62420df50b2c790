"""Live updates over Socket.IO: who may connect, and what each user is told.

The first tests drive the app in-process with Flask-SocketIO's test client and publish on the
desk's event bus; the last ones run a real desk (gunicorn) and listen with the real
python-socketio client while orders go through the REST API and the sandbox's heartbeat (they
need the desk to hand the sandbox its event bus: `SandboxEngine(..., events=self.events)`).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from blueprints.api.serialize import funds_data, order_row, position_row, trade_row
from config import Settings
from extensions import socketio as desk_socketio
from services.accounts import UserView
from services.clock import IST, FixedClock
from services.events import ACTION_CENTER, FUNDS, ORDER, POSITION, TRADE
from services.orders.model import (
    ChargeBreakdown,
    FundsReport,
    OrderReport,
    OrderStatus,
    PositionReport,
    PriceType,
    Product,
    Side,
    TradeReport,
)
from tests.conftest import (
    OTHER_STRONG_PASSWORD,
    STRONG_PASSWORD,
    csrf_token,
    desk_of,
    login,
    make_user,
)
from tests.support import RunningDesk

D = Decimal
EVENT_NAMES = (
    "order_update",
    "trade_update",
    "position_update",
    "funds_update",
    "action_center_update",
)
AT = datetime(2026, 11, 23, 10, 0, 5, tzinfo=IST)
ORDER_REPORT = OrderReport(
    "26112300000007", "SBIN", "NSE", Side.BUY, 10, 10, D("801.25"), D("0"), D("0"),
    PriceType.MARKET, Product.MIS, OrderStatus.COMPLETE, AT, AT, "rt",
)  # fmt: skip
TRADE_REPORT = TradeReport(
    "26112300000009", "26112300000007", "SBIN", "NSE", Side.BUY, 10, D("801.25"), Product.MIS,
    AT, ChargeBreakdown(brokerage=D("2.40"), stt=D("0"), gst=D("0.43")),
)  # fmt: skip
POSITION_REPORT = PositionReport(
    "SBIN", "NSE", Product.MIS, 10, D("801.25"), D("802.00"), D("0"), D("7.50"), 10, 0,
    D("8012.50"), D("0"),
)  # fmt: skip
FUNDS_REPORT = FundsReport(
    D("9998394.67"), D("1602.50"), D("0"), D("7.50"), D("0"), D("2.83"), D("10000000"),
)  # fmt: skip


def connect(app: Flask, client: FlaskClient | None = None) -> Any:
    return desk_socketio.test_client(app, flask_test_client=client)


def received(sio: Any) -> list[tuple[str, Any]]:
    return [(message["name"], message["args"][0]) for message in sio.get_received()]


@pytest.fixture
def trader_socket(app: Flask, client: FlaskClient, user: UserView) -> Iterator[Any]:
    assert login(client).status_code == 302
    sio = connect(app, client)
    assert sio.is_connected()
    yield sio
    sio.disconnect()


def test_an_anonymous_socket_is_refused(app: Flask, client: FlaskClient, user: UserView) -> None:
    assert not connect(app).is_connected()
    assert not connect(app, client).is_connected()  # a browser that never signed in


def test_a_socket_of_a_session_ended_by_a_password_change_is_refused(
    app: Flask, client: FlaskClient, user: UserView
) -> None:
    assert login(client).status_code == 302
    desk_of(app).accounts.change_password(user.id, STRONG_PASSWORD, OTHER_STRONG_PASSWORD)
    assert not connect(app, client).is_connected()


def test_each_topic_reaches_the_user_in_the_rest_apis_shape(
    app: Flask, user: UserView, trader_socket: Any
) -> None:
    events = desk_of(app).events
    events.publish(ORDER, user.id, ORDER_REPORT)
    events.publish(TRADE, user.id, TRADE_REPORT)
    events.publish(POSITION, user.id, POSITION_REPORT)
    events.publish(FUNDS, user.id, FUNDS_REPORT)
    events.publish(ACTION_CENTER, user.id, {"pending": 2, "orderid": None})
    assert received(trader_socket) == [
        ("order_update", order_row(ORDER_REPORT)),
        ("trade_update", trade_row(TRADE_REPORT)),
        ("position_update", position_row(POSITION_REPORT)),
        ("funds_update", funds_data(FUNDS_REPORT)),
        ("action_center_update", {"pending": 2, "orderid": None}),
    ]
    row = order_row(ORDER_REPORT)
    assert (row["orderid"], row["order_status"], row["average_price"]) == (
        "26112300000007", "complete", 801.25,
    )  # fmt: skip
    assert trade_row(TRADE_REPORT)["total_charges"] == 2.83


def test_a_user_hears_nothing_of_another_users_events(
    app: Flask, user: UserView, trader_socket: Any
) -> None:
    other = make_user(app, "other", OTHER_STRONG_PASSWORD)
    events = desk_of(app).events
    events.publish(ORDER, other.id, ORDER_REPORT)
    events.publish(FUNDS, other.id, FUNDS_REPORT)
    events.publish(ACTION_CENTER, other.id, {"pending": 1})
    assert received(trader_socket) == []
    events.publish(FUNDS, user.id, FUNDS_REPORT)
    assert received(trader_socket) == [("funds_update", funds_data(FUNDS_REPORT))]


HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


def test_the_handshake_needs_a_signed_in_session_and_a_free_slot(
    settings: Settings, clock: FixedClock
) -> None:
    app = create_app(settings.with_overrides(socketio_max_clients=1), clock=clock)
    try:
        make_user(app)
        client = app.test_client()
        refused = client.get(HANDSHAKE)
        assert (refused.status_code, refused.text) == (401, "Sign in first.")
        assert login(client).status_code == 302
        opened = client.get(HANDSHAKE)
        assert opened.status_code == 200 and '"sid"' in opened.text
        # The one slot is taken (by that handshake's socket): the next page waits its turn.
        assert client.get(HANDSHAKE).status_code == 503
    finally:
        desk_of(app).close()


# ---------------------------------------------------------------------- a real desk

UA = "Mozilla/5.0 (dalal realtime test)"  # one browser: the session is bound to its agent
WAIT_SECONDS = 20.0
MAX_SOCKETS = 3  # the live desk's SOCKETIO_MAX_CLIENTS
STABLE_FUNDS = ("availablecash", "utiliseddebits", "m2mrealized", "charges", "starting_capital")
STABLE_POSITION = ("symbol", "exchange", "product", "quantity", "average_price", "buy_quantity",
                   "sell_quantity", "buy_value", "sell_value")  # fmt: skip


def page_session(url: str, username: str, password: str) -> str:
    """Sign in through the real /login form, as a browser does: the page session cookie."""
    with httpx.Client(base_url=url, headers={"User-Agent": UA}, timeout=30) as http:
        token = csrf_token(http.get("/login").text)
        form = {"csrf_token": token, "username": username, "password": password}
        response = http.post("/login", data=form)
        assert response.status_code == 302, response.text
        cookie = http.cookies.get("dalal_session")
    assert cookie
    return cookie


class Page:
    """A page's socket: the real python-socketio client, listening to every update."""

    def __init__(self, url: str, cookie: str | None, transport: str = "websocket") -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._changed = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        for name in EVENT_NAMES:
            self.client.on(name, functools.partial(self._hear, name))
        headers = {"User-Agent": UA}
        if cookie is not None:
            headers["Cookie"] = f"dalal_session={cookie}"
        self.client.connect(url, headers=headers, transports=[transport], wait_timeout=10)
        assert self.client.transport() == transport

    def _hear(self, name: str, payload: dict[str, Any]) -> None:
        with self._changed:
            self.events.append((name, payload))
            self._changed.notify_all()

    def of(self, name: str, match: Callable[[dict[str, Any]], bool] = bool) -> list[Any]:
        with self._changed:
            return [payload for kind, payload in self.events if kind == name and match(payload)]

    def wait(self, what: str, done: Callable[[], bool]) -> None:
        with self._changed:
            assert self._changed.wait_for(done, WAIT_SECONDS), f"{what}; heard {self.events}"

    def close(self) -> None:
        self.client.disconnect()


class Api:
    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key

    def __call__(self, path: str, **body: Any) -> Any:
        response = httpx.post(f"{self.url}/api/v1/{path}", json=body,
                              headers={"X-API-KEY": self.key}, timeout=30)  # fmt: skip
        assert response.status_code == 200, response.text
        return response.json()

    def place(self, **order: Any) -> str:
        placed = self("placeorder", strategy="realtime", exchange="NSE", product="MIS", **order)
        assert placed["status"] == "success", placed
        order_id: str = placed["orderid"]
        return order_id


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDesk]:
    running = RunningDesk(Path(tmp_path_factory.mktemp("realtime-desk")))
    running.env["SOCKETIO_MAX_CLIENTS"] = str(MAX_SOCKETS)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin_api(live: RunningDesk) -> Api:
    return Api(live.url, live.admin_key(STRONG_PASSWORD))


@pytest.fixture(scope="module")
def bob_api(live: RunningDesk, admin_api: Api) -> Api:
    live.cli("user", "create", "bob", "--email", "bob@example.com",
             "--password", OTHER_STRONG_PASSWORD)  # fmt: skip
    return Api(live.url, live.cli("apikey", "create", "bob").strip().splitlines()[-1])


@pytest.fixture(scope="module")
def admin_page(live: RunningDesk, admin_api: Api) -> Iterator[Page]:
    page = Page(live.url, page_session(live.url, "admin", STRONG_PASSWORD))
    yield page
    page.close()


@pytest.fixture(scope="module")
def bob_page(live: RunningDesk, bob_api: Api) -> Iterator[Page]:
    page = Page(live.url, page_session(live.url, "bob", OTHER_STRONG_PASSWORD), "polling")
    yield page
    page.close()


def for_order(order_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda row: bool(row["orderid"] == order_id)


def pick(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: row[key] for key in keys}


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_live_sockets_without_a_signed_in_session_are_refused(
    live: RunningDesk, admin_api: Api, transport: str
) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        Page(live.url, None, transport)
    forged = page_session(live.url, "admin", STRONG_PASSWORD)[:-4] + "AAAA"
    with pytest.raises(socketio.exceptions.ConnectionError):
        Page(live.url, forged, transport)


@pytest.mark.slow
def test_live_a_market_order_is_pushed_with_the_rest_apis_numbers(
    admin_api: Api, admin_page: Page, bob_page: Page
) -> None:
    order_id = admin_api.place(symbol="ITC", action="BUY", quantity=10, pricetype="MARKET")
    page = admin_page
    page.wait("the order completes", lambda: any(
        row["order_status"] == "complete" for row in page.of("order_update", for_order(order_id))
    ))  # fmt: skip
    page.wait("its fills", lambda: sum(
        row["quantity"] for row in page.of("trade_update", for_order(order_id))
    ) == 10)  # fmt: skip
    orderbook = admin_api("orderbook")["data"]["orders"]
    assert page.of("order_update", for_order(order_id))[-1] == next(
        row for row in orderbook if row["orderid"] == order_id
    )
    tradebook = [row for row in admin_api("tradebook")["data"] if row["orderid"] == order_id]
    pushed = page.of("trade_update", for_order(order_id))
    assert sorted(pushed, key=lambda row: row["tradeid"]) == sorted(
        tradebook, key=lambda row: row["tradeid"]
    )

    def itc(row: dict[str, Any]) -> bool:
        return bool(row["symbol"] == "ITC" and row["product"] == "MIS")

    page.wait("the position", lambda: any(row["quantity"] == 10 for row in page.of(
        "position_update", itc)))  # fmt: skip
    book = next(row for row in admin_api("positionbook")["data"] if itc(row))
    assert pick(page.of("position_update", itc)[-1], STABLE_POSITION) == pick(book, STABLE_POSITION)
    funds = pick(admin_api("funds")["data"], STABLE_FUNDS)
    assert funds["charges"] > 0
    page.wait("the funds after the fill", lambda: any(
        pick(row, STABLE_FUNDS) == funds for row in page.of("funds_update")
    ))  # fmt: skip


@pytest.mark.slow
def test_live_a_resting_limit_filled_on_a_tick_is_pushed(admin_api: Api, admin_page: Page) -> None:
    # A buy limit 1% above the market, for more than the five simulated levels hold: it takes
    # the levels now and rests the rest, which the next tick (every second) fills at its price.
    ltp = Decimal(str(admin_api("quotes", symbol="SBIN", exchange="NSE")["data"]["ltp"]))
    price = (ltp * Decimal("1.01") / Decimal("0.05")).quantize(Decimal(1), ROUND_HALF_UP) * (
        Decimal("0.05")
    )
    order_id = admin_api.place(symbol="SBIN", action="BUY", quantity=5000, pricetype="LIMIT",
                               price=str(price))  # fmt: skip
    page = admin_page
    page.wait("the order completes on a tick", lambda: any(
        row["order_status"] == "complete" for row in page.of("order_update", for_order(order_id))
    ))  # fmt: skip
    page.wait("its fills", lambda: sum(
        row["quantity"] for row in page.of("trade_update", for_order(order_id))
    ) == 5000)  # fmt: skip
    fills = page.of("trade_update", for_order(order_id))
    at_limit = [row for row in fills if row["average_price"] == float(price)]
    assert len(fills) >= 2 and len(at_limit) == 1, f"not a depth fill, then a tick fill: {fills}"
    assert page.of("order_update", for_order(order_id))[-1] == next(
        row for row in admin_api("orderbook")["data"]["orders"] if row["orderid"] == order_id
    )

    def sbin(row: dict[str, Any]) -> bool:
        return bool(row["symbol"] == "SBIN" and row["product"] == "MIS")

    page.wait("the position", lambda: any(row["quantity"] == 5000 for row in page.of(
        "position_update", sbin)))  # fmt: skip
    funds = pick(admin_api("funds")["data"], STABLE_FUNDS)
    page.wait("the funds after the tick's fill", lambda: any(
        pick(row, STABLE_FUNDS) == funds for row in page.of("funds_update")
    ))  # fmt: skip


@pytest.mark.slow
def test_live_a_user_hears_only_their_own_updates(
    admin_api: Api, bob_api: Api, admin_page: Page, bob_page: Page
) -> None:
    admin_order = admin_api.place(symbol="ITC", action="BUY", quantity=1, pricetype="MARKET")
    admin_page.wait("admin's order", lambda: bool(
        admin_page.of("order_update", for_order(admin_order))))  # fmt: skip
    bob_order = bob_api.place(symbol="ITC", action="SELL", quantity=3, pricetype="MARKET")
    bob_page.wait("bob's fills", lambda: sum(
        row["quantity"] for row in bob_page.of("trade_update", for_order(bob_order))
    ) == 3)  # fmt: skip
    bob_funds = pick(bob_api("funds")["data"], STABLE_FUNDS)
    bob_page.wait("bob's funds", lambda: any(
        pick(row, STABLE_FUNDS) == bob_funds for row in bob_page.of("funds_update")
    ))  # fmt: skip

    # Whatever leaked would have reached bob's socket before his own updates did.
    assert {row["orderid"] for row in bob_page.of("order_update")} == {bob_order}
    assert {row["orderid"] for row in bob_page.of("trade_update")} == {bob_order}
    assert [(row["symbol"], row["quantity"]) for row in bob_page.of("position_update")] == [
        ("ITC", -3)
    ] * len(bob_page.of("position_update"))
    assert all(row["charges"] <= bob_funds["charges"] for row in bob_page.of("funds_update"))
    admin_orders = {row["orderid"] for row in admin_page.of("order_update")}
    assert admin_order in admin_orders and bob_order not in admin_orders


@pytest.mark.slow
def test_live_pages_beyond_the_socket_limit_wait_and_the_api_keeps_serving(
    live: RunningDesk, admin_api: Api, admin_page: Page, bob_page: Page
) -> None:
    cookie = page_session(live.url, "admin", STRONG_PASSWORD)
    extra = [Page(live.url, cookie) for _ in range(MAX_SOCKETS - 2)]  # two are open already
    with pytest.raises(socketio.exceptions.ConnectionError):
        Page(live.url, cookie)
    assert admin_api("funds")["status"] == "success"  # the API's threads are its own
    for page in extra:
        page.close()
    deadline = time.monotonic() + WAIT_SECONDS
    while True:  # a closed socket leaves the server's table a moment after the client goes
        try:
            Page(live.url, cookie).close()
            break
        except socketio.exceptions.ConnectionError:
            assert time.monotonic() < deadline, "a freed slot was never reused"
            time.sleep(0.05)


@pytest.mark.slow
def test_live_with_redis_an_update_reaches_a_page_on_another_worker(
    tmp_path: Path, redis_url: str
) -> None:
    # Two processes of one desk (one .env, one set of databases), as two gunicorn workers.
    first = RunningDesk(tmp_path, REDIS_URL=redis_url)
    second = RunningDesk(tmp_path, REDIS_URL=redis_url)
    first.start()
    try:
        second.start()
        try:
            api = Api(second.url, first.admin_key(STRONG_PASSWORD))
            page = Page(first.url, page_session(first.url, "admin", STRONG_PASSWORD))
            try:
                order_id = api.place(symbol="ITC", action="BUY", quantity=1, pricetype="MARKET")
                page.wait("the order placed through the other worker", lambda: bool(
                    page.of("order_update", for_order(order_id))))  # fmt: skip
            finally:
                page.close()
        finally:
            second.stop()
    finally:
        first.stop()
