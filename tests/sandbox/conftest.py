"""One instrument master and market for the sandbox tests; a fresh engine per test.

The master is built once for Friday 2026-11-20 (it lists the contracts alive that day, so the
NIFTY November monthly expiring Monday 2026-11-23 is there) and pinned, so moving the clock
across days never rebuilds it. Each engine gets its own copy of a sandbox database migrated
once per session.
"""

from __future__ import annotations

import contextlib
import gc
import shutil
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from database.engine import DatabaseName, Databases, build_engine
from database.migrate import upgrade
from services.clock import IST, FixedClock
from services.events import EventBus
from services.market.calendar import MarketCalendar
from services.market.instrument_store import InstrumentMaster
from services.market.master import build_master
from services.market.model import Instrument
from services.market.service import MarketData, MarketSettings
from services.orders.model import OrderRequest, OrderStatus, PriceType, Product, Side, Validity
from services.sandbox.engine import SandboxEngine
from services.sandbox.settings import SandboxSettings

MASTER_DAY = date(2026, 11, 20)  # a Friday
FRIDAY_MORNING = datetime(2026, 11, 20, 10, 0, tzinfo=IST)
MONDAY_MORNING = datetime(2026, 11, 23, 10, 0, tzinfo=IST)
USER = 1


class PinnedMarket(MarketData):
    """MarketData whose master never rebuilds (tests move the clock across days)."""

    def __init__(
        self, databases: Databases, master: InstrumentMaster, *, always_open: bool
    ) -> None:
        super().__init__(
            databases, FixedClock(FRIDAY_MORNING), MarketSettings(always_open=always_open)
        )
        self._pinned = master

    @property
    def master(self) -> InstrumentMaster:  # type: ignore[override]
        return self._pinned


@pytest.fixture(scope="session")
def master() -> InstrumentMaster:
    built = InstrumentMaster(build_master(MASTER_DAY, MarketCalendar()), MASTER_DAY)
    # Every engine collects garbage once on start; keep the shared master out of those passes.
    gc.collect()
    gc.freeze()
    return built


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "sandbox.db"
    engine = build_engine(f"sqlite:///{path}")
    upgrade(DatabaseName.SANDBOX, engine)
    engine.dispose()
    return path


def _databases(path: Path) -> Databases:
    engine = build_engine(f"sqlite:///{path}")
    return Databases(
        engines={DatabaseName.SANDBOX: engine},
        sessions={DatabaseName.SANDBOX: sessionmaker(bind=engine)},
    )


@pytest.fixture(scope="session")
def market(master: InstrumentMaster, tmp_path_factory: pytest.TempPathFactory) -> MarketData:
    databases = _databases(tmp_path_factory.mktemp("market") / "unused.db")
    return PinnedMarket(databases, master, always_open=True)


@pytest.fixture(scope="session")
def calendar_market(
    master: InstrumentMaster, tmp_path_factory: pytest.TempPathFactory
) -> MarketData:
    databases = _databases(tmp_path_factory.mktemp("market") / "unused.db")
    return PinnedMarket(databases, master, always_open=False)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(FRIDAY_MORNING)


type EngineFactory = Callable[..., SandboxEngine]


@pytest.fixture
def db_path(template_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "sandbox.db"
    shutil.copy(template_db, path)
    return path


@pytest.fixture
def make_engine(db_path: Path, market: MarketData, clock: FixedClock) -> Iterator[EngineFactory]:
    made: list[tuple[SandboxEngine, Databases]] = []

    def build(
        *,
        market_data: MarketData | None = None,
        settings: SandboxSettings | None = None,
        engine_clock: FixedClock | None = None,
        events: EventBus | None = None,
    ) -> SandboxEngine:
        databases = _databases(db_path)
        engine = SandboxEngine(
            databases,
            market_data or market,
            engine_clock or clock,
            settings or SandboxSettings(),
            events=events,
        )
        made.append((engine, databases))
        return engine

    yield build
    for engine, databases in made:
        with contextlib.suppress(RuntimeError):
            engine.close()
        databases.dispose()


@pytest.fixture
def engine(make_engine: EngineFactory) -> SandboxEngine:
    return make_engine()


def instrument(master: InstrumentMaster, symbol: str, exchange: str) -> Instrument:
    found = master.get(symbol, exchange)
    assert found is not None, (symbol, exchange)
    return found


def order(
    symbol: str,
    side: Side,
    quantity: int,
    *,
    exchange: str = "NSE",
    product: Product = Product.MIS,
    price_type: PriceType = PriceType.MARKET,
    price: str | Decimal = "0",
    trigger: str | Decimal = "0",
    validity: Validity = Validity.DAY,
    strategy: str = "test",
) -> OrderRequest:
    return OrderRequest(
        symbol=symbol,
        exchange=exchange,
        side=side,
        quantity=quantity,
        product=product,
        price_type=price_type,
        price=Decimal(price),
        trigger_price=Decimal(trigger),
        validity=validity,
        strategy=strategy,
    )


def limit(symbol: str, side: Side, quantity: int, price: str, **kwargs: object) -> OrderRequest:
    return order(symbol, side, quantity, price_type=PriceType.LIMIT, price=price, **kwargs)  # type: ignore[arg-type]


def assert_reconciles(engine: SandboxEngine, user: int = USER) -> None:
    """available + utilised + holdings cost == capital + realised - charges, to the paisa."""
    funds = engine.funds(user)
    holdings_cost = sum((h.invested for h in engine.holdings(user)), Decimal(0))
    left = funds.available_cash + funds.utilised + holdings_cost
    right = funds.starting_capital + funds.realized_pnl - funds.charges
    assert left == right, (left, right, funds)
    assert funds.available_cash >= 0


def check_books(engine: SandboxEngine, user: int = USER) -> None:
    """Every invariant the books must keep, whatever happened to them (within one day)."""
    assert_reconciles(engine, user)
    orders = {o.order_id: o for o in engine.orders(user)}
    trades = engine.trades(user)
    assert len({t.trade_id for t in trades}) == len(trades), "duplicate trade ids"
    filled: dict[str, int] = {}
    for trade in trades:
        assert trade.order_id in orders, f"trade {trade.trade_id} has no order"
        filled[trade.order_id] = filled.get(trade.order_id, 0) + trade.quantity
    for order_id, report in orders.items():
        assert report.filled_quantity <= report.quantity
        assert filled.get(order_id, 0) == report.filled_quantity, order_id
        if report.status is OrderStatus.REJECTED:
            assert report.filled_quantity == 0 and report.rejection_reason
    funds = engine.funds(user)
    assert funds.charges == sum((t.charges.total for t in trades), Decimal(0))
    net: dict[tuple[str, str, Product], int] = {}
    for trade in trades:
        key = (trade.symbol, trade.exchange, trade.product)
        net[key] = net.get(key, 0) + trade.quantity * trade.side.sign
    book = engine._books[user]
    for position in engine.positions(user):
        key = (position.symbol, position.exchange, position.product)
        delivered = book.positions[key].delivered
        assert position.net_quantity - delivered == net.get(key, 0), key
    assert funds.today_realized_pnl == sum(
        (p.realized_pnl for p in engine.positions(user)), Decimal(0)
    )
    live = [o for o in book.orders.values() if o.status.is_live]
    assert book.blocked_orders == sum((o.blocked for o in live), Decimal(0))
    assert all(o.blocked == 0 for o in book.orders.values() if not o.status.is_live)
    assert book.blocked_positions == sum((p.margin for p in book.positions.values()), Decimal(0))
