"""Order checks, in the order a broker applies them, with a broker-like reason for each refusal.

Contract (exists, tradable, not expired), quantity (positive, whole lots, within the freeze
limit), product (CNC only on NSE/BSE cash, NRML only on derivatives, options never CNC),
prices (present for the price type, on the tick grid, stop triggers on the right side of the
limit), validity, market hours (calendar mode), the MIS cut-off, then the price band and the
stop trigger against the last price (these two read the market).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from services.clock import IST
from services.errors import OrderRejected
from services.market.expiries import expiry_instant
from services.market.model import Instrument, InstrumentType
from services.orders.model import ZERO, PriceType, Product, Side, Validity
from services.orders.validation import (
    OrderRuleBroken,
    check_prices,
    check_product,
    check_quantity,
)
from services.sandbox.settings import SandboxSettings, Timetable
from services.sandbox.view import MarketView

_INDEX_EXCHANGES = frozenset({"NSE_INDEX", "BSE_INDEX", "MCX_INDEX"})
_STOPS = frozenset({PriceType.SL, PriceType.SL_M})


def _band_edge(value: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return (value / tick).quantize(Decimal(1), rounding=rounding) * tick


class Validator:
    def __init__(self, view: MarketView, settings: SandboxSettings, timetable: Timetable) -> None:
        self._view = view
        self._settings = settings
        self._timetable = timetable
        self._bands: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        self._bands_day: date | None = None

    def instrument(self, symbol: str, exchange: str, now: datetime, day: date) -> Instrument:
        if exchange in _INDEX_EXCHANGES:
            raise OrderRejected(f"{symbol} on {exchange} is an index and cannot be traded")
        instrument = self._view.instrument(symbol, exchange, day)
        if instrument is None:
            raise OrderRejected(f"Symbol {symbol} not found on {exchange}")
        if instrument.instrument_type is InstrumentType.INDEX:
            raise OrderRejected(f"{symbol} on {exchange} is an index and cannot be traded")
        expiry = instrument.expiry
        if expiry is not None and (
            expiry < day or (expiry == day and now >= expiry_instant(instrument.exchange, expiry))
        ):
            raise OrderRejected(f"{symbol} expired on {expiry.isoformat()}")
        return instrument

    # The static rules are the pipeline's own (services/orders/validation.py), so the desk and
    # its paper exchange never disagree; here they reject the way a broker does.
    def quantity(self, instrument: Instrument, quantity: int) -> None:
        _as_rejection(check_quantity, quantity, instrument)

    def product(self, instrument: Instrument, product: Product) -> None:
        _as_rejection(check_product, product, instrument)

    def prices(
        self,
        instrument: Instrument,
        side: Side,
        price_type: PriceType,
        price: Decimal,
        trigger: Decimal,
    ) -> None:
        _as_rejection(check_prices, price_type, side, price, trigger, instrument)

    def strict_fields(self, price_type: PriceType, price: Decimal, trigger: Decimal) -> None:
        """A modification must not carry prices its type ignores (API.md 4.1 modifyorder)."""
        if price_type in (PriceType.MARKET, PriceType.SL_M) and price != 0:
            raise OrderRejected(f"{price_type.value} orders do not accept a price")
        if price_type in (PriceType.MARKET, PriceType.LIMIT) and trigger != 0:
            raise OrderRejected(f"{price_type.value} orders do not accept a trigger_price")

    def validity(self, price_type: PriceType, validity: Validity) -> None:
        if validity is Validity.IOC and price_type in _STOPS:
            raise OrderRejected("IOC validity is not allowed for SL and SL-M orders")

    def session(self, instrument: Instrument, product: Product, now: datetime, day: date) -> None:
        venue = instrument.exchange.value
        if not self._view.always_open and not self._view.calendar.is_open(venue, now):
            raise OrderRejected(f"Market is closed for {venue}")
        if product is Product.MIS:
            cutoff = self._timetable.squareoff_cutoff(venue, day)
            if now >= cutoff:
                raise OrderRejected(
                    f"MIS orders cannot be placed after square-off time "
                    f"({cutoff.astimezone(IST):%H:%M} IST) on {venue}. "
                    "Place MIS orders again from the next trading day."
                )

    def band(
        self, instrument: Instrument, price: Decimal, what: str, now: datetime, day: date
    ) -> None:
        """`price` (a limit or a trigger) inside the instrument's price band."""
        low, high = self._band(instrument, now, day)
        if not low <= price <= high:
            raise OrderRejected(
                f"{what} {price} is outside the price band {low} - {high} for {instrument.symbol}"
            )

    def _band(self, instrument: Instrument, now: datetime, day: date) -> tuple[Decimal, Decimal]:
        if self._bands_day != day:  # bands hold for a day: start afresh each day
            self._bands = {}
            self._bands_day = day
        key = (instrument.symbol, instrument.exchange.value)
        found = self._bands.get(key)
        if found is not None:
            return found
        book = self._view.book(instrument)
        with book.lock:
            quote = self._view.snapshot(book, now).depth.quote
        tick = instrument.tick_size
        previous = quote.prev_close if quote.prev_close > 0 else quote.ltp
        if instrument.is_option:
            underlying = self._view.underlying_price(instrument, now) or ZERO
            high = _band_edge(
                previous + self._settings.option_price_band * underlying, tick, ROUND_FLOOR
            )
            return tick, max(high, tick)  # moves with the underlying: not cached
        width = (
            self._settings.futures_price_band
            if instrument.instrument_type is InstrumentType.FUT
            else self._settings.equity_price_band
        )
        found = (
            max(_band_edge(previous * (1 - width), tick, ROUND_CEILING), tick),
            _band_edge(previous * (1 + width), tick, ROUND_FLOOR),
        )
        self._bands[key] = found
        return found

    def stop_trigger(self, side: Side, trigger: Decimal, ltp: Decimal) -> None:
        """A stop must not be triggered already (Kite: trigger above LTP for a buy stop)."""
        if side is Side.BUY and trigger <= ltp:
            raise OrderRejected(
                f"Trigger price {trigger} must be above the last traded price {ltp} "
                "for a BUY stop-loss order"
            )
        if side is Side.SELL and trigger >= ltp:
            raise OrderRejected(
                f"Trigger price {trigger} must be below the last traded price {ltp} "
                "for a SELL stop-loss order"
            )


def _as_rejection(rule: Callable[..., None], *arguments: Any) -> None:
    try:
        rule(*arguments)
    except OrderRuleBroken as e:
        raise OrderRejected(e.message) from None
