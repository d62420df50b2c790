"""Fills into books: positions (weighted average), holdings, realised P&L, charges and margins.

Positions use the weighted-average method brokers show: buys (or sells) that add to a position
add their cost, a fill against it realises (fill price - average) x closed quantity, and the
part of a fill beyond zero opens the reversed position at the fill price. Realised P&L is
rounded to the paisa per fill; the open cost is kept exact.

CNC sells first close today's CNC buys; the rest is delivered out of holdings at the holding's
average cost (the position's `delivered` count), and the first such sale of a scrip each day
pays the DP charge.

Every fill is tried on the books first and kept only if available cash stays at or above zero
(unless `forced`: square-off and expiry must happen whatever the balance); otherwise the books
are restored and `Shortfall` raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any

from services.clock import IST
from services.market.model import Instrument
from services.orders.model import ZERO, ChargeBreakdown, Product, Side
from services.sandbox.charges import dp_charge, fill_charges
from services.sandbox.ids import IdSource
from services.sandbox.margins import incremental_margin, position_margin
from services.sandbox.persistence import Changes
from services.sandbox.settings import SandboxSettings
from services.sandbox.state import (
    AVERAGE_QUANTUM,
    HoldingState,
    OrderState,
    PositionState,
    TradeState,
    UserBook,
    paise,
)
from services.sandbox.view import MarketView

CHARGES_CACHE_SIZE = 100_000
_POSITION_FIELDS = (
    "net", "open_cost", "realized_today", "buy_quantity", "sell_quantity", "buy_value",
    "sell_value", "delivered", "margin", "settle_on",
)  # fmt: skip
_BOOK_FIELDS = (
    "realized", "today_realized", "charges", "holdings_cost", "blocked_orders", "blocked_positions",
)  # fmt: skip
_ORDER_FIELDS = ("filled", "filled_value", "brokerage_paid", "blocked")
_get_position = attrgetter(*_POSITION_FIELDS)
_get_book = attrgetter(*_BOOK_FIELDS)
_get_order = attrgetter(*_ORDER_FIELDS)


class Shortfall(Exception):
    """A fill would leave available cash below zero; the books were left as they were."""

    def __init__(self, required: Decimal, available: Decimal) -> None:
        super().__init__(f"required {required}, available {available}")
        self.required = required
        self.available = available


class NothingToDeliver(Exception):
    """A CNC sell found fewer shares in positions and holdings than it sells."""


def _restore(target: Any, names: tuple[str, ...], values: tuple[Any, ...]) -> None:
    for name, value in zip(names, values, strict=True):
        setattr(target, name, value)


def trade_position(position: PositionState, side: Side, quantity: int, price: Decimal) -> Decimal:
    """Apply one fill to the position; returns the P&L it realises (rounded to the paisa)."""
    value = price * quantity
    if side is Side.BUY:
        position.buy_quantity += quantity
        position.buy_value += value
    else:
        position.sell_quantity += quantity
        position.sell_value += value
    signed = quantity if side is Side.BUY else -quantity
    net = position.net
    if net == 0 or (net > 0) == (signed > 0):
        position.open_cost += value
        position.net = net + signed
        return ZERO
    held = abs(net)
    closing = min(quantity, held)
    if closing == held:
        released = position.open_cost
    else:
        released = (position.open_cost * closing / held).quantize(AVERAGE_QUANTUM)
    proceeds = price * closing
    realized = paise(proceeds - released if net > 0 else released - proceeds)
    position.open_cost -= released
    position.net = net + signed
    if quantity > closing:
        position.open_cost = price * (quantity - closing)
    position.realized_today += realized
    return realized


class Ledger:
    def __init__(self, view: MarketView, settings: SandboxSettings, ids: IdSource) -> None:
        self.view = view
        self.settings = settings
        self.ids = ids
        self._dp = dp_charge().dp_charges
        self._charges: dict[tuple[object, ...], ChargeBreakdown] = {}

    # ------------------------------------------------------------------ margins

    def _underlying_for(self, instrument: Instrument, price: Decimal, at: datetime) -> Decimal:
        """The underlying's price, read only where it matters (short options)."""
        if not instrument.is_option:
            return price
        found = self.view.underlying_price(instrument, at)
        if found is None or found <= 0:
            return instrument.strike or price
        return found

    def order_requirement(
        self, book: UserBook, order: OrderState, quantity: int, price: Decimal, at: datetime
    ) -> Decimal:
        """Margin `quantity` more of `order` needs on top of the current position, at `price`."""
        instrument = order.instrument
        if instrument is None or quantity <= 0:
            return ZERO
        if order.product is Product.CNC and order.side is Side.SELL:
            return ZERO
        position = book.positions.get((order.symbol, order.exchange, order.product))
        net = position.net if position is not None else 0
        underlying = price
        if instrument.is_option and order.side is Side.SELL:
            underlying = self._underlying_for(instrument, price, at)
        return incremental_margin(
            instrument, order.product, order.side, quantity, price, underlying, net,
            self.settings.margins,
        )  # fmt: skip

    def block(self, book: UserBook, order: OrderState, amount: Decimal) -> None:
        book.blocked_orders += amount - order.blocked
        order.blocked = amount

    def _position_margin(self, position: PositionState, at: datetime) -> Decimal:
        net = position.net
        if net == 0:
            return ZERO
        instrument = position.instrument
        price = position.average_price
        underlying = self._underlying_for(instrument, price, at) if net < 0 else price
        return position_margin(
            instrument, position.product, net, price, underlying, self.settings.margins
        )

    def remargin(self, book: UserBook, position: PositionState, at: datetime) -> None:
        margin = self._position_margin(position, at)
        book.blocked_positions += margin - position.margin
        position.margin = margin

    # ------------------------------------------------------------------ fills

    def charges(
        self,
        instrument: Instrument,
        product: Product,
        side: Side,
        quantity: int,
        price: Decimal,
        brokerage_so_far: Decimal,
    ) -> ChargeBreakdown:
        """`fill_charges`, remembered for an order's first fill (the same fills recur)."""
        if brokerage_so_far:
            return fill_charges(
                instrument, product, side, quantity, price, brokerage_so_far=brokerage_so_far
            )
        key = (instrument.symbol, instrument.exchange, product, side, quantity, price)
        found = self._charges.get(key)
        if found is None:
            found = fill_charges(instrument, product, side, quantity, price)
            if len(self._charges) >= CHARGES_CACHE_SIZE:
                self._charges.clear()
            self._charges[key] = found
        return found

    def position(self, book: UserBook, instrument: Instrument, product: Product) -> PositionState:
        key = (instrument.symbol, instrument.exchange.value, product)
        found = book.positions.get(key)
        if found is None:
            found = PositionState(book.user_id, instrument, product, book.day)
            book.positions[key] = found
        return found

    def execute(
        self,
        book: UserBook,
        order: OrderState,
        fills: Sequence[tuple[Decimal, int]],
        at: datetime,
        changes: Changes,
        *,
        forced: bool = False,
        charges: ChargeBreakdown | None = None,
    ) -> list[TradeState]:
        """Fill `order` at (price, quantity) pairs, releasing its blocked margin.

        Raises:
            Shortfall: the fills would take available cash below zero (books unchanged).
        """
        instrument = order.instrument
        if instrument is None:
            raise ValueError(f"order {order.order_id} has no contract to fill")
        key = (order.symbol, order.exchange, order.product)
        position = book.positions.get(key)
        created = position is None
        if position is None:
            position = book.positions[key] = PositionState(
                book.user_id, instrument, order.product, book.day
            )
        delivering = order.product is Product.CNC and order.side is Side.SELL
        holding = book.holdings.get((order.symbol, order.exchange)) if delivering else None
        saved = (_get_book(book), _get_order(order), _get_position(position))
        saved_holding = None if holding is None else (holding.quantity, holding.cost)
        dp_before = delivering and (order.symbol, order.exchange) in book.dp_charged
        available = book.available
        self.block(book, order, ZERO)
        pending: list[tuple[Decimal, int, ChargeBreakdown, Decimal]] = []
        try:
            for price, quantity in fills:
                fill_charges_ = charges or self.charges(
                    instrument, order.product, order.side, quantity, price, order.brokerage_paid
                )
                realized, delivered = self._apply(book, order, position, holding, quantity, price)
                if delivered and (order.symbol, order.exchange) not in book.dp_charged:
                    fill_charges_ = replace(fill_charges_, dp_charges=self._dp)
                    book.dp_charged.add((order.symbol, order.exchange))
                order.filled += quantity
                order.filled_value += price * quantity
                order.brokerage_paid += fill_charges_.brokerage
                book.charges += fill_charges_.total
                book.realized += realized
                book.today_realized += realized
                pending.append((price, quantity, fill_charges_, realized))
            self.remargin(book, position, at)
            if not forced and book.available < 0:
                raise Shortfall(available - book.available, available)
        except Exception:
            _restore(book, _BOOK_FIELDS, saved[0])
            _restore(order, _ORDER_FIELDS, saved[1])
            _restore(position, _POSITION_FIELDS, saved[2])
            if holding is not None and saved_holding is not None:
                holding.quantity, holding.cost = saved_holding
            if delivering and not dp_before:
                book.dp_charged.discard((order.symbol, order.exchange))
            if created:
                del book.positions[key]
            raise
        day = at.astimezone(IST).date()
        trades = [
            TradeState(
                self.ids.trade_id(day),
                order.order_id,
                book.user_id,
                order.symbol,
                order.exchange,
                order.side,
                quantity,
                price,
                order.product,
                at,
                day,
                fill_charges_,
                realized,
            )
            for price, quantity, fill_charges_, realized in pending
        ]
        book.trades.extend(trades)
        changes.trades.extend(trades)
        changes.position(position)
        if holding is not None:
            changes.holding(holding)
        order.updated_at = at
        changes.order(order)
        return trades

    def _apply(
        self,
        book: UserBook,
        order: OrderState,
        position: PositionState,
        holding: HoldingState | None,
        quantity: int,
        price: Decimal,
    ) -> tuple[Decimal, int]:
        """One fill into position and holdings: (realised P&L, units delivered from holdings)."""
        if order.product is not Product.CNC:
            return trade_position(position, order.side, quantity, price), 0
        if order.side is Side.BUY:
            position.settle_on = self.view.calendar.settlement_date(order.exchange, book.day)
            return trade_position(position, order.side, quantity, price), 0
        from_position = min(quantity, max(position.net, 0))
        delivered = quantity - from_position
        realized = ZERO
        if from_position:
            realized = trade_position(position, Side.SELL, from_position, price)
        if delivered:
            if holding is None or holding.quantity < delivered:
                raise NothingToDeliver(order.symbol)
            released = holding.cost
            if delivered != holding.quantity:
                released = (holding.cost * delivered / holding.quantity).quantize(AVERAGE_QUANTUM)
            holding.quantity -= delivered
            holding.cost -= released
            book.holdings_cost -= released
            gain = paise(price * delivered - released)
            position.sell_quantity += delivered
            position.sell_value += price * delivered
            position.delivered += delivered
            position.realized_today += gain
            realized += gain
        return realized, delivered
