"""The sandbox's day: MIS square-off, F&O expiry, end-of-day order expiry, rollover, T+1.

Steps and when they run (IST; the same times in always-open mode, where the day rolls over
at midnight):

- MIS square-off, per venue at its cut-off (`settings.Timetable`): open MIS orders there are
  cancelled, then each MIS position is closed by a MARKET order tagged "Squareoff" that walks
  the depth of the cut-off second; what the five levels cannot take fills at the worst
  level's price (a square-off must close). Normal charges apply.
- Expiry, per derivatives exchange at `expiry_instant` on the expiry day: open orders in the
  expiring contracts are cancelled and positions settled by an "Expiry" order at the final
  price: futures at the underlying's price at the expiry instant (the future converges to
  it), options at intrinsic value against it (0 when out of the money). An in-the-money long
  pays `exercise_charges`; nothing else is charged.
- Day end (calendar mode), per venue at its last session's end: DAY orders still open are
  cancelled with the reason "expired". In always-open mode they expire at the rollover.
- Rollover, once per user book on its first touch of a new day (and for all books by
  `run`): yesterday's live orders expire, any MIS position the square-off missed (the desk
  was down) is squared off at that day's cut-off price, expired contracts are settled, CNC
  positions whose settlement date has come become holdings, today's counters restart.

Each step is recorded in `sandbox_lifecycle_runs` once done, and each is idempotent anyway
(it acts only on what is still open), so a crash mid-step simply redoes the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal

from services.clock import IST
from services.market.expiries import expiry_instant
from services.market.model import Exchange, InstrumentType
from services.orders.model import (
    ZERO,
    OrderStatus,
    PriceType,
    Product,
    Side,
    Source,
    Validity,
)
from services.sandbox.charges import NO_CHARGES, exercise_charges
from services.sandbox.flow import OrderFlow
from services.sandbox.ids import IdSource
from services.sandbox.journal import Unit
from services.sandbox.ledger import Ledger
from services.sandbox.persistence import Changes
from services.sandbox.settings import VENUES, Timetable
from services.sandbox.state import HoldingState, OrderState, PositionState, UserBook
from services.sandbox.view import MarketView

DERIVATIVE_EXCHANGES = ("NFO", "BFO", "CDS", "BCD", "MCX")
SQUAREOFF_TAG = "Squareoff"
EXPIRY_TAG = "Expiry"


def ist_day(instant: datetime) -> date:
    return instant.astimezone(IST).date()


class Lifecycle:
    def __init__(
        self,
        view: MarketView,
        timetable: Timetable,
        ledger: Ledger,
        flow: OrderFlow,
        ids: IdSource,
        submit: Callable[[Unit], None],
        runs: set[tuple[str, str]],
    ) -> None:
        self._view = view
        self._timetable = timetable
        self._ledger = ledger
        self._flow = flow
        self._ids = ids
        self._submit = submit
        self.runs = runs

    # ------------------------------------------------------------------ scheduling

    def due_steps(self, now: datetime, day: date) -> list[tuple[str, str]]:
        """Steps of `day` whose time has come and which have not run yet."""
        due: list[tuple[str, str]] = []
        for venue in VENUES:
            if now >= self._timetable.squareoff_cutoff(venue, day):
                due.append(("squareoff", f"{day.isoformat()}:{venue}"))
        for exchange in DERIVATIVE_EXCHANGES:
            if now >= expiry_instant(Exchange(exchange), day):
                due.append(("expiry", f"{day.isoformat()}:{exchange}"))
        if not self._view.always_open:
            for venue in VENUES:
                end = self._timetable.session_end(venue, day)
                if end is not None and now >= end:
                    due.append(("day_end", f"{day.isoformat()}:{venue}"))
        return [step for step in due if step not in self.runs]

    def run_step(self, book: UserBook, step: tuple[str, str], now: datetime) -> None:
        """One due step for one book (its lock held)."""
        kind, key = step
        day_text, venue = key.split(":")
        day = date.fromisoformat(day_text)
        changes = Changes(book)
        if kind == "squareoff":
            self._square_off_venue(book, venue, day, changes)
        elif kind == "expiry":
            self._expire_venue(book, venue, day, now, changes)
        elif kind == "day_end":
            orders = [o for o in book.orders.values() if o.status.is_live and o.exchange == venue]
            self._expire_orders(book, orders, now, changes)
        if changes.touched:
            self._flow.commit(changes, now)

    def record(self, step: tuple[str, str], now: datetime) -> None:
        self.runs.add(step)
        self._submit(["insert_once", "runs", step, (step[0], step[1], now)])

    # ------------------------------------------------------------------ rollover

    def roll_book(self, book: UserBook, now: datetime, day: date) -> None:
        """Bring one book to `day` (its lock held); nothing when it is there already."""
        if book.day >= day:
            return
        changes = Changes(book)
        stale = [o for o in book.orders.values() if o.status.is_live and o.day < day]
        self._expire_orders(book, stale, now, changes)
        for position in list(book.positions.values()):
            if position.net and position.product is Product.MIS:
                cutoff = self._timetable.squareoff_cutoff(
                    position.instrument.exchange.value, position.day
                )
                self._square_off(book, position, cutoff, changes)
            expiry = position.instrument.expiry
            exchange = position.instrument.exchange
            if position.net and expiry is not None and now >= expiry_instant(exchange, expiry):
                self._settle(book, position, changes)
        for key, position in list(book.positions.items()):
            self._roll_position(book, position, day, changes)
            if not position.net:
                del book.positions[key]
        book.today_realized = ZERO
        book.dp_charged.clear()
        book.day = day
        book.orders = {k: o for k, o in book.orders.items() if o.day >= day or o.status.is_live}
        book.trades = [trade for trade in book.trades if trade.day >= day]
        self._flow.commit(changes, now)

    def _roll_position(
        self, book: UserBook, position: PositionState, day: date, changes: Changes
    ) -> None:
        settle_on = position.settle_on
        settles = settle_on is not None and settle_on <= day
        if position.product is Product.CNC and position.net > 0 and settles:
            self._to_holdings(book, position, changes)
        position.day = day
        position.realized_today = ZERO
        position.buy_quantity = position.sell_quantity = position.delivered = 0
        position.buy_value = position.sell_value = ZERO
        changes.position(position)

    def _to_holdings(self, book: UserBook, position: PositionState, changes: Changes) -> None:
        instrument = position.instrument
        key = (instrument.symbol, instrument.exchange.value)
        holding = book.holdings.get(key)
        if holding is None:
            holding = HoldingState(book.user_id, *key)
            book.holdings[key] = holding
        holding.quantity += position.net
        holding.cost += position.open_cost
        book.holdings_cost += position.open_cost
        book.blocked_positions -= position.margin
        position.net = 0
        position.open_cost = position.margin = ZERO
        position.settle_on = None
        changes.holding(holding)

    # ------------------------------------------------------------------ square-off and expiry

    def _square_off_venue(self, book: UserBook, venue: str, day: date, changes: Changes) -> None:
        orders = [
            o for o in book.orders.values()
            if o.status.is_live and o.product is Product.MIS and o.exchange == venue
        ]  # fmt: skip
        for order in orders:
            self._flow.cancel_order(book, order, self._now(day, venue), changes,
                                    "MIS order cancelled at the square-off time")  # fmt: skip
        for position in list(book.positions.values()):
            on_venue = position.instrument.exchange.value == venue
            if position.net and position.product is Product.MIS and on_venue:
                self._square_off(book, position, self._now(day, venue), changes)

    def _now(self, day: date, venue: str) -> datetime:
        return self._timetable.squareoff_cutoff(venue, day)

    def _square_off(
        self, book: UserBook, position: PositionState, at: datetime, changes: Changes
    ) -> None:
        """Close an MIS position with a MARKET order at the depth of `at`'s second."""
        instrument = position.instrument
        quantity = abs(position.net)
        side = Side.SELL if position.net > 0 else Side.BUY
        order = self._system_order(book, position, side, at, SQUAREOFF_TAG, ist_day(at))
        fills: list[tuple[Decimal, int]] = []
        instrument_book = self._view.book(instrument)
        with instrument_book.lock:
            try:
                snapshot = self._view.snapshot(instrument_book, at)
            except (ValueError, KeyError):
                snapshot = None
            if snapshot is not None:
                plan = snapshot.plan(side is Side.BUY, quantity, None)
                snapshot.take(side is Side.BUY, plan)
                fills = [(fill.price, fill.quantity) for fill in plan]
                left = quantity - sum(size for _, size in fills)
                if left:
                    worst = fills[-1][0] if fills else snapshot.depth.quote.ltp
                    fills.append((worst, left))
        if not fills or fills[0][0] <= 0:
            fills = [(position.average_price, quantity)]
        self._ledger.execute(book, order, fills, at, changes, forced=True)
        order.status = OrderStatus.COMPLETE

    def _expire_venue(
        self, book: UserBook, exchange: str, day: date, now: datetime, changes: Changes
    ) -> None:
        expiring = [
            o for o in book.orders.values()
            if o.status.is_live and o.exchange == exchange and o.instrument is not None
            and o.instrument.expiry is not None and o.instrument.expiry <= day
        ]  # fmt: skip
        for order in expiring:
            self._flow.cancel_order(book, order, now, changes, "Contract expired")
        for position in list(book.positions.values()):
            expiry = position.instrument.expiry
            on_exchange = position.instrument.exchange.value == exchange
            if position.net and expiry is not None and expiry <= day and on_exchange:
                self._settle(book, position, changes)

    def _settle(self, book: UserBook, position: PositionState, changes: Changes) -> None:
        """Close an expired contract's position at its final settlement price."""
        instrument = position.instrument
        if instrument.expiry is None:
            raise ValueError(f"{instrument.symbol} does not expire")
        at = expiry_instant(instrument.exchange, instrument.expiry)
        quantity = abs(position.net)
        side = Side.SELL if position.net > 0 else Side.BUY
        order = self._system_order(book, position, side, at, EXPIRY_TAG, instrument.expiry)
        final = self._final_price(position, at)
        charges = NO_CHARGES
        if final is None:  # the market cannot price it any more: settle flat at cost
            price = position.average_price
        elif instrument.is_option and instrument.strike is not None:
            strike = instrument.strike
            is_call = instrument.instrument_type is InstrumentType.CE
            price = max(ZERO, final - strike if is_call else strike - final)
            if position.net > 0 and price > 0:
                charges = exercise_charges(instrument, quantity, final)
        else:
            price = final
        self._ledger.execute(book, order, [(price, quantity)], at, changes, forced=True,
                             charges=charges)  # fmt: skip
        order.status = OrderStatus.COMPLETE

    def _final_price(self, position: PositionState, at: datetime) -> Decimal | None:
        """The underlying's price at expiry (the future's own for MCX futures)."""
        instrument = position.instrument
        underlying = self._view.underlying(instrument)
        found = None if underlying is None else self._view.quote_at(underlying, at)
        if found is None and not instrument.is_option:
            found = self._view.quote_at(instrument, at)
        return found

    def _system_order(
        self, book: UserBook, position: PositionState, side: Side, at: datetime, tag: str,
        day: date,
    ) -> OrderState:  # fmt: skip
        instrument = position.instrument
        order = OrderState(
            self._ids.order_id(day), book.user_id, instrument.symbol, instrument.exchange.value,
            instrument, side, abs(position.net), PriceType.MARKET, position.product, ZERO,
            ZERO, Validity.DAY, tag, at, day, Source.SYSTEM.value,
        )  # fmt: skip
        book.orders[order.order_id] = order
        return order

    def _expire_orders(
        self, book: UserBook, orders: Iterable[OrderState], now: datetime, changes: Changes
    ) -> None:
        for order in list(orders):
            reason = "Order expired at the end of the trading day"
            self._flow.cancel_order(book, order, now, changes, reason)
