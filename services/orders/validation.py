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
STOPS = frozenset({PriceType.SL, PriceType.SL_M})


class OrderRuleBroken(Exception):
    """An order breaks an exchange rule; `field` names the request field at fault.

    The rules below are shared: the order pipeline turns this into a 400 naming the field, the
    paper exchange into a broker-style rejection recorded in its order book.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def reject(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, errors={field: [message]})


def validate_order(
    request: OrderRequest,
    instrument: Instrument,
    band: tuple[Decimal, Decimal] | None = None,
) -> OrderRequest:
    """The request, normalised (MARKET carries no price), or InvalidRequest naming the field."""
    try:
        if instrument.exchange in INDEX_EXCHANGES or (
            instrument.instrument_type is InstrumentType.INDEX
        ):
            raise OrderRuleBroken(
                "symbol", f"{instrument.symbol} is an index; trade its futures or options."
            )
        check_quantity(request.quantity, instrument)
        if not 0 <= request.disclosed_quantity <= request.quantity:
            raise OrderRuleBroken(
                "disclosed_quantity", "disclosed_quantity must be between 0 and quantity."
            )
        check_product(request.product, instrument)
        request = normalised_prices(request)
        check_prices(
            request.price_type, request.side, request.price, request.trigger_price, instrument
        )
        check_band(request.price, request.trigger_price, instrument, band)
    except OrderRuleBroken as e:
        raise reject(e.field, e.message) from None
    return request


def check_quantity(quantity: int, instrument: Instrument) -> None:
    if quantity <= 0:
        raise OrderRuleBroken("quantity", "Quantity must be greater than 0")
    if quantity % instrument.lot_size:
        raise OrderRuleBroken(
            "quantity", f"Quantity must be in multiples of lot size {instrument.lot_size}"
        )
    freeze = instrument.freeze_qty
    if freeze is not None and quantity > freeze:
        raise OrderRuleBroken(
            "quantity",
            f"Quantity {quantity} exceeds the freeze limit {freeze} for "
            f"{instrument.symbol}: split the order",
        )


def check_product(product: Product, instrument: Instrument) -> None:
    cash = instrument.exchange in CASH_EXCHANGES and instrument.instrument_type is InstrumentType.EQ
    where = f"{instrument.symbol} on {instrument.exchange.value}"
    if product is Product.CNC and not cash:
        if instrument.is_option:
            raise OrderRuleBroken("product", "Options can be traded only as MIS or NRML, not CNC")
        raise OrderRuleBroken(
            "product", f"CNC is for NSE and BSE cash equity; use NRML or MIS for {where}"
        )
    if product is Product.NRML and cash:
        raise OrderRuleBroken(
            "product", f"NRML is for F&O and commodity contracts; use CNC or MIS for {where}"
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
    trigger: Decimal,
    instrument: Instrument,
) -> None:
    """Prices the price type needs, on the tick grid, a stop's trigger beside its limit."""
    tick = instrument.tick_size
    if price < 0 or trigger < 0:
        raise OrderRuleBroken("price", "Prices cannot be negative")
    if price_type in (PriceType.LIMIT, PriceType.SL) and price <= 0:
        raise OrderRuleBroken("price", f"{price_type.value} orders need a price above 0")
    if price_type in STOPS and trigger <= 0:
        raise OrderRuleBroken(
            "trigger_price", f"{price_type.value} orders need a trigger price above 0"
        )
    if price_type in (PriceType.LIMIT, PriceType.SL) and price % tick:
        raise OrderRuleBroken("price", f"Price {price} is not a multiple of the tick size {tick}")
    if price_type in STOPS and trigger % tick:
        raise OrderRuleBroken(
            "trigger_price", f"Trigger price {trigger} is not a multiple of the tick size {tick}"
        )
    if price_type is PriceType.SL:
        # A buy stop triggers on the way up, then buys at most at its limit; a sell stop mirrors it.
        if side is Side.BUY and trigger > price:
            raise OrderRuleBroken(
                "trigger_price",
                f"Trigger price {trigger} must not be above the limit price {price} "
                "for a BUY SL order",
            )
        if side is Side.SELL and trigger < price:
            raise OrderRuleBroken(
                "trigger_price",
                f"Trigger price {trigger} must not be below the limit price {price} "
                "for a SELL SL order",
            )


def check_band(
    price: Decimal, trigger: Decimal, instrument: Instrument, band: tuple[Decimal, Decimal] | None
) -> None:
    """A cash equity's prices inside today's circuit limits."""
    if band is None:
        return
    for field, value in (("price", price), ("trigger_price", trigger)):
        if value and not band[0] <= value <= band[1]:
            raise OrderRuleBroken(
                field,
                f"{field} {value} is outside today's price band {band[0]} - {band[1]} "
                f"for {instrument.symbol}.",
            )
