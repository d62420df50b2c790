"""Smart orders: trade only the difference between the position held and the one wanted.

API.md 4.1 (placesmartorder) with Dalal's decision D9: `pricetype`/`price` are honoured, and
smart orders for one (account, symbol, exchange, product) run one at a time, so two arriving
together cannot both see the old position and double the trade.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, replace

from services.orders.model import OrderReport, OrderRequest, Side
from services.orders.pipeline import OrderPipeline, Trader

ALREADY_MATCHED = "Positions Already Matched. No Action needed."
NOTHING_TO_DO = "No OpenPosition Found. Not placing Exit order."


@dataclass(frozen=True, slots=True)
class SmartOutcome:
    report: OrderReport | None
    message: str = ""


class SmartOrders:
    def __init__(self, pipeline: OrderPipeline) -> None:
        self._pipeline = pipeline
        self._locks: defaultdict[tuple[int, str, str, str], threading.Lock] = defaultdict(
            threading.Lock
        )
        self._guard = threading.Lock()

    def place(self, trader: Trader, request: OrderRequest, target: int) -> SmartOutcome:
        """Move the net position in this symbol/product to `target` (signed units)."""
        key = (trader.user_id, request.symbol, request.exchange, request.product.value)
        with self._guard:
            lock = self._locks[key]
        with lock:
            current = self._net_position(trader, request)
            order = plan_smart_order(request, current, target)
            if order is None:
                return SmartOutcome(None, ALREADY_MATCHED if target or current else NOTHING_TO_DO)
            return SmartOutcome(self._pipeline.place(trader, order).report)

    def plan(self, trader: Trader, request: OrderRequest, target: int) -> OrderRequest | None:
        """The order placing now would send (None when the position already matches)."""
        return plan_smart_order(request, self._net_position(trader, request), target)

    def _net_position(self, trader: Trader, request: OrderRequest) -> int:
        broker = self._pipeline.broker(trader)
        return sum(
            position.net_quantity
            for position in broker.positions()
            if (position.symbol, position.exchange, position.product)
            == (request.symbol, request.exchange, request.product)
        )


def plan_smart_order(request: OrderRequest, current: int, target: int) -> OrderRequest | None:
    """The order that takes `current` to `target` (API.md 4.1 table), or None if none is due."""
    if target == 0 and current == 0:
        # A fresh trade of the requested side and quantity (nothing when quantity is 0).
        return request if request.quantity > 0 else None
    difference = target - current
    if difference == 0:
        return None
    side = Side.BUY if difference > 0 else Side.SELL
    return replace(request, side=side, quantity=abs(difference))
