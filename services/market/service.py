"""The desk's market, wired once: instrument master, exchange calendar and the data source.

The master is loaded lazily (first use), rebuilt when its expiries are stale (built before
today, IST), and shared by every request. The data source is the simulated market for the
sandbox; a live broker's feed will plug in here as another source.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from database.engine import Databases
from services.clock import Clock, to_ist
from services.errors import InvalidRequest, NotFound
from services.market.calendar import MarketCalendar
from services.market.instrument_store import InstrumentMaster, InstrumentStore, ensure_master
from services.market.master import build_master
from services.market.model import Exchange, Instrument
from services.market.simulator import SimulatedMarket
from services.runtime import freeze_long_lived_objects

VALID_EXCHANGES = tuple(exchange.value for exchange in Exchange)


@dataclass(frozen=True)
class MarketSettings:
    always_open: bool = True
    seed: int = 7
    interest_rate: float = 0.065


class MarketData:
    def __init__(
        self, databases: Databases, clock: Clock, settings: MarketSettings | None = None
    ) -> None:
        self.clock = clock
        self.settings = settings or MarketSettings()
        self.calendar = MarketCalendar()
        self._store = InstrumentStore(databases)
        self._lock = threading.Lock()
        self._master: InstrumentMaster | None = None
        self._source: SimulatedMarket | None = None

    @property
    def master(self) -> InstrumentMaster:
        today = to_ist(self.clock.now()).date()
        master = self._master
        if master is not None and master.built_on >= today:
            return master
        with self._lock:
            if self._master is None or self._master.built_on < today:
                self._master = ensure_master(self._store, self.calendar, today)
                self._source = None
                freeze_long_lived_objects()
            return self._master

    @property
    def source(self) -> SimulatedMarket:
        master = self.master
        source = self._source
        if source is not None:
            return source
        with self._lock:
            if self._source is None:
                self._source = SimulatedMarket(
                    master,
                    self.calendar,
                    self.clock,
                    seed=self.settings.seed,
                    always_open=self.settings.always_open,
                    rate=self.settings.interest_rate,
                )
            return self._source

    def reload_master(self) -> InstrumentMaster:
        """Rebuild the bundled master for today and store it (the `master-contract` command)."""
        today = to_ist(self.clock.now()).date()
        instruments = build_master(today, self.calendar)
        self._store.replace_all(instruments, today)
        with self._lock:
            self._master = InstrumentMaster(instruments, today)
            self._source = None
            return self._master

    def instrument(self, symbol: str, exchange: str) -> Instrument:
        """The contract, or a 404 naming what was not found (API.md 4.5 wording)."""
        check_exchange(exchange)
        found = self.master.get(symbol.strip().upper(), exchange)
        if found is None:
            raise NotFound(f"Symbol {symbol} not found in exchange {exchange}")
        return found


def check_exchange(exchange: str) -> None:
    if exchange not in VALID_EXCHANGES:
        raise InvalidRequest(
            f"Unknown exchange {exchange!r}.",
            errors={"exchange": ["one of " + ", ".join(VALID_EXCHANGES)]},
        )
