"""The sandbox margin model: every expected rupee worked out by hand from the default rates.

Defaults: MIS leverage 5; span 9 % index, 15 % stock, 8 % commodity, 3 % currency; exposure
2 % index, 3.5 % stock, 1 % commodity, 1 % currency; short-option floor 3 %.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from services.market.model import Exchange, Instrument, InstrumentType
from services.orders.model import Product, Side
from services.sandbox.margins import (
    MarginRequirement,
    MarginSettings,
    Segment,
    basket_margin,
    incremental_margin,
    order_margin,
    position_margin,
    segment_of,
)

BUY, SELL = Side.BUY, Side.SELL
CNC, MIS, NRML = Product.CNC, Product.MIS, Product.NRML
EQ, FUT, CE, PE = InstrumentType.EQ, InstrumentType.FUT, InstrumentType.CE, InstrumentType.PE
EXPIRY = date(2026, 12, 29)
NEXT_EXPIRY = date(2027, 1, 26)
NIFTY_LOT = 65
SPOT = Decimal(25_000)
ZERO = Decimal(0)


def D(text: str | int) -> Decimal:
    return Decimal(text)


def make_instrument(
    symbol: str,
    exchange: Exchange,
    kind: InstrumentType,
    *,
    lot_size: int = 1,
    strike: Decimal | None = None,
    expiry: date | None = None,
    underlying: str | None = None,
    underlying_exchange: Exchange | None = None,
) -> Instrument:
    return Instrument(
        symbol=symbol,
        exchange=exchange,
        name=underlying or symbol,
        instrument_type=kind,
        token="1",
        lot_size=lot_size,
        expiry=expiry,
        strike=strike,
        underlying=underlying,
        underlying_exchange=underlying_exchange,
    )


def nifty_future(expiry: date = EXPIRY) -> Instrument:
    return make_instrument(
        "NIFTY29DEC26FUT", Exchange.NFO, FUT, lot_size=NIFTY_LOT, expiry=expiry,
        underlying="NIFTY", underlying_exchange=Exchange.NSE_INDEX,
    )  # fmt: skip


def nifty_option(strike: int, kind: InstrumentType = CE, expiry: date = EXPIRY) -> Instrument:
    return make_instrument(
        f"NIFTY29DEC26{strike}{kind}", Exchange.NFO, kind, lot_size=NIFTY_LOT,
        strike=Decimal(strike), expiry=expiry, underlying="NIFTY",
        underlying_exchange=Exchange.NSE_INDEX,
    )  # fmt: skip


RELIANCE = make_instrument("RELIANCE", Exchange.NSE, EQ)
NIFTY_INDEX = make_instrument("NIFTY", Exchange.NSE_INDEX, InstrumentType.INDEX)


def short_nifty(strike: int, kind: InstrumentType = CE, quantity: int = NIFTY_LOT) -> Decimal:
    return order_margin(nifty_option(strike, kind), NRML, SELL, quantity, D(100), SPOT).total


# --- cash equity ----------------------------------------------------------------------------


def test_cnc_buy_blocks_the_full_value_as_span() -> None:
    # 10 x 2,950.50 = 29,505.00
    margin = order_margin(RELIANCE, CNC, BUY, 10, D("2950.50"), ZERO)
    assert margin == MarginRequirement(span=D("29505.00"), exposure=D("0.00"), premium=D("0.00"))
    assert margin.total == D("29505.00")


def test_cnc_sell_of_a_holding_needs_nothing() -> None:
    assert order_margin(RELIANCE, CNC, SELL, 10, D("2950.50"), ZERO).total == D("0.00")


@pytest.mark.parametrize("side", [BUY, SELL])
def test_mis_equity_is_value_over_five_on_both_sides(side: Side) -> None:
    # 10 x 2,950.50 = 29,505.00; / 5 = 5,901.00
    assert order_margin(RELIANCE, MIS, side, 10, D("2950.50"), ZERO).total == D("5901.00")
    # 3 x 100.03 = 300.09; / 5 = 60.018 -> 60.02
    assert order_margin(RELIANCE, MIS, side, 3, D("100.03"), ZERO).total == D("60.02")


def test_rounding_is_half_up_to_paise() -> None:
    # 1 x 100.025 / 5 = 20.005 -> 20.01 (banker's rounding would give 20.00)
    margin = order_margin(RELIANCE, MIS, BUY, 1, D("100.025"), ZERO)
    assert margin.span == D("20.01")
    assert margin.span.as_tuple().exponent == -2


def test_mis_leverage_is_a_setting() -> None:
    # 10 x 2,950.50 = 29,505.00; / 4 = 7,376.25
    settings = MarginSettings(mis_leverage=D(4))
    assert order_margin(RELIANCE, MIS, BUY, 10, D("2950.50"), ZERO, settings).total == D("7376.25")


# --- futures --------------------------------------------------------------------------------


@pytest.mark.parametrize("product", [NRML, MIS])
@pytest.mark.parametrize("side", [BUY, SELL])
def test_nifty_future_one_lot(product: Product, side: Side) -> None:
    # notional 65 x 25,000 = 16,25,000; span 9 % = 1,46,250; exposure 2 % = 32,500
    margin = order_margin(nifty_future(), product, side, NIFTY_LOT, D(25_000), SPOT)
    assert margin == MarginRequirement(D("146250.00"), D("32500.00"), D("0.00"))
    assert margin.total == D("178750.00")  # = 16,25,000 x 11 %


def test_future_rounding_of_each_part() -> None:
    # notional 65 x 25,000.05 = 16,25,003.25
    # span 9 % = 1,46,250.2925 -> 1,46,250.29; exposure 2 % = 32,500.065 -> 32,500.07
    margin = order_margin(nifty_future(), NRML, BUY, NIFTY_LOT, D("25000.05"), SPOT)
    assert margin == MarginRequirement(D("146250.29"), D("32500.07"), D("0.00"))
    assert margin.total == D("178750.36")


def test_stock_future_uses_stock_rates() -> None:
    future = make_instrument(
        "RELIANCE29DEC26FUT", Exchange.NFO, FUT, lot_size=500, expiry=EXPIRY,
        underlying="RELIANCE", underlying_exchange=Exchange.NSE,
    )  # fmt: skip
    # notional 500 x 1,400 = 7,00,000; span 15 % = 1,05,000; exposure 3.5 % = 24,500
    margin = order_margin(future, NRML, BUY, 500, D(1400), D(1400))
    assert margin == MarginRequirement(D("105000.00"), D("24500.00"), D("0.00"))


def test_bse_index_future_uses_index_rates() -> None:
    sensex = make_instrument(
        "SENSEX24DEC26FUT", Exchange.BFO, FUT, lot_size=20, expiry=EXPIRY,
        underlying="SENSEX", underlying_exchange=Exchange.BSE_INDEX,
    )  # fmt: skip
    # notional 20 x 80,000 = 16,00,000; span 9 % = 1,44,000; exposure 2 % = 32,000
    margin = order_margin(sensex, NRML, SELL, 20, D(80_000), D(80_000))
    assert margin == MarginRequirement(D("144000.00"), D("32000.00"), D("0.00"))


def test_commodity_rates_apply_on_mcx() -> None:
    crude = make_instrument(
        "CRUDEOIL18DEC26FUT", Exchange.MCX, FUT, lot_size=100, expiry=EXPIRY,
        underlying="CRUDEOIL", underlying_exchange=Exchange.MCX,
    )  # fmt: skip
    # notional 100 x 6,000 = 6,00,000; span 8 % = 48,000; exposure 1 % = 6,000
    margin = order_margin(crude, NRML, BUY, 100, D(6000), D(6000))
    assert margin == MarginRequirement(D("48000.00"), D("6000.00"), D("0.00"))
    option = make_instrument(
        "CRUDEOIL17DEC266000CE", Exchange.MCX, CE, lot_size=100, expiry=EXPIRY,
        strike=D(6000), underlying="CRUDEOIL", underlying_exchange=Exchange.MCX,
    )  # fmt: skip
    # short ATM on the future: 8 % x 6,000 x 100 = 48,000; exposure 1 % = 6,000
    margin = order_margin(option, NRML, SELL, 100, D(150), D(6000))
    assert margin == MarginRequirement(D("48000.00"), D("6000.00"), D("0.00"))


@pytest.mark.parametrize("exchange", [Exchange.CDS, Exchange.BCD])
def test_currency_rates_apply_on_cds_and_bcd(exchange: Exchange) -> None:
    usdinr = make_instrument(
        "USDINR29DEC26FUT", exchange, FUT, lot_size=1000, expiry=EXPIRY,
        underlying="USDINR", underlying_exchange=exchange,
    )  # fmt: skip
    # notional 1,000 x 85.5 = 85,500; span 3 % = 2,565; exposure 1 % = 855
    margin = order_margin(usdinr, NRML, BUY, 1000, D("85.5000"), D("85.5"))
    assert margin == MarginRequirement(D("2565.00"), D("855.00"), D("0.00"))


def test_currency_short_options_get_no_otm_relief_with_default_rates() -> None:
    # The floor (3 %) equals the currency span rate (3 %), so OTM relief has nothing to relieve.
    option = make_instrument(
        "USDINR29DEC2687CE", Exchange.CDS, CE, lot_size=1000, expiry=EXPIRY,
        strike=D(87), underlying="USDINR", underlying_exchange=Exchange.CDS,
    )  # fmt: skip
    # max(3 % x 85.5 - 1.5, 3 % x 85.5) x 1,000 = 2,565; exposure 1 % x 85,500 = 855
    margin = order_margin(option, NRML, SELL, 1000, D("0.05"), D("85.5"))
    assert margin == MarginRequirement(D("2565.00"), D("855.00"), D("0.00"))


def test_segments() -> None:
    crude = make_instrument("CRUDEOIL", Exchange.MCX, FUT, underlying_exchange=Exchange.MCX)
    stock = make_instrument("SBIN", Exchange.NFO, FUT, underlying_exchange=Exchange.NSE)
    usdinr = make_instrument("USDINR", Exchange.CDS, FUT, underlying_exchange=Exchange.CDS)
    assert segment_of(nifty_future()) is Segment.INDEX
    assert segment_of(stock) is Segment.STOCK
    assert segment_of(crude) is Segment.COMMODITY
    assert segment_of(usdinr) is Segment.CURRENCY


# --- options --------------------------------------------------------------------------------


@pytest.mark.parametrize("product", [NRML, MIS])
@pytest.mark.parametrize("kind", [CE, PE])
def test_long_option_pays_the_premium_only(product: Product, kind: InstrumentType) -> None:
    # 65 x 120.50 = 7,832.50
    margin = order_margin(nifty_option(25_000, kind), product, BUY, NIFTY_LOT, D("120.50"), SPOT)
    assert margin == MarginRequirement(D("0.00"), D("0.00"), D("7832.50"))
    assert margin.total == D("7832.50")


def test_short_atm_call() -> None:
    # underlying notional 65 x 25,000 = 16,25,000; span 9 % = 1,46,250; exposure 2 % = 32,500
    margin = order_margin(nifty_option(25_000), NRML, SELL, NIFTY_LOT, D(180), SPOT)
    assert margin == MarginRequirement(D("146250.00"), D("32500.00"), D("0.00"))


def test_short_otm_call_gets_relief_and_far_otm_call_hits_the_floor() -> None:
    # ATM: 1,46,250 + 32,500
    assert short_nifty(25_000) == D("178750.00")
    # 500 OTM: span 1,46,250 - 500 x 65 (32,500) = 1,13,750; + exposure 32,500
    assert short_nifty(25_500) == D("146250.00")
    # 1,500 OTM: 1,46,250 - 97,500 = 48,750, exactly the floor 3 % x 16,25,000; + 32,500
    assert short_nifty(26_500) == D("81250.00")
    # 3,000 OTM: 1,46,250 - 1,95,000 < 0, so the floor 48,750 holds; + 32,500
    assert short_nifty(28_000) == D("81250.00")


def test_short_put_relief_uses_underlying_minus_strike() -> None:
    # OTM put 24,600: OTM amount 25,000 - 24,600 = 400; span 1,46,250 - 26,000 = 1,20,250
    margin = order_margin(nifty_option(24_600, PE), NRML, SELL, NIFTY_LOT, D(90), SPOT)
    assert margin == MarginRequirement(D("120250.00"), D("32500.00"), D("0.00"))
    # ITM put 25,400 has no OTM amount (strike - underlying would wrongly give 400)
    assert short_nifty(25_400, PE) == D("178750.00")
    # ITM call 24,600 likewise pays the full 9 %
    assert short_nifty(24_600, CE) == D("178750.00")


def test_short_option_margin_dwarfs_its_premium() -> None:
    # premium received 65 x 180 = 11,700; margin 1,78,750 is over 15 times that
    premium = D(180) * NIFTY_LOT
    margin = order_margin(nifty_option(25_000), NRML, SELL, NIFTY_LOT, D(180), SPOT)
    assert premium == D(11_700)
    assert margin.total > 15 * premium
    assert margin.premium == D("0.00")


def test_short_stock_option_floor() -> None:
    option = make_instrument(
        "RELIANCE29DEC261600CE", Exchange.NFO, CE, lot_size=500, expiry=EXPIRY,
        strike=D(1600), underlying="RELIANCE", underlying_exchange=Exchange.NSE,
    )  # fmt: skip
    # notional 500 x 1,400 = 7,00,000; 15 % = 1,05,000 less 200 x 500 = 1,00,000 -> 5,000,
    # below the floor 3 % = 21,000; exposure 3.5 % = 24,500
    margin = order_margin(option, NRML, SELL, 500, D(4), D(1400))
    assert margin == MarginRequirement(D("21000.00"), D("24500.00"), D("0.00"))


@pytest.mark.parametrize("kind", [CE, PE])
def test_short_margin_never_rises_moving_otm_and_never_falls_below_the_floor(
    kind: InstrumentType,
) -> None:
    floor_total = D("81250.00")  # floor 48,750 + exposure 32,500
    direction = 1 if kind is CE else -1
    previous = short_nifty(25_000, kind)
    assert previous == D("178750.00")
    for step in range(1, 201):  # 50-point strikes out to 10,000 points OTM
        strike = 25_000 + direction * 50 * step
        current = short_nifty(strike, kind)
        assert current <= previous, strike
        assert current >= floor_total, strike
        # until the floor: exactly 65 x 50 = 3,250 less per step
        expected = max(D("178750.00") - 3250 * step, floor_total)
        assert current == expected, strike
        previous = current
    assert previous == floor_total


def test_short_option_scales_with_quantity() -> None:
    # three lots of the 25,500 call: 3 x 1,46,250
    assert short_nifty(25_500, quantity=3 * NIFTY_LOT) == D("438750.00")


# --- positions and increments ---------------------------------------------------------------


def test_position_margin() -> None:
    future, atm = nifty_future(), nifty_option(25_000)
    # two lots long: 130 x 25,000 x 11 % = 3,57,500
    assert position_margin(future, NRML, 130, D(25_000), SPOT) == D("357500.00")
    # one lot short future: the same 1,78,750 as a long lot
    assert position_margin(future, NRML, -65, D(25_000), SPOT) == D("178750.00")
    # one lot short ATM call
    assert position_margin(atm, NRML, -65, D(180), SPOT) == D("178750.00")
    # one lot long call at an average of 120.50: 65 x 120.50
    assert position_margin(atm, NRML, 65, D("120.50"), SPOT) == D("7832.50")
    assert position_margin(atm, NRML, 0, D(0), SPOT) == D("0.00")
    # CNC bought today: full value 10 x 2,950.50; sold from holdings today: nothing
    assert position_margin(RELIANCE, CNC, 10, D("2950.50"), ZERO) == D("29505.00")
    assert position_margin(RELIANCE, CNC, -10, D("2950.50"), ZERO) == D("0.00")


def test_incremental_margin_reduce_needs_nothing() -> None:
    future = nifty_future()
    assert incremental_margin(future, NRML, SELL, 65, D(25_000), SPOT, 130) == D("0.00")
    assert incremental_margin(future, NRML, SELL, 130, D(25_000), SPOT, 130) == D("0.00")
    # buying back a short call only reduces it
    atm = nifty_option(25_000)
    assert incremental_margin(atm, NRML, BUY, 65, D(180), SPOT, -65) == D("0.00")


def test_incremental_margin_reversal_pays_for_the_part_beyond_zero() -> None:
    future = nifty_future()
    # long 130, sell 195: 65 beyond zero -> 65 x 25,000 x 11 % = 1,78,750
    assert incremental_margin(future, NRML, SELL, 195, D(25_000), SPOT, 130) == D("178750.00")
    # short one ATM call, buy two lots: the 65 beyond zero are a long call, 65 x 180 premium
    atm = nifty_option(25_000)
    assert incremental_margin(atm, NRML, BUY, 130, D(180), SPOT, -65) == D("11700.00")


def test_incremental_margin_adding_pays_for_the_added_quantity() -> None:
    future = nifty_future()
    assert incremental_margin(future, NRML, BUY, 65, D(25_000), SPOT, 130) == D("178750.00")
    assert incremental_margin(future, NRML, BUY, 65, D(25_000), SPOT, 0) == D("178750.00")
    atm = nifty_option(25_000)
    assert incremental_margin(atm, NRML, SELL, 65, D(180), SPOT, -65) == D("178750.00")
    # MIS equity, adding 10 to a long 5: 10 x 2,950.50 / 5 = 5,901
    assert incremental_margin(RELIANCE, MIS, BUY, 10, D("2950.50"), ZERO, 5) == D("5901.00")


def test_incremental_margin_agrees_with_position_margin_when_adding() -> None:
    # Adding from flat or in the same direction: old position + increment = new position.
    future = nifty_future()
    before = position_margin(future, NRML, -65, D(25_000), SPOT)
    extra = incremental_margin(future, NRML, SELL, 130, D(25_000), SPOT, -65)
    assert before + extra == position_margin(future, NRML, -195, D(25_000), SPOT)


# --- baskets --------------------------------------------------------------------------------


def test_basket_is_the_plain_sum_without_offsetting_options() -> None:
    items = [
        (RELIANCE, CNC, BUY, 10, D("2950.50"), ZERO),  # 29,505 span
        (nifty_future(), NRML, BUY, 65, D(25_000), SPOT),  # 1,46,250 span + 32,500 exposure
        (nifty_option(25_000), NRML, BUY, 65, D("120.50"), SPOT),  # 7,832.50 premium
    ]
    margin = basket_margin(items)
    # span 29,505 + 1,46,250 = 1,75,755
    assert margin == MarginRequirement(D("175755.00"), D("32500.00"), D("7832.50"))
    assert margin.total == D("216087.50")
    assert margin.total == sum(order_margin(*item).total for item in items)


def test_basket_of_one_leg_is_that_order_margin() -> None:
    item = (nifty_option(25_500), NRML, SELL, 65, D(60), SPOT)
    assert basket_margin([item]) == order_margin(*item)


def test_bear_call_spread_caps_the_short_span_at_the_strike_gap() -> None:
    items = [
        (nifty_option(25_000), NRML, SELL, 65, D(180), SPOT),
        (nifty_option(25_200), NRML, BUY, 65, D(95), SPOT),
    ]
    # short span capped at gap 200 x 65 = 13,000; exposure 32,500 stays; premium 65 x 95 = 6,175
    margin = basket_margin(items)
    assert margin == MarginRequirement(D("13000.00"), D("32500.00"), D("6175.00"))
    assert margin.total == D("51675.00")
    # without the hedge benefit: 1,78,750 + 6,175, what the engine blocks leg by leg
    plain = basket_margin(items, MarginSettings(hedge_benefit=False))
    assert plain.total == D("184925.00")
    assert basket_margin(list(reversed(items))) == margin


def test_bull_put_spread_uses_short_strike_minus_long_strike() -> None:
    items = [
        (nifty_option(24_800, PE), NRML, BUY, 65, D(60), SPOT),  # premium 3,900
        (nifty_option(25_000, PE), NRML, SELL, 65, D(150), SPOT),
    ]
    # gap 25,000 - 24,800 = 200 -> span 13,000; exposure 32,500
    assert basket_margin(items) == MarginRequirement(D("13000.00"), D("32500.00"), D("3900.00"))


def test_debit_spread_short_leg_needs_no_span() -> None:
    items = [
        (nifty_option(24_800), NRML, BUY, 65, D(300), SPOT),  # premium 19,500
        (nifty_option(25_000), NRML, SELL, 65, D(180), SPOT),
    ]
    # the long call is nearer the money: the spread cannot lose beyond the premium paid
    assert basket_margin(items) == MarginRequirement(D("0.00"), D("32500.00"), D("19500.00"))


def test_partial_cover_hedges_only_the_covered_units() -> None:
    items = [
        (nifty_option(25_000), NRML, SELL, 130, D(180), SPOT),
        (nifty_option(25_200), NRML, BUY, 65, D(95), SPOT),
    ]
    # 65 covered at 200 = 13,000; 65 uncovered at 9 % x 25,000 = 1,46,250; span 1,59,250;
    # exposure on 130: 65,000; premium 6,175
    assert basket_margin(items) == MarginRequirement(D("159250.00"), D("65000.00"), D("6175.00"))


def test_wide_spread_never_costs_more_than_the_naked_short() -> None:
    items = [
        (nifty_option(25_500), NRML, SELL, 65, D(60), SPOT),
        (nifty_option(29_000), NRML, BUY, 65, D("0.05"), SPOT),
    ]
    # gap 3,500 exceeds the short's per-unit span 2,250 - 500 = 1,750: span stays 1,13,750
    margin = basket_margin(items)
    assert margin.span == D("113750.00")
    assert margin.premium == D("3.25")  # 65 x 0.05


@pytest.mark.parametrize(
    "long_leg",
    [
        nifty_option(25_200, PE),  # other type
        nifty_option(25_200, CE, expiry=NEXT_EXPIRY),  # other expiry
        nifty_future(),  # futures are not counted as hedges
    ],
)
def test_no_hedge_across_types_expiries_or_with_futures(long_leg: Instrument) -> None:
    short = (nifty_option(25_000), NRML, SELL, 65, D(180), SPOT)
    margin = basket_margin([short, (long_leg, NRML, BUY, 65, D(95), SPOT)])
    assert margin.span >= D("146250.00")
    assert margin.exposure >= D("32500.00")


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [0, -65])
def test_quantity_must_be_positive(quantity: int) -> None:
    with pytest.raises(ValueError, match=r"^quantity must be a positive"):
        order_margin(nifty_future(), NRML, BUY, quantity, D(25_000), SPOT)
    with pytest.raises(ValueError, match=r"^quantity must be a positive"):
        incremental_margin(nifty_future(), NRML, BUY, quantity, D(25_000), SPOT, 0)


def test_price_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match=r"^price must be"):
        order_margin(RELIANCE, CNC, BUY, 1, D("-0.05"), ZERO)
    with pytest.raises(ValueError, match=r"^price must be"):
        position_margin(RELIANCE, CNC, 1, D("NaN"), ZERO)
    with pytest.raises(ValueError, match=r"^underlying_price must be"):
        order_margin(nifty_future(), NRML, BUY, 65, D(25_000), D(-1))
    # a price of zero is allowed (a worthless option)
    assert order_margin(nifty_option(29_000), NRML, BUY, 65, ZERO, SPOT).total == D("0.00")


def test_float_prices_are_refused() -> None:
    with pytest.raises(TypeError, match=r"^price must be a Decimal"):
        order_margin(RELIANCE, CNC, BUY, 1, 100.5, ZERO)  # type: ignore[arg-type]


def test_short_option_needs_an_underlying_price() -> None:
    with pytest.raises(ValueError, match=r"^underlying_price must be above 0"):
        order_margin(nifty_option(25_000), NRML, SELL, 65, D(180), ZERO)


@pytest.mark.parametrize(
    ("instrument", "product", "message"),
    [
        (RELIANCE, NRML, "^product NRML is not allowed for RELIANCE"),
        (nifty_future(), CNC, "^product CNC is not allowed for NIFTY29DEC26FUT"),
        (nifty_option(25_000), CNC, "^product CNC is not allowed"),
        (NIFTY_INDEX, MIS, "^instrument NIFTY is an index"),
    ],
)
def test_products_and_instruments_are_checked(
    instrument: Instrument, product: Product, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        order_margin(instrument, product, BUY, 65, D(100), SPOT)


def test_option_without_a_strike_is_refused() -> None:
    broken = replace(nifty_option(25_000), strike=None)
    with pytest.raises(ValueError, match=r"^instrument .* without a strike"):
        order_margin(broken, NRML, SELL, 65, D(180), SPOT)


def test_basket_validates_every_leg() -> None:
    with pytest.raises(ValueError, match=r"^quantity"):
        basket_margin([(nifty_future(), NRML, BUY, 0, D(25_000), SPOT)])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mis_leverage": D("0.5")}, "^mis_leverage must be at least 1"),
        ({"index_span_rate": D("1.5")}, "^index_span_rate must be between 0 and 1"),
        ({"short_option_floor_rate": D(-1)}, "^short_option_floor_rate must be between"),
    ],
)
def test_settings_are_checked(changes: dict[str, Decimal], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MarginSettings(**changes)  # type: ignore[arg-type]
