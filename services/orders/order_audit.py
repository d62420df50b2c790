"""Orders in the audit trail: what was asked (placed, modified, cancelled, refused) and what
the exchange did (filled, rejected, expired).

The pipeline reports requests as they happen; fills and the exchange's own cancellations and
rejections arrive on the event bus. An outcome already written by the pipeline (a rejection
at placement, a cancel the trader asked for) is not written again when its event comes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from services.events import ORDER, TRADE, EventBus
from services.orders.intents import request_to_json
from services.orders.model import OrderReport, OrderRequest, OrderStatus, TradeReport

if TYPE_CHECKING:
    from services.audit import AuditTrail

_REMEMBERED = 20_000
_OUTCOMES = {OrderStatus.CANCELLED: "order.cancelled", OrderStatus.REJECTED: "order.rejected"}


class OrderAudit:
    def __init__(self, audit: AuditTrail, events: EventBus) -> None:
        self._audit = audit
        self._written: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()
        events.subscribe(TRADE, self._on_trade)
        events.subscribe(ORDER, self._on_order)

    def placed(self, user_id: int, actor: str, request: OrderRequest, report: OrderReport) -> None:
        rejected = report.status is OrderStatus.REJECTED
        details: dict[str, Any] = {
            **request_to_json(request),
            "status": report.status.value,
        }
        if rejected:
            details["reason"] = report.rejection_reason
            self._mark(report.order_id, OrderStatus.REJECTED)
        action = "order.rejected" if rejected else "order.placed"
        self._audit.record(
            action, actor=actor, user_id=user_id, subject=report.order_id, details=details
        )

    def refused(self, user_id: int, actor: str, request: OrderRequest, reason: str) -> None:
        """Stopped before any broker saw it (a risk rule, the broker's refusal to accept)."""
        details = {**request_to_json(request), "reason": reason}
        self._audit.record("order.refused", actor=actor, user_id=user_id, details=details)

    def changed(self, user_id: int, actor: str, operation: str, report: OrderReport) -> None:
        if operation == "cancel":
            self._mark(report.order_id, OrderStatus.CANCELLED)
            action = "order.cancelled"
        else:
            action = "order.modified"
        details = {
            "symbol": report.symbol,
            "exchange": report.exchange,
            "quantity": report.quantity,
            "price_type": report.price_type.value,
            "price": report.price,
            "trigger_price": report.trigger_price,
            "status": report.status.value,
        }
        self._audit.record(
            action, actor=actor, user_id=user_id, subject=report.order_id, details=details
        )

    def _on_trade(self, user_id: int, trade: TradeReport) -> None:
        self._audit.record(
            "order.filled",
            actor="exchange",
            user_id=user_id,
            subject=trade.order_id,
            details={
                "trade_id": trade.trade_id,
                "symbol": trade.symbol,
                "exchange": trade.exchange,
                "side": trade.side.value,
                "quantity": trade.quantity,
                "price": trade.price,
            },
        )

    def _on_order(self, user_id: int, report: OrderReport) -> None:
        action = _OUTCOMES.get(report.status)
        if action is None or not self._mark(report.order_id, report.status):
            return
        details = {"symbol": report.symbol, "exchange": report.exchange}
        if report.rejection_reason:
            details["reason"] = report.rejection_reason
        self._audit.record(
            action, actor="exchange", user_id=user_id, subject=report.order_id, details=details
        )

    def _mark(self, order_id: str, status: OrderStatus) -> bool:
        """Remember an outcome as written; False when it already was."""
        key = (order_id, status.value)
        with self._lock:
            if key in self._written:
                return False
            self._written[key] = None
            if len(self._written) > _REMEMBERED:
                self._written.popitem(last=False)
            return True
