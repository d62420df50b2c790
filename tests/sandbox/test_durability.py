"""Durability: the journal commits every event; a restart rebuilds identical books."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from database.models.sandbox import SandboxOrder, SandboxTrade
from services.clock import FixedClock
from services.errors import OrderRejected
from services.market.instrument_store import InstrumentMaster
from services.orders.model import ModifyRequest, OrderStatus, PriceType, Product, Side
from services.sandbox.engine import SandboxEngine
from services.sandbox.journal import JournalError
from tests.sandbox.conftest import (
    MONDAY_MORNING,
    EngineFactory,
    instrument,
    limit,
    order,
)

D = Decimal


def _snapshot(engine: SandboxEngine, user: int) -> tuple[object, ...]:
    return (
        engine.orders(user),
        engine.trades(user),
        engine.positions(user),
        engine.holdings(user),
        engine.funds(user),
    )


def _trade_a_day(engine: SandboxEngine, master: InstrumentMaster) -> dict[str, str]:
    sbin = instrument(master, "SBIN", "NSE")
    ids: dict[str, str] = {}
    engine.place(1, order("SBIN", Side.BUY, 10))
    engine.place(1, order("NIFTY23NOV26FUT", Side.SELL, 65, exchange="NFO", product=Product.NRML))
    ids["rest"] = engine.place(1, limit("SBIN", Side.BUY, 7, "901")).order_id
    ids["stop"] = engine.place(1, order("SBIN", Side.SELL, 10, price_type=PriceType.SL_M,
                                        trigger="900")).order_id  # fmt: skip
    modified = engine.place(1, limit("INFY", Side.BUY, 3, "1300")).order_id
    engine.modify(1, ModifyRequest(modified, 6, PriceType.LIMIT, D("1301")))
    engine.cancel(1, modified)
    engine.place(2, limit("SBIN", Side.SELL, 5, "1000"))
    engine.on_price(sbin, D("1000"))  # fills user 2's sell
    with contextlib.suppress(OrderRejected):
        engine.place(2, order("SBIN", Side.BUY, 1, product=Product.NRML))
    return ids


def test_ids_look_like_broker_ids(engine: SandboxEngine) -> None:
    placed = engine.place(1, order("SBIN", Side.BUY, 1))
    assert re.fullmatch(r"26112000000001", placed.order_id)
    assert re.fullmatch(r"261120\d{8}", engine.trades(1)[0].trade_id)


def test_flush_makes_every_event_durable(
    engine: SandboxEngine, master: InstrumentMaster, make_engine: EngineFactory
) -> None:
    _trade_a_day(engine, master)
    engine.flush()
    databases_engine = engine._journal._engine
    with databases_engine.connect() as connection:
        orders = connection.execute(select(func.count()).select_from(SandboxOrder)).scalar()
        trades = connection.execute(select(func.count()).select_from(SandboxTrade)).scalar()
    assert orders == len(engine.orders(1)) + len(engine.orders(2))
    assert trades == len(engine.trades(1)) + len(engine.trades(2))


def test_restart_rebuilds_identical_books(
    make_engine: EngineFactory, master: InstrumentMaster, clock: FixedClock
) -> None:
    engine = make_engine()
    ids = _trade_a_day(engine, master)
    engine.place(1, order("SBIN", Side.BUY, 4, product=Product.CNC))
    before = {user: _snapshot(engine, user) for user in (1, 2)}
    engine.close()

    restarted = make_engine()
    assert {user: _snapshot(restarted, user) for user in (1, 2)} == before
    # The resting books came back too: the limit and the stop still trade.
    sbin = instrument(master, "SBIN", "NSE")
    assert restarted.on_price(sbin, D("901")) == 1
    assert restarted.order(1, ids["rest"]).status is OrderStatus.COMPLETE
    assert restarted.on_price(sbin, D("899")) == 1
    assert restarted.order(1, ids["stop"]).status is OrderStatus.COMPLETE
    # Ids continue after the stored ones.
    newer = restarted.place(1, order("SBIN", Side.BUY, 1))
    assert newer.order_id > max(o.order_id for o in before[1][0])  # type: ignore[attr-defined]
    restarted.close()

    # Across a weekend: the CNC buy is a holding, the NRML short is carried, nothing is lost.
    clock.set(MONDAY_MORNING)
    monday = make_engine()
    monday.run_lifecycle()
    assert [(h.symbol, h.quantity) for h in monday.holdings(1)] == [("SBIN", 4)]
    carried = {p.symbol: p.net_quantity for p in monday.positions(1)}
    assert carried == {"NIFTY23NOV26FUT": -65}
    snapshot = _snapshot(monday, 1)
    monday.close()
    again = make_engine()
    assert _snapshot(again, 1) == snapshot


def test_flush_reports_a_database_that_refuses_writes(engine: SandboxEngine) -> None:
    with engine._journal._engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE sandbox_trades")
    engine.place(1, order("SBIN", Side.BUY, 1))
    with pytest.raises(JournalError, match="the sandbox journal cannot write"):
        engine.flush()


def _stored_orders(engine: SandboxEngine) -> int:
    with engine._journal._engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(SandboxOrder)) or 0)


def test_events_nobody_flushes_are_written_by_the_writer_thread(engine: SandboxEngine) -> None:
    engine.place(1, order("SBIN", Side.BUY, 1))
    engine.place(1, limit("SBIN", Side.BUY, 1, "900"))
    deadline = time.monotonic() + 5
    while _stored_orders(engine) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _stored_orders(engine) == 2
    assert engine._journal.backlog == 0


def test_concurrent_flushes_each_return_with_their_own_events_stored(
    engine: SandboxEngine,
) -> None:
    errors: list[BaseException] = []

    def trader(user: int) -> None:
        try:
            for _ in range(25):
                placed = engine.place(user, limit("SBIN", Side.BUY, 1, "900"))
                engine.flush()
                with engine._journal._engine.connect() as connection:
                    stored = connection.scalar(
                        select(SandboxOrder.order_id).where(
                            SandboxOrder.order_id == placed.order_id
                        )
                    )
                assert stored == placed.order_id
        except BaseException as error:  # reported below, on the test's thread
            errors.append(error)

    threads = [threading.Thread(target=trader, args=(user,)) for user in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _stored_orders(engine) == 100


def test_a_failed_commit_keeps_the_events_for_the_next_one(engine: SandboxEngine) -> None:
    journal = engine._journal
    with journal._engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE sandbox_orders RENAME TO sandbox_orders_away")
    engine.place(1, order("SBIN", Side.BUY, 1))
    with pytest.raises(JournalError, match="the sandbox journal cannot write"):
        engine.flush()
    assert journal.backlog == 1
    with journal._engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE sandbox_orders_away RENAME TO sandbox_orders")
    engine.flush()
    assert journal.backlog == 0
    assert _stored_orders(engine) == 1
