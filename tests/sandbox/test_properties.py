"""Random sequences of orders, cancels, modifications and prices keep the books consistent."""

from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.clock import FixedClock
from services.errors import OrderRejected
from services.market.instrument_store import InstrumentMaster
from services.market.service import MarketData
from services.orders.model import ModifyRequest, OrderRequest, PriceType, Product, Side
from services.sandbox.engine import SandboxEngine
from services.sandbox.settings import SandboxSettings
from tests.sandbox.conftest import FRIDAY_MORNING, USER, _databases, check_books, instrument

D = Decimal
ZERO = Decimal(0)
# (symbol, exchange, products, lot)
CONTRACTS = [
    ("SBIN", "NSE", (Product.MIS, Product.CNC), 1),
    ("INFY", "NSE", (Product.MIS, Product.CNC), 1),
    ("NIFTY23NOV26FUT", "NFO", (Product.MIS, Product.NRML), 65),
]

contracts = st.integers(0, len(CONTRACTS) - 1)
sides = st.sampled_from([Side.BUY, Side.SELL])
operations = st.one_of(
    st.tuples(st.just("market"), contracts, sides, st.integers(1, 40), st.booleans()),
    st.tuples(st.just("limit"), contracts, sides, st.integers(1, 40), st.booleans(),
              st.integers(-30, 30)),
    st.tuples(st.just("stop"), contracts, sides, st.integers(1, 20), st.booleans(),
              st.integers(1, 30)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("modify"), st.integers(0, 50), st.integers(-30, 30), st.integers(1, 40)),
    st.tuples(st.just("price"), contracts, st.integers(-40, 40)),
    st.tuples(st.just("wait"), st.integers(1, 90)),
)  # fmt: skip


class World:
    def __init__(self, engine: SandboxEngine, market: MarketData, master: InstrumentMaster,
                 clock: FixedClock) -> None:  # fmt: skip
        self.engine, self.market, self.clock = engine, market, clock
        self.instruments = [
            instrument(master, symbol, exchange) for symbol, exchange, _, _ in CONTRACTS
        ]
        self.placed: list[str] = []

    def ltp(self, index: int) -> Decimal:
        return self.market.source.quote(self.instruments[index], self.clock.now()).ltp

    def request(
        self,
        index: int,
        side: Side,
        lots: int,
        alternative: bool,
        kind: PriceType,
        price: Decimal = ZERO,
        trigger: Decimal = ZERO,
    ) -> OrderRequest:
        symbol, exchange, products, lot = CONTRACTS[index]
        product = products[1] if alternative else products[0]
        quantity = lot * (1 + lots % 2) if lot > 1 else lots  # one or two lots of a future
        return OrderRequest(symbol, exchange, side, quantity, product, kind, price, trigger)

    def apply(self, operation: tuple[Any, ...]) -> None:
        kind = operation[0]
        tick = D("0.05")
        try:
            if kind == "market":
                _, index, side, lots, alternative = operation
                self._place(self.request(index, side, lots, alternative, PriceType.MARKET))
            elif kind == "limit":
                _, index, side, lots, alternative, offset = operation
                price = self.ltp(index) + tick * offset
                self._place(self.request(index, side, lots, alternative, PriceType.LIMIT, price))
            elif kind == "stop":
                _, index, side, lots, alternative, offset = operation
                away = tick * offset * (1 if side is Side.BUY else -1)
                trigger = self.ltp(index) + away
                self._place(
                    self.request(index, side, lots, alternative, PriceType.SL_M, trigger=trigger)
                )
            elif kind == "cancel" and self.placed:
                self.engine.cancel(USER, self.placed[operation[1] % len(self.placed)])
            elif kind == "modify" and self.placed:
                _, pick, offset, quantity = operation
                order_id = self.placed[pick % len(self.placed)]
                current = self.engine.order(USER, order_id)
                lot = 65 if current.exchange == "NFO" else 1
                index = [c[0] for c in CONTRACTS].index(current.symbol)
                price = self.ltp(index) + tick * offset
                self.engine.modify(
                    USER, ModifyRequest(order_id, quantity * lot, PriceType.LIMIT, price)
                )
            elif kind == "price":
                _, index, offset = operation
                self.engine.on_price(self.instruments[index], self.ltp(index) + tick * offset)
            elif kind == "wait":
                self.clock.advance(timedelta(seconds=operation[1]))
                self.engine.on_tick()
        except OrderRejected:
            pass  # refusals are part of the game; the books must stay consistent regardless

    def _place(self, request: OrderRequest) -> None:
        self.placed.append(self.engine.place(USER, request).order_id)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)  # fmt: skip
@given(operations_=st.lists(operations, min_size=10, max_size=40))
def test_random_sequences_keep_the_books_consistent(
    operations_: list[tuple[Any, ...]],
    template_db: Path,
    market: MarketData,
    master: InstrumentMaster,
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="sandbox-property-"))
    try:
        shutil.copy(template_db, folder / "sandbox.db")
        databases = _databases(folder / "sandbox.db")
        clock = FixedClock(FRIDAY_MORNING)
        engine = SandboxEngine(databases, market, clock,
                               SandboxSettings(starting_capital=D("400000")))  # fmt: skip
        world = World(engine, market, master, clock)
        for operation in operations_:
            world.apply(operation)
            check_books(engine)
        before = (
            engine.orders(USER),
            engine.trades(USER),
            engine.positions(USER),
            engine.funds(USER),
        )
        engine.close()
        restarted = SandboxEngine(
            databases, market, clock, SandboxSettings(starting_capital=D("400000"))
        )
        after = (restarted.orders(USER), restarted.trades(USER), restarted.positions(USER),
                 restarted.funds(USER))  # fmt: skip
        assert after == before
        restarted.close()
        databases.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
