"""Order flows of one user's book: place, modify, cancel, and fills of resting orders.

Every method here runs with the user's lock held (the engine takes it); instrument locks are
taken inside, never the other way round.

Matching rules:

- MARKET walks the simulated depth of the current second level by level at each level's
  price, sharing that second's liquidity with earlier orders. What the five levels cannot
  fill is cancelled, like a broker's market-protection IOC: the order ends `cancelled` with
  its filled part kept and the reason saying how much was cancelled.
- LIMIT takes the levels priced within its limit the same way (so it fills at the better of
  its price and the book); the rest rests (DAY) or is cancelled (IOC).
- A resting LIMIT fills in full at its own price once the last price trades at or through it
  (buy: last <= limit; sell: last >= limit). Resting fills do not consume simulated depth.
- SL and SL-M rest until the last price reaches the trigger (buy: last >= trigger; sell:
  last <= trigger). SL-M then fills in full at that last price; SL becomes a limit order that
  fills at that last price when it is within the limit, else rests as a LIMIT.
- A stop whose trigger the last price has already reached is refused at placement, as Kite
  does, rather than triggered at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from services.errors import InsufficientFunds, NotFound, OrderRejected
from services.market.model import Instrument
from services.orders.model import (
    ZERO,
    ModifyRequest,
    OrderReport,
    OrderRequest,
    OrderStatus,
    PriceType,
    Product,
    Side,
    Validity,
)
from services.sandbox.books import Hit
from services.sandbox.ids import IdSource
from services.sandbox.journal import Unit
from services.sandbox.ledger import Ledger, NothingToDeliver, Shortfall
from services.sandbox.persistence import Changes
from services.sandbox.state import OrderState, UserBook, paise
from services.sandbox.validation import Validator
from services.sandbox.view import MarketView

_STOPS = frozenset({PriceType.SL, PriceType.SL_M})


def contract(order: OrderState) -> Instrument:
    """The order's contract (every accepted order has one; only some rejected ones lack it)."""
    if order.instrument is None:
        raise OrderRejected(f"Symbol {order.symbol} not found on {order.exchange}")
    return order.instrument


def funds_message(required: Decimal, available: Decimal) -> str:
    return (
        f"Insufficient funds. Required margin: ₹{paise(required)}, "
        f"available: ₹{paise(max(available, ZERO))}"
    )


def _normalised_prices(request: OrderRequest) -> tuple[Decimal, Decimal]:
    """MARKET ignores both prices, LIMIT the trigger, SL-M the price (API.md 2.3)."""
    kind = request.price_type
    price = request.price if kind in (PriceType.LIMIT, PriceType.SL) else ZERO
    trigger = request.trigger_price if kind in _STOPS else ZERO
    return price, trigger


class OrderFlow:
    def __init__(
        self,
        view: MarketView,
        validator: Validator,
        ledger: Ledger,
        ids: IdSource,
        submit: Callable[[Unit], None],
        announce: Callable[[Changes], None] | None = None,
    ) -> None:
        self._view = view
        self._validator = validator
        self._ledger = ledger
        self._ids = ids
        self._submit = submit
        self._announce = announce

    def commit(self, changes: Changes, now: datetime) -> None:
        """Queue the event for the database and, when someone listens, for announcement."""
        self._submit(changes.operations(now))
        if self._announce is not None:
            self._announce(changes)

    # ------------------------------------------------------------------ place

    def place(self, book: UserBook, request: OrderRequest, now: datetime, day: date) -> OrderReport:
        price, trigger = _normalised_prices(request)
        symbol = request.symbol.strip().upper()
        order = OrderState(
            self._ids.order_id(day), book.user_id, symbol, request.exchange, None,
            request.side, request.quantity, request.price_type, request.product, price,
            trigger, request.validity, request.strategy, now, day, request.source.value,
            request.algo_id,
        )  # fmt: skip
        if order.price_type in _STOPS:
            order.status = OrderStatus.TRIGGER_PENDING
        book.orders[order.order_id] = order
        changes = Changes(book)
        changes.order(order)
        try:
            self._validate(order, now, day)
            self._route(book, order, now, changes)
        except OrderRejected as error:
            order.status = OrderStatus.REJECTED
            order.reason = error.message
            self._ledger.block(book, order, ZERO)
            self.commit(changes, now)
            raise
        self.commit(changes, now)
        return order.report()

    def _validate(self, order: OrderState, now: datetime, day: date) -> None:
        check = self._validator
        instrument = check.instrument(order.symbol, order.exchange, now, day)
        order.instrument = instrument
        check.quantity(instrument, order.quantity)
        check.product(instrument, order.product)
        check.prices(instrument, order.side, order.price_type, order.price, order.trigger)
        check.validity(order.price_type, order.validity)
        check.session(instrument, order.product, now, day)
        self._check_band(order, now, day)

    def _check_band(self, order: OrderState, now: datetime, day: date) -> None:
        instrument = contract(order)
        if order.price_type in (PriceType.LIMIT, PriceType.SL):
            self._validator.band(instrument, order.price, "Price", now, day)
        if order.price_type in _STOPS:
            self._validator.band(instrument, order.trigger, "Trigger price", now, day)

    def _route(self, book: UserBook, order: OrderState, now: datetime, changes: Changes) -> None:
        """Check what can be sold and paid for, then execute, rest or arm the order."""
        if order.product is Product.CNC and order.side is Side.SELL:
            self._check_sellable(book, order)
        kind = order.price_type
        if kind is PriceType.MARKET:
            self._take(book, order, now, changes, None)
            self._finish_immediate(order, now)
        elif kind is PriceType.LIMIT or (kind is PriceType.SL and order.status is OrderStatus.OPEN):
            self._require(book, order, order.price, now)
            self._take(book, order, now, changes, order.price)
            if order.remaining and order.validity is Validity.IOC:
                self._finish_immediate(order, now)
            elif order.remaining:
                self._rest(book, order, now, stop=False)
            else:
                order.status = OrderStatus.COMPLETE
        else:
            ltp = self._view.ltp(contract(order), now)
            if ltp is not None:
                self._validator.stop_trigger(order.side, order.trigger, ltp)
            self._require(
                book, order, order.trigger if kind is PriceType.SL_M else order.price, now
            )
            self._rest(book, order, now, stop=True)

    def _check_sellable(self, book: UserBook, order: OrderState) -> None:
        position = book.positions.get((order.symbol, order.exchange, Product.CNC))
        holding = book.holdings.get((order.symbol, order.exchange))
        owned = max(position.net if position else 0, 0) + (holding.quantity if holding else 0)
        pending = sum(
            other.remaining
            for other in book.orders.values()
            if other is not order
            and other.status.is_live
            and other.product is Product.CNC
            and other.side is Side.SELL
            and other.symbol == order.symbol
            and other.exchange == order.exchange
        )
        sellable = owned - pending
        if order.remaining <= sellable:
            return
        if owned == 0:
            raise OrderRejected(
                f"Cannot sell {order.symbol} in CNC. No positions or holdings available."
            )
        raise OrderRejected(
            f"Cannot sell {order.remaining} {order.symbol} in CNC. Only {max(sellable, 0)} "
            "available in positions and holdings after open sell orders."
        )

    def _require(self, book: UserBook, order: OrderState, price: Decimal, now: datetime) -> None:
        required = self._ledger.order_requirement(book, order, order.remaining, price, now)
        available = book.available + order.blocked
        if required > available:
            raise InsufficientFunds(funds_message(required, available))

    def _take(
        self,
        book: UserBook,
        order: OrderState,
        now: datetime,
        changes: Changes,
        limit: Decimal | None,
    ) -> None:
        """Fill what the current second's depth holds (within `limit`)."""
        instrument_book = self._view.book(contract(order))
        buying = order.side is Side.BUY
        with instrument_book.lock:
            snapshot = self._view.snapshot(instrument_book, now)
            plan = snapshot.plan(buying, order.remaining, limit)
            if not plan:
                return
            try:
                self._ledger.execute(
                    book, order, [(fill.price, fill.quantity) for fill in plan], now, changes
                )
            except Shortfall as error:
                raise InsufficientFunds(funds_message(error.required, error.available)) from None
            except NothingToDeliver:
                raise OrderRejected(
                    f"Cannot sell {order.symbol} in CNC. No positions or holdings available."
                ) from None
            snapshot.take(buying, plan)

    def _finish_immediate(self, order: OrderState, now: datetime) -> None:
        """MARKET and IOC orders: what did not fill now is cancelled."""
        order.updated_at = now
        if not order.remaining:
            order.status = OrderStatus.COMPLETE
            return
        order.status = OrderStatus.CANCELLED
        if order.price_type is PriceType.MARKET:
            order.reason = (
                f"Market protection: {order.remaining} of {order.quantity} cancelled, "
                "no more liquidity within the 5 best levels"
            )
        else:
            order.reason = f"IOC: {order.remaining} of {order.quantity} unfilled and cancelled"

    def _rest(self, book: UserBook, order: OrderState, now: datetime, *, stop: bool) -> None:
        """Block the remainder's margin and put the order in its instrument's book."""
        instrument = contract(order)
        price = order.trigger if order.price_type is PriceType.SL_M else order.price
        required = self._ledger.order_requirement(book, order, order.remaining, price, now)
        if required > book.available + order.blocked:
            order.status = OrderStatus.CANCELLED
            order.reason = "Remaining quantity cancelled: " + funds_message(
                required, book.available + order.blocked
            )
            self._ledger.block(book, order, ZERO)
            return
        self._ledger.block(book, order, required)
        order.status = OrderStatus.TRIGGER_PENDING if stop else OrderStatus.OPEN
        order.updated_at = now
        instrument_book = self._view.book(instrument)
        with instrument_book.lock:
            if stop:
                instrument_book.rest_stop(order, order.side is Side.BUY)
            else:
                instrument_book.rest_limit(order, order.side is Side.BUY)

    # ------------------------------------------------------------------ modify and cancel

    def find(self, book: UserBook, order_id: str) -> OrderState:
        order = book.orders.get(order_id)
        if order is None:
            raise NotFound(f"Order {order_id} not found")
        return order

    def modify(
        self, book: UserBook, request: ModifyRequest, now: datetime, day: date
    ) -> OrderReport:
        order = self.find(book, request.order_id)
        if not order.status.is_live or order.instrument is None:
            raise OrderRejected(
                f"Order {order.order_id} is {order.status.value}; only open or trigger pending "
                "orders can be modified"
            )
        check = self._validator
        instrument = order.instrument
        check.strict_fields(request.price_type, request.price, request.trigger_price)
        check.quantity(instrument, request.quantity)
        if request.quantity <= order.filled:
            raise OrderRejected(
                f"Quantity {request.quantity} must be more than the {order.filled} already filled"
            )
        check.prices(
            instrument, order.side, request.price_type, request.price, request.trigger_price
        )
        check.validity(request.price_type, order.validity)
        saved = (order.quantity, order.price_type, order.price, order.trigger, order.status,
                 order.blocked, order.generation)  # fmt: skip
        triggered = order.status is OrderStatus.OPEN
        order.quantity, order.price_type = request.quantity, request.price_type
        order.price, order.trigger = request.price, request.trigger_price
        order.generation += 1
        still_open = request.price_type not in _STOPS or (
            triggered and request.price_type is PriceType.SL
        )
        order.status = OrderStatus.OPEN if still_open else OrderStatus.TRIGGER_PENDING
        changes = Changes(book)
        try:
            self._check_band(order, now, day)
            self._ledger.block(book, order, ZERO)
            self._route(book, order, now, changes)
        except OrderRejected:
            (order.quantity, order.price_type, order.price, order.trigger, order.status,
             blocked, order.generation) = saved  # fmt: skip
            self._ledger.block(book, order, blocked)
            raise
        order.updated_at = now
        changes.order(order)
        self.commit(changes, now)
        return order.report()

    def cancel(self, book: UserBook, order_id: str, now: datetime, reason: str = "") -> OrderReport:
        order = self.find(book, order_id)
        if not order.status.is_live:
            raise OrderRejected(
                f"Order {order_id} is {order.status.value}; only open or trigger pending "
                "orders can be cancelled"
            )
        changes = Changes(book)
        self.cancel_order(book, order, now, changes, reason)
        self.commit(changes, now)
        return order.report()

    def cancel_order(
        self, book: UserBook, order: OrderState, now: datetime, changes: Changes, reason: str
    ) -> None:
        order.status = OrderStatus.CANCELLED
        order.reason = reason
        order.generation += 1
        order.updated_at = now
        self._ledger.block(book, order, ZERO)
        changes.order(order)

    # ------------------------------------------------------------------ resting fills

    def fill_resting(
        self, book: UserBook, order: OrderState, generation: int, hit: Hit, price: Decimal,
        at: datetime,
    ) -> int:  # fmt: skip
        """A resting order the last price `price` crossed; returns the trades made."""
        if order.generation != generation or not order.status.is_live:
            return 0
        instrument = contract(order)
        changes = Changes(book)
        fill_price = order.price if hit is Hit.LIMIT else price
        if hit is Hit.STOP and order.price_type is PriceType.SL:
            order.status = OrderStatus.OPEN  # triggered: now a limit order
            order.updated_at = at
            changes.order(order)
            buying = order.side is Side.BUY
            if (price > order.price) if buying else (price < order.price):
                instrument_book = self._view.book(instrument)
                with instrument_book.lock:
                    instrument_book.rest_limit(order, buying)
                self.commit(changes, at)
                return 0
        try:
            trades = self._ledger.execute(book, order, [(fill_price, order.remaining)], at, changes)
        except Shortfall as error:
            reason = "Cancelled at execution: " + funds_message(error.required, error.available)
            self.cancel_order(book, order, at, changes, reason)
            self.commit(changes, at)
            return 0
        except NothingToDeliver:
            reason = f"Cancelled at execution: no {order.symbol} left in positions or holdings"
            self.cancel_order(book, order, at, changes, reason)
            self.commit(changes, at)
            return 0
        order.status = OrderStatus.COMPLETE
        self.commit(changes, at)
        return len(trades)
