"""The simulated market and the instrument master: ticks/s, search latency, history speed.

Targets (issue: instruments, calendar and simulated market), on one core:
  - >= 200,000 ticks/s across the whole master (SimulatedMarket.tick_prices);
  - symbol search p99 < 50 ms over 100k+ contracts;
  - one year of 1-minute candles for one instrument in < 1 s.
Each figure is also printed as a ratio to a baseline measured in the same process:
  - ticks: one vectorised random-walk step over the same number of prices (numpy floor);
  - search: a naive linear scan of every symbol for the same queries;
  - history: numpy drawing and cumulating as many 1-second steps as a year of sessions holds.

Run: `make bench` (or .venv/bin/python bench/bench_market.py).
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.clock import IST, FixedClock
from services.market.calendar import MarketCalendar
from services.market.instrument_store import InstrumentMaster
from services.market.master import build_master
from services.market.model import Instrument, Interval
from services.market.simulator import SimulatedMarket

QUERIES = [
    "NIFTY 26000 DEC CE",
    "BANKNIFTY FUT",
    "REL",
    "RELIANCE 1500 PE",
    "SENSEX 85000",
    "INFY JAN",
    "HDFCBANK",
    "NIFTY PE 25000",
    "CRUDEOIL",
    "TCS 4000 CE",
    "FINNIFTY",
    "SBIN 900",
    "M&M",
    "GOLD",
    "MIDCPNIFTY 13000 CE",
    "ICICI",
    "NIFTY 24",
    "TATA",
]


def measure_ticks(market: SimulatedMarket, instruments: list[Instrument], now: datetime) -> None:
    market.tick_prices(instruments, now)  # builds today's paths once
    rounds = 20
    started = time.perf_counter()
    for second in range(rounds):
        market.tick_prices(instruments, now + timedelta(seconds=second + 1))
    elapsed = time.perf_counter() - started
    ticks_per_second = len(instruments) * rounds / elapsed

    generator = np.random.default_rng(1)
    prices = np.full(len(instruments), 100.0)
    started = time.perf_counter()
    for _ in range(rounds):
        prices *= np.exp(0.0001 * generator.standard_normal(len(instruments)))
    baseline = len(instruments) * rounds / (time.perf_counter() - started)
    verdict = "MET" if ticks_per_second >= 200_000 else "MISSED"
    print(
        f"ticks/s across {len(instruments):,} instruments: {ticks_per_second:,.0f} "
        f"({ticks_per_second / baseline:.3f}x the numpy random-walk floor "
        f"of {baseline:,.0f}/s) target >= 200,000: {verdict}"
    )


def measure_search(master: InstrumentMaster) -> None:
    started = time.perf_counter()
    master.prepare_search()
    print(f"search index built in {time.perf_counter() - started:.2f} s (once per master)")
    samples = []
    for _ in range(20):
        for query in QUERIES:
            started = time.perf_counter()
            master.search(query, limit=50)
            samples.append(time.perf_counter() - started)
    samples.sort()
    p50 = samples[len(samples) // 2]
    p99 = samples[int(len(samples) * 0.99) - 1]

    symbols = [instrument.symbol for instrument in master.all()]
    naive = []
    for query in QUERIES:
        terms = query.upper().split()
        started = time.perf_counter()
        _ = [symbol for symbol in symbols if all(term in symbol for term in terms)][:50]
        naive.append(time.perf_counter() - started)
    baseline = statistics.median(naive)
    verdict = "MET" if p99 < 0.050 else "MISSED"
    print(
        f"search over {len(master):,} contracts: p50 {p50 * 1e3:.2f} ms, "
        f"p99 {p99 * 1e3:.2f} ms ({p99 / baseline:.3f}x a linear scan's median "
        f"of {baseline * 1e3:.1f} ms) target p99 < 50 ms: {verdict}"
    )


def measure_history(market: SimulatedMarket, instrument: Instrument, now: datetime) -> None:
    start, end = (now - timedelta(days=365)).date(), (now - timedelta(days=1)).date()
    started = time.perf_counter()
    candles = market.history(instrument, Interval.M1, start, end)
    elapsed = time.perf_counter() - started

    seconds_of_sessions = max(1, len(candles)) * 60
    generator = np.random.default_rng(2)
    started = time.perf_counter()
    np.cumsum(generator.standard_normal(seconds_of_sessions))
    baseline = time.perf_counter() - started
    verdict = "MET" if elapsed < 1.0 else "MISSED"
    print(
        f"one year of 1m candles for {instrument.symbol}: {len(candles):,} candles in "
        f"{elapsed:.3f} s ({elapsed / baseline:.1f}x numpy drawing and summing "
        f"{seconds_of_sessions:,} steps in {baseline:.3f} s) target < 1 s: {verdict}"
    )


def main() -> None:
    calendar = MarketCalendar()
    now = datetime.now(IST).replace(microsecond=0)
    started = time.perf_counter()
    master = InstrumentMaster(build_master(now.date(), calendar), now.date())
    print(f"built the master ({len(master):,} contracts) in {time.perf_counter() - started:.1f} s")
    clock = FixedClock(now)
    # Ticks in the always-open mode a fresh desk runs, so every second moves every price.
    measure_ticks(SimulatedMarket(master, calendar, clock), list(master.all()), now)
    measure_search(master)
    reliance = master.get("RELIANCE", "NSE")
    assert reliance is not None
    # History in calendar mode: a year of real sessions, as a trader charts it.
    measure_history(SimulatedMarket(master, calendar, clock, always_open=False), reliance, now)


if __name__ == "__main__":
    main()
