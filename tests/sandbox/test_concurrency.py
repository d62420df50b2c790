"""Many threads on one account: no double fills, no lost updates, cash never below zero."""

from __future__ import annotations

import contextlib
import random
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest

from services.clock import FixedClock
from services.errors import OrderRejected
from services.market.instrument_store import InstrumentMaster
from services.market.service import MarketData
from services.orders.model import ModifyRequest, PriceType, Side
from services.sandbox.engine import SandboxEngine
from tests.sandbox.conftest import USER, check_books, instrument, limit, order

D = Decimal
THREADS = 16
ORDERS_EACH = 50


@pytest.fixture(autouse=True)
def busy_switching() -> Iterator[None]:
    """Switch threads every microsecond so races have every chance to show."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _run(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()


def test_simultaneous_market_orders_share_the_depth(
    engine: SandboxEngine, market: MarketData, master: InstrumentMaster, clock: FixedClock
) -> None:
    symbols = ("SBIN", "INFY")
    errors: list[BaseException] = []
    placed: list[str] = []

    def trader(seed: int) -> None:
        chooser = random.Random(seed)  # noqa: S311 (reproducible test traffic)
        try:
            for _ in range(ORDERS_EACH):
                symbol = chooser.choice(symbols)
                side = chooser.choice((Side.BUY, Side.SELL))
                request = order(symbol, side, chooser.randint(1, 60))
                if chooser.random() < 0.3:  # a marketable limit a few ticks through the touch
                    ltp = market.source.quote(instrument(master, symbol, "NSE"), clock.now()).ltp
                    away = D("0.25") if side is Side.BUY else D("-0.25")
                    request = limit(symbol, side, request.quantity, str(ltp + away))
                with contextlib.suppress(OrderRejected):
                    placed.append(engine.place(USER, request).order_id)
        except BaseException as error:
            errors.append(error)

    _run([threading.Thread(target=trader, args=(seed,)) for seed in range(THREADS)])
    assert errors == []
    assert len(placed) == len(set(placed))
    check_books(engine)
    # Every (side, level) of the second's depth was taken at most once.
    taken: Counter[tuple[str, Side, Decimal]] = Counter()
    for trade in engine.trades(USER):
        taken[(trade.symbol, trade.side, trade.price)] += trade.quantity
    for symbol in symbols:
        depth = market.source.depth(instrument(master, symbol, "NSE"), clock.now())
        for side, levels in ((Side.BUY, depth.sell), (Side.SELL, depth.buy)):
            for level in levels:
                assert taken[(symbol, side, level.price)] <= level.quantity
    engine.flush()


def test_ticks_cancels_and_modifies_race_without_double_fills(
    engine: SandboxEngine, master: InstrumentMaster
) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    errors: list[BaseException] = []
    done = threading.Event()
    mine: list[list[str]] = [[] for _ in range(THREADS)]

    def trader(seed: int) -> None:
        chooser = random.Random(seed)  # noqa: S311 (reproducible test traffic)
        try:
            for _ in range(ORDERS_EACH):
                action = chooser.random()
                try:
                    if action < 0.6 or not mine[seed]:
                        side = chooser.choice((Side.BUY, Side.SELL))
                        price = (
                            D(900 + chooser.randint(0, 200))
                            if side is Side.BUY
                            else D(1000 + chooser.randint(0, 100))
                        )
                        mine[seed].append(
                            engine.place(
                                USER, limit("SBIN", side, chooser.randint(1, 20), str(price))
                            ).order_id
                        )
                    elif action < 0.8:
                        engine.cancel(USER, chooser.choice(mine[seed]))
                    else:
                        target = chooser.choice(mine[seed])
                        engine.modify(
                            USER,
                            ModifyRequest(
                                target,
                                chooser.randint(20, 30),
                                PriceType.LIMIT,
                                D(950 + chooser.randint(0, 100)),
                            ),
                        )
                except OrderRejected:
                    pass
        except BaseException as error:
            errors.append(error)

    def ticker() -> None:
        chooser = random.Random(99)  # noqa: S311
        try:
            while not done.is_set():
                engine.on_price(
                    sbin, D(900 + chooser.randint(0, 200)) + D("0.05") * chooser.randint(0, 19)
                )
        except BaseException as error:
            errors.append(error)

    ticking = threading.Thread(target=ticker)
    ticking.start()
    _run([threading.Thread(target=trader, args=(seed,)) for seed in range(THREADS)])
    done.set()
    ticking.join(30)
    assert errors == []
    check_books(engine)
    assert sum(1 for trade in engine.trades(USER)) > 0
