"""The sandbox tells the desk's event bus what it did, off the fill path.

Every event the engine commits (a placement, a modification, a fill, a trigger, a cancellation,
a lifecycle step, a reset) reaches `changed()` under the user's lock, which only queues
references to the records it touched. A relay thread later reads their reports back under that
lock and publishes them for the user: "order", "trade", "position", then "funds". So neither
the lock nor the thread that filled (an API request, the heartbeat) waits for a subscriber,
however slow; a subscriber that fails is the event bus's to log.

The engine announces the orders its callers change too (the order pipeline then publishes
nothing for the sandbox): one queue, filled under the user's lock, is what keeps a placement's
report from reaching a page after the report of the tick that filled it.

Reports are read when announced, not when committed: a burst of changes to one order may
announce its latest state more than once instead of every state in between (each trade is
announced exactly once). Events queued together are merged per user, so a tick that fills
ten of one user's orders announces its funds once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from services.clock import Clock
from services.events import FUNDS, ORDER, POSITION, TRADE, EventBus
from services.orders.model import FundsReport, PositionReport
from services.sandbox.persistence import Changes
from services.sandbox.state import OrderState, PositionState, TradeState, UserBook

log = logging.getLogger(__name__)

# After the first event of a burst (a tick filling many orders, a basket, an API client's
# stream of orders) the relay waits this long, then announces what gathered as one batch: one
# funds report per user rather than one per order, and fewer wake-ups taking turns with the
# threads that trade (they share one interpreter). A page cannot tell 50 ms.
GATHER_SECONDS = 0.05


class Notice(NamedTuple):
    """What one committed event touched, by reference (the records' state is read later)."""

    book: UserBook
    orders: tuple[OrderState, ...]
    trades: tuple[TradeState, ...]
    positions: tuple[PositionState, ...]


@dataclass(slots=True)
class _Pending:
    """One user's notices merged: the latest of each order and position, every trade."""

    book: UserBook
    orders: dict[str, OrderState] = field(default_factory=dict)
    trades: list[TradeState] = field(default_factory=list)
    positions: dict[int, PositionState] = field(default_factory=dict)

    @property
    def user_id(self) -> int:
        return self.book.user_id


class Announcer:
    def __init__(
        self,
        events: EventBus,
        clock: Clock,
        position_report: Callable[[PositionState, datetime], PositionReport],
        funds_report: Callable[[UserBook, datetime], FundsReport],
    ) -> None:
        self._events = events
        self._clock = clock
        self._position_report = position_report
        self._funds_report = funds_report
        self._queue: queue.SimpleQueue[Notice | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sandbox-announcer", daemon=True)
        self._thread.start()

    def changed(self, changes: Changes) -> None:
        """One committed event (the user's lock held): queue what it touched, nothing more."""
        orders, positions = tuple(changes.orders.values()), tuple(changes.positions.values())
        self._queue.put(Notice(changes.book, orders, tuple(changes.trades), positions))

    def close(self, timeout: float = 10.0) -> None:
        """Announce what is queued, then stop the relay."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            time.sleep(GATHER_SECONDS)
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for pending in _merged(notice for notice in batch if notice is not None):
                try:
                    self._announce(pending)
                except Exception:  # the relay must outlive one bad read
                    log.exception("announcing sandbox changes failed (user %s)", pending.user_id)
            if None in batch:
                return

    def _announce(self, pending: _Pending) -> None:
        book = pending.book
        now = self._clock.now()
        with book.lock:  # a consistent snapshot; publishing happens after the lock is let go
            orders = [order.report() for order in pending.orders.values()]
            trades = [trade.report() for trade in pending.trades]
            positions = [self._position_report(p, now) for p in pending.positions.values()]
            funds = self._funds_report(book, now)
        publish, user_id = self._events.publish, book.user_id
        for order in orders:
            publish(ORDER, user_id, order)
        for trade in trades:
            publish(TRADE, user_id, trade)
        for position in positions:
            publish(POSITION, user_id, position)
        publish(FUNDS, user_id, funds)


def _merged(notices: Iterable[Notice]) -> list[_Pending]:
    by_user: dict[int, _Pending] = {}
    for book, orders, trades, positions in notices:
        pending = by_user.get(book.user_id)
        if pending is None:  # a user's book lives as long as the engine: one per user
            pending = by_user[book.user_id] = _Pending(book)
        for order in orders:
            pending.orders[order.order_id] = order
        pending.trades.extend(trades)
        for position in positions:
            pending.positions[id(position)] = position
    return list(by_user.values())
