"""Streamed ticks reach the paper exchange's matcher: a resting order fills on the tick that
crosses it, not on the next heartbeat."""

from __future__ import annotations

from decimal import Decimal

from services.feed.matching import sandbox_matcher
from services.feed.model import Tick, epoch_ms
from services.market.instrument_store import InstrumentMaster
from services.orders.model import OrderStatus, Side
from services.sandbox.engine import SandboxEngine
from tests.sandbox.conftest import instrument, limit


def test_a_crossing_tick_fills_a_resting_limit(
    engine: SandboxEngine, master: InstrumentMaster
) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    ltp = engine._view.ltp(sbin, engine._clock.now())
    assert ltp is not None
    below = (ltp * Decimal("0.97") / Decimal("0.05")).to_integral_value() * Decimal("0.05")
    placed = engine.place(1, limit("SBIN", Side.BUY, 4, str(below)))
    assert engine.order(1, placed.order_id).status is OrderStatus.OPEN
    match = sandbox_matcher(engine, lambda: master)

    match([Tick("NSE", "SBIN", epoch_ms(), {1: {"ltp": float(below + Decimal("0.05"))}})])
    assert engine.order(1, placed.order_id).status is OrderStatus.OPEN  # not crossed yet

    match([Tick("NSE", "INFY", epoch_ms(), {1: {"ltp": 1.0}}),  # nothing rests there
           Tick("NSE", "SBIN", epoch_ms(), {1: {"ltp": float(below)}})])  # fmt: skip
    filled = engine.order(1, placed.order_id)
    assert filled.status is OrderStatus.COMPLETE
    assert filled.average_price == below
