"""Paper-trading engine throughput, in process, with its durable journal running.

Targets (issue: the paper-trading engine), on one core:
  - >= 20,000 MARKET orders/s through SandboxEngine.place;
  - >= 50,000 ticks/s with 10,000 resting LIMIT orders across 500 instruments.
Each figure is also printed as a ratio to a floor measured in the same process: the bare
Python cost of one Decimal price x quantity plus one dict update per order (or per tick), the
least any bookkeeping engine could do.

Run: `make bench` (or .venv/bin/python bench/bench_sandbox.py).
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import Settings
from database.engine import Databases
from database.migrate import upgrade_all
from services.clock import IST, FixedClock
from services.market.model import Exchange, Instrument
from services.market.service import MarketData, MarketSettings
from services.orders.model import OrderRequest, PriceType, Product, Side
from services.runtime import tune_garbage_collector
from services.sandbox.engine import SandboxEngine
from services.sandbox.settings import SandboxSettings

ORDERS = 20_000
RESTING = 10_000
TICK_INSTRUMENTS = 500
TICK_ROUNDS = 200
START = datetime(2026, 11, 23, 10, 0, tzinfo=IST)  # a Monday morning


def floor_rate(count: int) -> float:
    """Operations/s of the least bookkeeping imaginable: one multiply and one dict write each."""
    book: dict[int, Decimal] = {}
    price = Decimal("812.35")
    started = time.perf_counter()
    for number in range(count):
        book[number % 512] = price * (number % 7 + 1)
    return count / (time.perf_counter() - started)


def settings_in(folder: str) -> Settings:
    return Settings.from_mapping(
        {
            "APP_KEY": secrets.token_hex(32),
            "API_KEY_PEPPER": secrets.token_hex(32),
            "DATABASE_URL": f"sqlite:///{folder}/dalal.db",
            "SANDBOX_DATABASE_URL": f"sqlite:///{folder}/sandbox.db",
            "LATENCY_DATABASE_URL": f"sqlite:///{folder}/latency.db",
            "LOGS_DATABASE_URL": f"sqlite:///{folder}/logs.db",
        }
    )


def measure_market_orders(engine: SandboxEngine, clock: FixedClock, symbols: list[str]) -> None:
    requests = [
        OrderRequest(
            symbols[n % len(symbols)], "NSE", Side.BUY if n % 2 == 0 else Side.SELL, 1, Product.MIS
        )
        for n in range(ORDERS)
    ]
    started = time.perf_counter()
    for number, request in enumerate(requests):
        if number % 200 == 0:
            clock.advance(timedelta(seconds=1))  # a fresh book every simulated second
        engine.place(1, request)
    engine.flush()
    rate = ORDERS / (time.perf_counter() - started)
    floor = floor_rate(ORDERS)
    verdict = "MET" if rate >= 20_000 else "MISSED"
    print(
        f"MARKET orders/s (equity, journal on, flushed at the end): {rate:,.0f} "
        f"({rate / floor:.4f}x the {floor:,.0f}/s bookkeeping floor) "
        f"target >= 20,000: {verdict}"
    )


def rest_limit_orders(engine: SandboxEngine, market: MarketData) -> list[Instrument]:
    """10,000 BUY LIMIT orders far below the market, spread over 500 NFO options."""
    options = [i for i in market.master.by_exchange(Exchange.NFO) if i.is_option][:TICK_INSTRUMENTS]
    for number in range(RESTING):
        option = options[number % len(options)]
        quote = market.source.quote(option)
        price = max(option.tick_size, (quote.ltp / 4 // option.tick_size) * option.tick_size)
        engine.place(
            2 + number % 20,
            OrderRequest(
                option.symbol,
                option.exchange.value,
                Side.BUY,
                option.lot_size,
                Product.NRML,
                PriceType.LIMIT,
                price=price,
            ),
        )
    engine.flush()
    return options


def measure_ticks(engine: SandboxEngine, options: list[Instrument], at: datetime) -> None:
    prices = [Decimal("10000") for _ in options]  # far above every resting buy: nothing crosses
    started = time.perf_counter()
    for round_number in range(TICK_ROUNDS):
        for option, price in zip(options, prices, strict=True):
            engine.on_price(option, price + round_number, at)
    ticks = TICK_ROUNDS * len(options)
    rate = ticks / (time.perf_counter() - started)
    floor = floor_rate(ticks)
    verdict = "MET" if rate >= 50_000 else "MISSED"
    print(
        f"ticks/s with {RESTING:,} resting LIMIT orders on {len(options)} instruments: "
        f"{rate:,.0f} ({rate / floor:.4f}x the {floor:,.0f}/s bookkeeping floor) "
        f"target >= 50,000: {verdict}"
    )


def main() -> None:
    tune_garbage_collector()  # as the desk's server process does at start
    with tempfile.TemporaryDirectory() as folder:
        settings = settings_in(folder)
        upgrade_all(settings)
        databases = Databases.from_settings(settings)
        clock = FixedClock(START)
        market = MarketData(databases, clock, MarketSettings(always_open=True))
        market.master  # noqa: B018  (build the instrument master before timing)
        engine = SandboxEngine(
            databases, market, clock, SandboxSettings(starting_capital=Decimal("1000000000"))
        )
        measure_market_orders(engine, clock, ["SBIN", "ITC", "INFY", "TCS", "RELIANCE"])
        options = rest_limit_orders(engine, market)
        measure_ticks(engine, options, clock.now())
        engine.close()
        databases.dispose()


if __name__ == "__main__":
    main()
