"""The Dhan adapter on the real `dhanhq` SDK, against a fake Dhan served on loopback.

Everything goes through `broker_for("dhan", ...)` on a desk built as the app fixture builds
it, with BROKER_ENDPOINTS pointing every Dhan address at the fake (tests/fakes/dhan.py).
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from flask import Flask

from app import create_app
from broker.base import broker_for
from broker.dhan import DhanBroker, mapping
from broker.dhan.feed import DhanFeed
from config import Settings
from services.accounts import UserView
from services.broker_accounts import BrokerCredentials
from services.clock import IST, FixedClock
from services.desk import Desk
from services.errors import (
    BrokerRateLimited,
    BrokerSessionExpired,
    BrokerUnavailable,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
)
from services.feed.hub import FeedHub
from services.feed.model import FeedMode, Tick
from services.feed.source import SourceDropped
from services.market.model import Exchange, ExpiryKind, Instrument, InstrumentType, Interval
from services.orders.model import (
    ModifyRequest,
    OrderRequest,
    OrderStatus,
    PriceType,
    Product,
    Side,
    Validity,
)
from tests.conftest import STRONG_PASSWORD, desk_env, desk_of
from tests.fakes.dhan import FakeDhan

CALLBACK = "http://127.0.0.1:5000/settings/broker/dhan/callback"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=IST)


@pytest.fixture
def fake(clock: FixedClock) -> Iterator[FakeDhan]:
    served = FakeDhan.start(now=clock.now, redirect_url=CALLBACK)
    yield served
    served.stop()


@pytest.fixture
def dhan_app(tmp_path: Path, clock: FixedClock, fake: FakeDhan) -> Iterator[Flask]:
    settings = Settings.from_mapping(
        desk_env(tmp_path, BROKER_ENDPOINTS=fake.endpoints)
    ).with_overrides(testing=True)
    flask_app = create_app(settings, clock=clock)
    yield flask_app
    desk_of(flask_app).close()


@pytest.fixture
def desk(dhan_app: Flask) -> Desk:
    return desk_of(dhan_app)


@pytest.fixture
def trader(desk: Desk, fake: FakeDhan) -> UserView:
    user = desk.accounts.create_user("trader", "trader@example.com", STRONG_PASSWORD)
    desk.broker_accounts.save_credentials(user.id, "dhan", fake.credentials)
    return user


@pytest.fixture
def broker(desk: Desk, trader: UserView) -> DhanBroker:
    found = broker_for("dhan", trader.id, desk)
    assert isinstance(found, DhanBroker)
    return found


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries as in production, only closer together."""
    monkeypatch.setattr(DhanBroker, "backoff_seconds", 0.02)


def log_in(broker: DhanBroker) -> None:
    """The browser's part: Dhan's login page redirects to the desk with a tokenId."""
    page = broker.login_url(CALLBACK)
    answer = httpx.get(page, follow_redirects=False)
    assert answer.status_code == 302
    back = answer.headers["location"]
    assert back.startswith(CALLBACK + "?tokenId=")
    status = broker.complete_login(dict(parse_qsl(urlsplit(back).query)))
    assert status.connected


@pytest.fixture
def live(broker: DhanBroker) -> DhanBroker:
    log_in(broker)
    return broker


def instrument(broker: DhanBroker, symbol: str, exchange: str) -> Instrument:
    found = next(
        item
        for item in broker.master_contract()
        if item.symbol == symbol and item.exchange.value == exchange
    )
    return found


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


# ---------------------------------------------------------------------- sessions


def test_login_flow_stores_the_session_sealed(
    broker: DhanBroker, fake: FakeDhan, desk: Desk, tmp_path: Path, trader: UserView
) -> None:
    before = broker.session_status()
    assert before.needs_login and not before.connected

    page = broker.login_url(CALLBACK)
    assert page.startswith(f"{fake.auth_url}/login/consentApp-login?consentAppId=")
    answer = httpx.get(page, follow_redirects=False)
    params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    status = broker.complete_login(params)

    assert status.connected and not status.needs_login
    assert status.message == "Logged in until 10:00 IST."  # Dhan's expiry: 24 h from issue
    session = desk.broker_accounts.session(trader.id, "dhan")
    assert session is not None
    assert session.access_token in fake.tokens
    assert session.expires_at == NOW + timedelta(hours=24)
    assert session.extra == {"client_id": fake.client_id}
    for stored in tmp_path.glob("dalal.db*"):
        data = stored.read_bytes()
        assert session.access_token.encode() not in data
        assert fake.app_secret.encode() not in data
    # A token ID is good once: replaying the callback is refused, not a second session.
    with pytest.raises(InvalidRequest, match="Dhan refused the login"):
        broker.complete_login(params)


def test_wrong_app_secret_is_a_clear_error(desk: Desk, fake: FakeDhan, trader: UserView) -> None:
    desk.broker_accounts.save_credentials(
        trader.id, "dhan", BrokerCredentials(fake.app_id, "not-the-secret", fake.client_id)
    )
    with pytest.raises(InvalidRequest, match="App ID, App secret and client ID"):
        broker_for("dhan", trader.id, desk).login_url(CALLBACK)


def test_a_callback_without_token_id_is_refused(broker: DhanBroker) -> None:
    with pytest.raises(InvalidRequest, match="no tokenId"):
        broker.complete_login({"state": "x"})


def test_an_access_token_from_dhan_web_is_verified_then_used(
    broker: DhanBroker, fake: FakeDhan, desk: Desk, trader: UserView
) -> None:
    with pytest.raises(InvalidRequest, match="did not accept"):
        broker.complete_login({"access_token": "eyJhbGciOi.not-a-real.token"})
    assert broker.session_status().needs_login

    token = fake.issue_token(lifetime=timedelta(hours=20))
    status = broker.complete_login({"access_token": token})
    assert status.connected
    session = desk.broker_accounts.session(trader.id, "dhan")
    assert session is not None and session.access_token == token
    assert session.expires_at == NOW + timedelta(hours=20)  # Dhan's tokenValidity, to the minute


def test_an_expired_token_asks_for_a_new_login(live: DhanBroker, fake: FakeDhan) -> None:
    fake.expire_tokens()
    with pytest.raises(BrokerSessionExpired, match="log in to Dhan"):
        live.orders()
    status = live.session_status()
    assert status.needs_login and not status.connected
    assert "log in to Dhan" in status.message
    with pytest.raises(BrokerSessionExpired):  # forgotten here, not retried at Dhan
        live.positions()
    assert fake.requests.count(("GET", "/v2/positions")) == 0


def test_the_session_lapses_at_dhans_expiry(live: DhanBroker, clock: FixedClock) -> None:
    clock.advance(timedelta(hours=23, minutes=59))
    assert live.session_status().connected
    clock.advance(timedelta(minutes=1))
    assert live.session_status().needs_login


# ---------------------------------------------------------------------- orders and books


def test_orders_round_trip_with_exact_money(live: DhanBroker, fake: FakeDhan) -> None:
    bought = live.place_order(OrderRequest("SBIN", "NSE", Side.BUY, 10, Product.MIS))
    assert bought.status is OrderStatus.COMPLETE
    assert bought.filled_quantity == 10
    assert bought.average_price == Decimal("812.35")
    assert (bought.symbol, bought.exchange, bought.product) == ("SBIN", "NSE", Product.MIS)
    assert bought.placed_at == NOW

    resting = live.place_order(
        OrderRequest("SBIN", "NSE", Side.BUY, 5, Product.CNC, PriceType.LIMIT, Decimal("800.05"))
    )
    assert resting.status is OrderStatus.OPEN
    assert resting.price == Decimal("800.05")
    assert fake.orders[resting.order_id]["productType"] == "CNC"

    changed = live.modify_order(
        ModifyRequest(resting.order_id, 7, PriceType.LIMIT, Decimal("801.50"))
    )
    assert (changed.quantity, changed.price, changed.status) == (
        7,
        Decimal("801.5"),
        OrderStatus.OPEN,
    )

    stop = live.place_order(
        OrderRequest(
            "NIFTY29DEC26FUT", "NFO", Side.SELL, 65, Product.NRML, PriceType.SL_M,
            trigger_price=Decimal("26100.00"), validity=Validity.DAY,
        )
    )  # fmt: skip
    assert stop.status is OrderStatus.TRIGGER_PENDING
    assert stop.trigger_price == Decimal("26100.0")
    assert fake.orders[stop.order_id]["productType"] == "MARGIN"
    assert fake.orders[stop.order_id]["orderType"] == "STOP_LOSS_MARKET"

    cancelled = live.cancel_order(resting.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    # Cancelling twice (a resend after a lost answer) reports the cancellation, not an error.
    assert live.cancel_order(resting.order_id).status is OrderStatus.CANCELLED

    done, failed = live.cancel_all_orders()
    assert (done, failed) == ([stop.order_id], [])

    book = {report.order_id: report for report in live.orders()}
    assert [book[o].status for o in (bought.order_id, resting.order_id, stop.order_id)] == [
        OrderStatus.COMPLETE, OrderStatus.CANCELLED, OrderStatus.CANCELLED,
    ]  # fmt: skip
    assert book[stop.order_id].symbol == "NIFTY29DEC26FUT"
    assert book[stop.order_id].exchange == "NFO"
    assert book[stop.order_id].product is Product.NRML

    (trade,) = live.trades()
    assert (trade.order_id, trade.side, trade.quantity) == (bought.order_id, Side.BUY, 10)
    assert trade.price == Decimal("812.35") and trade.traded_at == NOW
    assert fake.orders_placed == 3


def test_positions_holdings_and_funds(live: DhanBroker, fake: FakeDhan) -> None:
    live.place_order(OrderRequest("SBIN", "NSE", Side.BUY, 10, Product.MIS))
    fake.set_ltp("3045", "815.00")
    (position,) = live.positions()
    assert (position.symbol, position.exchange, position.product) == ("SBIN", "NSE", Product.MIS)
    assert position.net_quantity == 10 and position.buy_quantity == 10
    assert position.average_price == Decimal("812.35")
    assert position.ltp == Decimal("815.0")
    assert position.unrealized_pnl == Decimal("26.5")
    assert position.buy_value == Decimal("8123.50")

    live.place_order(OrderRequest("SBIN", "NSE", Side.SELL, 4, Product.MIS))
    (position,) = live.positions()
    assert position.net_quantity == 6 and position.sell_quantity == 4
    assert position.realized_pnl == Decimal("10.6")  # 4 x (815.00 - 812.35)

    (holding,) = live.holdings()
    assert (holding.symbol, holding.exchange, holding.quantity) == ("INFY", "NSE", 10)
    assert holding.average_price == Decimal("1480.25")
    assert holding.ltp == Decimal("1520.4")
    assert holding.pnl == Decimal("401.5")

    funds = live.funds()
    assert funds.starting_capital == Decimal("1000000.0")
    assert funds.utilised == Decimal("974.82")  # 6 x 812.35 x 20% (intraday margin)
    assert funds.realized_pnl == Decimal("10.6")
    assert funds.unrealized_pnl == Decimal("15.9")
    assert funds.available_cash == Decimal("999035.78")


def test_rejections_carry_dhans_reason(live: DhanBroker, fake: FakeDhan) -> None:
    with pytest.raises(InsufficientFunds, match="Margin Exceeds"):
        live.place_order(OrderRequest("NIFTY29DEC26FUT", "NFO", Side.BUY, 65, Product.NRML))
    rejected = next(o for o in live.orders() if o.status is OrderStatus.REJECTED)
    assert "RMS:Margin Exceeds" in rejected.rejection_reason

    with pytest.raises(OrderRejected, match="multiple of lot size 65"):
        live.place_order(OrderRequest("NIFTY29DEC26FUT", "NFO", Side.BUY, 10, Product.NRML))
    with pytest.raises(OrderRejected, match="index"):
        live.place_order(OrderRequest("NIFTY", "NSE_INDEX", Side.BUY, 1))
    with pytest.raises(InvalidRequest, match="not in Dhan's scrip master"):
        live.place_order(OrderRequest("NOSUCH", "NSE", Side.BUY, 1))
    with pytest.raises(NotFound):
        live.order("999")
    assert fake.place_attempts == 2  # the index and the unknown symbol never left the desk


# ---------------------------------------------------------------------- retries


def test_a_429_storm_on_placing_yields_exactly_one_order(live: DhanBroker, fake: FakeDhan) -> None:
    fake.fail_next(3, status=429, path="/v2/orders", method="POST")
    report = live.place_order(OrderRequest("SBIN", "NSE", Side.BUY, 1))
    assert report.status is OrderStatus.COMPLETE
    assert fake.place_attempts == 4
    assert fake.orders_placed == 1
    assert len(live.orders()) == 1


def test_a_429_storm_that_outlasts_the_retries_is_reported(
    live: DhanBroker, fake: FakeDhan
) -> None:
    fake.fail_next(10, status=429, path="/v2/orders", method="POST")
    with pytest.raises(BrokerRateLimited):
        live.place_order(OrderRequest("SBIN", "NSE", Side.BUY, 1))
    assert fake.place_attempts == 5 and fake.orders_placed == 0


def test_a_503_on_placing_is_never_resent(live: DhanBroker, fake: FakeDhan) -> None:
    fake.fail_next(1, status=503, path="/v2/orders", method="POST")
    with pytest.raises(BrokerUnavailable):
        live.place_order(OrderRequest("SBIN", "NSE", Side.BUY, 1))
    assert fake.place_attempts == 1
    assert fake.orders_placed == 0


def test_a_timed_out_placement_is_not_resent(
    live: DhanBroker, fake: FakeDhan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DhanBroker, "http_timeout_seconds", 0.4)
    fake.delay_next(1.0, path="/v2/orders", method="POST")
    with pytest.raises(BrokerUnavailable, match="could not be reached"):
        live.place_order(OrderRequest("SBIN", "NSE", Side.BUY, 1))
    wait_for(lambda: fake.orders_placed == 1)  # it did reach Dhan: the book tells the truth
    assert fake.place_attempts == 1
    assert [o.status for o in live.orders()] == [OrderStatus.COMPLETE]


def test_a_timed_out_read_is_retried(
    live: DhanBroker, fake: FakeDhan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DhanBroker, "http_timeout_seconds", 0.4)
    fake.delay_next(1.0, path="/v2/holdings")
    fake.fail_next(1, status=500, path="/v2/holdings")
    (holding,) = live.holdings()
    assert holding.symbol == "INFY"
    assert fake.requests.count(("GET", "/v2/holdings")) == 3


# ---------------------------------------------------------------------- market data


def test_quote_and_depth(live: DhanBroker) -> None:
    sbin = instrument(live, "SBIN", "NSE")
    quote = live.quote(sbin)
    assert (quote.symbol, quote.exchange) == ("SBIN", Exchange.NSE)
    assert quote.ltp == Decimal("812.35") and quote.prev_close == Decimal("805.1")
    assert (quote.open, quote.high, quote.low) == (
        Decimal("807.6"), Decimal("816.45"), Decimal("801.9"),
    )  # fmt: skip
    assert (quote.bid, quote.ask) == (Decimal("812.3"), Decimal("812.4"))
    assert quote.volume == 123_456 and quote.last_quantity == 25
    assert quote.timestamp == NOW

    future = instrument(live, "NIFTY29DEC26FUT", "NFO")
    depth = live.depth(future)
    assert depth.quote.oi == 1_250_000
    assert [level.price for level in depth.buy] == [
        Decimal("26210.45"), Decimal("26210.4"), Decimal("26210.35"), Decimal("26210.3"),
        Decimal("26210.25"),
    ]  # fmt: skip
    assert [level.quantity for level in depth.sell] == [120, 240, 360, 480, 600]
    assert depth.sell[0].orders == 2
    assert depth.total_buy_quantity == 1500


def test_history_daily_and_intraday(live: DhanBroker) -> None:
    sbin = instrument(live, "SBIN", "NSE")
    daily = live.history(sbin, Interval.D, date(2026, 11, 16), date(2026, 11, 20))
    assert [c.start for c in daily] == [
        datetime(2026, 11, day, tzinfo=IST) for day in range(16, 21)
    ]
    assert daily[0].open == Decimal("805.1") and daily[0].high == Decimal("805.4")
    assert daily[4].close == Decimal("809.2")  # 805.10 + 4 + 0.10

    minutes = live.history(sbin, Interval.M1, date(2026, 11, 20), date(2026, 11, 20))
    assert len(minutes) == 375
    assert minutes[0].start == datetime(2026, 11, 20, 9, 15, tzinfo=IST)

    threes = live.history(sbin, Interval.M3, date(2026, 11, 20), date(2026, 11, 20))
    assert len(threes) == 125
    first = threes[0]
    assert first.start == datetime(2026, 11, 20, 9, 15, tzinfo=IST)
    assert (first.open, first.high, first.low, first.close) == (
        minutes[0].open, minutes[2].high, minutes[0].low, minutes[2].close,
    )  # fmt: skip
    assert first.volume == sum(m.volume for m in minutes[:3])
    assert threes[1].start == datetime(2026, 11, 20, 9, 18, tzinfo=IST)

    hours = live.history(sbin, Interval.H1, date(2026, 11, 20), date(2026, 11, 20))
    assert [c.start.hour for c in hours] == [9, 10, 11, 12, 13, 14, 15]
    assert live.history(sbin, Interval.D, date(2026, 11, 22), date(2026, 11, 22)) == []


def test_master_contract_in_dalal_symbols(live: DhanBroker) -> None:
    found = {(i.exchange.value, i.symbol): i for i in live.master_contract()}
    assert set(found) == {
        ("NSE", "SBIN"), ("NSE", "INFY"), ("NSE_INDEX", "NIFTY"), ("NSE_INDEX", "INDIAVIX"),
        ("NFO", "NIFTY29DEC26FUT"), ("NFO", "NIFTY29DEC2626000CE"), ("NFO", "NIFTY29DEC2626000PE"),
    }  # fmt: skip
    sbin = found[("NSE", "SBIN")]
    assert (sbin.token, sbin.instrument_type, sbin.lot_size) == ("3045", InstrumentType.EQ, 1)
    assert sbin.tick_size == Decimal("0.05") and found[("NSE", "INFY")].tick_size == Decimal("0.1")
    assert (sbin.brsymbol, sbin.brexchange) == ("SBIN", "NSE_EQ")
    nifty = found[("NSE_INDEX", "NIFTY")]
    assert (nifty.token, nifty.instrument_type, nifty.brexchange) == (
        "13",
        InstrumentType.INDEX,
        "IDX_I",
    )
    future = found[("NFO", "NIFTY29DEC26FUT")]
    assert future.instrument_type is InstrumentType.FUT
    assert (future.lot_size, future.tick_size, future.expiry) == (
        65,
        Decimal("0.1"),
        date(2026, 12, 29),
    )
    assert future.expiry_kind is ExpiryKind.MONTHLY
    assert (future.underlying, future.underlying_exchange) == ("NIFTY", Exchange.NSE_INDEX)
    assert (future.token, future.brsymbol) == ("52175", "NIFTY-Dec2026-FUT")
    call = found[("NFO", "NIFTY29DEC2626000CE")]
    assert (call.instrument_type, call.strike, call.token) == (
        InstrumentType.CE,
        Decimal(26000),
        "60001",
    )
    assert found[("NFO", "NIFTY29DEC2626000PE")].instrument_type is InstrumentType.PE


# ---------------------------------------------------------------------- streaming


def test_a_dropped_feed_reconnects_resubscribes_and_ticks_resume(
    live: DhanBroker, fake: FakeDhan
) -> None:
    received: list[Tick] = []
    lock = threading.Lock()

    def consume(ticks: list[Tick]) -> None:
        with lock:
            received.extend(ticks)

    def seen(symbol: str, after: int = 0) -> list[Tick]:
        with lock:
            return [tick for tick in received[after:] if tick.symbol == symbol]

    hub = FeedHub(live.feed, backoff=(0.05,))
    hub.add_consumer(consume)
    hub.start()
    try:
        hub.acquire(("NSE", "SBIN"), FeedMode.LTP)
        hub.acquire(("NFO", "NIFTY29DEC26FUT"), FeedMode.DEPTH)
        wait_for(lambda: bool(seen("SBIN")) and bool(seen("NIFTY29DEC26FUT")))
        assert fake.feed_subscriptions() == {("NSE_EQ", "3045"): 15, ("NSE_FNO", "52175"): 21}

        ltp_tick = seen("SBIN")[0]
        assert ltp_tick.exchange == "NSE" and set(ltp_tick.payloads) == {1}
        assert ltp_tick.payloads[1]["ltp"] == 812.35
        assert ltp_tick.payloads[1]["ltt"] == int(NOW.timestamp()) * 1000
        deep = seen("NIFTY29DEC26FUT")[-1].payloads
        assert set(deep) == {1, 2, 3}
        assert deep[2]["close"] == 26140.0 and deep[2]["change"] == 70.5
        assert (deep[2]["bid"], deep[2]["ask"], deep[2]["oi"]) == (26210.45, 26210.55, 1_250_000)
        assert deep[3]["depth"]["sell"][0] == {"price": 26210.55, "quantity": 120, "orders": 2}
        assert deep[3]["total_buy_quantity"] == 1500
        assert set(deep[2]) == set(deep[3]) - {"depth", "total_buy_quantity", "total_sell_quantity"}

        fake.drop_feed()
        wait_for(lambda: hub.reconnects >= 1 and fake.feed_connections >= 2)
        wait_for(lambda: len(fake.feed_subscriptions()) == 2)
        assert fake.feed_subscriptions() == {("NSE_EQ", "3045"): 15, ("NSE_FNO", "52175"): 21}
        with lock:
            mark = len(received)
        wait_for(lambda: bool(seen("SBIN", mark)) and bool(seen("NIFTY29DEC26FUT", mark)))
        assert hub.status.connected

        hub.release(("NSE", "SBIN"), FeedMode.LTP)
        wait_for(lambda: fake.feed_subscriptions() == {("NSE_FNO", "52175"): 21})
    finally:
        hub.stop()


def test_the_feed_ends_the_session_when_dhan_says_the_token_expired(
    live: DhanBroker, fake: FakeDhan
) -> None:
    hub = FeedHub(live.feed, backoff=(0.05,))
    hub.start()
    try:
        hub.acquire(("NSE", "SBIN"), FeedMode.QUOTE)
        wait_for(lambda: hub.status.connected)
        fake.expire_tokens()
        fake.drop_feed()
        wait_for(lambda: live.session_status().needs_login)
        assert not hub.status.connected
    finally:
        hub.stop()


# ---------------------------------------------------------------------- monitoring, secrets


def test_every_call_is_timed_in_the_latency_monitor(live: DhanBroker, desk: Desk) -> None:
    live.place_order(OrderRequest("SBIN", "NSE", Side.BUY, 1))
    live.quote(instrument(live, "SBIN", "NSE"))
    rows = {(row.broker, row.operation): row for row in desk.broker_latency.summary()}
    for operation in ("generate_consent", "consume_consent", "master_contract", "place_order",
                      "order", "quote"):  # fmt: skip
        assert ("dhan", operation) in rows, operation
        assert rows[("dhan", operation)].calls >= 1
        assert rows[("dhan", operation)].p50_ms > 0


def test_no_secret_reaches_the_logs(
    broker: DhanBroker,
    fake: FakeDhan,
    desk: Desk,
    trader: UserView,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    log_in(broker)
    broker.place_order(OrderRequest("SBIN", "NSE", Side.BUY, 1))
    fake.fail_next(1, status=503, path="/v2/positions")
    broker.positions()
    hub = FeedHub(broker.feed, backoff=(0.05,))
    hub.start()
    try:
        hub.acquire(("NSE", "SBIN"), FeedMode.LTP)
        wait_for(lambda: hub.status.connected)
        fake.drop_feed()
        wait_for(lambda: hub.reconnects >= 1 and hub.status.connected)
    finally:
        hub.stop()
    session = desk.broker_accounts.session(trader.id, "dhan")
    assert session is not None
    text = caplog.text
    assert "Dhan" in text or "dhan" in text  # the run did log (the feed's drop, at least)
    for secret in (session.access_token, fake.app_secret, fake.app_id):
        assert secret not in text
    shown = repr(desk.broker_accounts.credentials(trader.id, "dhan")) + repr(session)
    assert fake.app_secret not in shown and session.access_token not in shown


# ---------------------------------------------------------------------- the rules, directly


def test_scrip_master_rows_beyond_the_fakes() -> None:
    header = (
        "SEM_EXM_EXCH_ID,SEM_SEGMENT,SEM_SMST_SECURITY_ID,SEM_INSTRUMENT_NAME,SEM_EXPIRY_CODE,"
        "SEM_TRADING_SYMBOL,SEM_LOT_UNITS,SEM_CUSTOM_SYMBOL,SEM_EXPIRY_DATE,SEM_STRIKE_PRICE,"
        "SEM_OPTION_TYPE,SEM_TICK_SIZE,SEM_EXPIRY_FLAG,SEM_EXCH_INSTRUMENT_TYPE,SEM_SERIES,"
        "SM_SYMBOL_NAME"
    )
    rows = [
        "NSE,E,16669,EQUITY,,BAJAJ-AUTO,1.0,Bajaj Auto,,-0.01000,XX,5.0000,NA,ES,BE,BAJAJ AUTO",
        "NSE,E,16670,EQUITY,,BAJAJ-AUTO,1.0,Bajaj Auto,,-0.01000,XX,5.0000,NA,ES,EQ,BAJAJ AUTO",
        "BSE,E,500570,EQUITY,,TATAMOTORS,1.0,Tata Motors,,-0.01000,XX,5.0000,NA,ES,A,TATA",
        "BSE,I,51,INDEX,,SENSEX,1.0,Sensex,,-0.01000,XX,1.0000,NA,INDEX,,SENSEX",
        "NSE,I,25,INDEX,,NIFTY BANK,1.0,Nifty Bank,,-0.01000,XX,5.0000,NA,INDEX,,NIFTY BANK",
        "NSE,D,71234,OPTSTK,0,BAJAJ-AUTO-Dec2026-9250.5-PE,75.0,BAJAJ-AUTO 29 DEC 9250.5 PUT,"
        "2026-12-29 14:30:00,9250.50000,PE,5.0000,M,OPTSTK,,BAJAJ-AUTO",
        "BSE,D,1150,FUTIDX,0,SENSEX-Dec2026-FUT,20.0,SENSEX DEC FUT,2026-12-24 14:30:00,"
        "-0.01000,XX,5.0000,W,FUTIDX,,SENSEX",
        "MCX,M,4401,FUTCOM,0,CRUDEOIL-Dec2026-FUT,100.0,CRUDEOIL DEC FUT,2026-12-17 23:30:00,"
        "-0.01000,XX,100.0000,M,FUTCOM,,CRUDEOIL",
        "NSE,C,8890,FUTCUR,0,USDINR-Dec2026-FUT,1.0,USDINR DEC FUT,2026-12-29 12:30:00,"
        "-0.01000,XX,0.2500,M,FUTCUR,,USDINR",
        "NSE,E,999,EQUITY,,,1.0,No symbol,,-0.01000,XX,5.0000,NA,ES,EQ,BROKEN",
    ]
    index = mapping.parse_scrip_master([header, *rows])
    found = {(c.instrument.exchange.value, c.instrument.symbol): c for c in index.contracts}
    assert set(found) == {
        ("NSE", "BAJAJ-AUTO"), ("BSE", "TATAMOTORS"), ("BSE_INDEX", "SENSEX"),
        ("NSE_INDEX", "BANKNIFTY"), ("NFO", "BAJAJ-AUTO29DEC269250.5PE"),
        ("BFO", "SENSEX24DEC26FUT"), ("MCX", "CRUDEOIL17DEC26FUT"), ("CDS", "USDINR29DEC26FUT"),
    }  # fmt: skip
    assert found[("NSE", "BAJAJ-AUTO")].security_id == "16670"  # the EQ series wins
    put = found[("NFO", "BAJAJ-AUTO29DEC269250.5PE")].instrument
    assert (put.strike, put.underlying, put.underlying_exchange) == (
        Decimal("9250.5"), "BAJAJ-AUTO", Exchange.NSE,
    )  # fmt: skip
    sensex = found[("BFO", "SENSEX24DEC26FUT")]
    assert sensex.segment == "BSE_FNO" and sensex.instrument.expiry_kind is ExpiryKind.WEEKLY
    assert sensex.instrument.underlying_exchange is Exchange.BSE_INDEX
    assert found[("MCX", "CRUDEOIL17DEC26FUT")].instrument.tick_size == Decimal(1)
    assert found[("CDS", "USDINR29DEC26FUT")].instrument.tick_size == Decimal("0.0025")
    assert index.by_security("IDX_I", 51) is found[("BSE_INDEX", "SENSEX")]


@pytest.mark.parametrize(
    ("status", "code", "operation", "expected"),
    [
        (401, "DH-901", "orders", BrokerSessionExpired),
        (400, "807", "quote", BrokerSessionExpired),
        (429, "", "place_order", BrokerRateLimited),
        (400, "DH-904", "orders", BrokerRateLimited),
        (500, "DH-908", "orders", BrokerUnavailable),
        (502, "", "place_order", BrokerUnavailable),
        (400, "DH-905", "place_order", OrderRejected),
        (400, "DH-905", "history", InvalidRequest),
        (400, "DH-906", "place_order", OrderRejected),
        (400, "DH-907", "order", NotFound),
    ],
)
def test_dhan_errors_map_to_dalal_errors(
    status: int, code: str, operation: str, expected: type[Exception]
) -> None:
    error = mapping.dalal_error(
        status, code, "why", operation=operation, expired_message="gone", reached=True
    )
    assert type(error) is expected
    funds = mapping.dalal_error(
        400, "DH-906", "Insufficient margin", operation="place_order", expired_message="",
        reached=True,
    )  # fmt: skip
    assert isinstance(funds, InsufficientFunds)
    lost = mapping.dalal_error(None, "", "Read timed out", operation="place_order",
                               expired_message="", reached=False)  # fmt: skip
    assert type(lost) is BrokerUnavailable


def test_the_scrip_master_follows_a_moved_api(
    broker: DhanBroker, desk: Desk, fake: FakeDhan, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert broker.master_url == fake.master_url  # named outright (dhan.master)
    moved = desk.settings.with_overrides(broker_endpoints=f"dhan.api={fake.api_url}")
    monkeypatch.setattr(desk, "settings", moved)
    assert broker.master_url == fake.master_url  # the same host as the API
    monkeypatch.setattr(desk, "settings", desk.settings.with_overrides(broker_endpoints=""))
    assert broker.master_url == "https://images.dhan.co/api-data/api-scrip-master.csv"


def test_quote_oi_and_disconnect_packets(live: DhanBroker) -> None:
    source = live.feed()
    assert isinstance(source, DhanFeed)
    source.set_subscriptions({("NFO", "NIFTY29DEC26FUT"): FeedMode.QUOTE})
    ltt = int(NOW.timestamp()) + 19_800

    def packet(code: int, payload: bytes) -> bytes:
        return struct.pack("<BHBI", code, 8 + len(payload), 2, 52175) + payload

    frame = b"".join(
        [
            packet(6, struct.pack("<fI", 26140.0, 1_000)),
            packet(5, struct.pack("<I", 1_300_000)),
            packet(4, struct.pack("<fHIfIIIffff", 26210.5, 75, ltt, 26200.0, 9_000, 10, 20,
                                  26150.0, 0.0, 26250.0, 26100.0)),
        ]
    )  # fmt: skip
    (tick,) = source._ticks(frame)
    assert (tick.exchange, tick.symbol) == ("NFO", "NIFTY29DEC26FUT")
    quote = tick.payloads[2]
    assert (quote["ltp"], quote["close"], quote["change"], quote["oi"]) == (
        26210.5, 26140.0, 70.5, 1_300_000,
    )  # fmt: skip
    assert quote["ltt"] == int(NOW.timestamp()) * 1000 and quote["last_trade_quantity"] == 75

    with pytest.raises(SourceDropped, match="access token expired"):
        source._ticks(struct.pack("<BHBIH", 50, 10, 0, 0, 807))
    assert live.session_status().needs_login


def test_commodity_and_currency_orders_are_refused_until_their_units_are_proven(
    broker: DhanBroker, fake: FakeDhan
) -> None:
    log_in(broker)
    before = fake.orders_placed
    for exchange, symbol in (("MCX", "CRUDEOIL19DEC26FUT"), ("CDS", "USDINR29DEC26FUT")):
        with pytest.raises(OrderRejected, match="not supported yet"):
            broker.place_order(OrderRequest(symbol, exchange, Side.BUY, 100, Product.NRML))
    assert fake.orders_placed == before
