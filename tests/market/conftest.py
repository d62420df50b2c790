"""One simulated market world for the tests in this folder: Sunday 2026-11-22."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from services.clock import IST, FixedClock
from services.market.calendar import MarketCalendar
from services.market.instrument_store import InstrumentMaster
from services.market.master import build_master
from services.market.model import Instrument
from services.market.simulator import SimulatedMarket

TODAY = date(2026, 11, 22)  # a Sunday
NOW = datetime(2026, 11, 22, 14, 30, 17, tzinfo=IST)


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar()


@pytest.fixture(scope="module")
def master(calendar: MarketCalendar) -> InstrumentMaster:
    return InstrumentMaster(build_master(TODAY, calendar), TODAY)


@pytest.fixture(scope="module")
def market(master: InstrumentMaster, calendar: MarketCalendar) -> SimulatedMarket:
    return SimulatedMarket(master, calendar, FixedClock(NOW))


@pytest.fixture(scope="module")
def sessions_market(master: InstrumentMaster, calendar: MarketCalendar) -> SimulatedMarket:
    return SimulatedMarket(master, calendar, FixedClock(NOW), always_open=False)


def get(master: InstrumentMaster, symbol: str, exchange: str) -> Instrument:
    found = master.get(symbol, exchange)
    assert found is not None, (symbol, exchange)
    return found
