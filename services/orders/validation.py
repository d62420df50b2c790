"""Order checks against the instrument master, the same for every broker.

An order that breaks an exchange rule (lot size, tick size, price band, freeze quantity,
product) is refused here with a 400 that names the field, before any broker sees it. The
messages read like a broker's, because traders already know them.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from services.errors import InvalidRequest
from services.market.model import Exchange, Instrument, InstrumentType
from services.orders.model import ZERO, OrderRequest, PriceType, Product, Side

CASH_EXCHANGES = frozenset({Exchange.NSE, Exchange.BSE})
INDEX_EXCHANGES = frozenset({Exchange.NSE_INDEX, Exchange.BSE_INDEX, Exchange.MCX_INDEX})


def reject(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, errors={field: [message]})


def validate_order(
    request: OrderRequest,
    instrument: Instrument,
    band: tuple[Decimal, Decimal] | None = None,
) -> OrderRequest:
    """The request, normalised (MARKET carries no price), or InvalidRequest naming the field."""
    if instrument.exchange in INDEX_EXCHANGES or instrument.instrument_type is InstrumentType.INDEX:
        raise reject("symbol", f"{instrument.symbol} is an index; trade its futures or options.")
    check_quantity(request.quantity, instrument)
    if not 0 <= request.disclosed_quantity <= request.quantity:
        raise reject("disclosed_quantity", "disclosed_quantity must be between 0 and quantity.")
    check_product(request.product, instrument)
    request = normalised_prices(request)
    check_prices(
        request.price_type, request.side, request.price, request.trigger_price, instrument, band
    )
    return request


def check_quantity(quantity: int, instrument: Instrument) -> None:
    if quantity <= 0:
        raise reject("quantity", "Quantity must be greater than 0.")
    if quantity % instrument.lot_size:
        raise reject("quantity", f"Quantity must be in multiples of lot size {instrument.lot_size}")
    if instrument.freeze_qty and quantity > instrument.freeze_qty:
        raise reject(
            "quantity",
            f"Quantity {quantity} exceeds the freeze limit of {instrument.freeze_qty} for "
            f"{instrument.symbol}; split the order (splitorder does it for you).",
        )


def check_product(product: Product, instrument: Instrument) -> None:
    is_cash = instrument.exchange in CASH_EXCHANGES
    if product is Product.CNC and not is_cash:
        raise reject(
            "product",
            f"CNC is for delivery in cash equities; use NRML or MIS on {instrument.exchange}.",
        )
    if product is Product.NRML and is_cash:
        raise reject(
            "product", "NRML is for F&O and commodities; use CNC or MIS for cash equities."
        )


def normalised_prices(request: OrderRequest) -> OrderRequest:
    """MARKET orders carry no price or trigger, LIMIT no trigger, SL-M no price."""
    if request.price_type is PriceType.MARKET:
        return replace(request, price=ZERO, trigger_price=ZERO)
    if request.price_type is PriceType.LIMIT:
        return replace(request, trigger_price=ZERO)
    if request.price_type is PriceType.SL_M:
        return replace(request, price=ZERO)
    return request


def check_prices(
    price_type: PriceType,
    side: Side,
    price: Decimal,
    trigger_price: Decimal,
    instrument: Instrument,
    band: tuple[Decimal, Decimal] | None,
) -> None:
    if price < 0 or trigger_price < 0:
        raise reject("price", "Prices cannot be negative.")
    if price_type in (PriceType.LIMIT, PriceType.SL) and price <= 0:
        raise reject("price", f"{price_type} orders need a price greater than 0.")
    if price_type in (PriceType.SL, PriceType.SL_M) and trigger_price <= 0:
        raise reject("trigger_price", f"{price_type} orders need a trigger_price greater than 0.")
    for field, value in (("price", price), ("trigger_price", trigger_price)):
        if value and value % instrument.tick_size:
            raise reject(
                field,
                f"{field} {value} is not a multiple of the tick size {instrument.tick_size}.",
            )
        if value and band and not band[0] <= value <= band[1]:
            raise reject(
                field,
                f"{field} {value} is outside today's price band {band[0]} - {band[1]} "
                f"for {instrument.symbol}.",
            )
    if price_type is PriceType.SL:
        # A buy stop triggers on the way up, then buys at most at its limit; a sell stop mirrors it.
        if side is Side.BUY and trigger_price > price:
            raise reject(
                "trigger_price", "For a BUY SL order the trigger_price must not exceed the price."
            )
        if side is Side.SELL and trigger_price < price:
            raise reject(
                "trigger_price",
                "For a SELL SL order the trigger_price must not be below the price.",
            )
