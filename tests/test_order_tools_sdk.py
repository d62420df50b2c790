"""Smart, basket, split, options orders and margin through the real `openalgo` SDK."""

from __future__ import annotations

import pytest
from openalgo import api as OpenAlgo

from tests.conftest import STRONG_PASSWORD
from tests.support import RunningDesk, served_desk

pytestmark = pytest.mark.slow


desk = served_desk("tools-desk")


@pytest.fixture(scope="module")
def client(desk: RunningDesk) -> OpenAlgo:
    return OpenAlgo(api_key=desk.admin_key(STRONG_PASSWORD), host=desk.url, timeout=60)


def net(client: OpenAlgo, symbol: str, exchange: str, product: str) -> int:
    return int(client.openposition(symbol=symbol, exchange=exchange, product=product)["quantity"])


def nifty_expiry(client: OpenAlgo, kind: str, index: int = 0) -> str:
    days = client.expiry(symbol="NIFTY", exchange="NFO", instrumenttype=kind)["data"]
    return days[index].replace("-", "")


def test_smart_order_reaches_exactly_the_target(client: OpenAlgo) -> None:
    def smart(size: int) -> dict[str, object]:
        result: dict[str, object] = client.placesmartorder(
            symbol="SBIN",
            action="BUY",
            exchange="NSE",
            product="CNC",
            quantity=1,
            position_size=size,
        )
        return result

    assert smart(10)["status"] == "success"
    assert net(client, "SBIN", "NSE", "CNC") == 10
    assert "orderid" in smart(4)
    assert net(client, "SBIN", "NSE", "CNC") == 4
    matched = smart(4)
    assert matched["status"] == "success"
    assert matched["message"] == "Positions Already Matched. No Action needed."
    smart(0)
    assert net(client, "SBIN", "NSE", "CNC") == 0


def test_basket_places_buys_first_and_reports_in_request_order(client: OpenAlgo) -> None:
    result = client.basketorder(
        orders=[
            {
                "symbol": "INFY",
                "exchange": "NSE",
                "action": "SELL",
                "quantity": 2,
                "product": "CNC",
            },
            {"symbol": "INFY", "exchange": "NSE", "action": "BUY", "quantity": 2, "product": "CNC"},
        ]
    )
    assert result["status"] == "success", result
    sell, buy = result["results"]
    assert (sell["symbol"], buy["symbol"]) == ("INFY", "INFY")
    # The SELL only succeeds because the BUY, listed after it, was placed first.
    assert buy["status"] == "success" and sell["status"] == "success", result
    assert int(buy["orderid"]) < int(sell["orderid"])
    assert net(client, "INFY", "NSE", "CNC") == 0


def test_basket_with_a_bad_leg_places_nothing(client: OpenAlgo) -> None:
    before = len(client.orderbook()["data"]["orders"])
    result = client.basketorder(
        orders=[
            {"symbol": "TCS", "exchange": "NSE", "action": "BUY", "quantity": 1, "product": "CNC"},
            {
                "symbol": "NIFTY" + nifty_expiry(client, "futures") + "FUT",
                "exchange": "NFO",
                "action": "BUY",
                "quantity": 10,
                "product": "NRML",
            },
        ]
    )
    assert result["status"] == "error"
    assert "lot size 65" in result["message"]
    assert len(client.orderbook()["data"]["orders"]) == before


def test_split_order_children(client: OpenAlgo) -> None:
    symbol = "NIFTY" + nifty_expiry(client, "futures") + "FUT"
    result = client.splitorder(
        symbol=symbol, exchange="NFO", action="BUY", product="NRML", quantity=195, splitsize=130
    )
    assert result["status"] == "success", result
    assert [(r["order_num"], r["quantity"]) for r in result["results"]] == [(1, 130), (2, 65)]
    assert all(r["status"] == "success" for r in result["results"])
    assert net(client, symbol, "NFO", "NRML") == 195
    too_many = client.splitorder(
        symbol="ITC", exchange="NSE", action="BUY", product="CNC", quantity=101, splitsize=1
    )
    assert too_many["status"] == "error"
    assert "maximum limit of 100" in too_many["message"]
    client.closeposition(symbol=symbol)


def test_options_order_lands_on_the_resolved_strike(client: OpenAlgo) -> None:
    expiry = nifty_expiry(client, "options", 1)
    result = client.optionsorder(
        underlying="NIFTY",
        exchange="NSE_INDEX",
        expiry_date=expiry,
        offset="OTM2",
        option_type="CE",
        action="BUY",
        quantity=65,
        product="NRML",
    )
    assert result["status"] == "success", result
    chain = client.optionchain(underlying="NIFTY", exchange="NSE_INDEX", expiry_date=expiry)
    strikes = [row["strike"] for row in chain["chain"]]
    atm = min(strikes, key=lambda s: (abs(s - result["underlying_ltp"]), s))
    assert result["symbol"] == f"NIFTY{expiry}{int(strikes[strikes.index(atm) + 2])}CE"
    assert net(client, result["symbol"], "NFO", "NRML") == 65


def test_multi_leg_buys_before_sells(client: OpenAlgo) -> None:
    expiry = nifty_expiry(client, "options", 1)
    result = client.optionsmultiorder(
        underlying="NIFTY",
        exchange="NSE_INDEX",
        expiry_date=expiry,
        strategy="spread",
        legs=[
            {
                "offset": "OTM1",
                "option_type": "PE",
                "action": "SELL",
                "quantity": 65,
                "product": "NRML",
            },
            {
                "offset": "OTM4",
                "option_type": "PE",
                "action": "BUY",
                "quantity": 65,
                "product": "NRML",
            },
        ],
    )
    assert result["status"] == "success", result
    sell, buy = result["results"]
    assert (sell["leg"], buy["leg"]) == (1, 2)
    assert sell["status"] == buy["status"] == "success", result
    assert int(buy["orderid"]) < int(sell["orderid"])
    assert sell["symbol"].endswith("PE") and buy["symbol"].endswith("PE")


def test_margin_agrees_with_the_engine(client: OpenAlgo) -> None:
    quote = client.quotes(symbol="HDFCBANK", exchange="NSE")["data"]
    price = round(round(quote["ltp"] * 0.95 / 0.05) * 0.05, 2)
    result = client.margin(
        positions=[
            {
                "symbol": "HDFCBANK",
                "exchange": "NSE",
                "action": "BUY",
                "quantity": 10,
                "product": "CNC",
                "pricetype": "LIMIT",
                "price": price,
            }
        ]
    )
    assert result["status"] == "success", result
    assert result["data"]["total_margin_required"] == pytest.approx(price * 10, abs=0.01)
    before = client.funds()["data"]["utiliseddebits"]
    placed = client.placeorder(
        symbol="HDFCBANK",
        exchange="NSE",
        action="BUY",
        quantity=10,
        product="CNC",
        price_type="LIMIT",
        price=price,
    )
    assert placed["status"] == "success"
    blocked = client.funds()["data"]["utiliseddebits"] - before
    assert blocked == pytest.approx(result["data"]["total_margin_required"], abs=0.01)
    client.cancelorder(order_id=placed["orderid"])
