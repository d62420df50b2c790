"""The sandbox broker adapter: the common broker interface over the paper-trading engine."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from broker.base import Broker, Capability, SessionStatus, TradingMode, register
from services.market.model import Candle, Depth, Instrument, Interval, Quote
from services.orders.model import (
    FundsReport,
    HoldingReport,
    ModifyRequest,
    OrderReport,
    OrderRequest,
    PositionReport,
    TradeReport,
)

if TYPE_CHECKING:
    from services.feed.source import FeedSource
    from services.sandbox.engine import SandboxEngine


@register
class SandboxBroker(Broker):
    name = "sandbox"
    display_name = "Sandbox (paper trading)"
    mode = TradingMode.ANALYZE
    capabilities = frozenset({Capability.ORDERS, Capability.MARKET_DATA})

    @property
    def engine(self) -> SandboxEngine:
        return self.desk.sandbox

    def session_status(self) -> SessionStatus:
        # Paper trading needs no broker login, so there is no 03:00 IST expiry to report.
        return SessionStatus(connected=True, message="Sandbox is always connected.")

    def place_order(self, request: OrderRequest) -> OrderReport:
        return self.engine.place(self.user_id, request)

    def modify_order(self, request: ModifyRequest) -> OrderReport:
        return self.engine.modify(self.user_id, request)

    def cancel_order(self, order_id: str) -> OrderReport:
        return self.engine.cancel(self.user_id, order_id)

    def cancel_all_orders(self) -> tuple[list[str], list[tuple[str, str]]]:
        return self.engine.cancel_all(self.user_id)

    def orders(self) -> list[OrderReport]:
        return self.engine.orders(self.user_id)

    def order(self, order_id: str) -> OrderReport:
        return self.engine.order(self.user_id, order_id)

    def trades(self) -> list[TradeReport]:
        return self.engine.trades(self.user_id)

    def positions(self) -> list[PositionReport]:
        return self.engine.positions(self.user_id)

    def holdings(self) -> list[HoldingReport]:
        return self.engine.holdings(self.user_id)

    def funds(self) -> FundsReport:
        return self.engine.funds(self.user_id)

    # Market data: the simulated market the paper exchange fills at.
    def quote(self, instrument: Instrument) -> Quote:
        return self.desk.market.source.quote(instrument)

    def depth(self, instrument: Instrument) -> Depth:
        return self.desk.market.source.depth(instrument)

    def history(
        self, instrument: Instrument, interval: Interval, start: date, end: date
    ) -> list[Candle]:
        return self.desk.market.source.history(instrument, interval, start, end)

    def master_contract(self) -> Sequence[Instrument]:
        return self.desk.market.master.all()

    def feed(self) -> FeedSource:
        from services.feed.source import SimulatedFeed

        return SimulatedFeed(self.desk.market, self.desk.settings.feed_ticks_per_second)

    def sync(self) -> None:
        self.engine.flush()

    @property
    def announces_orders(self) -> bool:
        # The engine announces every change of an order (the caller's and the ticks') in the
        # order they happened, so a page never sees a placement's report after its fill's.
        return self.engine.announces
