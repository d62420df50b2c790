"""The Broker contract: the same behavioural checks against every registered adapter.

The sandbox runs in process; each live adapter runs its official SDK against a fake of its
broker served on loopback by tests/fakes/, logged in through its own login flow (the login
URL, the broker's redirect, the callback). A new adapter joins by adding its fake here.
"""

from __future__ import annotations

import importlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from app import create_app
from broker.base import Broker, TradingMode, broker_for, registered_brokers
from config import Settings
from services.clock import IST
from services.desk import Desk
from services.feed.model import FeedMode, Tick
from services.market.model import Instrument, Interval
from services.orders.model import (
    ModifyRequest,
    OrderStatus,
    PriceType,
    Product,
    Side,
)
from services.orders.model import (
    OrderRequest as Order,
)
from tests.conftest import desk_env, desk_of, make_user

LIVE = {  # adapter name -> (fake module, fake class)
    "zerodha": ("tests.fakes.kite", "FakeKite"),
    "dhan": ("tests.fakes.dhan", "FakeDhan"),
}
ADAPTERS = ["sandbox", *LIVE]


@dataclass
class Connected:
    broker: Broker
    desk: Desk
    fake: Any = None


def log_in(broker: Broker) -> None:
    """The trader's round trip: the broker's login page redirects to the desk's callback."""
    callback = "http://127.0.0.1:5000/settings/broker/" + broker.name + "/callback"
    target = broker.login_url(callback)
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        response = client.get(target)
        for _ in range(5):  # a login form may be a page or two before the redirect
            if response.status_code in (301, 302, 303, 307) and response.headers[
                "location"
            ].startswith(callback):
                break
            assert response.status_code in (301, 302, 303, 307), response.text
            response = client.get(response.headers["location"])
    params = dict(parse_qsl(urlsplit(response.headers["location"]).query))
    status = broker.complete_login(params)
    assert status.connected, status


@pytest.fixture(params=ADAPTERS)
def connected(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Connected]:
    name: str = request.param
    fake = None
    overrides: dict[str, str] = {}
    if name in LIVE:
        module, cls = LIVE[name]
        fake = getattr(importlib.import_module(module), cls).start()
        overrides["BROKER_ENDPOINTS"] = fake.endpoints
    app = create_app(Settings.from_mapping(desk_env(tmp_path, **overrides)))
    desk = desk_of(app)
    user = make_user(app)
    if fake is not None:
        desk.broker_accounts.save_credentials(user.id, name, fake.credentials)
    broker = broker_for(name, user.id, desk)
    try:
        if fake is not None:
            assert not broker.session_status().connected
            log_in(broker)
        yield Connected(broker, desk, fake)
    finally:
        desk.close()
        if fake is not None:
            fake.stop()


def sbin(broker: Broker, desk: Desk) -> Instrument:
    found = {(i.symbol, i.exchange.value): i for i in broker.master_contract()}
    return found[("SBIN", "NSE")]


def test_every_adapter_is_registered_with_what_the_pages_need() -> None:
    brokers = registered_brokers()
    assert set(ADAPTERS) <= set(brokers)
    for name, cls in brokers.items():
        assert cls.name == name and cls.display_name
        if cls.mode is TradingMode.LIVE:
            names = {field.name for field in cls.credential_fields}
            assert "api_key" in names and any(field.secret for field in cls.credential_fields)


def test_session_and_identity(connected: Connected) -> None:
    status = connected.broker.session_status()
    assert status.connected and not status.needs_login


def test_the_master_contract_speaks_dalal_symbols(connected: Connected) -> None:
    instruments = connected.broker.master_contract()
    keys = {(i.symbol, i.exchange.value) for i in instruments}
    assert ("SBIN", "NSE") in keys
    assert any(exchange == "NSE_INDEX" and symbol == "NIFTY" for symbol, exchange in keys)
    futures = [i for i in instruments if i.exchange.value == "NFO" and i.symbol.endswith("FUT")]
    options = [
        i for i in instruments if i.exchange.value == "NFO" and i.symbol[-2:] in ("CE", "PE")
    ]
    assert futures and options
    for option in options:
        assert option.expiry is not None and option.strike is not None and option.lot_size > 1
        assert isinstance(option.tick_size, Decimal)
        assert option.symbol.startswith(option.underlying or "")


def test_quotes_depth_and_history_are_exact_and_ordered(connected: Connected) -> None:
    broker, desk = connected.broker, connected.desk
    instrument = sbin(broker, desk)
    quote = broker.quote(instrument)
    assert isinstance(quote.ltp, Decimal) and quote.ltp > 0 and quote.symbol == "SBIN"
    depth = broker.depth(instrument)
    assert depth.buy and depth.sell
    assert all(isinstance(level.price, Decimal) for level in (*depth.buy, *depth.sell))
    assert depth.buy[0].price <= depth.sell[0].price
    today = desk.clock.now().astimezone(IST).date()
    candles = broker.history(instrument, Interval.D, today - timedelta(days=10), today)
    assert candles and all(isinstance(c.close, Decimal) for c in candles)
    starts = [c.start for c in candles]
    assert starts == sorted(starts) and all(start.tzinfo is not None for start in starts)
    assert all(c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close) for c in candles)


def test_a_market_order_fills_and_shows_in_every_book(connected: Connected) -> None:
    broker = connected.broker
    report = broker.place_order(Order("SBIN", "NSE", Side.BUY, 2, Product.MIS))
    assert report.order_id and (report.symbol, report.exchange) == ("SBIN", "NSE")
    assert report.side is Side.BUY and report.quantity == 2
    filled = broker.order(report.order_id)
    assert filled.status is OrderStatus.COMPLETE and filled.filled_quantity == 2
    assert isinstance(filled.average_price, Decimal) and filled.average_price > 0
    assert report.order_id in {order.order_id for order in broker.orders()}
    trades = [trade for trade in broker.trades() if trade.order_id == report.order_id]
    assert sum(trade.quantity for trade in trades) == 2
    [position] = [p for p in broker.positions() if (p.symbol, p.product) == ("SBIN", Product.MIS)]
    assert position.net_quantity == 2
    funds = broker.funds()
    assert isinstance(funds.available_cash, Decimal)


def test_a_limit_order_rests_changes_and_cancels(connected: Connected) -> None:
    broker, desk = connected.broker, connected.desk
    ltp = broker.quote(sbin(broker, desk)).ltp
    tick = Decimal("0.05")
    low = (ltp * Decimal("0.9") / tick).to_integral_value() * tick
    placed = broker.place_order(
        Order("SBIN", "NSE", Side.BUY, 1, Product.MIS, PriceType.LIMIT, price=low)
    )
    assert broker.order(placed.order_id).status is OrderStatus.OPEN
    lower = low - Decimal("1.00")
    broker.modify_order(ModifyRequest(placed.order_id, 1, PriceType.LIMIT, price=lower))
    assert broker.order(placed.order_id).price == lower
    broker.cancel_order(placed.order_id)
    assert broker.order(placed.order_id).status is OrderStatus.CANCELLED
    assert broker.cancel_all_orders() == ([], [])


def test_the_feed_streams_subscribed_instruments(connected: Connected) -> None:
    broker, desk = connected.broker, connected.desk
    instrument = sbin(broker, desk)
    source = broker.feed()
    ticks: queue.Queue[Tick] = queue.Queue()
    source.connect()
    source.set_subscriptions({(instrument.exchange.value, instrument.symbol): FeedMode.LTP})
    runner = threading.Thread(
        target=source.run, args=(lambda batch: [ticks.put(t) for t in batch],)
    )
    runner.start()
    try:
        tick = ticks.get(timeout=10)
        assert (tick.exchange, tick.symbol) == ("NSE", "SBIN")
    finally:
        source.close()
        runner.join(10)
    assert not runner.is_alive()
