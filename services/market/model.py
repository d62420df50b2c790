"""The common market model shared by the instrument master, the calendar and the simulator.

Symbols follow the OpenAlgo format (shared API.md section 3): `SBIN` on NSE, `NIFTY` on
NSE_INDEX, futures `NIFTY30DEC25FUT`, options `NIFTY30DEC2526000CE` on NFO. Prices are Decimal
quantised to the instrument's tick size; times are aware datetimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


class Exchange(StrEnum):
    NSE = "NSE"
    BSE = "BSE"
    NFO = "NFO"
    BFO = "BFO"
    CDS = "CDS"
    BCD = "BCD"
    MCX = "MCX"
    NSE_INDEX = "NSE_INDEX"
    BSE_INDEX = "BSE_INDEX"
    MCX_INDEX = "MCX_INDEX"


class InstrumentType(StrEnum):
    EQ = "EQ"
    INDEX = "INDEX"
    FUT = "FUT"
    CE = "CE"
    PE = "PE"


class ExpiryKind(StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    HALF_YEARLY = "half_yearly"


class Interval(StrEnum):
    """History intervals the simulated market serves (API.md 4.4 `intervals`)."""

    M1 = "1m"
    M3 = "3m"
    M5 = "5m"
    M10 = "10m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    D = "D"

    @property
    def seconds(self) -> int:
        return {
            "1m": 60, "3m": 180, "5m": 300, "10m": 600, "15m": 900, "30m": 1800,
            "1h": 3600, "D": 86_400,
        }[self.value]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable (or quotable) contract of the instrument master."""

    symbol: str
    exchange: Exchange
    name: str
    instrument_type: InstrumentType
    token: str
    lot_size: int = 1
    tick_size: Decimal = Decimal("0.05")
    freeze_qty: int | None = None
    expiry: date | None = None
    expiry_kind: ExpiryKind | None = None
    strike: Decimal | None = None
    # Base name of a derivative's underlying ("NIFTY", "RELIANCE", "CRUDEOIL") and where that
    # underlying is quoted ("NSE_INDEX", "NSE"; for MCX options, the MCX future's exchange).
    underlying: str | None = None
    underlying_exchange: Exchange | None = None
    isin: str | None = None
    # The broker's own names; equal to ours in the bundled master.
    brsymbol: str = ""
    brexchange: str = ""

    @property
    def is_option(self) -> bool:
        return self.instrument_type in (InstrumentType.CE, InstrumentType.PE)

    @property
    def is_derivative(self) -> bool:
        return self.expiry is not None


class InstrumentLookup(Protocol):
    """What the simulator and the API need from the instrument master."""

    def get(self, symbol: str, exchange: str) -> Instrument | None: ...

    def all(self) -> Sequence[Instrument]: ...

    def underlying_of(self, instrument: Instrument) -> Instrument | None:
        """The spot/index instrument a derivative is priced from (None for cash and indices)."""
        ...

    def derivatives_of(self, underlying: str, exchange: Exchange) -> Sequence[Instrument]:
        """Every future and option on `underlying` listed on the derivatives `exchange`."""
        ...


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    exchange: Exchange
    ltp: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    prev_close: Decimal
    bid: Decimal
    ask: Decimal
    volume: int
    oi: int
    timestamp: datetime
    last_quantity: int = 0  # quantity of the last trade (the depth endpoint's `ltq`)


@dataclass(frozen=True, slots=True)
class DepthLevel:
    price: Decimal
    quantity: int
    orders: int


@dataclass(frozen=True, slots=True)
class Depth:
    quote: Quote
    buy: tuple[DepthLevel, ...]  # best first (highest bid first)
    sell: tuple[DepthLevel, ...]  # best first (lowest ask first)

    @property
    def total_buy_quantity(self) -> int:
        return sum(level.quantity for level in self.buy)

    @property
    def total_sell_quantity(self) -> int:
        return sum(level.quantity for level in self.sell)


@dataclass(frozen=True, slots=True)
class Candle:
    start: datetime  # aware; the candle covers [start, start + interval)
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    oi: int = 0


@dataclass(frozen=True, slots=True)
class Greeks:
    delta: float
    gamma: float
    theta: float  # per calendar day, in rupees
    vega: float  # per 1 volatility point (0.01), in rupees
    rho: float  # per 1 rate point (0.01), in rupees


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session of an exchange on one day (times aware, IST)."""

    kind: str  # "pre_open", "normal", "evening", "muhurat", "special"
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class ExchangeWindow:
    """An exchange open from `start` to `end` (aware, IST): a row of /market/timings."""

    exchange: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class HolidayRecord:
    """One row of /market/holidays (API.md 4.7)."""

    day: date
    description: str
    holiday_type: str  # TRADING_HOLIDAY | SETTLEMENT_HOLIDAY | SPECIAL_SESSION
    closed_exchanges: tuple[str, ...]
    open_exchanges: tuple[ExchangeWindow, ...] = ()
