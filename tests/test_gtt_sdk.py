"""GTT orders through the real `openalgo` SDK against a live desk."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import pytest
from openalgo import api as OpenAlgo

from services.sandbox.gtt import PRODUCT_MESSAGE
from tests.conftest import STRONG_PASSWORD
from tests.support import RunningDesk, served_desk

pytestmark = pytest.mark.slow

TICK = Decimal("0.05")


desk = served_desk("gtt-desk")


@pytest.fixture(scope="module")
def client(desk: RunningDesk) -> OpenAlgo:
    return OpenAlgo(api_key=desk.admin_key(STRONG_PASSWORD), host=desk.url, timeout=60)


def far_levels(client: OpenAlgo, symbol: str = "SBIN") -> tuple[float, float, float]:
    """The last price and two levels far below and above it (they will not trigger)."""
    ltp = Decimal(str(client.quotes(symbol=symbol, exchange="NSE")["data"]["ltp"]))
    below = (ltp * Decimal("0.6") / TICK).to_integral_value(ROUND_FLOOR) * TICK
    above = (ltp * Decimal("1.4") / TICK).to_integral_value(ROUND_CEILING) * TICK
    return float(ltp), float(below), float(above)


def book(client: OpenAlgo) -> dict[str, dict]:  # type: ignore[type-arg]
    answer = client.gttorderbook()
    assert answer["status"] == "success", answer
    return {row["trigger_id"]: row for row in answer["data"]}


def test_single_gtt_place_modify_cancel(client: OpenAlgo) -> None:
    _ltp, _below, above = far_levels(client)
    placed = client.placegttorder(
        strategy="sdk", symbol="SBIN", action="BUY", exchange="NSE", trigger_type="SINGLE",
        product="CNC", quantity=5, price_type="LIMIT", price=above, triggerprice_tg=above,
    )  # fmt: skip
    assert placed["status"] == "success", placed
    assert placed["mode"] == "analyze"
    trigger_id = placed["trigger_id"]
    assert isinstance(trigger_id, str) and trigger_id.isdigit()

    row = book(client)[trigger_id]
    assert row["trigger_type"] == "single" and row["status"] == "active"
    assert row["symbol"] == "SBIN" and row["exchange"] == "NSE"
    assert row["trigger_prices"] == [above]
    assert row["legs"] == [
        {"action": "BUY", "quantity": 5, "price": above, "pricetype": "LIMIT", "product": "CNC"}
    ]
    assert row["last_price"] > 0
    for stamp in ("created_at", "updated_at", "expires_at"):
        assert row[stamp]

    modified = client.modifygttorder(
        trigger_id=trigger_id, strategy="sdk", symbol="SBIN", action="BUY", exchange="NSE",
        trigger_type="SINGLE", product="CNC", quantity=7, price_type="MARKET", price=0,
        triggerprice_tg=above + 1,
    )  # fmt: skip
    assert modified["status"] == "success", modified
    assert modified["trigger_id"] == trigger_id
    row = book(client)[trigger_id]
    assert row["trigger_prices"] == [above + 1]
    assert row["legs"][0]["quantity"] == 7 and row["legs"][0]["pricetype"] == "MARKET"

    cancelled = client.cancelgttorder(trigger_id=trigger_id, strategy="sdk")
    assert cancelled["status"] == "success", cancelled
    assert cancelled["trigger_id"] == trigger_id
    assert trigger_id not in book(client)
    again = client.cancelgttorder(trigger_id=trigger_id, strategy="sdk")
    assert again["status"] == "error" and again["code"] == 400


def test_oco_gtt_has_two_legs_stoploss_first(client: OpenAlgo) -> None:
    _ltp, below, above = far_levels(client, "INFY")
    placed = client.placegttorder(
        strategy="sdk", symbol="INFY", action="BUY", exchange="NSE", trigger_type="OCO",
        product="CNC", quantity=2, triggerprice_sl=below, stoploss=below,
        triggerprice_tg=above, target=above,
    )  # fmt: skip
    assert placed["status"] == "success", placed
    row = book(client)[placed["trigger_id"]]
    assert row["trigger_type"] == "two-leg"
    assert row["trigger_prices"] == [below, above]
    assert [leg["price"] for leg in row["legs"]] == [below, above]
    assert client.cancelgttorder(trigger_id=placed["trigger_id"])["status"] == "success"


def test_server_side_rules(client: OpenAlgo) -> None:
    ltp, below, above = far_levels(client)
    mis = client.placegttorder(
        symbol="SBIN", action="BUY", exchange="NSE", product="MIS", quantity=1,
        price=above, triggerprice_tg=above,
    )  # fmt: skip
    assert mis["status"] == "error" and mis["code"] == 400
    assert mis["message"] == PRODUCT_MESSAGE

    wrong_side = client.placegttorder(
        symbol="SBIN", action="SELL", exchange="NSE", product="CNC", quantity=1,
        price=above, triggerprice_sl=above,
    )  # fmt: skip
    assert wrong_side["status"] == "error" and wrong_side["code"] == 400
    assert "below the last price" in wrong_side["message"]

    unknown = client.modifygttorder(
        trigger_id="12345", symbol="SBIN", action="BUY", exchange="NSE", product="CNC",
        quantity=1, price=above, triggerprice_tg=above,
    )  # fmt: skip
    assert unknown["status"] == "error" and unknown["code"] == 404
    assert ltp > 0 and below > 0
