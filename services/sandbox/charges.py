"""The sandbox's charges on every fill, on a schedule modelled on Zerodha's published one.

Rates and rounding are MARKET-FACTS sections 1 and 2.1 (the schedule valid from 2026-04-01, and
the one before it for the historical examples). They live in `ChargeSchedule` data, not in code.
Rates are fractions of the fill's turnover (price x quantity; premium for options; quantities
are units, lots already multiplied in, as in the instrument master).

Rounding follows Zerodha's brokerage calculator: STT/CTT and stamp duty to the rupee (equity),
everything else to the paisa, GST on the rounded brokerage + exchange + SEBI, all half-up.
`fill_charges` rounds each fill on its own; `round_trip_charges` rounds the summed buy and sell
legs once, as the calculator does, so it reproduces the worked examples. Two fills summed can
therefore differ from the round trip by a paisa per component (and by a rupee of delivery STT).

Choices where MARKET-FACTS is uncertain (section 7):

- Currency options brokerage: flat Rs 20 per order, as the newer table copy says and section 1.3
  recommends; the older "0.03% or Rs 20" page carries pre-2024 exchange rates, so it is stale.
- Currency and commodity stamp duty and CTT are rounded to the paisa, as the older calculator
  copy does and as the section 2.6 headline totals (48.20, 151.01) assume. Zerodha's help text
  says CTT goes to the rupee, so that is the other reading (CRUDEOIL total 151.49); it is one
  field away: `replace(rates, stt_places=0)`.
- BSE cash is charged the group A/B rate (0.00375%); the master carries no BSE groups.
- Agri commodities (no CTT, SEBI Rs 1/cr) are the group-B names MARKET-FACTS mentions; none is
  in the master. Their exchange rate is the MCX non-agri one (the older separate rates are
  unconfirmed after 2024-10-01).
- Exercise: only STT on intrinsic value (section 1.2). The facts name no other charge on
  exercise, and none for currency or commodity options (their exercise rate is 0 here).
- The older schedule uses the combined exchange + IPFT rates; the calculator then added IPFT
  as a separately rounded term, which section 2.4/2.5 shows gives the same paise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from types import MappingProxyType

from services.market.model import Exchange, Instrument, InstrumentType
from services.orders.model import ZERO, ChargeBreakdown, Product, Side

CENT = Decimal("0.01")
_NIL = Decimal("0.00")
# Every component with two decimals, so results compare and print alike.
NO_CHARGES = ChargeBreakdown(_NIL, _NIL, _NIL, _NIL, _NIL, _NIL, _NIL)


class Segment(StrEnum):
    EQUITY_DELIVERY = "equity_delivery"
    EQUITY_INTRADAY = "equity_intraday"
    EQUITY_FUTURES = "equity_futures"
    EQUITY_OPTIONS = "equity_options"
    CURRENCY_FUTURES = "currency_futures"
    CURRENCY_OPTIONS = "currency_options"
    COMMODITY_FUTURES = "commodity_futures"
    COMMODITY_OPTIONS = "commodity_options"


@dataclass(frozen=True, slots=True)
class SegmentRates:
    """One segment's brokerage and statutory rates (fractions of turnover)."""

    brokerage_rate: Decimal | None  # of the order's value, capped; None: flat cap per order
    brokerage_cap: Decimal  # per executed order
    stt_buy: Decimal  # STT (CTT for commodities)
    stt_sell: Decimal
    stamp_buy: Decimal  # stamp duty is paid by the buyer only
    sebi: Decimal
    exercise_stt: Decimal = ZERO  # of intrinsic value, paid by the buyer of an exercised option
    stt_places: int = 0  # decimals STT/CTT is rounded to (0: the rupee)
    stamp_places: int = 0


@dataclass(frozen=True, slots=True)
class ChargeSchedule:
    """Every rate the sandbox charges, valid from `valid_from`."""

    valid_from: date
    rates: Mapping[Segment, SegmentRates]
    exchange_rates: Mapping[tuple[Segment, Exchange], Decimal]
    # Per-underlying exchange rates that override `exchange_rates` (BSE SENSEX/BANKEX options).
    underlying_exchange_rates: Mapping[tuple[Segment, Exchange, str], Decimal]
    agri_commodities: frozenset[str]
    agri_futures: SegmentRates  # commodity futures rates for `agri_commodities`
    gst_rate: Decimal  # on brokerage + exchange charges + SEBI fee
    dp_charge: Decimal  # per scrip per day on delivery sells, before GST


def _pct(text: str) -> Decimal:
    """A rate written as a percentage, as MARKET-FACTS writes it ("0.03" -> 0.0003)."""
    return Decimal(text) / 100


_SEBI = _pct("0.0001")  # Rs 10 per crore
_CAP = Decimal(20)
_INTRADAY_BROKERAGE = _pct("0.03")


def _equity_rates(
    futures_stt: str, option_stt: str, exercise_stt: str
) -> dict[Segment, SegmentRates]:
    """Equity segment rates; the F&O STT is what changes between schedules."""
    return {
        Segment.EQUITY_DELIVERY: SegmentRates(
            None, ZERO, _pct("0.1"), _pct("0.1"), _pct("0.015"), _SEBI
        ),
        Segment.EQUITY_INTRADAY: SegmentRates(
            _INTRADAY_BROKERAGE, _CAP, ZERO, _pct("0.025"), _pct("0.003"), _SEBI
        ),
        Segment.EQUITY_FUTURES: SegmentRates(
            _INTRADAY_BROKERAGE, _CAP, ZERO, _pct(futures_stt), _pct("0.002"), _SEBI
        ),
        Segment.EQUITY_OPTIONS: SegmentRates(
            None, _CAP, ZERO, _pct(option_stt), _pct("0.003"), _SEBI, _pct(exercise_stt)
        ),
    }


_OTHER_RATES: dict[Segment, SegmentRates] = {
    Segment.CURRENCY_FUTURES: SegmentRates(
        _INTRADAY_BROKERAGE, _CAP, ZERO, ZERO, _pct("0.0001"), _SEBI, stamp_places=2
    ),
    Segment.CURRENCY_OPTIONS: SegmentRates(
        None, _CAP, ZERO, ZERO, _pct("0.0001"), _SEBI, stamp_places=2
    ),
    Segment.COMMODITY_FUTURES: SegmentRates(
        _INTRADAY_BROKERAGE, _CAP, ZERO, _pct("0.01"), _pct("0.002"), _SEBI, ZERO, 2, 2
    ),
    Segment.COMMODITY_OPTIONS: SegmentRates(
        None, _CAP, ZERO, _pct("0.05"), _pct("0.003"), _SEBI, ZERO, 2, 2
    ),
}

_AGRI_FUTURES = SegmentRates(
    _INTRADAY_BROKERAGE, _CAP, ZERO, ZERO, _pct("0.002"), _pct("0.00001"), ZERO, 2, 2
)

# Flat exchange rates from 2024-10-01 (SEBI "true to label"); NSE's include IPFT (MARKET-FACTS
# 1.2: do not add IPFT on top). BSE futures are nil.
_EXCHANGE_RATES: dict[tuple[Segment, Exchange], Decimal] = {
    (Segment.EQUITY_DELIVERY, Exchange.NSE): _pct("0.00307"),
    (Segment.EQUITY_DELIVERY, Exchange.BSE): _pct("0.00375"),
    (Segment.EQUITY_INTRADAY, Exchange.NSE): _pct("0.00307"),
    (Segment.EQUITY_INTRADAY, Exchange.BSE): _pct("0.00375"),
    (Segment.EQUITY_FUTURES, Exchange.NFO): _pct("0.00183"),
    (Segment.EQUITY_FUTURES, Exchange.BFO): ZERO,
    (Segment.EQUITY_OPTIONS, Exchange.NFO): _pct("0.03553"),
    (Segment.EQUITY_OPTIONS, Exchange.BFO): _pct("0.005"),  # SENSEX50 and stock options
    (Segment.CURRENCY_FUTURES, Exchange.CDS): _pct("0.00035"),
    (Segment.CURRENCY_FUTURES, Exchange.BCD): _pct("0.00045"),
    (Segment.CURRENCY_OPTIONS, Exchange.CDS): _pct("0.0311"),
    (Segment.CURRENCY_OPTIONS, Exchange.BCD): _pct("0.001"),
    (Segment.COMMODITY_FUTURES, Exchange.MCX): _pct("0.0021"),
    (Segment.COMMODITY_OPTIONS, Exchange.MCX): _pct("0.0418"),
}

_UNDERLYING_EXCHANGE_RATES: dict[tuple[Segment, Exchange, str], Decimal] = {
    (Segment.EQUITY_OPTIONS, Exchange.BFO, "SENSEX"): _pct("0.0325"),
    (Segment.EQUITY_OPTIONS, Exchange.BFO, "BANKEX"): _pct("0.0325"),
}

_AGRI = frozenset({"CASTORSEED", "KAPAS", "PEPPER", "RBDPMOLEIN"})


def _schedule(valid_from: date, equity: dict[Segment, SegmentRates]) -> ChargeSchedule:
    return ChargeSchedule(
        valid_from=valid_from,
        rates=MappingProxyType(equity | _OTHER_RATES),
        exchange_rates=MappingProxyType(_EXCHANGE_RATES),
        underlying_exchange_rates=MappingProxyType(_UNDERLYING_EXCHANGE_RATES),
        agri_commodities=_AGRI,
        agri_futures=_AGRI_FUTURES,
        gst_rate=_pct("18"),
        dp_charge=Decimal(13),
    )


# Finance (No. 2) Act 2024 STT, before the Finance Act 2026 raise.
SCHEDULE_2024_10_01 = _schedule(date(2024, 10, 1), _equity_rates("0.02", "0.1", "0.125"))
DEFAULT_SCHEDULE = _schedule(date(2026, 4, 1), _equity_rates("0.05", "0.15", "0.15"))
SCHEDULES: tuple[ChargeSchedule, ...] = (SCHEDULE_2024_10_01, DEFAULT_SCHEDULE)


def schedule_on(day: date, schedules: tuple[ChargeSchedule, ...] = SCHEDULES) -> ChargeSchedule:
    """The schedule in force on `day` (the latest one valid from on or before it)."""
    valid = [schedule for schedule in schedules if schedule.valid_from <= day]
    if not valid:
        raise ValueError(f"no charge schedule is valid on {day.isoformat()}")
    return max(valid, key=lambda schedule: schedule.valid_from)


_CASH = {Exchange.NSE, Exchange.BSE}
_DERIVATIVE_SEGMENTS: dict[tuple[Exchange, bool], Segment] = {  # (exchange, is option)
    (Exchange.NFO, False): Segment.EQUITY_FUTURES,
    (Exchange.BFO, False): Segment.EQUITY_FUTURES,
    (Exchange.NFO, True): Segment.EQUITY_OPTIONS,
    (Exchange.BFO, True): Segment.EQUITY_OPTIONS,
    (Exchange.CDS, False): Segment.CURRENCY_FUTURES,
    (Exchange.BCD, False): Segment.CURRENCY_FUTURES,
    (Exchange.CDS, True): Segment.CURRENCY_OPTIONS,
    (Exchange.BCD, True): Segment.CURRENCY_OPTIONS,
    (Exchange.MCX, False): Segment.COMMODITY_FUTURES,
    (Exchange.MCX, True): Segment.COMMODITY_OPTIONS,
}


def segment_of(instrument: Instrument, product: Product) -> Segment:
    """The charge segment of a trade; NRML on cash is treated as delivery."""
    kind = instrument.instrument_type
    if instrument.exchange in _CASH and kind is InstrumentType.EQ:
        return Segment.EQUITY_INTRADAY if product is Product.MIS else Segment.EQUITY_DELIVERY
    if kind in (InstrumentType.FUT, InstrumentType.CE, InstrumentType.PE):
        segment = _DERIVATIVE_SEGMENTS.get((instrument.exchange, instrument.is_option))
        if segment is not None:
            return segment
    raise ValueError(f"{instrument.exchange}:{instrument.symbol} ({kind}) is not tradable")


def _rates_for(instrument: Instrument, segment: Segment, schedule: ChargeSchedule) -> SegmentRates:
    if segment is Segment.COMMODITY_FUTURES and _base(instrument) in schedule.agri_commodities:
        return schedule.agri_futures
    return schedule.rates[segment]


def _base(instrument: Instrument) -> str:
    return instrument.underlying or instrument.symbol


def _exchange_rate(instrument: Instrument, segment: Segment, schedule: ChargeSchedule) -> Decimal:
    override = schedule.underlying_exchange_rates.get(
        (segment, instrument.exchange, _base(instrument))
    )
    if override is not None:
        return override
    rate = schedule.exchange_rates.get((segment, instrument.exchange))
    if rate is None:
        raise ValueError(f"no exchange rate for {segment} on {instrument.exchange}")
    return rate


def _round(value: Decimal, places: int = 2) -> Decimal:
    """Half-up to `places` decimals (0: the rupee), shown with two decimals."""
    step = Decimal(1).scaleb(-places)
    return value.quantize(step, ROUND_HALF_UP).quantize(CENT)


@dataclass(frozen=True, slots=True)
class _Raw:
    """Components before the calculator's rounding (brokerage is already per-order rounded)."""

    brokerage: Decimal
    stt: Decimal
    exchange_charges: Decimal
    sebi_fees: Decimal
    stamp_duty: Decimal

    def __add__(self, other: _Raw) -> _Raw:
        return _Raw(
            self.brokerage + other.brokerage,
            self.stt + other.stt,
            self.exchange_charges + other.exchange_charges,
            self.sebi_fees + other.sebi_fees,
            self.stamp_duty + other.stamp_duty,
        )


def _brokerage(rates: SegmentRates, value: Decimal, brokerage_so_far: Decimal) -> Decimal:
    """This fill's share of the per-order brokerage: what is left of the cap, at most."""
    remaining = max(ZERO, rates.brokerage_cap - brokerage_so_far)
    if rates.brokerage_rate is None:
        return _round(remaining)
    return min(_round(remaining), _round(rates.brokerage_rate * value))


def _raw_leg(
    instrument: Instrument,
    product: Product,
    side: Side,
    quantity: int,
    price: Decimal,
    brokerage_so_far: Decimal,
    schedule: ChargeSchedule,
) -> tuple[_Raw, SegmentRates]:
    if quantity <= 0:
        raise ValueError(f"quantity must be positive, got {quantity}")
    if price < 0:
        raise ValueError(f"price must not be negative, got {price}")
    if brokerage_so_far < 0:
        raise ValueError(f"brokerage_so_far must not be negative, got {brokerage_so_far}")
    segment = segment_of(instrument, product)
    rates = _rates_for(instrument, segment, schedule)
    value = price * quantity
    buying = side is Side.BUY
    raw = _Raw(
        brokerage=_brokerage(rates, value, brokerage_so_far),
        stt=(rates.stt_buy if buying else rates.stt_sell) * value,
        exchange_charges=_exchange_rate(instrument, segment, schedule) * value,
        sebi_fees=rates.sebi * value,
        stamp_duty=rates.stamp_buy * value if buying else ZERO,
    )
    return raw, rates


def _finish(raw: _Raw, rates: SegmentRates, schedule: ChargeSchedule) -> ChargeBreakdown:
    """Round as the calculator does; GST is on the rounded brokerage, exchange and SEBI."""
    brokerage = _round(raw.brokerage)
    exchange_charges = _round(raw.exchange_charges)
    sebi_fees = _round(raw.sebi_fees)
    return replace(
        NO_CHARGES,
        brokerage=brokerage,
        stt=_round(raw.stt, rates.stt_places),
        exchange_charges=exchange_charges,
        sebi_fees=sebi_fees,
        stamp_duty=_round(raw.stamp_duty, rates.stamp_places),
        gst=_round(schedule.gst_rate * (brokerage + exchange_charges + sebi_fees)),
    )


def fill_charges(
    instrument: Instrument,
    product: Product,
    side: Side,
    quantity: int,
    price: Decimal,
    *,
    brokerage_so_far: Decimal = ZERO,
    schedule: ChargeSchedule = DEFAULT_SCHEDULE,
) -> ChargeBreakdown:
    """Charges of one fill; `brokerage_so_far` is what earlier fills of the order paid.

    Brokerage is per executed order (the 0.03% rule or the flat fee, never above the cap in
    total); every other component is proportional to this fill's turnover.
    """
    raw, rates = _raw_leg(instrument, product, side, quantity, price, brokerage_so_far, schedule)
    return _finish(raw, rates, schedule)


def dp_charge(schedule: ChargeSchedule = DEFAULT_SCHEDULE) -> ChargeBreakdown:
    """The depository charge for selling a holding (per scrip per day), GST included."""
    return replace(NO_CHARGES, dp_charges=_round(schedule.dp_charge * (1 + schedule.gst_rate)))


def round_trip_charges(
    instrument: Instrument,
    product: Product,
    quantity: int,
    buy_price: Decimal,
    sell_price: Decimal,
    schedule: ChargeSchedule = DEFAULT_SCHEDULE,
) -> ChargeBreakdown:
    """A buy order and a sell order, one fill each, rounded together as the calculator does.

    Delivery includes the DP charge of the sell, as the calculator shows it.
    """
    buy, rates = _raw_leg(instrument, product, Side.BUY, quantity, buy_price, ZERO, schedule)
    sell, _ = _raw_leg(instrument, product, Side.SELL, quantity, sell_price, ZERO, schedule)
    charges = _finish(buy + sell, rates, schedule)
    if segment_of(instrument, product) is Segment.EQUITY_DELIVERY:
        return replace(charges, dp_charges=dp_charge(schedule).dp_charges)
    return charges


def exercise_charges(
    instrument: Instrument,
    quantity: int,
    settlement_price: Decimal,
    schedule: ChargeSchedule = DEFAULT_SCHEDULE,
) -> ChargeBreakdown:
    """Charges on a long option settled in the money at expiry: STT on the intrinsic value.

    Nothing is due on an option that expires worthless (zero intrinsic value).
    """
    if not instrument.is_option or instrument.strike is None:
        raise ValueError(f"{instrument.symbol} is not an option with a strike")
    if quantity <= 0:
        raise ValueError(f"quantity must be positive, got {quantity}")
    segment = segment_of(instrument, Product.NRML)
    rates = _rates_for(instrument, segment, schedule)
    if instrument.instrument_type is InstrumentType.CE:
        intrinsic = settlement_price - instrument.strike
    else:
        intrinsic = instrument.strike - settlement_price
    value = max(ZERO, intrinsic) * quantity
    return replace(NO_CHARGES, stt=_round(rates.exercise_stt * value, rates.stt_places))
