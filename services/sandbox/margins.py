"""The sandbox's margin model: what an order or position blocks, by product and segment.

One model serves both the paper engine (what it blocks before accepting an order) and the
`/margin` API (a basket of positions), so the two always agree on a single order.

Rules (money in rupees, quantities in units, never lots):

- Cash equity (EQ). CNC buy: the full value, price x quantity. CNC sell: nothing (it sells a
  holding already paid for; the engine checks the holding). MIS either side: value divided by
  `mis_leverage`. Cash margins are reported in `span` (the `/margin` response has no better
  field, and the total is what matters); `exposure` and `premium` are 0.
- Futures, NRML or MIS: notional x (span rate + exposure rate), notional = price x quantity.
  MIS equals NRML: under SEBI's peak-margin rules (2021) brokers collect full SPAN + exposure
  upfront for intraday F&O too, so intraday leverage on derivatives is gone.
- Long options (BUY CE/PE), NRML or MIS: the premium, price x quantity, in `premium`.
- Short options (SELL CE/PE), NRML or MIS, SPAN-like: on the underlying notional
  U = underlying_price x quantity, span = max(span rate x U - OTM amount x quantity,
  floor rate x U) and exposure = exposure rate x U, where the OTM amount is
  max(0, strike - underlying) for calls and max(0, underlying - strike) for puts. This mirrors
  what real SPAN does: the worst-scenario loss of a short option shrinks as it moves out of
  the money (the OTM relief), but never below the exchange's short-option minimum charge
  (the floor). It is a share of the underlying's notional, not of the premium.

Segments pick the rates: currency by exchange (CDS, BCD), commodity by exchange (MCX), index
when the underlying is quoted on an index exchange (NSE_INDEX, BSE_INDEX, MCX_INDEX), stock
otherwise. All results are quantised to paise (ROUND_HALF_UP) at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from services.market.model import Exchange, Instrument, InstrumentType
from services.orders.model import Product, Side

ZERO = Decimal(0)
PAISA = Decimal("0.01")

_INDEX_EXCHANGES = frozenset({Exchange.NSE_INDEX, Exchange.BSE_INDEX, Exchange.MCX_INDEX})
_CURRENCY_EXCHANGES = frozenset({Exchange.CDS, Exchange.BCD})
_DERIVATIVE_PRODUCTS = frozenset({Product.NRML, Product.MIS})
_CASH_PRODUCTS = frozenset({Product.CNC, Product.MIS})

BasketItem = tuple[Instrument, Product, Side, int, Decimal, Decimal]


class Segment(StrEnum):
    INDEX = "index"
    STOCK = "stock"
    COMMODITY = "commodity"
    CURRENCY = "currency"


def segment_of(instrument: Instrument) -> Segment:
    """The rate segment of a derivative: by exchange first, then by where its underlying trades."""
    if instrument.exchange in _CURRENCY_EXCHANGES:
        return Segment.CURRENCY
    if instrument.exchange is Exchange.MCX:
        return Segment.COMMODITY
    if instrument.underlying_exchange in _INDEX_EXCHANGES:
        return Segment.INDEX
    return Segment.STOCK


@dataclass(frozen=True, slots=True)
class MarginSettings:
    """The model's rates, as shares of notional (0.09 = 9 %).

    Defaults sit near what NSE/MCX actually charge at the time of writing, rounded so that
    hand-checked numbers stay simple:

    - `mis_leverage` 5: SEBI's peak-margin framework caps equity intraday leverage at 5x
      (VaR + ELM is at least 20 % for the most liquid stocks).
    - `index_span_rate` 9 % + `exposure_rate_index` 2 %: an index future costs about 11 % of
      notional (NIFTY futures run 10-12 %); 2 % is NSE's ELM on index derivatives.
    - `stock_span_rate` 15 % + `exposure_rate_stock` 3.5 %: stock futures cost 18-25 %;
      3.5 % is NSE's ELM floor for stock derivatives (max of 3.5 % and 1.5 sigma).
    - `commodity_span_rate` 8 % + `exposure_rate_commodity` 1 %: MCX's initial margin for
      energy and metals in calm markets, plus MCX's 1 % ELM.
    - `currency_span_rate` 3 % + `exposure_rate_currency` 1 %: NSE USDINR futures; 1 % ELM.
    - `short_option_floor_rate` 3 %: the short-option minimum charge, the least a deep-OTM
      short option still blocks (as SPAN share of the underlying notional, before exposure).
      It never exceeds the segment's span rate, so a far-OTM short never costs more than an
      ATM one (with the defaults currency options get no OTM relief: both rates are 3 %).
    - `hedge_benefit`: whether `basket_margin` credits spreads (see there). The engine blocks
      order by order and gives no such credit; turn this off to quote what the engine blocks.

    Not modelled: SEBI's extra 2 % ELM on short index options on expiry day, calendar-spread
    charges, delivery margins near expiry, and volatility-driven changes to the rates.
    """

    mis_leverage: Decimal = Decimal(5)
    index_span_rate: Decimal = Decimal("0.09")
    stock_span_rate: Decimal = Decimal("0.15")
    commodity_span_rate: Decimal = Decimal("0.08")
    currency_span_rate: Decimal = Decimal("0.03")
    exposure_rate_index: Decimal = Decimal("0.02")
    exposure_rate_stock: Decimal = Decimal("0.035")
    exposure_rate_commodity: Decimal = Decimal("0.01")
    exposure_rate_currency: Decimal = Decimal("0.01")
    short_option_floor_rate: Decimal = Decimal("0.03")
    hedge_benefit: bool = True

    def __post_init__(self) -> None:
        if not self.mis_leverage.is_finite() or self.mis_leverage < 1:
            raise ValueError(f"mis_leverage must be at least 1, got {self.mis_leverage}")
        for name in (
            "index_span_rate", "stock_span_rate", "commodity_span_rate", "currency_span_rate",
            "exposure_rate_index", "exposure_rate_stock", "exposure_rate_commodity",
            "exposure_rate_currency", "short_option_floor_rate",
        ):  # fmt: skip
            rate: Decimal = getattr(self, name)
            if not rate.is_finite() or not ZERO <= rate <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")

    def span_rate(self, segment: Segment) -> Decimal:
        return {
            Segment.INDEX: self.index_span_rate,
            Segment.STOCK: self.stock_span_rate,
            Segment.COMMODITY: self.commodity_span_rate,
            Segment.CURRENCY: self.currency_span_rate,
        }[segment]

    def exposure_rate(self, segment: Segment) -> Decimal:
        return {
            Segment.INDEX: self.exposure_rate_index,
            Segment.STOCK: self.exposure_rate_stock,
            Segment.COMMODITY: self.exposure_rate_commodity,
            Segment.CURRENCY: self.exposure_rate_currency,
        }[segment]

    def floor_rate(self, segment: Segment) -> Decimal:
        return min(self.short_option_floor_rate, self.span_rate(segment))


DEFAULT_SETTINGS = MarginSettings()


@dataclass(frozen=True, slots=True)
class MarginRequirement:
    """What an order or basket blocks, split the way the `/margin` response reports it."""

    span: Decimal  # SPAN-like margin of futures and short options; the whole of a cash margin
    exposure: Decimal  # exposure margin (ELM) of futures and short options
    premium: Decimal  # long options: premium paid; 0 otherwise

    @property
    def total(self) -> Decimal:
        return self.span + self.exposure + self.premium

    def __add__(self, other: MarginRequirement) -> MarginRequirement:
        return MarginRequirement(
            self.span + other.span, self.exposure + other.exposure, self.premium + other.premium
        )


NO_MARGIN = MarginRequirement(ZERO, ZERO, ZERO)


def _paise(amount: Decimal) -> Decimal:
    return amount.quantize(PAISA, rounding=ROUND_HALF_UP)


def _requirement(span: Decimal, exposure: Decimal, premium: Decimal) -> MarginRequirement:
    return MarginRequirement(_paise(span), _paise(exposure), _paise(premium))


def _check_quantity(quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise ValueError(f"quantity must be a positive whole number of units, got {quantity!r}")


def _check_amount(name: str, amount: Decimal) -> None:
    if not isinstance(amount, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(amount).__name__}")
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{name} must be a finite amount of at least 0, got {amount}")


def _check_product(instrument: Instrument, product: Product) -> None:
    if instrument.instrument_type is InstrumentType.INDEX:
        raise ValueError(f"instrument {instrument.symbol} is an index and cannot be traded")
    allowed = (
        _CASH_PRODUCTS if instrument.instrument_type is InstrumentType.EQ else _DERIVATIVE_PRODUCTS
    )
    if product not in allowed:
        names = " or ".join(sorted(allowed))
        raise ValueError(f"product {product} is not allowed for {instrument.symbol} (use {names})")


def _cash_margin(
    product: Product, side: Side, quantity: int, price: Decimal, settings: MarginSettings
) -> MarginRequirement:
    value = price * quantity
    if product is Product.MIS:
        return _requirement(value / settings.mis_leverage, ZERO, ZERO)
    if side is Side.SELL:
        return NO_MARGIN  # CNC sell of a holding: already paid for
    return _requirement(value, ZERO, ZERO)


def _otm_amount(instrument: Instrument, underlying_price: Decimal) -> Decimal:
    strike = instrument.strike
    if strike is None:
        raise ValueError(f"instrument {instrument.symbol} is an option without a strike")
    if instrument.instrument_type is InstrumentType.CE:
        return max(ZERO, strike - underlying_price)
    return max(ZERO, underlying_price - strike)


def short_option_span_per_unit(
    instrument: Instrument, underlying_price: Decimal, settings: MarginSettings = DEFAULT_SETTINGS
) -> Decimal:
    """The SPAN-like part of one short option unit, unrounded: OTM relief, then the floor."""
    segment = segment_of(instrument)
    scan = settings.span_rate(segment) * underlying_price
    relieved = scan - _otm_amount(instrument, underlying_price)
    return max(relieved, settings.floor_rate(segment) * underlying_price)


def order_margin(
    instrument: Instrument,
    product: Product,
    side: Side,
    quantity: int,
    price: Decimal,
    underlying_price: Decimal,
    settings: MarginSettings = DEFAULT_SETTINGS,
) -> MarginRequirement:
    """Margin to hold `quantity` units of `instrument` in direction `side` at `price`.

    `underlying_price` is only read for short options (the spot/index, or for MCX and CDS
    options the future they settle into); pass anything >= 0 otherwise.

    Raises:
        ValueError: quantity not > 0, a negative price, a short option with no positive
            underlying price, an index, or a product the instrument cannot trade in.
    """
    _check_quantity(quantity)
    _check_amount("price", price)
    _check_amount("underlying_price", underlying_price)
    _check_product(instrument, product)
    kind = instrument.instrument_type
    if kind is InstrumentType.EQ:
        return _cash_margin(product, side, quantity, price, settings)
    segment = segment_of(instrument)
    exposure_rate = settings.exposure_rate(segment)
    if kind is InstrumentType.FUT:
        notional = price * quantity
        return _requirement(notional * settings.span_rate(segment), notional * exposure_rate, ZERO)
    if side is Side.BUY:
        return _requirement(ZERO, ZERO, price * quantity)
    if underlying_price <= 0:
        raise ValueError(
            f"underlying_price must be above 0 to margin a short option, got {underlying_price}"
        )
    span = short_option_span_per_unit(instrument, underlying_price, settings) * quantity
    return _requirement(span, underlying_price * quantity * exposure_rate, ZERO)


def position_margin(
    instrument: Instrument,
    product: Product,
    net_quantity: int,
    price: Decimal,
    underlying_price: Decimal,
    settings: MarginSettings = DEFAULT_SETTINGS,
) -> Decimal:
    """Margin blocked by an open position of signed `net_quantity` (positive long); 0 when flat.

    It is the `order_margin` of the side the position represents, so a long option blocks its
    premium at `price` (the engine passes the average price) and a CNC short (a holding sold
    today) blocks nothing.
    """
    if isinstance(net_quantity, bool) or not isinstance(net_quantity, int):
        raise ValueError(f"net_quantity must be a whole number of units, got {net_quantity!r}")
    _check_amount("price", price)
    _check_amount("underlying_price", underlying_price)
    if net_quantity == 0:
        return _paise(ZERO)
    side = Side.BUY if net_quantity > 0 else Side.SELL
    return order_margin(
        instrument, product, side, abs(net_quantity), price, underlying_price, settings
    ).total


def incremental_margin(
    instrument: Instrument,
    product: Product,
    side: Side,
    quantity: int,
    price: Decimal,
    underlying_price: Decimal,
    current_net_quantity: int,
    settings: MarginSettings = DEFAULT_SETTINGS,
) -> Decimal:
    """Extra margin an order needs on top of the current position; never negative.

    Reducing needs 0; a reversal through zero needs the margin of the part beyond zero; adding
    (or opening) needs the margin of the quantity added. The margin a reduction frees is the
    engine's business (it recomputes `position_margin` after the fill).
    """
    _check_quantity(quantity)
    _check_amount("price", price)
    _check_amount("underlying_price", underlying_price)
    if isinstance(current_net_quantity, bool) or not isinstance(current_net_quantity, int):
        raise ValueError(
            f"current_net_quantity must be a whole number of units, got {current_net_quantity!r}"
        )
    opposite = current_net_quantity * side.sign < 0
    extra = quantity - abs(current_net_quantity) if opposite else quantity
    if extra <= 0:
        return _paise(ZERO)
    return order_margin(instrument, product, side, extra, price, underlying_price, settings).total


def basket_margin(
    items: Sequence[BasketItem], settings: MarginSettings = DEFAULT_SETTINGS
) -> MarginRequirement:
    """Margin of a basket of (instrument, product, side, quantity, price, underlying_price).

    The plain sum of each leg's `order_margin`, except for one simple hedge when
    `settings.hedge_benefit` is on: a short option covered by a long option of the same type,
    underlying, exchange and expiry is a vertical spread whose worst loss is the strike gap, so
    the SPAN part of the covered units is capped at strike gap x units (0 when the long is
    nearer the money). Exposure and the long leg's premium are still charged, as exchanges do.
    Shorts are matched nearest-the-money first, each against the most protective longs left
    (lowest call strike, highest put strike). Futures are not counted as hedges.
    """
    requirements = [order_margin(*item, settings=settings) for item in items]
    if settings.hedge_benefit:
        requirements = _with_spread_credit(items, requirements, settings)
    total = NO_MARGIN
    for requirement in requirements:
        total += requirement
    return _requirement(total.span, total.exposure, total.premium)


def _spread_key(instrument: Instrument) -> tuple[object, ...]:
    return (
        instrument.exchange,
        instrument.underlying,
        instrument.expiry,
        instrument.instrument_type,
    )


def _strike(instrument: Instrument) -> Decimal:
    return instrument.strike if instrument.strike is not None else ZERO


def _with_spread_credit(
    items: Sequence[BasketItem],
    requirements: list[MarginRequirement],
    settings: MarginSettings,
) -> list[MarginRequirement]:
    """`requirements` with the SPAN of short options lowered where long options cover them."""
    long_left = {
        index: item[3]
        for index, item in enumerate(items)
        if item[0].is_option and item[2] is Side.BUY
    }
    per_unit = {
        index: short_option_span_per_unit(item[0], item[5], settings)
        for index, item in enumerate(items)
        if item[0].is_option and item[2] is Side.SELL
    }
    result = list(requirements)
    for index in sorted(per_unit, key=lambda short: -per_unit[short]):
        instrument, _, _, quantity, _, _ = items[index]
        covers = _covering_longs(items, long_left, instrument)
        span = ZERO
        remaining = quantity
        for cover in covers:
            units = min(remaining, long_left[cover])
            if units == 0:
                continue
            gap = _strike(items[cover][0]) - _strike(instrument)
            if instrument.instrument_type is InstrumentType.PE:
                gap = -gap
            span += min(per_unit[index], max(ZERO, gap)) * units
            long_left[cover] -= units
            remaining -= units
        if remaining < quantity:
            span += per_unit[index] * remaining
            result[index] = MarginRequirement(
                _paise(span), requirements[index].exposure, requirements[index].premium
            )
    return result


def _covering_longs(
    items: Sequence[BasketItem], long_left: dict[int, int], short: Instrument
) -> list[int]:
    """Long legs that can cover `short`, most protective first."""
    key = _spread_key(short)
    candidates = [index for index in long_left if _spread_key(items[index][0]) == key]
    descending = short.instrument_type is InstrumentType.PE
    return sorted(candidates, key=lambda index: _strike(items[index][0]), reverse=descending)
