"""Today's intraday P&L curve per user, kept in memory from the desk's "funds" events.

Each funds report a user's broker publishes (after an order, a fill, a lifecycle step) adds
one point: the IST instant and the day's P&L (today's realised + unrealised, as the pages'
"P&L today" shows it). Points older than today (IST) are dropped, points closer together than
`spacing` replace the last one, and a day holds at most `max_points`; so a busy account costs a
few hundred kilobytes at most. A restart starts an empty curve: it is a view, not a record.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from services.clock import Clock, to_ist
from services.events import FUNDS, EventBus
from services.orders.model import FundsReport

if TYPE_CHECKING:
    from services.desk import Desk

DEFAULT_SPACING = timedelta(seconds=5)
DEFAULT_MAX_POINTS = 20_000  # a full always-open day at one point per 5 seconds is 17,280


@dataclass(frozen=True, slots=True)
class PnlPoint:
    at: datetime  # aware, IST
    pnl: Decimal


def day_pnl(funds: FundsReport) -> Decimal:
    """The day's P&L of an account: today's realised plus the open positions' unrealised."""
    return funds.today_realized_pnl + funds.unrealized_pnl


class PnlHistory:
    def __init__(
        self,
        clock: Clock,
        *,
        spacing: timedelta = DEFAULT_SPACING,
        max_points: int = DEFAULT_MAX_POINTS,
    ) -> None:
        self._clock = clock
        self._spacing = spacing
        self._max_points = max_points
        self._points: dict[int, deque[PnlPoint]] = {}
        self._lock = threading.Lock()

    def record(self, user_id: int, funds: FundsReport) -> None:
        """Add the account's P&L now (an event bus subscriber: `(user_id, FundsReport)`)."""
        point = PnlPoint(to_ist(self._clock.now()), day_pnl(funds))
        with self._lock:
            points = self._points.get(user_id)
            if points is None or (points and points[-1].at.date() != point.at.date()):
                points = self._points[user_id] = deque(maxlen=self._max_points)
            if points and point.at - points[-1].at < self._spacing:
                points.pop()
            points.append(point)

    def today(self, user_id: int) -> list[PnlPoint]:
        """The user's points of the current IST day, oldest first."""
        day = to_ist(self._clock.now()).date()
        with self._lock:
            points = self._points.get(user_id)
            if not points:
                return []
            if points[-1].at.date() != day:
                del self._points[user_id]
                return []
            return list(points)


_HISTORIES: weakref.WeakKeyDictionary[EventBus, PnlHistory] = weakref.WeakKeyDictionary()
_HISTORIES_LOCK = threading.Lock()


def pnl_history(desk: Desk) -> PnlHistory:
    """The desk's P&L history, subscribed to its "funds" events on the first call (idempotent).

    Call it once where the desk is built so the curve starts with the desk, not with the first
    dashboard view; later calls return the same history.
    """
    with _HISTORIES_LOCK:
        history = _HISTORIES.get(desk.events)
        if history is None:
            history = _HISTORIES[desk.events] = PnlHistory(desk.clock)
            desk.events.subscribe(FUNDS, history.record)
        return history
