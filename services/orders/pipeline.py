"""The order pipeline: one path for every order, whatever its source (DESIGN.md).

normalise -> validate against the instrument master -> risk gates -> order-mode gate ->
route to the user's broker -> record a latency sample -> publish an order event (unless the
broker publishes its own, as the sandbox does: `Broker.announces_orders`).
Callers (REST, pages, webhooks, strategies, Telegram) hand in a normalised `OrderRequest`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Protocol

from broker.base import Broker, TradingMode, broker_for
from database.engine import DatabaseName
from database.models import OrderLatency
from services.background_writer import BackgroundWriter
from services.errors import DalalError
from services.events import ORDER
from services.orders.intents import default_algo_id
from services.orders.model import ModifyRequest, OrderReport, OrderRequest
from services.orders.order_audit import OrderAudit
from services.orders.validation import validate_order

if TYPE_CHECKING:
    from services.desk import Desk
    from services.orders.smart import SmartOrders


@dataclass(frozen=True, slots=True)
class Trader:
    """Who an order is for: the user, the broker and mode they trade in, and who acts
    (the username, or e.g. "approved by …"), for the audit trail."""

    user_id: int
    broker: str
    order_mode: str = "auto"
    actor: str = ""

    @property
    def who(self) -> str:
        return self.actor or f"user {self.user_id}"


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    report: OrderReport
    mode: TradingMode


@dataclass(frozen=True, slots=True)
class LatencySample:
    user_id: int
    broker: str
    operation: str
    order_id: str | None
    validate_us: int
    broker_us: int
    total_us: int
    outcome: str


class OrderGate(Protocol):
    """A pre-trade check (risk rules, order mode): raises a DalalError to stop the order."""

    def check(self, trader: Trader, request: OrderRequest) -> None: ...


class OrderPipeline:
    def __init__(self, desk: Desk, gates: list[OrderGate] | None = None) -> None:
        self._desk = desk
        self._gates: list[OrderGate] = list(gates or [])
        self._smart: SmartOrders | None = None
        self._audit = OrderAudit(desk.audit, desk.events)
        self._latency = BackgroundWriter[LatencySample](
            desk.databases,
            DatabaseName.LATENCY,
            OrderLatency,
            lambda sample: {"created_at": desk.clock.now(), **asdict(sample)},
            name="order-latency",
        )

    @property
    def smart(self) -> SmartOrders:
        """Smart orders share this pipeline and its per-position locks."""
        if self._smart is None:
            from services.orders.smart import SmartOrders

            self._smart = SmartOrders(self)
        return self._smart

    def add_gate(self, gate: OrderGate) -> None:
        self._gates.append(gate)

    def broker(self, trader: Trader) -> Broker:
        return broker_for(trader.broker, trader.user_id, self._desk)

    def check(self, request: OrderRequest, trader: Trader | None = None) -> OrderRequest:
        """Validate against the instrument master without sending (baskets check every leg):
        the trader's live broker's own master when there is one, else the desk's."""
        if trader is not None and trader.broker != "sandbox":
            broker = self.broker(trader)
            if broker.mode is TradingMode.LIVE:
                # The exchange enforces the circuit band on live orders; the simulated band
                # would be wrong for them.
                return validate_order(request, broker.instrument(request.symbol, request.exchange))
        market = self._desk.market
        instrument = market.instrument(request.symbol, request.exchange)
        return validate_order(request, instrument, market.source.price_band(instrument))

    def vet(self, trader: Trader, request: OrderRequest) -> OrderRequest:
        """Validate and run the pre-trade gates without sending (approving a queued order)."""
        request = self.check(request, trader)
        for gate in self._gates:
            gate.check(trader, request)
        return request

    def place(self, trader: Trader, request: OrderRequest) -> OrderOutcome:
        started = time.perf_counter()
        request = self.check(request, trader)
        if not request.algo_id:
            algo_id = default_algo_id(trader.user_id, request.source.value, request.strategy)
            request = replace(request, algo_id=algo_id)
        try:
            for gate in self._gates:
                gate.check(trader, request)
        except DalalError as e:
            self._audit.refused(trader.user_id, trader.who, request, e.message)
            raise
        validated = time.perf_counter()
        broker = self.broker(trader)
        try:
            report = broker.place_order(request)
        except DalalError as e:
            self._record(trader, "place", None, started, validated, "rejected")
            self._audit.refused(trader.user_id, trader.who, request, e.message)
            raise
        broker.sync()
        self._record(trader, "place", report.order_id, started, validated, report.status.value)
        self._audit.placed(trader.user_id, trader.who, request, report)
        self._announce(broker, trader, report)
        return OrderOutcome(report, broker.mode)

    def modify(self, trader: Trader, request: ModifyRequest) -> OrderOutcome:
        return self._change(trader, "modify", lambda broker: broker.modify_order(request))

    def cancel(self, trader: Trader, order_id: str) -> OrderOutcome:
        return self._change(trader, "cancel", lambda broker: broker.cancel_order(order_id))

    def _change(
        self, trader: Trader, operation: str, send: Callable[[Broker], OrderReport]
    ) -> OrderOutcome:
        """Send a change to an existing order, make it durable, time it and announce it."""
        started = time.perf_counter()
        broker = self.broker(trader)
        report = send(broker)
        broker.sync()
        self._record(trader, operation, report.order_id, started, started, report.status.value)
        self._audit.changed(trader.user_id, trader.who, operation, report)
        self._announce(broker, trader, report)
        return OrderOutcome(report, broker.mode)

    def cancel_all(self, trader: Trader) -> tuple[list[str], list[tuple[str, str]], TradingMode]:
        broker = self.broker(trader)
        cancelled, failed = broker.cancel_all_orders()
        broker.sync()
        for order_id in cancelled:
            self._audit.changed(trader.user_id, trader.who, "cancel", broker.order(order_id))
        if not broker.announces_orders:
            for order_id in cancelled:
                self._desk.events.publish(ORDER, trader.user_id, broker.order(order_id))
        return cancelled, failed, broker.mode

    def _announce(self, broker: Broker, trader: Trader, report: OrderReport) -> None:
        if not broker.announces_orders:
            self._desk.events.publish(ORDER, trader.user_id, report)

    def flush(self) -> None:
        self._latency.flush()

    def _record(
        self,
        trader: Trader,
        operation: str,
        order_id: str | None,
        started: float,
        validated: float,
        outcome: str,
    ) -> None:
        finished = time.perf_counter()
        self._latency.write(
            LatencySample(
                user_id=trader.user_id,
                broker=trader.broker,
                operation=operation,
                order_id=order_id,
                validate_us=int((validated - started) * 1e6),
                broker_us=int((finished - validated) * 1e6),
                total_us=int((finished - started) * 1e6),
                outcome=outcome[:16],
            )
        )
