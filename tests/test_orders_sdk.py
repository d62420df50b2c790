"""Orders and the account through the real `openalgo` SDK against a live desk (the sandbox)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from openalgo import api as OpenAlgo

from tests.conftest import STRONG_PASSWORD
from tests.support import RunningDesk, served_desk

pytestmark = pytest.mark.slow

CAPITAL = Decimal("10000000")


desk = served_desk("orders-desk")


@pytest.fixture(scope="module")
def client(desk: RunningDesk) -> OpenAlgo:
    return OpenAlgo(api_key=desk.admin_key(STRONG_PASSWORD), host=desk.url, timeout=60)


def money(value: float) -> Decimal:
    return Decimal(str(value))


def funds_reconcile(client: OpenAlgo) -> dict[str, float]:
    """available + utilised == capital + realised - charges - cost of holdings (none here)."""
    data = client.funds()["data"]
    lhs = money(data["availablecash"]) + money(data["utiliseddebits"])
    rhs = CAPITAL + money(data["m2mrealized"]) - money(data["charges"])
    assert abs(lhs - rhs) <= Decimal("0.02"), data
    return data


def test_a_fresh_account_has_the_starting_capital(client: OpenAlgo) -> None:
    result = client.funds()
    assert result["status"] == "success" and result["mode"] == "analyze"
    data = result["data"]
    assert data["availablecash"] == 10_000_000.0
    assert data["utiliseddebits"] == 0.0
    assert client.holdings()["data"]["holdings"] == []


def test_market_buy_fills_and_shows_everywhere(client: OpenAlgo) -> None:
    placed = client.placeorder(
        symbol="SBIN",
        action="BUY",
        exchange="NSE",
        price_type="MARKET",
        product="CNC",
        quantity=10,
        strategy="e2e",
    )
    assert placed["status"] == "success", placed
    assert placed["mode"] == "analyze"
    order_id = placed["orderid"]
    assert re.fullmatch(r"\d{14}", order_id)
    status = client.orderstatus(order_id=order_id, strategy="e2e")["data"]
    assert status["order_status"] == "complete"
    assert status["quantity"] == 10 and status["average_price"] > 0
    trades = [t for t in client.tradebook()["data"] if t["orderid"] == order_id]
    assert sum(t["quantity"] for t in trades) == 10
    assert all(t["total_charges"] > 0 for t in trades)
    position = client.openposition(strategy="e2e", symbol="SBIN", exchange="NSE", product="CNC")
    assert int(position["quantity"]) == 10
    book = client.positionbook()["data"]
    sbin = next(p for p in book if p["symbol"] == "SBIN" and p["product"] == "CNC")
    assert sbin["quantity"] == 10
    assert sbin["average_price"] == pytest.approx(status["average_price"], abs=0.01)
    funds_reconcile(client)


def test_resting_limit_modify_and_cancel(client: OpenAlgo) -> None:
    quote = client.quotes(symbol="INFY", exchange="NSE")["data"]
    far_below = round(round(quote["ltp"] * 0.85 / 0.05) * 0.05, 2)
    placed = client.placeorder(
        symbol="INFY",
        action="BUY",
        exchange="NSE",
        price_type="LIMIT",
        product="CNC",
        quantity=5,
        price=far_below,
        strategy="e2e",
    )
    assert placed["status"] == "success", placed
    order_id = placed["orderid"]
    assert client.orderstatus(order_id=order_id)["data"]["order_status"] == "open"
    blocked = client.funds()["data"]["utiliseddebits"]
    assert blocked >= far_below * 5
    lower = round(far_below - 1, 2)
    modified = client.modifyorder(
        order_id=order_id,
        symbol="INFY",
        action="BUY",
        exchange="NSE",
        price_type="LIMIT",
        product="CNC",
        quantity=4,
        price=lower,
    )
    assert modified["status"] == "success", modified
    status = client.orderstatus(order_id=order_id)["data"]
    assert (status["quantity"], status["price"]) == (4, lower)
    cancelled = client.cancelorder(order_id=order_id)
    assert cancelled["status"] == "success"
    assert client.orderstatus(order_id=order_id)["data"]["order_status"] == "cancelled"
    again = client.cancelorder(order_id=order_id)
    assert again["status"] == "error"
    funds_reconcile(client)


def test_cancel_all_reports_each_order(client: OpenAlgo) -> None:
    quote = client.quotes(symbol="TCS", exchange="NSE")["data"]
    price = round(round(quote["ltp"] * 0.9 / 0.05) * 0.05, 2)
    ids = {
        client.placeorder(
            symbol="TCS",
            action="BUY",
            exchange="NSE",
            price_type="LIMIT",
            product="CNC",
            quantity=1,
            price=price,
        )["orderid"]
        for _ in range(2)
    }
    result = client.cancelallorder(strategy="e2e")
    assert result["status"] == "success"
    assert ids <= set(result["canceled_orders"])
    assert result["failed_cancellations"] == []
    assert client.cancelallorder()["message"] == "No open orders to cancel"


def test_rejections_are_clear_and_change_nothing(client: OpenAlgo) -> None:
    before = client.funds()["data"]
    lot = client.placeorder(
        symbol=_nifty_future(client), action="BUY", exchange="NFO", product="NRML", quantity=10
    )
    assert lot["status"] == "error"
    assert "multiples of lot size 65" in lot["message"]
    short_cnc = client.placeorder(
        symbol="ITC", action="SELL", exchange="NSE", product="CNC", quantity=1
    )
    assert short_cnc["status"] == "error"
    ltp = client.quotes(symbol="RELIANCE", exchange="NSE")["data"]["ltp"]
    too_big = client.placeorder(
        symbol="RELIANCE",
        action="BUY",
        exchange="NSE",
        product="CNC",
        quantity=100_000,
        price_type="LIMIT",
        price=round(round(ltp * 0.95 / 0.05) * 0.05, 2),
    )
    assert too_big["status"] == "error"
    assert "Insufficient funds" in too_big["message"]
    unknown = client.placeorder(symbol="NOSUCHCO", action="BUY", exchange="NSE", quantity=1)
    assert unknown["status"] == "error"
    assert client.funds()["data"]["availablecash"] == before["availablecash"]


def _nifty_future(client: OpenAlgo) -> str:
    expiry = client.expiry(symbol="NIFTY", exchange="NFO", instrumenttype="futures")["data"][0]
    return "NIFTY" + expiry.replace("-", "") + "FUT"


def test_futures_position_and_close_position(client: OpenAlgo) -> None:
    symbol = _nifty_future(client)
    placed = client.placeorder(
        symbol=symbol, action="SELL", exchange="NFO", product="NRML", quantity=65, strategy="e2e"
    )
    assert placed["status"] == "success", placed
    position = client.openposition(strategy="e2e", symbol=symbol, exchange="NFO", product="NRML")
    assert int(position["quantity"]) == -65
    funds = funds_reconcile(client)
    assert funds["utiliseddebits"] > 0
    closed = client.closeposition(strategy="e2e", symbol=symbol)
    assert closed["status"] == "success", closed
    assert closed["closed_positions"] == 1
    flat = client.openposition(strategy="e2e", symbol=symbol, exchange="NFO", product="NRML")
    assert int(flat["quantity"]) == 0
    funds_reconcile(client)


def test_order_book_statistics(client: OpenAlgo) -> None:
    book = client.orderbook()["data"]
    orders, stats = book["orders"], book["statistics"]
    assert stats["total_buy_orders"] + stats["total_sell_orders"] == len(orders)
    assert stats["total_completed_orders"] == sum(o["order_status"] == "complete" for o in orders)
    assert all(o["filled_quantity"] <= o["quantity"] for o in orders)


def test_analyzer(client: OpenAlgo) -> None:
    status = client.analyzerstatus()
    assert status["data"]["analyze_mode"] is True and status["data"]["mode"] == "analyze"
    live = client.analyzertoggle(mode=False)
    assert live["status"] == "error"
    assert "No live broker" in live["message"]
    stay = client.analyzertoggle(mode=True)
    assert stay["status"] == "success"
    assert stay["data"]["message"] == "Analyzer mode switched to analyze"


def test_concurrent_orders_over_http_keep_the_books_consistent(
    client: OpenAlgo, desk: RunningDesk
) -> None:
    before = {o["orderid"] for o in client.orderbook()["data"]["orders"]}
    start_qty = int(client.openposition(symbol="ITC", exchange="NSE", product="CNC")["quantity"])
    workers, each = 8, 15

    def trade(worker: int) -> list[str]:
        own = OpenAlgo(api_key=client.api_key, host=desk.url, timeout=60)
        ids = []
        for number in range(each):
            side = "BUY" if (worker + number) % 3 else "SELL"
            result = own.placeorder(
                symbol="ITC",
                action=side,
                exchange="NSE",
                product="CNC",
                quantity=1,
                strategy=f"w{worker}",
            )
            if result["status"] == "success":
                ids.append(result["orderid"])
        return ids

    with ThreadPoolExecutor(max_workers=workers) as pool:
        placed = [order_id for ids in pool.map(trade, range(workers)) for order_id in ids]
    assert len(placed) == len(set(placed))  # no order id handed out twice
    orders = {o["orderid"]: o for o in client.orderbook()["data"]["orders"]}
    new = [orders[order_id] for order_id in placed]
    assert {o["orderid"] for o in new}.isdisjoint(before)
    filled = [o for o in new if o["order_status"] == "complete"]
    net = sum(o["filled_quantity"] * (1 if o["action"] == "BUY" else -1) for o in filled)
    position = int(client.openposition(symbol="ITC", exchange="NSE", product="CNC")["quantity"])
    assert position == start_qty + net
    trades = [t for t in client.tradebook()["data"] if t["orderid"] in set(placed)]
    assert sum(t["quantity"] for t in trades) == sum(o["filled_quantity"] for o in new)
    funds_reconcile(client)


def test_a_restart_loses_nothing(client: OpenAlgo, desk: RunningDesk) -> None:
    quote = client.quotes(symbol="HDFCBANK", exchange="NSE")["data"]
    resting = client.placeorder(
        symbol="HDFCBANK",
        action="BUY",
        exchange="NSE",
        price_type="LIMIT",
        product="CNC",
        quantity=3,
        price=round(round(quote["ltp"] * 0.9 / 0.05) * 0.05, 2),
    )
    assert resting["status"] == "success"
    snapshot = (
        client.orderbook()["data"],
        client.tradebook()["data"],
        client.positionbook()["data"],
        client.holdings()["data"],
    )
    funds = client.funds()["data"]
    desk.stop()
    desk.start()
    after = (
        client.orderbook()["data"],
        client.tradebook()["data"],
        client.positionbook()["data"],
        client.holdings()["data"],
    )
    assert after[0] == snapshot[0]
    assert after[1] == snapshot[1]

    # Positions and funds are re-marked at the market, so compare what the books hold.
    def held(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
        keys = ("symbol", "exchange", "product", "quantity", "average_price", "today_realized_pnl")
        return [tuple(row[k] for k in keys) for row in rows]

    assert held(after[2]) == held(snapshot[2])
    after_funds = client.funds()["data"]
    for key in ("utiliseddebits", "m2mrealized", "charges", "availablecash"):
        assert after_funds[key] == funds[key], key
    assert client.orderstatus(order_id=resting["orderid"])["data"]["order_status"] == "open"
