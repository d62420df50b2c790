"""Which simulated price series (track) each instrument is priced from, and how.

- A cash equity's track is its NSE row (its BSE listing, same ISIN, shares the NSE track so
  the two quotes agree); an index has its own; an MCX commodity has one track that all its
  futures are carried from (F = S e^{rT}) and its options are priced off those futures.
- Index and stock derivatives are priced from their underlying's track: futures by carry,
  options by Black-76 on that forward with the underlying's smile.
- Each track moves with the track its reference row names in `index` (with its `beta`);
  INDIAVIX moves against NIFTY (VOLATILITY_INDEX_BETA), as a fear gauge does.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Protocol

import numpy as np

from services.market import black76
from services.market.expiries import expiry_instant
from services.market.model import Exchange, Instrument, InstrumentLookup, InstrumentType
from services.market.paths import FloatArray, TrackSpec, stable_key, uniforms
from services.market.smile import SmileParameters, default_smile

VOLATILITY_INDEX = "INDIAVIX"
VOLATILITY_INDEX_PARENT = "NIFTY"
VOLATILITY_INDEX_BETA = -4.0  # about -0.6 correlation of daily changes, as India VIX shows
NARROW_BAND_VOLATILITY = 0.45  # cash equities this volatile get the 10% band, others 20%
_CASH = (Exchange.NSE.value, Exchange.BSE.value)
_DRIVERS = (Exchange.NSE_INDEX.value, Exchange.BSE_INDEX.value, Exchange.MCX.value)
_MAXIMUM_CHAIN = 6  # parents followed at most (guards against a cycle in the reference data)


class ReferenceLike(Protocol):
    """What the simulator reads from a reference level (services.market.reference)."""

    @property
    def price(self) -> Decimal: ...
    @property
    def volatility(self) -> float: ...
    @property
    def beta(self) -> float: ...
    @property
    def index(self) -> str | None: ...


class PlanKind(StrEnum):
    SPOT = "spot"
    FUTURE = "future"
    OPTION = "option"


@dataclass(frozen=True, slots=True)
class Plan:
    """How one instrument's price follows its track."""

    instrument: Instrument
    track: TrackSpec
    kind: PlanKind
    key: int  # stable key of the instrument (its own volume, book and open interest noise)
    liquidity: float  # rupees traded per day on the track: scales volume, depth and OI
    expiry_epoch: float = 0.0  # when the contract's time value runs out
    forward_epoch: float = 0.0  # the future the forward is carried to (MCX options: theirs)
    strike: float = 0.0
    is_call: bool = False
    smile: SmileParameters | None = None

    @property
    def tick(self) -> Decimal:
        return self.instrument.tick_size

    @property
    def lot(self) -> int:
        return self.instrument.lot_size


def expiry_epoch(instrument: Instrument) -> float:
    """Epoch second of the contract's expiry cut-off (15:30 IST on NFO/BFO, 23:30 on MCX)."""
    if instrument.expiry is None:
        return 0.0
    return _cutoff_epoch(instrument.exchange, instrument.expiry)


@cache
def _cutoff_epoch(exchange: Exchange, expiry: date) -> float:
    return expiry_instant(exchange, expiry).timestamp()


def years_between(expiry_epoch: float | FloatArray, epochs: FloatArray) -> FloatArray:
    """Years to expiry as black76.years_to_expiry counts them (ACT/365, one-minute floor)."""
    years: FloatArray = np.maximum(
        (expiry_epoch - epochs) / black76.SECONDS_PER_YEAR, black76.MINIMUM_YEARS
    )
    return years


class TrackBook:
    """Builds and remembers the track of every reference row and the plan of every contract."""

    def __init__(
        self, lookup: InstrumentLookup, reference: Mapping[tuple[str, str], ReferenceLike],
        seed: int,
    ) -> None:  # fmt: skip
        self._lookup = lookup
        self._reference = reference
        self._seed = seed
        self._drivers = {symbol: (symbol, exchange) for symbol, exchange in reference
                         if exchange in _DRIVERS}  # fmt: skip
        self._tracks: dict[tuple[str, str], TrackSpec] = {}
        self._plans: dict[tuple[str, str], Plan] = {}
        self._liquidity: dict[str, float] = {}
        self._lock = threading.Lock()

    def plan(self, instrument: Instrument) -> Plan:
        """The instrument's pricing plan; ValueError when nothing prices it."""
        key = (instrument.symbol, instrument.exchange.value)
        found = self._plans.get(key)
        if found is None:
            found = self._build_plan(instrument)
            with self._lock:
                self._plans[key] = found
        return found

    def track(self, symbol: str, exchange: str, depth: int = 0) -> TrackSpec:
        """The track of one reference row."""
        key = (symbol, exchange)
        found = self._tracks.get(key)
        if found is None:
            found = self._build_track(symbol, exchange, depth)
            with self._lock:
                self._tracks[key] = found
        return found

    def liquidity(self, track: TrackSpec) -> float:
        """Rupees traded per day around the track: indices most, then commodities, stocks."""
        found = self._liquidity.get(track.identity)
        if found is None:
            draw = float(uniforms(stable_key(track.key, "liquidity"), np.zeros(1, np.int64))[0])
            exponent = 9.0 + 1.3 * draw
            if track.venue in (Exchange.NSE_INDEX.value, Exchange.BSE_INDEX.value):
                exponent = 10.6 + 0.8 * draw
            elif track.venue == Exchange.MCX.value:
                exponent = 9.5 + draw
            found = self._liquidity[track.identity] = math.pow(10.0, exponent)
        return found

    def _build_track(self, symbol: str, exchange: str, depth: int) -> TrackSpec:
        row = self._reference[(symbol, exchange)]
        parent_name, beta = row.index, row.beta
        if symbol == VOLATILITY_INDEX:
            parent_name, beta = VOLATILITY_INDEX_PARENT, VOLATILITY_INDEX_BETA
        parent = None
        driver = self._drivers.get(parent_name) if parent_name else None
        if driver is not None and driver != (symbol, exchange) and depth < _MAXIMUM_CHAIN:
            parent = self.track(*driver, depth=depth + 1)
        identity = f"{exchange}:{symbol}"
        key = stable_key(self._seed, identity)
        band = None
        if exchange in _CASH:
            band = 0.10 if row.volatility >= NARROW_BAND_VOLATILITY else 0.20
        draw = float(uniforms(stable_key(key, "trend"), np.zeros(1, np.int64))[0])
        trend = 0.0 if symbol == VOLATILITY_INDEX else 0.02 + 0.12 * draw
        return TrackSpec(
            identity=identity, key=key, venue=exchange, log_reference=math.log(row.price),
            volatility=row.volatility, beta=beta if parent else 1.0, parent=parent, band=band,
            trend=trend,
        )  # fmt: skip

    def _spot_track(self, instrument: Instrument) -> TrackSpec:
        """A cash equity or index; a BSE listing of an NSE stock shares the NSE track."""
        symbol, exchange = instrument.symbol, instrument.exchange.value
        if exchange == Exchange.BSE.value and (symbol, Exchange.NSE.value) in self._reference:
            twin = self._lookup.get(symbol, Exchange.NSE.value)
            if twin is None or twin.isin == instrument.isin or not twin.isin:
                exchange = Exchange.NSE.value
        if (symbol, exchange) not in self._reference:
            raise ValueError(f"No reference level to simulate {symbol} on {exchange}")
        return self.track(symbol, exchange)

    def _build_plan(self, instrument: Instrument) -> Plan:
        if not instrument.is_derivative:
            track = self._spot_track(instrument)
            return self._plan_of(instrument, track, PlanKind.SPOT)
        if instrument.exchange is Exchange.MCX:
            return self._commodity_plan(instrument)
        underlying = self._lookup.underlying_of(instrument)
        if underlying is None or underlying.is_derivative:
            raise ValueError(
                f"No underlying to simulate {instrument.symbol} on {instrument.exchange}"
            )
        track = self._spot_track(underlying)
        index = underlying.instrument_type is InstrumentType.INDEX
        return self._derivative_plan(instrument, track, expiry_epoch(instrument), index)

    def _commodity_plan(self, instrument: Instrument) -> Plan:
        """MCX: futures carried from the commodity's track, options off their future."""
        name = instrument.underlying or instrument.name
        if (name, Exchange.MCX.value) not in self._reference:
            raise ValueError(f"No reference level to simulate {instrument.symbol} on MCX")
        track = self.track(name, Exchange.MCX.value)
        forward_epoch = expiry_epoch(instrument)
        if instrument.is_option:
            future = self._lookup.underlying_of(instrument)
            if future is None:
                raise ValueError(f"No future to price {instrument.symbol} on MCX from")
            forward_epoch = expiry_epoch(future)
        return self._derivative_plan(instrument, track, forward_epoch, False)

    def _derivative_plan(
        self, instrument: Instrument, track: TrackSpec, forward_epoch: float, index: bool
    ) -> Plan:
        if not instrument.is_option:
            return self._plan_of(instrument, track, PlanKind.FUTURE, forward_epoch=forward_epoch)
        if instrument.strike is None:
            raise ValueError(f"Option {instrument.symbol} has no strike")
        return self._plan_of(
            instrument, track, PlanKind.OPTION, forward_epoch=forward_epoch,
            strike=float(instrument.strike),
            is_call=instrument.instrument_type is InstrumentType.CE,
            smile=default_smile(track.volatility, index),
        )  # fmt: skip

    def _plan_of(
        self, instrument: Instrument, track: TrackSpec, kind: PlanKind, *,
        forward_epoch: float = 0.0, strike: float = 0.0, is_call: bool = False,
        smile: SmileParameters | None = None,
    ) -> Plan:  # fmt: skip
        return Plan(
            instrument=instrument, track=track, kind=kind,
            key=stable_key(self._seed, instrument.exchange.value, instrument.symbol),
            liquidity=self.liquidity(track), expiry_epoch=expiry_epoch(instrument),
            forward_epoch=forward_epoch, strike=strike, is_call=is_call, smile=smile,
        )  # fmt: skip


class BoundedCache[K, V]:
    """A small thread-safe least-recently-used map: paths are cheap to rebuild, memory is not."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return value
