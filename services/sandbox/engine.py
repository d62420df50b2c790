"""The paper-trading exchange: the sandbox broker's engine (DESIGN.md "the sandbox").

Concurrency: each user's books have their own lock, each instrument's depth and resting
orders theirs; a thread takes a user's lock before an instrument's, never the reverse (ticks
collect crossed orders under the instrument lock, release it, then fill each order under its
user's lock). Lifecycle runs are serialised by one more lock taken before any user's.

Announcements: given the desk's event bus, the engine publishes what every event changed
(orders, trades, positions, funds) from a relay thread, never under a lock (`announcer.py`).

Durability: every change of state happens in memory under those locks and is queued, as one
unit per event, on the write-behind journal (`journal.py`); `flush()` waits until everything
queued so far is committed. On start the books are rebuilt from the sandbox database
(`loading.py`).

Available cash never goes below zero through an order: a MARKET order is checked against the
cash its actual fills need (margin, charges, realised loss), a resting order's margin is
blocked when placed and checked again when it fills (cancelled at execution if short). Only
the lifecycle's forced closes (square-off, expiry settlement) may leave a debit balance, as a
broker's would.

Funds ledger (exact, per user, `state.UserBook`):

    available = starting capital + realised P&L - charges - cost of holdings
                - margin blocked by open orders - margin blocked by open positions
    utilised  = margin blocked by open orders + margin blocked by open positions

so `available + utilised + cost of holdings == capital + realised - charges` at all times.
Unrealised P&L (open positions at the last price) is reported, never added to cash. A
position blocks `margins.position_margin` at its average price; a CNC buy blocks its full
value until it settles into holdings, whose cost then leaves cash for good; selling a
holding returns its cost and realises the difference.
"""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta
from decimal import Decimal

from database.engine import DatabaseName, Databases
from services.clock import IST, Clock
from services.events import EventBus
from services.market.candles import to_price
from services.market.model import Instrument
from services.market.service import MarketData
from services.orders.model import (
    ZERO,
    FundsReport,
    HoldingReport,
    ModifyRequest,
    OrderReport,
    OrderRequest,
    OrderStatus,
    PositionReport,
    TradeReport,
)
from services.runtime import freeze_long_lived_objects
from services.sandbox.announcer import Announcer
from services.sandbox.books import price_key
from services.sandbox.flow import OrderFlow
from services.sandbox.ids import IdSource
from services.sandbox.journal import Journal
from services.sandbox.ledger import Ledger
from services.sandbox.lifecycle import Lifecycle, ist_day
from services.sandbox.loading import load_state
from services.sandbox.persistence import SPECS, USER_TABLES, Changes
from services.sandbox.settings import SandboxSettings, Timetable
from services.sandbox.state import PositionState, UserBook
from services.sandbox.validation import Validator
from services.sandbox.view import MarketView


class SandboxEngine:
    def __init__(
        self,
        databases: Databases,
        market: MarketData,
        clock: Clock,
        settings: SandboxSettings = SandboxSettings(),  # noqa: B008 (frozen, shared default)
        events: EventBus | None = None,
    ) -> None:
        """`events`: where to announce changes (none: the engine announces nothing)."""
        self._clock = clock
        self._settings = settings
        self._view = MarketView(market)
        now = clock.now()
        self._day = ist_day(now)
        engine = databases.engines[DatabaseName.SANDBOX]
        day = self._day
        loaded = load_state(engine, lambda s, e: self._view.instrument(s, e, day), day)
        self._books: dict[int, UserBook] = loaded.books
        self._books_lock = threading.Lock()
        self._lifecycle_lock = threading.Lock()
        self._journal = Journal(engine, SPECS, USER_TABLES)
        ids = IdSource(loaded.last_order_number, loaded.last_trade_number)
        timetable = Timetable(settings, market.calendar, always_open=market.settings.always_open)
        self._ledger = Ledger(self._view, settings, ids)
        self._announcer: Announcer | None = None
        if events is not None:
            self._announcer = Announcer(events, clock, self._position_report, self._funds_report)
        announce = None if self._announcer is None else self._announcer.changed
        self._flow = OrderFlow(
            self._view, Validator(self._view, settings, timetable), self._ledger, ids,
            self._journal.submit, announce,
        )  # fmt: skip
        self._lifecycle = Lifecycle(
            self._view, timetable, self._ledger, self._flow, ids, self._journal.submit,
            loaded.runs,
        )  # fmt: skip
        self._rest_loaded_orders()
        # Loading the books (and, before them, the instrument master) leaves a large long-lived
        # heap: collect and freeze it now rather than pause on one of the first orders.
        freeze_long_lived_objects()

    def _rest_loaded_orders(self) -> None:
        for book in self._books.values():
            for order in book.orders.values():
                if not order.status.is_live or order.instrument is None:
                    continue
                instrument_book = self._view.book(order.instrument)
                buying = order.side.value == "BUY"
                with instrument_book.lock:
                    if order.status is OrderStatus.TRIGGER_PENDING:
                        instrument_book.rest_stop(order, buying)
                    else:
                        instrument_book.rest_limit(order, buying)

    def _book(self, user_id: int, now: datetime) -> UserBook:
        book = self._books.get(user_id)
        if book is None:
            with self._books_lock:
                book = self._books.get(user_id)
                if book is None:
                    capital = self._settings.starting_capital
                    book = UserBook(user_id, capital, ist_day(now), now)
                    self._books[user_id] = book
        return book

    def _enter(self, user_id: int) -> tuple[UserBook, datetime]:
        """The user's book and the time; the caller takes `book.lock` and calls `_roll`."""
        now = self._clock.now()
        return self._book(user_id, now), now

    def _roll(self, book: UserBook, now: datetime) -> None:
        self._lifecycle.roll_book(book, now, ist_day(now))

    @property
    def announces(self) -> bool:
        """Whether the engine publishes its changes (orders included) on an event bus."""
        return self._announcer is not None

    # ------------------------------------------------------------------ orders

    def place(self, user_id: int, request: OrderRequest) -> OrderReport:
        """Validate, then execute, rest or arm the order.

        Raises:
            OrderRejected: with a broker-like reason (the order is recorded as rejected).
            InsufficientFunds: margin (or, for MARKET, the fill's cash) above available.
        """
        book, now = self._enter(user_id)
        with book.lock:
            self._roll(book, now)
            return self._flow.place(book, request, now, ist_day(now))

    def modify(self, user_id: int, request: ModifyRequest) -> OrderReport:
        book, now = self._enter(user_id)
        with book.lock:
            self._roll(book, now)
            return self._flow.modify(book, request, now, ist_day(now))

    def cancel(self, user_id: int, order_id: str) -> OrderReport:
        book, now = self._enter(user_id)
        with book.lock:
            self._roll(book, now)
            return self._flow.cancel(book, order_id, now)

    def cancel_all(self, user_id: int) -> tuple[list[str], list[tuple[str, str]]]:
        """Cancel every open and trigger-pending order: (cancelled ids, [(id, reason)])."""
        book, now = self._enter(user_id)
        cancelled: list[str] = []
        with book.lock:
            self._roll(book, now)
            changes = Changes(book)
            for order in list(book.orders.values()):
                if order.status.is_live:
                    self._flow.cancel_order(book, order, now, changes, "")
                    cancelled.append(order.order_id)
            if cancelled:
                self._flow.commit(changes, now)
        return cancelled, []

    # ------------------------------------------------------------------ reports

    def orders(self, user_id: int) -> list[OrderReport]:
        """Today's orders (and any still live), newest first."""
        book, now = self._enter(user_id)
        with book.lock:
            self._roll(book, now)
            return [order.report() for order in reversed(book.orders.values())]

    def order(self, user_id: int, order_id: str) -> OrderReport:
        book, now = self._enter(user_id)
        with book.lock:
            self._roll(book, now)
            return self._flow.find(book, order_id).report()

    def trades(self, user_id: int) -> list[TradeReport]:
        """Today's fills with their charges, newest first."""
        book, now = self._enter(user_id)
        with book.lock:
            self._roll(book, now)
            return [trade.report() for trade in reversed(book.trades)]

    def positions(self, user_id: int) -> list[PositionReport]:
        """Open positions (carried ones included) and today's closed ones, marked to market."""
        book, now = self._enter(user_id)
        with book.lock:
            self._roll(book, now)
            found = [p for p in book.positions.values() if p.is_active]
            return [self._position_report(p, now) for p in found]

    def holdings(self, user_id: int) -> list[HoldingReport]:
        book, now = self._enter(user_id)
        with book.lock:
            self._roll(book, now)
            reports = []
            for holding in book.holdings.values():
                if holding.quantity:
                    instrument = self._view.instrument(holding.symbol, holding.exchange, book.day)
                    ltp = ZERO if instrument is None else self._ltp(instrument, now, ZERO)
                    reports.append(holding.report(ltp))
            return reports

    def funds(self, user_id: int) -> FundsReport:
        book, now = self._enter(user_id)
        with book.lock:
            self._roll(book, now)
            return self._funds_report(book, now)

    def _position_report(self, position: PositionState, now: datetime) -> PositionReport:
        """A position marked to the last price (call with the user's lock held)."""
        return position.report(self._ltp(position.instrument, now, position.average_price))

    def _funds_report(self, book: UserBook, now: datetime) -> FundsReport:
        """The account with open positions marked to market (call with the user's lock held)."""
        unrealized = ZERO
        for position in book.positions.values():
            if position.net:
                unrealized += self._position_report(position, now).unrealized_pnl
        return book.funds(unrealized)

    def _ltp(self, instrument: Instrument, now: datetime, fallback: Decimal) -> Decimal:
        found = self._view.ltp(instrument, now)
        return fallback if found is None else found

    # ------------------------------------------------------------------ market events

    def on_price(self, instrument: Instrument, price: Decimal, at: datetime | None = None) -> int:
        """One last-price change of `instrument`: fill or trigger the resting orders it crosses.

        Returns the number of trades made.
        """
        instrument_book = self._view.existing_book(instrument.symbol, instrument.exchange.value)
        if instrument_book is None or not instrument_book.has_resting:
            return 0
        key = price_key(price)
        with instrument_book.lock:
            hits = instrument_book.crossed(key)
        if not hits:
            return 0
        instant = at or self._clock.now()
        made = 0
        for order, generation, hit in hits:
            book = self._books.get(order.user_id)
            if book is None:
                continue
            with book.lock:
                self._roll(book, instant)
                made += self._flow.fill_resting(book, order, generation, hit, price, instant)
        return made

    def on_tick(self, at: datetime | None = None) -> int:
        """Match every instrument with resting orders against the market at `at`."""
        instant = at or self._clock.now()
        books = [book for book in self._view.books() if book.has_resting]
        if not books:
            return 0
        instruments = [book.instrument for book in books]
        try:
            prices = self._view.market.source.tick_prices(instruments, instant).tolist()
        except (ValueError, KeyError):
            prices = [self._view.quote_at(instrument, instant) for instrument in instruments]
        made = 0
        for instrument, price in zip(instruments, prices, strict=True):
            if price is None:
                continue
            tick_price = (
                price if isinstance(price, Decimal) else to_price(price, instrument.tick_size)
            )
            made += self.on_price(instrument, tick_price, instant)
        return made

    def run_lifecycle(self, at: datetime | None = None) -> None:
        """Roll books into today, then run every step whose time has come (idempotent)."""
        now = at or self._clock.now()
        day = ist_day(now)
        with self._lifecycle_lock:
            for book in list(self._books.values()):
                with book.lock:
                    self._lifecycle.roll_book(book, now, day)  # a no-op once rolled
            if day != self._day:
                for instrument_book in self._view.books():
                    with instrument_book.lock:
                        instrument_book.compact()
                self._day = day
            for step in self._lifecycle.due_steps(now, day):
                for book in list(self._books.values()):
                    with book.lock:
                        self._lifecycle.roll_book(book, now, day)
                        self._lifecycle.run_step(book, step, now)
                self._lifecycle.record(step, now)

    # ------------------------------------------------------------------ account

    def reset(self, user_id: int) -> FundsReport:
        """Wipe the user's paper books; capital back to the starting amount."""
        book, now = self._enter(user_id)
        with book.lock:
            for order in book.orders.values():
                if order.status.is_live:
                    order.status = OrderStatus.CANCELLED
                    order.generation += 1
            book.orders, book.trades = {}, []
            book.positions, book.holdings = {}, {}
            book.dp_charged.clear()
            book.realized = book.today_realized = book.charges = ZERO
            book.holdings_cost = book.blocked_orders = book.blocked_positions = ZERO
            book.capital = self._settings.starting_capital
            book.reset_count += 1
            book.last_reset = now
            book.day = ist_day(now)
            self._flow.commit(Changes(book, wipe=True), now)
            return book.funds(ZERO)

    def reset_due(self, schedule: str, at: datetime | None = None) -> list[int]:
        """Reset every account with activity whose last reset predates this period.

        `schedule` is "daily", "weekly" (periods start Monday 00:00 IST) or "monthly"; the
        scheduled reset of SANDBOX_AUTO_RESET. Returns the users reset.
        """
        now = at or self._clock.now()
        start = reset_period_start(schedule, now)
        due = [
            user_id
            for user_id, book in list(self._books.items())
            if (book.orders or book.trades or book.positions or book.holdings)
            and (book.last_reset or book.created_at) < start
        ]
        for user_id in due:
            self.reset(user_id)
        return due

    def flush(self) -> None:
        """Block until everything done so far is committed to the sandbox database."""
        self._journal.flush()

    def close(self) -> None:
        if self._announcer is not None:
            self._announcer.close()
        self._journal.close()


def reset_period_start(schedule: str, now: datetime) -> datetime:
    """00:00 IST of the day, the week's Monday or the month's first day containing `now`."""
    local = now.astimezone(IST)
    day = local.date()
    if schedule == "weekly":
        day -= timedelta(days=day.weekday())
    elif schedule == "monthly":
        day = day.replace(day=1)
    elif schedule != "daily":
        raise ValueError(f"unknown reset schedule {schedule!r}: daily, weekly or monthly")
    return datetime.combine(day, time(0, 0), tzinfo=IST)
