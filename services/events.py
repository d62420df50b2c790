"""An in-process event bus: services publish what happened, channels subscribe.

Order, trade, position and fund events go to whoever listens (Socket.IO rooms, Telegram,
running strategies). A failing subscriber is logged and skipped: one broken channel must
never stop an order or the other channels.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Subscriber = Callable[[int, Any], None]  # (user_id, payload)

# Topics and what each carries (services/orders/model.py reports unless said otherwise).
ORDER = "order"  # OrderReport: an order placed, changed, filled, triggered or cancelled
TRADE = "trade"  # TradeReport: one fill
POSITION = "position"  # PositionReport: a position a fill (or the day's lifecycle) changed
FUNDS = "funds"  # FundsReport: the account after any of the above
ACTION_CENTER = "action_center"  # a JSON-ready dict: the Action Center's queue changed


class EventBus:
    def __init__(self) -> None:
        self._subscribers: defaultdict[str, list[Subscriber]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, topic: str, subscriber: Subscriber) -> Callable[[], None]:
        """Listen to `topic`; returns a function that stops listening."""
        with self._lock:
            self._subscribers[topic].append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers[topic]:
                    self._subscribers[topic].remove(subscriber)

        return unsubscribe

    def publish(self, topic: str, user_id: int, payload: Any) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(topic, ()))
        for subscriber in subscribers:
            try:
                subscriber(user_id, payload)
            except Exception:
                log.exception("event subscriber failed on %s", topic)
