"""Each user's pre-trade risk rules: step 3 of the order pipeline (DESIGN.md), an `OrderGate`.

Four rules, each off until the trader sets it (Settings -> Risk limits): a kill switch that
refuses every new order, a largest order value, a most open positions and a daily loss limit.
An order that only reduces an open position passes the last three, because a trader must
always be able to get out; the kill switch stops even those (it means "hands off").

`check()` runs on every order, so limits are cached in memory: a user with none costs one
dict lookup. Entries expire after `REFRESH_SECONDS`, so a change saved by another worker of
the same desk (several gunicorn workers, one database) is seen within that time; a change
saved by this process is seen at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from time import monotonic
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from database.engine import DatabaseName
from database.models import RiskLimit
from services.errors import InvalidRequest, RiskRejected
from services.orders.model import OrderRequest, PriceType, Product, Side
from services.pnl_history import day_pnl

if TYPE_CHECKING:
    from broker.base import Broker
    from services.desk import Desk
    from services.orders.model import FundsReport, HoldingReport, OrderReport, PositionReport
    from services.orders.pipeline import Trader

REFRESH_SECONDS = 2.0
MAX_AMOUNT = Decimal("1000000000000")  # ₹1,00,000 crore: far above any account, fits BIGINT
MAX_POSITIONS = 100_000
PAISE = Decimal("0.01")
MINUS = "\u2212"  # the pages' minus sign (blueprints/market_pages.py)

KILL_SWITCH_MESSAGE = (
    "Kill switch is on: new orders are refused. Turn it off under Settings → Risk limits."
)
_AMOUNT_HINT = "Enter an amount in rupees above 0 with at most 2 decimals, or leave it blank."
_POSITIONS_HINT = "Enter a whole number, 1 or more, or leave it blank."
_LABELS = {
    "max_order_value": "Maximum order value",
    "max_open_positions": "Maximum open positions",
    "max_daily_loss": "Maximum daily loss",
}

PositionKey = tuple[str, str, Product]  # (symbol, exchange, product)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """A user's limits; None means "no limit". Amounts in rupees, on the paise grid."""

    max_order_value: Decimal | None = None
    max_open_positions: int | None = None
    max_daily_loss: Decimal | None = None
    kill_switch: bool = False

    @property
    def enforced(self) -> bool:
        return (
            self.kill_switch
            or self.max_order_value is not None
            or self.max_open_positions is not None
            or self.max_daily_loss is not None
        )

    def describe(self) -> dict[str, str]:
        """The limits as text, for the audit trail ("none" when a limit is off)."""
        return {
            "max_order_value": _text(self.max_order_value),
            "max_open_positions": _text(self.max_open_positions),
            "max_daily_loss": _text(self.max_daily_loss),
            "kill_switch": "on" if self.kill_switch else "off",
        }


NO_LIMITS = RiskLimits()


class RiskRules:
    def __init__(self, desk: Desk) -> None:
        self._desk = desk
        # user id -> (limits, monotonic() after which they are read again)
        self._cache: dict[int, tuple[RiskLimits, float]] = {}
        self._lock = threading.Lock()
        self._version = 0  # bumped by every update: a read begun before it is not cached

    # ------------------------------------------------------------------ the limits

    def limits(self, user_id: int, *, fresh: bool = False) -> RiskLimits:
        """The user's limits (NO_LIMITS without a row); `fresh` skips the cache (the page)."""
        entry = self._cache.get(user_id)
        if entry is not None and not fresh and entry[1] > monotonic():
            return entry[0]
        with self._lock:
            version = self._version
        limits = self._read(user_id)
        with self._lock:
            if self._version == version:
                self._cache[user_id] = (limits, monotonic() + REFRESH_SECONDS)
        return limits

    def _store(self, user_id: int, limits: RiskLimits) -> tuple[RiskLimits, RiskLimits]:
        with self._desk.databases.session(DatabaseName.MAIN) as session:
            row = session.get(RiskLimit, user_id)
            before = NO_LIMITS if row is None else _from_row(row)
            if row is None:
                row = RiskLimit(user_id=user_id)
                session.add(row)
            row.max_order_value_paise = _to_paise(limits.max_order_value)
            row.max_open_positions = limits.max_open_positions
            row.max_daily_loss_paise = _to_paise(limits.max_daily_loss)
            row.kill_switch = limits.kill_switch
            row.updated_at = self._desk.clock.now()
            return before, _from_row(row)

    def update(self, user_id: int, limits: RiskLimits, *, actor: str) -> RiskLimits:
        """Validate, save and audit new limits; returns them as stored."""
        errors = validation_errors(limits)
        if errors:
            raise InvalidRequest(_summary(errors), errors=errors)
        try:
            before, after = self._store(user_id, limits)
        except IntegrityError:
            # Two first saves at once (two tabs): the other inserted the row; update it.
            before, after = self._store(user_id, limits)
        with self._lock:
            self._version += 1
            self._cache.pop(user_id, None)
        if after == before:
            return after  # saved unchanged: nothing changed, nothing to audit
        self._desk.audit.record(
            "risk.limits_changed",
            actor=actor,
            user_id=user_id,
            details={"before": before.describe(), "after": after.describe()},
        )
        return after

    def _read(self, user_id: int) -> RiskLimits:
        with self._desk.databases.session(DatabaseName.MAIN) as session:
            row = session.get(RiskLimit, user_id)
            return NO_LIMITS if row is None else _from_row(row)

    # ------------------------------------------------------------------ the gate

    def check(self, trader: Trader, request: OrderRequest) -> None:
        """Refuse (RiskRejected) an order the user's limits do not allow."""
        limits = self.limits(trader.user_id)
        if not limits.enforced:
            return
        if limits.kill_switch:
            raise RiskRejected(KILL_SWITCH_MESSAGE)
        _Assessment(self._desk, trader, request, limits).run()


class _Assessment:
    """One order against one user's limits. The broker is asked for positions, orders,
    holdings and funds only when a rule needs them, and each at most once."""

    def __init__(
        self, desk: Desk, trader: Trader, request: OrderRequest, limits: RiskLimits
    ) -> None:
        self._desk = desk
        self._request = request
        self._limits = limits
        self._broker: Broker = desk.orders.broker(trader)
        self._positions: list[PositionReport] | None = None
        self._orders: list[OrderReport] | None = None
        self._reduces: bool | None = None

    def run(self) -> None:
        self._order_value()
        self._open_positions()
        self._daily_loss()

    def _order_value(self) -> None:
        limit = self._limits.max_order_value
        if limit is None:
            return
        value = self._request.quantity * self._price()
        if value > limit and not self.reduces:
            raise RiskRejected(
                f"Order value {rupees(value)} is above your limit of {rupees(limit)} per order."
            )

    def _open_positions(self) -> None:
        limit = self._limits.max_open_positions
        if limit is None:
            return
        open_keys = {_key(p) for p in self.positions if p.net_quantity}
        # Live orders on other instruments will open positions when they fill: they hold a
        # place too, or resting limit orders would get round the limit.
        waiting = {_key(o) for o in self.orders if o.status.is_live} - open_keys
        if _request_key(self._request) in open_keys | waiting:
            return
        if len(open_keys) + len(waiting) < limit or self.reduces:
            return
        held = _count(len(open_keys), "open position")
        if waiting:
            held += f" and {_count(len(waiting), 'pending order')} for new ones"
        raise RiskRejected(
            f"You have {held}; your limit is {limit}. Close a position or cancel an order "
            f"before opening {self._request.symbol} ({self._request.exchange}, "
            f"{self._request.product.value})."
        )

    def _daily_loss(self) -> None:
        limit = self._limits.max_daily_loss
        if limit is None:
            return
        funds: FundsReport = self._broker.funds()
        pnl = day_pnl(funds)  # as the dashboard's "P&L today"
        if pnl <= -limit and not self.reduces:
            raise RiskRejected(
                f"Today's loss of {rupees(-pnl)} has reached your daily loss limit of "
                f"{rupees(limit)}. New orders are refused for the rest of the day; orders "
                "that reduce an open position still go through."
            )

    def _price(self) -> Decimal:
        """The order's price: its limit price, else the last traded price."""
        request = self._request
        if request.price_type in (PriceType.LIMIT, PriceType.SL) and request.price > 0:
            return request.price
        market = self._desk.market
        return market.source.quote(market.instrument(request.symbol, request.exchange)).ltp

    @property
    def positions(self) -> list[PositionReport]:
        if self._positions is None:
            self._positions = self._broker.positions()
        return self._positions

    @property
    def orders(self) -> list[OrderReport]:
        if self._orders is None:
            self._orders = self._broker.orders()
        return self._orders

    @property
    def reduces(self) -> bool:
        """Does the order only reduce an open position? Exits already waiting as orders use
        up the open quantity, so stacked exits cannot turn into a new position."""
        if self._reduces is None:
            self._reduces = self._open_quantity() - self._pending_exits() >= self._request.quantity
        return self._reduces

    def _open_quantity(self) -> int:
        """What this order's side can close: the opposite position (and, for a CNC sell, the
        holdings, as the sandbox counts them)."""
        request, key = self._request, _request_key(self._request)
        net = sum(p.net_quantity for p in self.positions if _key(p) == key)
        held = -request.side.sign * net  # > 0 when the position is on the other side
        if request.side is Side.SELL and request.product is Product.CNC:
            held = max(net, 0) + sum(h.quantity for h in self._holdings())
        return max(held, 0)

    def _pending_exits(self) -> int:
        key, side = _request_key(self._request), self._request.side
        return sum(
            o.pending_quantity
            for o in self.orders
            if o.status.is_live and o.side is side and _key(o) == key
        )

    def _holdings(self) -> list[HoldingReport]:
        request = self._request
        return [
            h
            for h in self._broker.holdings()
            if h.symbol == request.symbol and h.exchange == request.exchange
        ]


# ---------------------------------------------------------------------- parsing and checks


def parse_limits(
    max_order_value: str, max_open_positions: str, max_daily_loss: str, kill_switch: bool
) -> RiskLimits:
    """Limits from a form's text (blank = no limit; "1,00,000" and "₹ 500" are understood).

    Raises InvalidRequest naming every field that is wrong.
    """
    errors: dict[str, list[str]] = {}
    order_value = _amount("max_order_value", max_order_value, errors)
    daily_loss = _amount("max_daily_loss", max_daily_loss, errors)
    positions: int | None = None
    text = max_open_positions.strip()
    if text:
        if text.isdigit() and text.isascii():
            positions = int(text)
        else:
            errors["max_open_positions"] = [_POSITIONS_HINT]
    if errors:
        raise InvalidRequest(_summary(errors), errors=errors)
    return RiskLimits(order_value, positions, daily_loss, kill_switch)


def validation_errors(limits: RiskLimits) -> dict[str, list[str]]:
    """What is wrong with `limits`, by field (empty when they can be saved)."""
    errors: dict[str, list[str]] = {}
    for name, amount in (
        ("max_order_value", limits.max_order_value),
        ("max_daily_loss", limits.max_daily_loss),
    ):
        if amount is not None and not _valid_amount(amount):
            errors[name] = [_AMOUNT_HINT]
    positions = limits.max_open_positions
    if positions is not None and not 1 <= positions <= MAX_POSITIONS:
        errors["max_open_positions"] = [_POSITIONS_HINT]
    return errors


def _amount(name: str, text: str, errors: dict[str, list[str]]) -> Decimal | None:
    cleaned = text.replace(",", "").replace("₹", "").strip()
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        value = Decimal(-1)
    if not _valid_amount(value):
        errors[name] = [_AMOUNT_HINT]
        return None
    return value


def _valid_amount(value: Decimal) -> bool:
    return value.is_finite() and 0 < value <= MAX_AMOUNT and value == value.quantize(PAISE)


def _summary(errors: dict[str, list[str]]) -> str:
    names = ", ".join(_LABELS.get(name, name) for name in errors)
    return f"Risk limits not saved: check {names}."


# ---------------------------------------------------------------------- conversions


def _from_row(row: RiskLimit) -> RiskLimits:
    return RiskLimits(
        max_order_value=_from_paise(row.max_order_value_paise),
        max_open_positions=row.max_open_positions,
        max_daily_loss=_from_paise(row.max_daily_loss_paise),
        kill_switch=bool(row.kill_switch),
    )


def _to_paise(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount * 100)  # exact: validated on the paise grid


def _from_paise(paise: int | None) -> Decimal | None:
    return None if paise is None else Decimal(paise).scaleb(-2)


def _key(report: PositionReport | OrderReport) -> PositionKey:
    return (report.symbol, report.exchange, report.product)


def _request_key(request: OrderRequest) -> PositionKey:
    return (request.symbol, request.exchange, request.product)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _text(value: Decimal | int | None) -> str:
    if value is None:
        return "none"
    return f"{value:.2f}" if isinstance(value, Decimal) else str(value)


def rupees(amount: Decimal) -> str:
    """₹ with two decimals and Indian grouping (₹1,23,456.00), as the pages print amounts.

    The pages' formatter (blueprints/market_pages.py) lives in a Flask module, which services
    do not import; this is the same rule.
    """
    exact = amount.quantize(PAISE, rounding=ROUND_HALF_UP)
    whole, _, fraction = f"{abs(exact):f}".partition(".")
    head, groups = whole[:-3], [whole[-3:]]
    while head:
        head, pair = head[:-2], head[-2:]
        groups.insert(0, pair)
    return f"{MINUS if exact < 0 else ''}₹{','.join(groups)}.{fraction}"
