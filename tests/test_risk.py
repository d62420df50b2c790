"""Pre-trade risk rules: kill switch, order value, open positions and daily loss.

Orders go through the real order pipeline into the real sandbox; a refused order must leave
the sandbox's order book as it was. Limits are set through the service, the page and the
database (as another worker of the desk would).
"""

from __future__ import annotations

import html
import re
import time
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import services.risk as risk_module
from database.engine import DatabaseName
from database.models import RiskLimit
from services.accounts import UserView
from services.desk import Desk
from services.errors import InvalidRequest, RiskRejected
from services.orders.model import OrderRequest, PriceType, Product, Side
from services.orders.pipeline import Trader
from services.pnl_history import day_pnl
from services.risk import KILL_SWITCH_MESSAGE, NO_LIMITS, RiskLimits, parse_limits, rupees
from tests.conftest import csrf_token, desk_of, login


@pytest.fixture
def desk(app: Flask) -> Desk:
    return desk_of(app)


@pytest.fixture
def trader(user: UserView) -> Trader:
    return Trader(user_id=user.id, broker=user.broker, order_mode=user.order_mode)


@pytest.fixture
def signed_in(client: FlaskClient, user: UserView) -> FlaskClient:
    assert login(client).status_code == 302
    return client


def order(
    side: Side = Side.BUY,
    quantity: int = 10,
    symbol: str = "SBIN",
    product: Product = Product.MIS,
    **kw: Any,
) -> OrderRequest:
    return OrderRequest(symbol, "NSE", side, quantity, product, **kw)


def place(desk: Desk, trader: Trader, request: OrderRequest) -> str:
    return desk.orders.place(trader, request).report.order_id


def order_ids(desk: Desk, trader: Trader) -> list[str]:
    return sorted(o.order_id for o in desk.orders.broker(trader).orders())


def refused(desk: Desk, trader: Trader, request: OrderRequest) -> str:
    """Place an order that must be refused: its message, with the order book unchanged."""
    before = order_ids(desk, trader)
    with pytest.raises(RiskRejected) as refusal:
        place(desk, trader, request)
    assert order_ids(desk, trader) == before
    return refusal.value.message


def ltp(desk: Desk, symbol: str = "SBIN") -> Decimal:
    market = desk.market
    return market.source.quote(market.instrument(symbol, "NSE")).ltp


def set_limits(desk: Desk, trader: Trader, **limits: Any) -> None:
    desk.risk.update(trader.user_id, RiskLimits(**limits), actor="tester")


# --- the rules --------------------------------------------------------------------------------


def test_without_limits_orders_pass(desk: Desk, trader: Trader) -> None:
    assert desk.risk.limits(trader.user_id) == NO_LIMITS
    place(desk, trader, order(quantity=500))
    place(desk, trader, order(symbol="INFY", product=Product.CNC))
    assert len(order_ids(desk, trader)) == 2


def test_kill_switch_refuses_every_order_even_one_that_closes(desk: Desk, trader: Trader) -> None:
    place(desk, trader, order(quantity=10))
    set_limits(desk, trader, kill_switch=True)
    assert refused(desk, trader, order(quantity=1)) == KILL_SWITCH_MESSAGE
    assert refused(desk, trader, order(Side.SELL, 10)) == KILL_SWITCH_MESSAGE
    set_limits(desk, trader, kill_switch=False)
    place(desk, trader, order(Side.SELL, 10))


def test_order_value_limit_names_both_figures(desk: Desk, trader: Trader) -> None:
    price = Decimal(int(ltp(desk)))  # a whole rupee: on the tick, inside the band
    set_limits(desk, trader, max_order_value=price * 10)
    assert refused(desk, trader, order(quantity=11, price_type=PriceType.LIMIT, price=price)) == (
        f"Order value {rupees(price * 11)} is above your limit of {rupees(price * 10)} per order."
    )
    # At the limit is not above it.
    place(desk, trader, order(quantity=10, price_type=PriceType.LIMIT, price=price))
    # A market order is valued at the last traded price.
    assert refused(desk, trader, order(quantity=1000)).startswith(
        f"Order value {rupees(ltp(desk) * 1000)} is above"
    )


def test_rupees_are_grouped_the_indian_way() -> None:
    assert rupees(Decimal("123456")) == "₹1,23,456.00"
    assert rupees(Decimal("100000")) == "₹1,00,000.00"
    assert rupees(Decimal("12345678.5")) == "₹1,23,45,678.50"
    assert rupees(Decimal("999.999")) == "₹1,000.00"
    assert rupees(Decimal("0.5")) == "₹0.50"


def test_reducing_orders_pass_the_value_limit_but_not_more(desk: Desk, trader: Trader) -> None:
    place(desk, trader, order(quantity=100))
    set_limits(desk, trader, max_order_value=Decimal(1000))
    place(desk, trader, order(Side.SELL, 60))  # 40 left
    # Selling 41 would open a short of 1: that is a new exposure, valued like any other.
    assert "is above your limit" in refused(desk, trader, order(Side.SELL, 41))
    # An exit already waiting uses up the open quantity: stacked exits cannot flip the position.
    above = (ltp(desk) * Decimal("1.04")).quantize(Decimal(1))
    set_limits(desk, trader)
    place(desk, trader, order(Side.SELL, 30, price_type=PriceType.LIMIT, price=above))
    set_limits(desk, trader, max_order_value=Decimal(1000))
    assert "is above your limit" in refused(desk, trader, order(Side.SELL, 40))
    place(desk, trader, order(Side.SELL, 10))
    # The same holds for a CNC position.
    set_limits(desk, trader)
    place(desk, trader, order(quantity=5, product=Product.CNC))
    set_limits(desk, trader, max_order_value=Decimal(1000))
    place(desk, trader, order(Side.SELL, 5, product=Product.CNC))


def test_open_positions_limit(desk: Desk, trader: Trader) -> None:
    set_limits(desk, trader, max_open_positions=1)
    place(desk, trader, order(quantity=10))
    place(desk, trader, order(quantity=5))  # adds to the open SBIN MIS position
    assert refused(desk, trader, order(symbol="INFY")) == (
        "You have 1 open position; your limit is 1. Close a position or cancel an order "
        "before opening INFY (NSE, MIS)."
    )
    # Another product is another position.
    assert "your limit is 1" in refused(desk, trader, order(product=Product.CNC))
    place(desk, trader, order(Side.SELL, 15))  # closing passes; now flat
    place(desk, trader, order(symbol="INFY"))


def test_pending_orders_for_new_positions_take_a_place(desk: Desk, trader: Trader) -> None:
    set_limits(desk, trader, max_open_positions=2)
    place(desk, trader, order(quantity=10))
    below = Decimal(int(ltp(desk, "INFY") * Decimal("0.96")))
    place(desk, trader, order(symbol="INFY", price_type=PriceType.LIMIT, price=below))
    assert refused(desk, trader, order(symbol="TCS")) == (
        "You have 1 open position and 1 pending order for new ones; your limit is 2. Close a "
        "position or cancel an order before opening TCS (NSE, MIS)."
    )
    place(desk, trader, order(symbol="INFY"))  # the instrument already holds a place


def test_daily_loss_limit_stops_new_exposure_at_or_below_the_limit(
    desk: Desk, trader: Trader
) -> None:
    place(desk, trader, order(quantity=100))  # bought at the offer: marked at a loss
    loss = -day_pnl(desk.orders.broker(trader).funds())
    assert loss > 0
    set_limits(desk, trader, max_daily_loss=loss + Decimal("0.01"))
    place(desk, trader, order(quantity=1))
    loss = -day_pnl(desk.orders.broker(trader).funds())
    set_limits(desk, trader, max_daily_loss=loss)
    assert refused(desk, trader, order(symbol="INFY", quantity=1)) == (
        f"Today's loss of {rupees(loss)} has reached your daily loss limit of {rupees(loss)}. "
        "New orders are refused for the rest of the day; orders that reduce an open position "
        "still go through."
    )
    assert "daily loss limit" in refused(desk, trader, order(quantity=1))
    place(desk, trader, order(Side.SELL, 101))  # getting out is always allowed
    assert "daily loss limit" in refused(desk, trader, order(Side.SELL, 1))


def test_broker_is_asked_only_when_a_rule_needs_it(
    desk: Desk, trader: Trader, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    broker_type = type(desk.orders.broker(trader))

    def spy(name: str) -> Any:
        original = getattr(broker_type, name)

        def counted(self: Any) -> Any:
            calls.append(name)
            return original(self)

        return counted

    for name in ("positions", "orders", "funds", "holdings"):
        monkeypatch.setattr(broker_type, name, spy(name))
    set_limits(desk, trader, max_order_value=Decimal(100_000))
    desk.risk.check(trader, order(quantity=1))
    assert calls == []  # under the limit: whether it reduces a position does not matter
    set_limits(desk, trader, max_daily_loss=Decimal(100_000))
    desk.risk.check(trader, order(quantity=1))
    assert calls == ["funds"]


# --- storing, caching, validating -------------------------------------------------------------


def test_update_validates_each_field(desk: Desk, trader: Trader) -> None:
    cases = {
        "max_order_value": RiskLimits(max_order_value=Decimal("-1")),
        "max_daily_loss": RiskLimits(max_daily_loss=Decimal("10.005")),
        "max_open_positions": RiskLimits(max_open_positions=0),
    }
    for name, limits in cases.items():
        with pytest.raises(InvalidRequest) as error:
            desk.risk.update(trader.user_id, limits, actor="tester")
        assert list(error.value.errors) == [name]
    assert desk.risk.limits(trader.user_id, fresh=True) == NO_LIMITS


def test_parse_limits_reads_what_a_trader_types() -> None:
    assert parse_limits("1,00,000", "3", "₹ 5000.50", True) == RiskLimits(
        Decimal("100000"), 3, Decimal("5000.50"), True
    )
    assert parse_limits("", " ", "", False) == NO_LIMITS
    with pytest.raises(InvalidRequest) as error:
        parse_limits("abc", "1.5", "NaN", False)
    assert set(error.value.errors) == {"max_order_value", "max_open_positions", "max_daily_loss"}


def test_limits_are_stored_in_paise_and_audited(desk: Desk, trader: Trader) -> None:
    set_limits(desk, trader, max_order_value=Decimal("250000.50"), max_open_positions=4)
    with desk.databases.session(DatabaseName.MAIN) as session:
        row = session.get(RiskLimit, trader.user_id)
        assert row is not None
        assert (row.max_order_value_paise, row.max_open_positions) == (25_000_050, 4)
        assert (row.max_daily_loss_paise, row.kill_switch) == (None, False)
    set_limits(desk, trader, max_open_positions=4, kill_switch=True)
    desk.audit.flush()
    records = desk.audit.events(user_id=trader.user_id, action_prefix="risk.")
    assert [(r.action, r.actor) for r in records] == [("risk.limits_changed", "tester")] * 2
    assert records[0].details == {
        "before": {
            "max_order_value": "250000.50",
            "max_open_positions": "4",
            "max_daily_loss": "none",
            "kill_switch": "off",
        },
        "after": {
            "max_order_value": "none",
            "max_open_positions": "4",
            "max_daily_loss": "none",
            "kill_switch": "on",
        },
    }


def test_another_workers_change_is_seen_once_the_cache_expires(
    desk: Desk, trader: Trader, monkeypatch: pytest.MonkeyPatch
) -> None:
    place(desk, trader, order(quantity=1))  # caches "no limits"
    with desk.databases.session(DatabaseName.MAIN) as session:
        session.add(RiskLimit(user_id=trader.user_id, kill_switch=True))
    place(desk, trader, order(quantity=1))  # still within the refresh time
    later = time.monotonic() + risk_module.REFRESH_SECONDS + 1  # what the module reads
    monkeypatch.setattr(risk_module, "monotonic", lambda: later)
    assert refused(desk, trader, order(quantity=1)) == KILL_SWITCH_MESSAGE


# --- the REST API -----------------------------------------------------------------------------


def test_api_caller_gets_a_clear_422(
    app: Flask, client: FlaskClient, desk: Desk, trader: Trader, api_key: str
) -> None:
    set_limits(desk, trader, max_order_value=Decimal(1000))
    before = order_ids(desk, trader)
    response = client.post(
        "/api/v1/placeorder",
        json={"symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 10,
              "pricetype": "MARKET", "product": "MIS"},
        headers={"X-API-KEY": api_key},
    )  # fmt: skip
    assert response.status_code == 422
    body = response.json
    assert body is not None
    assert body["status"] == "error" and body["code"] == "risk_rejected"
    assert re.fullmatch(
        r"Order value ₹[\d,]+\.\d\d is above your limit of ₹1,000\.00 per order\.", body["message"]
    )
    assert order_ids(desk, trader) == before


# --- the page ---------------------------------------------------------------------------------


def page_text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def input_value(page: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert match, f"no input {name}"
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else ""


def submit(client: FlaskClient, **fields: str) -> Any:
    token = csrf_token(client.get("/settings/risk").data)
    data = {"max_order_value": "", "max_open_positions": "", "max_daily_loss": "", **fields}
    return client.post("/settings/risk", data={"csrf_token": token, **data})


def test_page_needs_a_sign_in(client: FlaskClient, user: UserView) -> None:
    response = client.get("/settings/risk")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_settings_links_to_the_page(signed_in: FlaskClient) -> None:
    assert 'href="/settings/risk">Risk limits</a>' in page_text(signed_in.get("/settings"))


def test_page_shows_saves_and_the_next_order_is_refused(
    signed_in: FlaskClient, desk: Desk, trader: Trader, api_key: str
) -> None:
    set_limits(desk, trader, max_order_value=Decimal("150000.5"), max_open_positions=3)
    page = page_text(signed_in.get("/settings/risk"))
    assert input_value(page, "max_order_value") == "150000.50"
    assert input_value(page, "max_open_positions") == "3"
    assert input_value(page, "max_daily_loss") == ""
    assert "at most ₹1,50,000.50 per order" in page
    assert "Kill switch" in page and "every new order is refused" in page

    response = submit(signed_in, max_order_value="1,000", max_daily_loss="2500.25")
    assert response.status_code == 302
    assert desk.risk.limits(trader.user_id) == RiskLimits(
        Decimal(1000), None, Decimal("2500.25"), False
    )
    assert "Risk limits saved." in page_text(signed_in.get(response.headers["Location"]))
    refusal = signed_in.post(
        "/api/v1/placeorder",
        json={"apikey": api_key, "symbol": "SBIN", "exchange": "NSE", "action": "BUY",
              "quantity": 10, "pricetype": "MARKET", "product": "MIS"},
    )  # fmt: skip
    assert refusal.status_code == 422 and "limit of ₹1,000.00" in refusal.json["message"]  # type: ignore[index]

    response = submit(signed_in, kill_switch="y")
    assert response.status_code == 302
    assert desk.risk.limits(trader.user_id) == RiskLimits(kill_switch=True)
    with pytest.raises(RiskRejected):
        place(desk, trader, order(quantity=1))


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("max_order_value", "-5", "Enter an amount in rupees above 0"),
        ("max_order_value", "abc", "Enter an amount in rupees above 0"),
        ("max_daily_loss", "100.123", "at most 2 decimals"),
        ("max_daily_loss", "0", "Enter an amount in rupees above 0"),
        ("max_open_positions", "0", "Enter a whole number, 1 or more"),
        ("max_open_positions", "two", "Enter a whole number, 1 or more"),
        ("max_order_value", "9" * 40, "cannot be longer than 32"),
    ],
)
def test_page_refuses_bad_input_beside_the_field(
    signed_in: FlaskClient, desk: Desk, trader: Trader, name: str, text: str, message: str
) -> None:
    set_limits(desk, trader, max_open_positions=5)
    response = submit(signed_in, **{"max_open_positions": "5", name: text})
    assert response.status_code == 400
    page = page_text(response)
    inside = "(?:(?!</div>).)*"  # within one field
    label = re.search(
        rf'<div class="field has-error">{inside}name="{name}"{inside}</div>', page, re.DOTALL
    )
    assert label, "the field is not marked as wrong"
    assert message in label.group(0)
    assert input_value(page, name) == html.escape(text)  # what was typed stays to be corrected
    assert desk.risk.limits(trader.user_id, fresh=True) == RiskLimits(max_open_positions=5)


def test_page_refuses_a_post_without_csrf(
    signed_in: FlaskClient, desk: Desk, user: UserView
) -> None:
    response = signed_in.post("/settings/risk", data={"kill_switch": "y"})
    assert response.status_code == 400
    assert desk.risk.limits(user.id, fresh=True) == NO_LIMITS
