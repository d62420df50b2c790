"""Order checks against the instrument master: every rule refuses with the field named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.errors import InvalidRequest
from services.market.model import Exchange, Instrument, InstrumentType
from services.orders.model import OrderRequest, PriceType, Product, Side
from services.orders.validation import validate_order

SBIN = Instrument("SBIN", Exchange.NSE, "STATE BANK OF INDIA", InstrumentType.EQ, "1")
NIFTY_FUT = Instrument(
    "NIFTY29DEC26FUT", Exchange.NFO, "NIFTY", InstrumentType.FUT, "2",
    lot_size=65, freeze_qty=1800, underlying="NIFTY",
)  # fmt: skip
NIFTY = Instrument("NIFTY", Exchange.NSE_INDEX, "NIFTY 50", InstrumentType.INDEX, "3")
BAND = (Decimal("805.65"), Decimal("1208.45"))


def order(instrument: Instrument = SBIN, **changes: object) -> OrderRequest:
    fields: dict[str, object] = {
        "symbol": instrument.symbol, "exchange": instrument.exchange.value,
        "side": Side.BUY, "quantity": instrument.lot_size, "product": Product.MIS,
    }  # fmt: skip
    fields.update(changes)
    return OrderRequest(**fields)  # type: ignore[arg-type]


def refused(request: OrderRequest, instrument: Instrument = SBIN) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        validate_order(request, instrument, BAND if instrument is SBIN else None)
    return caught.value


def test_market_order_drops_price_and_trigger() -> None:
    checked = validate_order(order(price=Decimal(1000), trigger_price=Decimal(5)), SBIN, BAND)
    assert checked.price == 0 and checked.trigger_price == 0


def test_lot_size() -> None:
    error = refused(order(NIFTY_FUT, quantity=100, product=Product.NRML), NIFTY_FUT)
    assert error.message == "Quantity must be in multiples of lot size 65"
    assert "quantity" in error.errors


def test_freeze_quantity() -> None:
    error = refused(order(NIFTY_FUT, quantity=65 * 28, product=Product.NRML), NIFTY_FUT)
    assert error.message == (
        "Quantity 1820 exceeds the freeze limit 1800 for NIFTY29DEC26FUT: split the order"
    )


def test_zero_quantity() -> None:
    assert refused(order(quantity=0)).errors == {"quantity": ["Quantity must be greater than 0"]}


def test_indices_cannot_be_traded() -> None:
    assert "index" in refused(order(NIFTY), NIFTY).message


@pytest.mark.parametrize(
    ("instrument", "product", "field"),
    [(SBIN, Product.NRML, "product"), (NIFTY_FUT, Product.CNC, "product")],
)
def test_products(instrument: Instrument, product: Product, field: str) -> None:
    assert field in refused(order(instrument, product=product), instrument).errors


def test_options_are_never_cnc() -> None:
    option = Instrument(
        "NIFTY29DEC2626000CE", Exchange.NFO, "NIFTY", InstrumentType.CE, "4", lot_size=65,
        strike=Decimal(26000), underlying="NIFTY",
    )  # fmt: skip
    error = refused(order(option, product=Product.CNC), option)
    assert error.message == "Options can be traded only as MIS or NRML, not CNC"


def test_limit_needs_a_price_on_the_tick() -> None:
    assert "price" in refused(order(price_type=PriceType.LIMIT)).errors
    error = refused(order(price_type=PriceType.LIMIT, price=Decimal("1000.03")))
    assert error.message == "Price 1000.03 is not a multiple of the tick size 0.05"


def test_price_band() -> None:
    error = refused(order(price_type=PriceType.LIMIT, price=Decimal("1300")))
    assert "outside today's price band 805.65 - 1208.45" in error.message
    inside = validate_order(order(price_type=PriceType.LIMIT, price=Decimal("1208.45")), SBIN, BAND)
    assert inside.price == Decimal("1208.45")


def test_stop_loss_rules() -> None:
    assert "trigger_price" in refused(order(price_type=PriceType.SL_M)).errors
    buy = order(price_type=PriceType.SL, price=Decimal(1000), trigger_price=Decimal(1001))
    assert "must not be above the limit price" in refused(buy).message
    sell = order(side=Side.SELL, price_type=PriceType.SL, price=Decimal(1000),
                 trigger_price=Decimal(999))  # fmt: skip
    assert "must not be below" in refused(sell).message
    fine = order(price_type=PriceType.SL, price=Decimal(1000), trigger_price=Decimal(999))
    assert validate_order(fine, SBIN, BAND).trigger_price == Decimal(999)


def test_disclosed_quantity() -> None:
    assert "disclosed_quantity" in refused(order(disclosed_quantity=5)).errors
