"""The engine's window on the market: cached contract lookups, per-second depth and prices.

Lookups are cached per trading day (the master is rebuilt daily and expired contracts leave
it); depth is drawn once per (instrument, second) and kept with the liquidity the sandbox's
orders took from it (`books.InstrumentBook`).
"""

from __future__ import annotations

import math
import threading
from datetime import date, datetime
from decimal import Decimal

from services.market.model import Depth, Instrument, InstrumentType
from services.market.service import MarketData
from services.sandbox.books import DepthSnapshot, InstrumentBook

type BookKey = tuple[str, str]


def second_of(instant: datetime) -> int:
    return math.floor(instant.timestamp())


class MarketView:
    def __init__(self, market: MarketData) -> None:
        self.market = market
        self.calendar = market.calendar
        self._lock = threading.Lock()
        self._instruments: dict[BookKey, Instrument | None] = {}
        self._instruments_day: date | None = None
        self._books: dict[BookKey, InstrumentBook] = {}

    @property
    def always_open(self) -> bool:
        return self.market.settings.always_open

    def instrument(self, symbol: str, exchange: str, day: date) -> Instrument | None:
        """The contract listed on `day`'s master, or None."""
        if self._instruments_day != day:
            with self._lock:
                if self._instruments_day != day:
                    self._instruments = {}
                    self._instruments_day = day
        key = (symbol, exchange)
        try:
            return self._instruments[key]
        except KeyError:
            found = self.market.master.get(symbol, exchange)
            self._instruments[key] = found
            return found

    def book(self, instrument: Instrument) -> InstrumentBook:
        key = (instrument.symbol, instrument.exchange.value)
        found = self._books.get(key)
        if found is None:
            with self._lock:
                found = self._books.get(key)
                if found is None:
                    found = InstrumentBook(instrument)
                    self._books[key] = found
        return found

    def existing_book(self, symbol: str, exchange: str) -> InstrumentBook | None:
        return self._books.get((symbol, exchange))

    def books(self) -> list[InstrumentBook]:
        return list(self._books.values())

    def snapshot(self, book: InstrumentBook, at: datetime) -> DepthSnapshot:
        """The depth of `at`'s second; call with `book.lock` held."""
        instrument = book.instrument
        return book.snapshot(second_of(at), lambda: self._depth(instrument, at))

    def _depth(self, instrument: Instrument, at: datetime) -> Depth:
        return self.market.source.depth(instrument, at)

    def ltp(self, instrument: Instrument, at: datetime) -> Decimal | None:
        """The last price at `at`, None when the market cannot price the contract."""
        book = self.book(instrument)
        try:
            with book.lock:
                return self.snapshot(book, at).depth.quote.ltp
        except (ValueError, KeyError, IndexError, ArithmeticError):
            return None

    def quote_at(self, instrument: Instrument, at: datetime) -> Decimal | None:
        """The last price at a past instant (expiry, square-off), not cached."""
        try:
            return self.market.source.quote(instrument, at).ltp
        except (ValueError, KeyError, IndexError, ArithmeticError):
            return None

    def underlying(self, instrument: Instrument) -> Instrument | None:
        if instrument.instrument_type is InstrumentType.EQ:
            return None
        try:
            return self.market.master.underlying_of(instrument)
        except (ValueError, KeyError):
            return None

    def underlying_price(self, instrument: Instrument, at: datetime) -> Decimal | None:
        underlying = self.underlying(instrument)
        return None if underlying is None else self.ltp(underlying, at)
