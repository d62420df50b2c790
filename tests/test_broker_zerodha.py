"""The Zerodha adapter on the real `kiteconnect` SDK, against a fake Kite Connect on loopback.

Everything crosses the SDK: the login redirect and the checksum, orders and books, quotes and
candles, the instruments dump, KiteTicker's binary ticks. Faults come from the fake (429
storms, 5xx, slow answers, expired tokens, a dropped ticker), and the desk's rules are checked
against them: an order is never sent twice, reads are retried, an expired token asks for a new
login, a dropped ticker reconnects and re-subscribes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from flask import Flask
from kiteconnect import exceptions as kite_errors

import broker.live
from broker.base import TradingMode, broker_class, broker_for
from broker.zerodha import ZerodhaBroker, mapping
from broker.zerodha.feed import KiteFeed
from broker.zerodha.symbols import KiteMaster
from config import Settings
from services.accounts import UserView
from services.broker_accounts import BrokerCredentials
from services.clock import IST, FixedClock
from services.desk import Desk
from services.errors import (
    BrokerError,
    BrokerRateLimited,
    BrokerSessionExpired,
    BrokerUnavailable,
    DalalError,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
    PermissionDenied,
)
from services.events import ORDER
from services.feed.hub import FeedHub
from services.feed.model import FeedMode, Tick
from services.feed.source import SourceDropped
from services.market.model import Exchange, ExpiryKind, Instrument, InstrumentType, Interval
from services.orders.model import (
    ModifyRequest,
    OrderReport,
    OrderRequest,
    OrderStatus,
    PriceType,
    Product,
    Side,
    Validity,
)
from services.orders.pipeline import Trader
from tests.conftest import desk_env, desk_of
from tests.fakes.kite import FakeKite

CALLBACK = "http://127.0.0.1:5000/broker/zerodha/callback"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=IST)  # the shared `clock` fixture's Monday morning
# Next month's Tuesday expiries, as the fake lists them.
MONTHLY, WEEKLY = date(2026, 12, 29), date(2026, 12, 1)
FUTURE, CALL, PUT = "NIFTY29DEC26FUT", "NIFTY29DEC2626000CE", "NIFTY01DEC2626000PE"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast back-off; pacers of this test's own (at Kite's real rates)."""
    monkeypatch.setattr(ZerodhaBroker, "backoff_seconds", 0.01)
    monkeypatch.setattr(broker.live, "_PACERS", {})


@pytest.fixture
def kite(clock: FixedClock) -> Iterator[FakeKite]:
    fake = FakeKite.start(today=clock.now().date(), clock=clock.now)
    fake.redirect_url = CALLBACK
    yield fake
    fake.stop()


@pytest.fixture
def settings(tmp_path: Path, kite: FakeKite) -> Settings:
    """The shared `app` fixture's settings, with Zerodha's addresses pointing at the fake."""
    env = desk_env(tmp_path, BROKER_ENDPOINTS=kite.endpoints)
    return Settings.from_mapping(env).with_overrides(testing=True)


@pytest.fixture
def desk(app: Flask) -> Desk:
    return desk_of(app)


@pytest.fixture
def zerodha(desk: Desk, user: UserView, kite: FakeKite) -> ZerodhaBroker:
    desk.broker_accounts.save_credentials(user.id, "zerodha", kite.credentials)
    found = broker_for("zerodha", user.id, desk)
    assert isinstance(found, ZerodhaBroker)
    return found


def log_in(zerodha: ZerodhaBroker) -> dict[str, str]:
    """Follow Kite's login page to the callback, as the trader's browser would."""
    answer = requests.get(zerodha.login_url(CALLBACK), allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    params = dict(parse_qsl(urlsplit(location).query))
    zerodha.complete_login(params)
    return params


@pytest.fixture
def trader(zerodha: ZerodhaBroker) -> ZerodhaBroker:
    """The adapter of a user logged in to (fake) Zerodha today."""
    log_in(zerodha)
    return zerodha


def buy(symbol: str = "SBIN", quantity: int = 10, **changes: Any) -> OrderRequest:
    fields: dict[str, Any] = {"symbol": symbol, "exchange": "NSE", "side": Side.BUY,
                              "quantity": quantity, "product": Product.MIS, **changes}  # fmt: skip
    return OrderRequest(**fields)


def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def instrument(zerodha: ZerodhaBroker, symbol: str, exchange: str) -> Instrument:
    found = zerodha.kite_master().get(symbol, exchange)
    assert found is not None, f"{symbol} on {exchange} is not in the master"
    return found


# ---------------------------------------------------------------------- registry and login


def test_zerodha_is_a_registered_live_broker() -> None:
    cls = broker_class("zerodha")
    assert cls is ZerodhaBroker
    assert cls.display_name == "Zerodha (Kite Connect)"
    assert [f.name for f in cls.credential_fields] == ["api_key", "api_secret", "client_id"]
    assert [f.secret for f in cls.credential_fields] == [False, True, False]
    assert cls.session_cutoff is not None and cls.session_cutoff.strftime("%H:%M") == "06:00"
    assert cls.calls_per_second < 10


def test_login_redirect_and_callback_store_a_sealed_session(
    zerodha: ZerodhaBroker, kite: FakeKite, tmp_path: Path
) -> None:
    assert zerodha.session_status().needs_login
    assert zerodha.login_url(CALLBACK) == f"{kite.login_url}?v=3&api_key={kite.api_key}"

    log_in(zerodha)

    status = zerodha.session_status()
    assert status.connected and not status.needs_login
    assert status.message == "Logged in until 06:00 IST."
    session = zerodha.session
    assert session.expires_at == datetime(2026, 11, 24, 6, 0, tzinfo=IST)
    assert session.extra["user_id"] == kite.user_id == "AB1234" and session.extra["public_token"]
    (token,) = kite.issued_tokens()
    assert session.access_token == token
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("dalal.db*"))
    assert stored, "the desk database is where sessions live"
    for secret in (token, kite.api_secret, kite.api_key):
        assert secret.encode() not in stored, "broker secrets must be sealed at rest"


def test_a_failed_or_replayed_login_is_refused_clearly(
    zerodha: ZerodhaBroker, kite: FakeKite
) -> None:
    with pytest.raises(InvalidRequest, match="did not complete the login"):
        zerodha.complete_login({"status": "cancelled", "request_token": "x"})
    with pytest.raises(InvalidRequest, match="did not complete the login"):
        zerodha.complete_login({"status": "success"})
    params = log_in(zerodha)
    with pytest.raises(InvalidRequest, match="request token has expired or was used"):
        zerodha.complete_login(params)  # a request token works once


def test_a_login_to_another_account_is_refused(
    zerodha: ZerodhaBroker, desk: Desk, kite: FakeKite
) -> None:
    desk.broker_accounts.save_credentials(
        zerodha.user_id, "zerodha", BrokerCredentials(kite.api_key, kite.api_secret, "AB9999")
    )
    with pytest.raises(InvalidRequest, match=r"as AB1234, but this desk is set up for .*AB9999"):
        log_in(zerodha)
    assert zerodha.session_status().needs_login


def test_logout_invalidates_the_token_at_kite_and_forgets_it(
    trader: ZerodhaBroker, kite: FakeKite
) -> None:
    assert kite.issued_tokens()
    trader.logout()
    assert kite.issued_tokens() == set()
    assert kite.count("DELETE", "/session/token") == 1
    assert trader.session_status().needs_login


# ---------------------------------------------------------------------- orders and books


def test_a_market_order_fills_and_every_book_shows_it(
    trader: ZerodhaBroker, kite: FakeKite
) -> None:
    report = trader.place_order(buy(strategy="Nifty-Momentum 1"))

    assert report.status is OrderStatus.COMPLETE
    assert (report.symbol, report.exchange, report.side) == ("SBIN", "NSE", Side.BUY)
    assert report.quantity == report.filled_quantity == 10
    assert report.average_price == Decimal("801.35")
    assert report.price_type is PriceType.MARKET and report.product is Product.MIS
    assert report.placed_at == NOW and report.placed_at.tzinfo is not None
    assert report.strategy == "Nifty-Momentum 1"
    sent = kite.instrument("SBIN")
    assert kite.orders_placed == 1 and sent.key == "NSE:SBIN"

    (listed,) = trader.orders()
    assert listed.order_id == report.order_id and listed.status is OrderStatus.COMPLETE
    assert listed.strategy == "NiftyMomentum1"  # Kite's tag: letters and digits, up to 20
    assert trader.order(report.order_id) == listed

    (trade,) = trader.trades()
    assert (trade.order_id, trade.symbol, trade.quantity) == (report.order_id, "SBIN", 10)
    assert trade.price == Decimal("801.35") and trade.traded_at == NOW

    (position,) = trader.positions()
    assert (position.symbol, position.exchange, position.product) == ("SBIN", "NSE", Product.MIS)
    assert position.net_quantity == 10 and position.lot_size == 1
    assert position.average_price == Decimal("801.35")
    assert position.buy_value == Decimal("8013.5") and position.sell_value == 0

    kite.set_ltp("SBIN", "805.00")
    (position,) = trader.positions()
    assert position.ltp == Decimal("805") and position.unrealized_pnl == Decimal("36.5")

    funds = trader.funds()
    margin = Decimal("1602.70")  # 20% of 8013.50 for MIS
    assert funds.utilised == margin
    assert funds.available_cash == Decimal("1000000") - margin + Decimal("5000")
    assert funds.starting_capital == Decimal("1005000")
    assert funds.collateral == Decimal("25000")
    assert funds.unrealized_pnl == Decimal("36.5") and funds.realized_pnl == 0


def test_selling_back_books_the_profit_in_positions_and_funds(
    trader: ZerodhaBroker, kite: FakeKite
) -> None:
    trader.place_order(buy())
    kite.set_ltp("SBIN", "810.25")
    sold = trader.place_order(buy(side=Side.SELL))
    assert sold.average_price == Decimal("810.25")
    (position,) = trader.positions()
    assert position.net_quantity == 0 and position.average_price == 0
    assert position.realized_pnl == Decimal("89")  # (810.25 - 801.35) x 10
    funds = trader.funds()
    assert funds.realized_pnl == funds.today_realized_pnl == Decimal("89")
    assert funds.utilised == 0


def test_limit_order_modify_and_cancel(trader: ZerodhaBroker, kite: FakeKite) -> None:
    placed = trader.place_order(
        buy(quantity=5, price_type=PriceType.LIMIT, price=Decimal("790.00"))
    )
    assert placed.status is OrderStatus.OPEN and placed.price == Decimal("790")

    modified = trader.modify_order(
        ModifyRequest(placed.order_id, 7, PriceType.LIMIT, price=Decimal("795.55"))
    )
    assert modified.status is OrderStatus.OPEN
    assert (modified.quantity, modified.price) == (7, Decimal("795.55"))

    cancelled = trader.cancel_order(placed.order_id)
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.filled_quantity == 0
    with pytest.raises(OrderRejected, match="is cancelled; only open or trigger pending"):
        trader.cancel_order(placed.order_id)
    with pytest.raises(OrderRejected, match="can be modified"):
        trader.modify_order(ModifyRequest(placed.order_id, 7, PriceType.MARKET))
    with pytest.raises(NotFound):
        trader.order("999")


def test_a_stop_waits_for_its_trigger_then_fills(trader: ZerodhaBroker, kite: FakeKite) -> None:
    placed = trader.place_order(buy(price_type=PriceType.SL_M, trigger_price=Decimal("805.00")))
    assert placed.status is OrderStatus.TRIGGER_PENDING
    assert placed.trigger_price == Decimal("805")
    kite.set_ltp("SBIN", "805.10")
    filled = trader.order(placed.order_id)
    assert filled.status is OrderStatus.COMPLETE and filled.average_price == Decimal("805.1")


def test_cancel_all_cancels_open_orders_and_reports_failures(
    trader: ZerodhaBroker, kite: FakeKite
) -> None:
    done = trader.place_order(buy())
    first = trader.place_order(buy(price_type=PriceType.LIMIT, price=Decimal("780")))
    second = trader.place_order(buy(price_type=PriceType.LIMIT, price=Decimal("781")))
    stuck = trader.place_order(buy(price_type=PriceType.LIMIT, price=Decimal("782")))
    kite.fail_next(5, 503, path=f"/orders/regular/{stuck.order_id}", method="DELETE")

    cancelled, failed = trader.cancel_all_orders()

    assert sorted(cancelled) == sorted([first.order_id, second.order_id])
    assert [order_id for order_id, _ in failed] == [stuck.order_id]
    assert "unavailable (503)" in failed[0][1]
    statuses = {order.order_id: order.status for order in trader.orders()}
    assert statuses[done.order_id] is OrderStatus.COMPLETE
    assert statuses[first.order_id] is statuses[second.order_id] is OrderStatus.CANCELLED
    assert statuses[stuck.order_id] is OrderStatus.OPEN


def test_rejections_carry_kites_reason(trader: ZerodhaBroker, kite: FakeKite) -> None:
    with pytest.raises(InsufficientFunds, match=r"Insufficient funds\. Required margin is"):
        trader.place_order(buy(FUTURE, 75 * 10, exchange="NFO", product=Product.NRML))
    (rejected,) = trader.orders()  # Kite keeps the rejected order in the book
    assert rejected.status is OrderStatus.REJECTED
    assert rejected.rejection_reason.startswith("Insufficient funds")
    assert rejected.symbol == FUTURE

    with pytest.raises(OrderRejected, match="multiple of lot size 75"):
        trader.place_order(buy(CALL, 10, exchange="NFO"))
    with pytest.raises(OrderRejected, match="not in Zerodha's instrument list for NFO"):
        trader.place_order(buy("NIFTY29DEC2699999CE", 75, exchange="NFO"))
    with pytest.raises(OrderRejected, match="is an index"):
        trader.place_order(buy("NIFTY", 75, exchange="NSE_INDEX"))
    assert kite.orders_placed == 1


def test_derivative_orders_use_kites_names_and_report_dalals(
    trader: ZerodhaBroker, kite: FakeKite
) -> None:
    report = trader.place_order(
        buy(
            PUT,
            150,
            exchange="NFO",
            price_type=PriceType.LIMIT,
            price=Decimal("90.00"),
            validity=Validity.IOC,
        )
    )
    assert (report.symbol, report.exchange, report.status) == (PUT, "NFO", OrderStatus.COMPLETE)
    assert report.average_price == Decimal("88.2")
    assert report.validity is Validity.IOC
    (position,) = trader.positions()
    assert (position.symbol, position.exchange, position.lot_size) == (PUT, "NFO", 75)
    (trade,) = trader.trades()
    assert trade.symbol == PUT
    (listed,) = trader.orders()
    assert listed.symbol == PUT


def test_lot_counted_exchanges_are_refused_before_kite_sees_them(
    trader: ZerodhaBroker, kite: FakeKite
) -> None:
    # Kite counts MCX and currency quantities in lots; sending Dalal's units would multiply
    # the order by its lot size, so the adapter refuses rather than guess.
    for exchange, symbol in (("MCX", "CRUDEOIL19DEC26FUT"), ("CDS", "USDINR29DEC26FUT")):
        with pytest.raises(OrderRejected, match="counts their quantity in lots"):
            trader.place_order(OrderRequest(symbol, exchange, Side.BUY, 100, Product.NRML))
    assert kite.orders_placed == 0


def test_holdings_count_t1_shares(trader: ZerodhaBroker) -> None:
    (holding,) = trader.holdings()
    assert (holding.symbol, holding.exchange, holding.quantity) == ("INFY", "NSE", 10)
    assert holding.average_price == Decimal("1450.50")
    assert holding.ltp == Decimal("1589.40")
    assert holding.pnl == Decimal("1389.00")


def test_the_pipeline_validates_against_kites_master_and_routes_to_kite(
    trader: ZerodhaBroker, kite: FakeKite, desk: Desk
) -> None:
    live = Trader(trader.user_id, "zerodha")
    outcome = desk.orders.place(live, buy(CALL, 150, exchange="NFO", strategy="straddle"))
    assert outcome.mode is TradingMode.LIVE
    report = outcome.report
    assert (report.symbol, report.status, report.average_price) == (
        CALL, OrderStatus.COMPLETE, Decimal("312.45"),
    )  # fmt: skip
    assert report.algo_id.startswith("DL") and report.strategy == "straddle"
    assert kite.orders_placed == 1
    with pytest.raises(DalalError, match="75"):  # not a whole number of lots: never sent
        desk.orders.place(live, buy(CALL, 100, exchange="NFO"))
    with pytest.raises(NotFound, match="lists no NIFTY29DEC2699999CE on NFO"):
        desk.orders.place(live, buy("NIFTY29DEC2699999CE", 75, exchange="NFO"))
    assert kite.count("POST", "/orders/regular") == 1
    assert trader.instrument("nifty29dec2626000ce", "nfo").brsymbol == "NIFTY26DEC26000CE"


# ---------------------------------------------------------------------- market data


def test_quote_and_depth_in_the_common_model(trader: ZerodhaBroker) -> None:
    sbin = instrument(trader, "SBIN", "NSE")
    quote = trader.quote(sbin)
    assert (quote.symbol, quote.exchange) == ("SBIN", Exchange.NSE)
    assert quote.ltp == Decimal("801.35") and quote.prev_close == Decimal("795.1")
    assert (quote.bid, quote.ask) == (Decimal("801.3"), Decimal("801.4"))
    assert (quote.open, quote.high, quote.low) == (
        Decimal("797.1"), Decimal("806.35"), Decimal("790.1"),
    )  # fmt: skip
    assert quote.volume == 1_250_000 and quote.last_quantity == 5
    assert quote.timestamp == NOW

    started = time.monotonic()
    depth = trader.depth(sbin)
    assert time.monotonic() - started >= 0.9, "Kite allows one quote request a second"
    assert [level.price for level in depth.buy] == [
        Decimal(p) for p in ("801.3", "801.25", "801.2", "801.15", "801.1")
    ]
    assert depth.sell[0].price == Decimal("801.4") and depth.sell[0].quantity == 150
    assert depth.total_buy_quantity == 1500

    nifty = instrument(trader, "NIFTY", "NSE_INDEX")
    index = trader.quote(nifty)
    assert (index.symbol, index.exchange) == ("NIFTY", Exchange.NSE_INDEX)
    assert index.ltp == Decimal("26012.55") and index.bid == 0 and index.volume == 0


def test_history_is_candles_in_ist_with_exact_prices(trader: ZerodhaBroker) -> None:
    sbin = instrument(trader, "SBIN", "NSE")
    days = trader.history(sbin, Interval.D, date(2026, 11, 19), date(2026, 11, 20))
    assert [candle.start for candle in days] == [
        datetime(2026, 11, 19, tzinfo=IST), datetime(2026, 11, 20, tzinfo=IST),
    ]  # fmt: skip
    assert (days[1].open, days[1].high, days[1].low, days[1].close) == (
        Decimal("795.2"), Decimal("798.2"), Decimal("793.2"), Decimal("796.2"),
    )  # fmt: skip
    assert days[0].volume == 1000 and days[0].oi == 0

    minutes = trader.history(sbin, Interval.M5, date(2026, 11, 20), date(2026, 11, 20))
    assert len(minutes) == 75  # 09:15 to 15:25
    assert minutes[0].start == datetime(2026, 11, 20, 9, 15, tzinfo=IST)

    future = instrument(trader, FUTURE, "NFO")
    (candle,) = trader.history(future, Interval.D, date(2026, 11, 20), date(2026, 11, 20))
    assert candle.oi == 12_500_000


def test_master_contract_names_every_kind_of_contract(
    trader: ZerodhaBroker, kite: FakeKite
) -> None:
    master = {(i.exchange.value, i.symbol): i for i in trader.master_contract()}
    assert len(master) == 8  # the NCO future has no Dalal exchange: left out

    sbin = master[("NSE", "SBIN")]
    assert (sbin.instrument_type, sbin.token, sbin.lot_size) == (InstrumentType.EQ, "779521", 1)
    assert sbin.tick_size == Decimal("0.05") and sbin.name == "STATE BANK OF INDIA"

    nifty = master[("NSE_INDEX", "NIFTY")]
    assert (nifty.instrument_type, nifty.brsymbol, nifty.brexchange) == (
        InstrumentType.INDEX, "NIFTY 50", "NSE",
    )  # fmt: skip
    assert nifty.token == "256265"
    assert master[("BSE_INDEX", "SENSEX")].token == "265"

    future = master[("NFO", FUTURE)]
    assert future.brsymbol == "NIFTY26DECFUT"
    assert (future.expiry, future.expiry_kind, future.lot_size) == (
        MONTHLY, ExpiryKind.MONTHLY, 75,
    )  # fmt: skip
    assert future.tick_size == Decimal("0.1")
    assert (future.underlying, future.underlying_exchange) == ("NIFTY", Exchange.NSE_INDEX)

    call = master[("NFO", CALL)]
    assert call.brsymbol == "NIFTY26DEC26000CE" and call.strike == Decimal(26000)
    assert (call.instrument_type, call.expiry_kind) == (InstrumentType.CE, ExpiryKind.MONTHLY)

    put = master[("NFO", PUT)]
    assert put.brsymbol == "NIFTY26D0126000PE"
    assert (put.expiry, put.expiry_kind) == (WEEKLY, ExpiryKind.WEEKLY)

    usdinr = master[("CDS", "USDINR27DEC26FUT")]
    assert usdinr.tick_size == Decimal("0.0025") and usdinr.underlying_exchange is Exchange.CDS

    trader.master_contract()
    broker_for("zerodha", trader.user_id, trader.desk).master_contract()
    assert kite.count("GET", "/instruments") == 1, "the dump is downloaded once a day"


def test_kite_master_strips_series_and_keeps_the_plain_share() -> None:
    def row(token: int, symbol: str) -> dict[str, Any]:
        return {"instrument_token": token, "tradingsymbol": symbol, "name": "X", "expiry": "",
                "strike": 0.0, "tick_size": 0.05, "lot_size": 1, "instrument_type": "EQ",
                "segment": "NSE", "exchange": "NSE"}  # fmt: skip

    master = KiteMaster.build(
        [row(1, "ABC-BE"), row(2, "ABC"), row(3, "XYZ-BE"), row(4, "GSEC-GS")]
    )
    assert {i.symbol: i.brsymbol for i in master.all()} == {"ABC": "ABC", "XYZ": "XYZ-BE"}
    assert master.by_kite("NSE", "XYZ-BE") is master.get("XYZ", "NSE")


# ---------------------------------------------------------------------- faults


def test_an_expired_token_asks_for_a_new_login(trader: ZerodhaBroker, kite: FakeKite) -> None:
    kite.expire_tokens()
    with pytest.raises(BrokerSessionExpired, match="log in to Zerodha"):
        trader.orders()
    status = trader.session_status()
    assert status.needs_login and not status.connected
    assert "06:00 IST" in status.message
    with pytest.raises(BrokerSessionExpired):
        broker_for("zerodha", trader.user_id, trader.desk).positions()
    assert kite.count("GET", "/portfolio/positions") == 0, "no call without a session"


def test_a_429_storm_is_absorbed_without_duplicating_the_order(
    trader: ZerodhaBroker, kite: FakeKite
) -> None:
    kite.fail_next(3, 429, path="/orders/regular", method="POST")
    report = trader.place_order(buy())
    assert report.status is OrderStatus.COMPLETE
    assert kite.count("POST", "/orders/regular") == 4
    assert kite.orders_placed == 1
    assert [order.order_id for order in trader.orders()] == [report.order_id]


def test_a_5xx_on_placement_is_not_retried(trader: ZerodhaBroker, kite: FakeKite) -> None:
    kite.fail_next(1, 503, path="/orders/regular", method="POST")
    with pytest.raises(BrokerUnavailable, match="unavailable \\(503\\)"):
        trader.place_order(buy())
    assert kite.count("POST", "/orders/regular") == 1
    assert kite.orders_placed == 0


def test_a_timed_out_placement_is_not_resent(
    trader: ZerodhaBroker, kite: FakeKite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ZerodhaBroker, "request_timeout", 0.5)
    kite.delay_next(1.2, path="/orders/regular", method="POST")
    with pytest.raises(BrokerUnavailable, match=r"did not answer within 0\.5 s"):
        trader.place_order(buy())
    assert kite.count("POST", "/orders/regular") == 1
    wait_for(lambda: kite.orders_placed == 1)  # it did reach Kite: the book tells the truth
    time.sleep(0.3)
    assert kite.orders_placed == 1
    (order,) = trader.orders()
    assert order.status is OrderStatus.COMPLETE


def test_a_timed_out_read_is_retried(
    trader: ZerodhaBroker, kite: FakeKite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ZerodhaBroker, "request_timeout", 0.5)
    trader.place_order(buy())
    kite.delay_next(1.2, path="/orders", method="GET")
    (order,) = trader.orders()
    assert order.status is OrderStatus.COMPLETE
    assert kite.count("GET", "/orders") == 2
    kite.fail_next(2, 502, path="/portfolio/holdings")
    assert len(trader.holdings()) == 1
    assert kite.count("GET", "/portfolio/holdings") == 3


def test_every_call_is_timed_into_the_latency_monitor(
    trader: ZerodhaBroker, kite: FakeKite, desk: Desk
) -> None:
    kite.fail_next(2, 429, path="/orders/regular", method="POST")
    trader.place_order(buy())
    trader.orders()
    kite.fail_next(1, 503, path="/orders/regular", method="POST")
    with pytest.raises(BrokerUnavailable):
        trader.place_order(buy())
    rows = {(row.broker, row.operation): row for row in desk.broker_latency.summary()}
    for operation in ("login", "place_order", "order_history", "orders"):
        assert ("zerodha", operation) in rows, operation
    place = rows[("zerodha", "place_order")]
    assert (place.calls, place.errors) == (2, 1)
    assert place.p50_ms > 0


def test_no_secret_reaches_the_logs(
    zerodha: ZerodhaBroker, kite: FakeKite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    log_in(zerodha)
    (token,) = kite.issued_tokens()
    zerodha.place_order(buy())
    kite.fail_next(1, 503, path="/orders/regular", method="POST")
    with pytest.raises(BrokerUnavailable):
        zerodha.place_order(buy())
    hub = FeedHub(zerodha.feed, backoff=(0.1,))
    ticks: list[Tick] = []
    hub.add_consumer(ticks.extend)
    hub.acquire(("NSE", "SBIN"), FeedMode.QUOTE)
    hub.start()
    wait_for(lambda: bool(ticks))
    hub.stop()
    zerodha.logout()
    assert "/session/token?api_key=" in caplog.text, "urllib3 logged the logout's address"
    assert "access_token=***" in caplog.text
    assert token not in caplog.text
    assert kite.api_secret not in caplog.text


# ---------------------------------------------------------------------- streaming


def test_ticks_stream_in_the_common_shape(trader: ZerodhaBroker, kite: FakeKite) -> None:
    hub = FeedHub(trader.feed, backoff=(0.1,))
    ticks: list[Tick] = []
    hub.add_consumer(ticks.extend)
    hub.acquire(("NSE", "SBIN"), FeedMode.QUOTE)
    hub.acquire(("NSE_INDEX", "NIFTY"), FeedMode.LTP)
    hub.acquire(("CDS", "USDINR27DEC26FUT"), FeedMode.DEPTH)
    hub.acquire(("NSE", "NOSUCH"), FeedMode.LTP)
    hub.start()
    try:
        wanted = {("NSE", "SBIN"): 2, ("NSE_INDEX", "NIFTY"): 1, ("CDS", "USDINR27DEC26FUT"): 3}

        def newest() -> dict[tuple[str, str], Tick]:
            return {tick.key: tick for tick in list(ticks)}

        wait_for(lambda: all(
            key in newest() and mode in newest()[key].payloads for key, mode in wanted.items()
        ))  # fmt: skip
        # Each tick carries every mode up to its own (a lower-mode client gets the lower one).
        assert all(set(t.payloads) == set(range(1, max(t.payloads) + 1)) for t in list(ticks))
        latest = newest()
        sbin = latest[("NSE", "SBIN")].payloads
        assert sbin[1]["ltp"] == 801.35
        quote = sbin[2]
        assert set(quote) == {"ltp", "open", "high", "low", "close", "volume",
                              "last_trade_quantity", "change", "change_percent", "bid", "ask",
                              "oi", "ltt", "timestamp"}  # fmt: skip
        assert (quote["bid"], quote["ask"], quote["close"]) == (801.3, 801.4, 795.1)
        assert quote["change"] == 6.25 and quote["volume"] == 1_250_000
        assert quote["ltt"] == int(NOW.timestamp()) * 1000
        nifty = latest[("NSE_INDEX", "NIFTY")].payloads
        assert set(nifty) == {1} and nifty[1]["ltp"] == 26012.55
        usdinr = latest[("CDS", "USDINR27DEC26FUT")].payloads[3]
        assert usdinr["ltp"] == 88.1225  # Kite's currency divisor
        assert usdinr["depth"]["buy"][0] == {"price": 88.12, "quantity": 100, "orders": 1}
        assert len(usdinr["depth"]["sell"]) == 5 and usdinr["total_buy_quantity"] == 75_000
        (client,) = kite.ticker_clients
        assert client.modes == {779521: "full", 256265: "ltp", (7012 << 8) | 3: "full"}

        hub.release(("NSE_INDEX", "NIFTY"), FeedMode.LTP)
        hub.acquire(("NSE", "SBIN"), FeedMode.LTP)  # a lower mode changes nothing
        wait_for(lambda: 256265 not in client.modes)
        assert client.modes[779521] == "full"
    finally:
        hub.stop()
    wait_for(lambda: not kite.ticker_clients)


def test_a_dropped_ticker_reconnects_and_resubscribes(
    trader: ZerodhaBroker, kite: FakeKite
) -> None:
    hub = FeedHub(trader.feed, backoff=(0.1,))
    ticks: list[Tick] = []
    hub.add_consumer(ticks.extend)
    hub.acquire(("NSE", "SBIN"), FeedMode.DEPTH)
    hub.acquire(("NFO", CALL), FeedMode.LTP)
    hub.start()
    try:
        wait_for(lambda: len(ticks) > 2)
        (first,) = kite.ticker_clients
        kite.drop_ticker()
        wait_for(lambda: hub.reconnects >= 1)
        wait_for(lambda: [c.number for c in kite.ticker_clients] == [first.number + 1])
        (second,) = kite.ticker_clients
        wait_for(lambda: second.modes == first.modes)
        ticks.clear()
        kite.set_ltp("SBIN", "802.00")
        wait_for(lambda: any(t.key == ("NSE", "SBIN") and t.payloads[1]["ltp"] == 802.0
                             for t in list(ticks)))  # fmt: skip
        wait_for(lambda: any(t.symbol == CALL for t in list(ticks)))
        assert hub.status.connected
    finally:
        hub.stop()


def test_feeds_open_and_close_again_in_one_process(trader: ZerodhaBroker) -> None:
    for _ in range(3):
        feed = trader.feed()
        feed.connect()
        got: list[Tick] = []
        feed.set_subscriptions({("NSE", "INFY"): FeedMode.LTP})
        runner = threading.Thread(target=feed.run, args=(got.extend,))
        runner.start()
        wait_for(lambda got=got: bool(got))
        feed.close()
        runner.join(5)
        assert not runner.is_alive()
        assert got[0].payloads[1]["ltp"] == 1589.4


def test_a_silent_ticker_counts_as_dropped(trader: ZerodhaBroker) -> None:
    feed = trader.feed()
    feed.stall_seconds = 0.3  # Kite's heartbeat comes every second; nothing subscribed here
    feed.connect()
    try:
        with pytest.raises(SourceDropped, match=r"nothing from Kite's ticker for 0\.3 s"):
            feed.run(lambda ticks: None)
    finally:
        feed.close()


def test_a_feed_without_a_session_fails_as_a_dropped_source(
    zerodha: ZerodhaBroker, kite: FakeKite
) -> None:
    feed = zerodha.feed()  # building it never fails: the hub builds it outside its guard
    with pytest.raises(SourceDropped, match="log in to Zerodha"):
        feed.connect()
    log_in(zerodha)
    kite.expire_tokens()
    with pytest.raises(SourceDropped, match="refused the connection"):
        zerodha.feed().connect()


def test_order_updates_on_the_ticker_become_order_events(
    trader: ZerodhaBroker, kite: FakeKite, desk: Desk
) -> None:
    events: list[tuple[int, OrderReport]] = []
    desk.events.subscribe(ORDER, lambda user_id, report: events.append((user_id, report)))
    hub = FeedHub(trader.feed, backoff=(0.1,))
    hub.start()
    try:
        wait_for(lambda: bool(kite.ticker_clients))
        wait_for(lambda: hub.status.connected)
        placed = trader.place_order(buy(price_type=PriceType.LIMIT, price=Decimal("800.00")))
        kite.set_ltp("SBIN", "799.95")
        wait_for(lambda: any(r.status is OrderStatus.COMPLETE for _, r in list(events)))
        user_id, report = next((u, r) for u, r in events if r.status is OrderStatus.COMPLETE)
        assert user_id == trader.user_id and report.order_id == placed.order_id
        assert report.average_price == Decimal("799.95") and report.symbol == "SBIN"
    finally:
        hub.stop()


# ---------------------------------------------------------------------- mapping details


def test_kites_order_statuses() -> None:
    for transient in mapping.TRANSIENT_STATUSES - {"TRIGGER PENDING"}:
        assert mapping.order_status(transient) is OrderStatus.OPEN, transient
    assert mapping.order_status("OPEN") is OrderStatus.OPEN
    assert mapping.order_status("TRIGGER PENDING") is OrderStatus.TRIGGER_PENDING
    assert mapping.order_status("COMPLETE") is OrderStatus.COMPLETE
    assert mapping.order_status("CANCELLED") is OrderStatus.CANCELLED
    assert mapping.order_status("REJECTED") is OrderStatus.REJECTED
    assert mapping.order_status("SOMETHING NEW") is OrderStatus.OPEN  # never finished by guess


def test_order_parameters_sent_to_kite() -> None:
    stop = buy(price_type=PriceType.SL, price=Decimal("790.05"), trigger_price=Decimal("790"),
               product=Product.CNC, disclosed_quantity=2, algo_id="DLABC")  # fmt: skip
    params = mapping.order_params(stop, "NSE", "SBIN")
    assert params == {
        "variety": "regular", "exchange": "NSE", "tradingsymbol": "SBIN",
        "transaction_type": "BUY", "quantity": 10, "product": "CNC", "order_type": "SL",
        "validity": "DAY", "price": "790.05", "trigger_price": "790", "disclosed_quantity": 2,
    }  # fmt: skip
    market = mapping.order_params(buy(algo_id="123456", strategy="s"), "NSE", "SBIN")
    assert market["market_protection"] == -1 and market["algo_id"] == "123456"
    assert market["tag"] == "s" and "price" not in market


def test_times_and_money() -> None:
    from broker.zerodha.symbols import money

    assert money(801.35) == Decimal("801.35") and money(26000.0) == Decimal(26000)
    assert money(None) == 0 and money("0.0025") == Decimal("0.0025")
    fallback = datetime(2026, 1, 1, tzinfo=IST)
    stamped = datetime(2026, 11, 23, 10, 0, 5, tzinfo=IST)
    assert mapping.ist("2026-11-23 10:00:05", fallback) == stamped
    naive = datetime(2026, 11, 23, 10, 0)  # noqa: DTZ001  (as the SDK parses Kite's times)
    assert mapping.ist(naive, fallback).tzinfo is IST
    assert mapping.ist(None, fallback) is fallback
    windows = mapping.history_windows(Interval.M1, date(2026, 1, 1), date(2026, 4, 1))
    assert windows[0] == ("2026-01-01 00:00:00", "2026-03-01 23:59:59")
    assert windows[1] == ("2026-03-02 00:00:00", "2026-04-01 23:59:59")


def test_a_closed_feed_cannot_be_reused(trader: ZerodhaBroker) -> None:
    feed = trader.feed()
    assert isinstance(feed, KiteFeed)
    feed.close()
    with pytest.raises(SourceDropped, match="closed"):
        feed.connect()


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (kite_errors.OrderException("Order cannot be placed", code=400), OrderRejected),
        (kite_errors.InputException("Invalid `quantity`.", code=400), InvalidRequest),
        (kite_errors.GeneralException("Insufficient margin for order", 400), InsufficientFunds),
        (kite_errors.PermissionException("Not allowed", code=403), PermissionDenied),
        (kite_errors.GeneralException("Route not found", code=404), NotFound),
        (kite_errors.GeneralException("Internal error", code=500), BrokerUnavailable),
        (kite_errors.DataException("Unknown Content-Type", code=502), BrokerUnavailable),
        (kite_errors.NetworkException("Too many requests", code=429), BrokerRateLimited),
        (kite_errors.TokenException("Incorrect `access_token`.", code=403), BrokerSessionExpired),
        (requests.ConnectTimeout("http://x/session/token?access_token=abc"), BrokerUnavailable),
        (requests.ConnectionError("http://x/session/token?access_token=abc"), BrokerUnavailable),
        (KeyError("login_time"), BrokerError),
    ],
)
def test_kite_errors_become_dalal_errors(raised: Exception, expected: type[Exception]) -> None:
    bare = ZerodhaBroker(1, cast(Desk, SimpleNamespace(broker_accounts=None)))  # no desk needed
    error = bare.translate_error(raised)
    assert type(error) is expected
    assert "access_token=abc" not in error.message
