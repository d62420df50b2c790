"""GTT (good-till-triggered) orders: price triggers the desk keeps until the price crosses.

A SINGLE GTT has one trigger: `trigger_sl` (below the price when placed, fires when the last
price falls to it) or `trigger_tg` (above it, fires when the price rises to it), and places one
LIMIT (or MARKET) order at `price`. An OCO GTT has both: whichever is reached first places its
leg (LIMIT at `stoploss` or `target`) and the GTT ends. A GTT never fires on the price it was
placed at: the price must be strictly on the right side of every trigger when placed.

The book lives in the sandbox database (table `sandbox_gtts`), so GTTs survive restarts, and
every change of status is a conditional UPDATE on `status = 'active'`: a GTT fires, is
modified or is cancelled exactly once even when the heartbeat and a request race.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from database.engine import DatabaseName, Databases
from database.models.gtt import SandboxGtt
from services.clock import Clock, to_ist
from services.errors import DalalError, InvalidRequest, NotFound
from services.market.model import Instrument
from services.orders.model import ZERO, OrderRequest, PriceType, Product, Side
from services.orders.validation import validate_order
from services.sandbox.state import from_micros, to_micros

if TYPE_CHECKING:
    from services.desk import Desk
    from services.market.service import MarketData

log = logging.getLogger(__name__)

DEFAULT_LIFETIME = timedelta(days=365)
PRODUCT_MESSAGE = "GTT supports only CNC (delivery) or NRML (overnight F&O); MIS is intraday-only."
GTT_PRODUCTS = (Product.CNC, Product.NRML)
GTT_PRICE_TYPES = (PriceType.LIMIT, PriceType.MARKET)
_ID_LOCK = threading.Lock()  # one id at a time in this process, whatever book asks

#: Places one order for a user and returns its order id (the desk's order pipeline).
Placer = Callable[[int, OrderRequest], str]


class TriggerType(StrEnum):
    SINGLE = "SINGLE"
    OCO = "OCO"


class GttStatus(StrEnum):
    ACTIVE = "active"
    TRIGGERED = "triggered"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"  # it fired, but its order was refused


@dataclass(frozen=True, slots=True)
class GttSpec:
    """What a trader asks for (place, or the full replacement of a modify)."""

    trigger_type: TriggerType
    symbol: str
    exchange: str
    side: Side
    product: Product
    quantity: int
    price_type: PriceType = PriceType.LIMIT
    price: Decimal = ZERO  # SINGLE's order price
    trigger_sl: Decimal = ZERO
    trigger_tg: Decimal = ZERO
    stoploss: Decimal = ZERO  # OCO stoploss leg's limit price
    target: Decimal = ZERO  # OCO target leg's limit price
    strategy: str = ""
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Leg:
    trigger: Decimal
    below: bool  # fires when the price falls to the trigger (else when it rises to it)
    request: OrderRequest


@dataclass(frozen=True, slots=True)
class Gtt:
    trigger_id: str
    user_id: int
    spec: GttSpec
    status: GttStatus
    last_price: Decimal
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    triggered_at: datetime | None = None
    order_id: str = ""
    message: str = ""

    @property
    def trigger_prices(self) -> list[Decimal]:
        return sorted(p for p in (self.spec.trigger_sl, self.spec.trigger_tg) if p > 0)

    @property
    def legs(self) -> list[Leg]:
        """The order(s) it may place: stoploss (below) first, then target (above)."""
        return legs_of(self.spec)


def legs_of(spec: GttSpec) -> list[Leg]:
    legs: list[Leg] = []
    for trigger, limit, below in (
        (spec.trigger_sl, spec.stoploss, True),
        (spec.trigger_tg, spec.target, False),
    ):
        if trigger <= 0:
            continue
        price = spec.price if spec.trigger_type is TriggerType.SINGLE else limit
        if spec.price_type is PriceType.MARKET:
            price = ZERO
        request = OrderRequest(
            symbol=spec.symbol,
            exchange=spec.exchange,
            side=spec.side,
            quantity=spec.quantity,
            product=spec.product,
            price_type=spec.price_type,
            price=price,
            strategy=spec.strategy,
        )
        legs.append(Leg(trigger, below, request))
    return legs


def _bad(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, errors={field: [message]})


def check_spec(spec: GttSpec, ltp: Decimal) -> None:
    """The SINGLE/OCO rules, and that the price is strictly on the right side of each trigger."""
    if spec.product not in GTT_PRODUCTS:
        raise _bad("product", PRODUCT_MESSAGE)
    if spec.price_type not in GTT_PRICE_TYPES:
        raise _bad("pricetype", "GTT pricetype must be LIMIT or MARKET.")
    sl, tg = spec.trigger_sl, spec.trigger_tg
    if sl < 0 or tg < 0:
        raise _bad("triggerprice_sl", "Trigger prices cannot be negative.")
    if spec.trigger_type is TriggerType.SINGLE:
        if (sl > 0) == (tg > 0):
            raise _bad(
                "triggerprice_sl",
                "SINGLE GTT takes exactly one of triggerprice_sl (below the last price) or "
                "triggerprice_tg (above it); set the other to 0.",
            )
        if spec.price_type is PriceType.LIMIT and spec.price <= 0:
            raise _bad("price", "A LIMIT GTT needs the order's price > 0.")
    else:
        missing = [
            name
            for name, value in (
                ("triggerprice_sl", sl),
                ("stoploss", spec.stoploss),
                ("triggerprice_tg", tg),
                ("target", spec.target),
            )
            if value <= 0
        ]
        if missing:
            raise InvalidRequest(
                f"Required for OCO (each > 0): {', '.join(missing)}.",
                errors={name: ["required for OCO, > 0"] for name in missing},
            )
        if sl >= tg:
            raise _bad(
                "triggerprice_sl",
                "Stoploss trigger must be less than target trigger "
                "(triggerprice_sl < triggerprice_tg).",
            )
    if sl > 0 and not sl < ltp:
        raise _bad(
            "triggerprice_sl",
            f"triggerprice_sl ({sl}) must be below the last price ({ltp}), "
            "or the GTT would trigger at once.",
        )
    if tg > 0 and not tg > ltp:
        raise _bad(
            "triggerprice_tg",
            f"triggerprice_tg ({tg}) must be above the last price ({ltp}), "
            "or the GTT would trigger at once.",
        )


class GttBook:
    """Store, modify, cancel and list GTTs; `check()` fires those whose price has crossed."""

    def __init__(
        self, databases: Databases, market: MarketData, clock: Clock, place: Placer
    ) -> None:
        self._databases = databases
        self._market = market
        self._clock = clock
        self._place = place
        self._check_lock = threading.Lock()

    # -- writes ---------------------------------------------------------------------------

    def validate(self, spec: GttSpec) -> GttSpec:
        """Check a GTT as place() would, without placing it (semi-auto queues it first)."""
        return self._validated(spec, self._clock.now())[0]

    def place(self, user_id: int, spec: GttSpec) -> Gtt:
        now = self._clock.now()
        spec, ltp = self._validated(spec, now)
        expires_at = spec.expires_at or now + DEFAULT_LIFETIME
        values: dict[str, object] = {
            "user_id": user_id,
            "status": GttStatus.ACTIVE.value,
            "last_price_micros": to_micros(ltp),
            "order_id": "",
            "message": "",
            "created_at": now,
            "updated_at": now,
            "expires_at": expires_at,
            "triggered_at": None,
            **_spec_columns(spec),
        }
        return self.get(user_id, self._insert(now, values))

    def modify(self, user_id: int, trigger_id: str, spec: GttSpec) -> Gtt:
        """A full replacement; the trigger type, symbol, exchange and action are fixed."""
        current = self._active(user_id, trigger_id, "modify")
        for field, old, new in (
            ("trigger_type", current.spec.trigger_type, spec.trigger_type),
            ("symbol", current.spec.symbol, spec.symbol.upper()),
            ("exchange", current.spec.exchange, spec.exchange),
            ("action", current.spec.side, spec.side),
        ):
            if old != new:
                raise _bad(
                    field,
                    f"A GTT's {field} cannot be modified ({old} -> {new}); "
                    "cancel it and place a new one.",
                )
        now = self._clock.now()
        spec, ltp = self._validated(spec, now)
        values = {
            **_spec_columns(spec),
            "last_price_micros": to_micros(ltp),
            "updated_at": now,
            "expires_at": spec.expires_at or current.expires_at,
        }
        self._transition(user_id, trigger_id, "modify", **values)
        return self.get(user_id, trigger_id)

    def cancel(self, user_id: int, trigger_id: str) -> Gtt:
        self._active(user_id, trigger_id, "cancel")
        self._transition(
            user_id,
            trigger_id,
            "cancel",
            status=GttStatus.CANCELLED.value,
            updated_at=self._clock.now(),
        )
        return self.get(user_id, trigger_id)

    # -- reads ----------------------------------------------------------------------------

    def get(self, user_id: int, trigger_id: str) -> Gtt:
        with self._databases.session(DatabaseName.SANDBOX) as session:
            row = session.get(SandboxGtt, trigger_id.strip())
            if row is None or row.user_id != user_id:
                raise NotFound(f"GTT trigger {trigger_id} not found")
            return _gtt_of(row)

    def active(self, user_id: int | None = None) -> list[Gtt]:
        """Active GTTs, oldest first (of one user, or of everyone)."""
        query = select(SandboxGtt).where(SandboxGtt.status == GttStatus.ACTIVE.value)
        if user_id is not None:
            query = query.where(SandboxGtt.user_id == user_id)
        with self._databases.session(DatabaseName.SANDBOX) as session:
            rows = session.scalars(query.order_by(SandboxGtt.created_at)).all()
            return [_gtt_of(row) for row in rows]

    def last_price(self, gtt: Gtt, at: datetime | None = None) -> Decimal:
        instrument = self._market.instrument(gtt.spec.symbol, gtt.spec.exchange)
        return self._market.source.quote(instrument, at or self._clock.now()).ltp

    # -- the trigger check ----------------------------------------------------------------

    def check(self, at: datetime | None = None) -> list[Gtt]:
        """Expire old GTTs and fire those whose trigger the last price has reached.

        Returns the GTTs that left the active book in this round (fired, rejected, expired).
        """
        with self._check_lock:
            now = at or self._clock.now()
            ended: list[Gtt] = []
            for gtt in self.active():
                try:
                    outcome = self._check_one(gtt, now)
                except Exception:
                    log.exception("GTT %s check failed", gtt.trigger_id)
                    continue
                if outcome is not None:
                    ended.append(outcome)
            return ended

    def _check_one(self, gtt: Gtt, now: datetime) -> Gtt | None:
        if gtt.expires_at <= now:
            return self._end(gtt, now, GttStatus.EXPIRED, message="expired")
        try:
            ltp = self.last_price(gtt, now)
        except NotFound:  # the contract left the master (expired)
            return self._end(gtt, now, GttStatus.EXPIRED, message="contract no longer listed")
        fired: Leg | None = None
        for leg in gtt.legs:
            if (leg.below and ltp <= leg.trigger) or (not leg.below and ltp >= leg.trigger):
                fired = leg
                break
        if fired is None:
            return None
        claimed = self._end(gtt, now, GttStatus.TRIGGERED, triggered_at=now)
        if claimed is None:
            return None  # someone else fired, modified or cancelled it first
        try:
            order_id = self._place(gtt.user_id, fired.request)
        except DalalError as e:
            log.info("GTT %s fired but its order was refused: %s", gtt.trigger_id, e.message)
            return self._finish(gtt, GttStatus.REJECTED, message=e.message[:500])
        return self._finish(gtt, GttStatus.TRIGGERED, order_id=order_id)

    # -- helpers --------------------------------------------------------------------------

    def _validated(self, spec: GttSpec, now: datetime) -> tuple[GttSpec, Decimal]:
        spec = replace(spec, symbol=spec.symbol.strip().upper(), exchange=spec.exchange.upper())
        if spec.quantity <= 0:
            raise _bad("quantity", "quantity must be at least 1.")
        if spec.expires_at is not None and spec.expires_at <= now:
            raise _bad("expires_at", "expires_at must be in the future.")
        instrument = self._market.instrument(spec.symbol, spec.exchange)
        ltp = self._market.source.quote(instrument, now).ltp
        check_spec(spec, ltp)
        self._check_orders(spec, instrument)
        return spec, ltp

    @staticmethod
    def _check_orders(spec: GttSpec, instrument: Instrument) -> None:
        """The order(s) it will place must be valid orders (lot, tick, product) today."""
        for leg in legs_of(spec):
            validate_order(leg.request, instrument)
            if leg.trigger % instrument.tick_size:
                raise _bad(
                    "triggerprice_sl" if leg.below else "triggerprice_tg",
                    f"Trigger price {leg.trigger} is not a multiple of the tick size "
                    f"{instrument.tick_size}.",
                )

    def _active(self, user_id: int, trigger_id: str, verb: str) -> Gtt:
        gtt = self.get(user_id, trigger_id)
        if gtt.status is not GttStatus.ACTIVE:
            raise InvalidRequest(
                f"Cannot {verb} GTT {gtt.trigger_id}: it is {gtt.status.value}, not active."
            )
        return gtt

    def _transition(self, user_id: int, trigger_id: str, verb: str, **values: object) -> None:
        with self._databases.session(DatabaseName.SANDBOX) as session:
            result = session.execute(
                update(SandboxGtt)
                .where(
                    SandboxGtt.trigger_id == trigger_id.strip(),
                    SandboxGtt.user_id == user_id,
                    SandboxGtt.status == GttStatus.ACTIVE.value,
                )
                .values(**values)
            )
            changed = getattr(result, "rowcount", 0)
        if changed != 1:
            gtt = self.get(user_id, trigger_id)
            raise InvalidRequest(
                f"Cannot {verb} GTT {gtt.trigger_id}: it is {gtt.status.value}, not active."
            )

    def _end(
        self,
        gtt: Gtt,
        now: datetime,
        status: GttStatus,
        *,
        message: str = "",
        triggered_at: datetime | None = None,
    ) -> Gtt | None:
        """Take the GTT out of the active book, if it is still there."""
        with self._databases.session(DatabaseName.SANDBOX) as session:
            result = session.execute(
                update(SandboxGtt)
                .where(
                    SandboxGtt.trigger_id == gtt.trigger_id,
                    SandboxGtt.status == GttStatus.ACTIVE.value,
                )
                .values(
                    status=status.value, message=message, updated_at=now, triggered_at=triggered_at
                )
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
        return self.get(gtt.user_id, gtt.trigger_id)

    def _finish(self, gtt: Gtt, status: GttStatus, *, order_id: str = "", message: str = "") -> Gtt:
        with self._databases.session(DatabaseName.SANDBOX) as session:
            session.execute(
                update(SandboxGtt)
                .where(SandboxGtt.trigger_id == gtt.trigger_id)
                .values(status=status.value, order_id=order_id, message=message)
            )
        return self.get(gtt.user_id, gtt.trigger_id)

    def _insert(self, now: datetime, values: dict[str, object]) -> str:
        """Store a new GTT under the next id: YYMMDD (IST) + 8 digits, unique in the database."""
        prefix = to_ist(now).strftime("%y%m%d")
        for _attempt in range(5):
            with _ID_LOCK:
                try:
                    with self._databases.session(DatabaseName.SANDBOX) as session:
                        top = session.scalar(
                            select(func.max(SandboxGtt.trigger_id)).where(
                                SandboxGtt.trigger_id.like(f"{prefix}%")
                            )
                        )
                        trigger_id = f"{prefix}{int(top[6:]) + 1 if top else 1:08d}"
                        session.add(SandboxGtt(trigger_id=trigger_id, **values))
                    return trigger_id
                except IntegrityError:  # another process took the id: take the next one
                    continue
        raise DalalError("Could not allocate a GTT trigger id; try again.")


def _spec_columns(spec: GttSpec) -> dict[str, object]:
    return {
        "trigger_type": spec.trigger_type.value,
        "symbol": spec.symbol,
        "exchange": spec.exchange,
        "action": spec.side.value,
        "product": spec.product.value,
        "quantity": spec.quantity,
        "price_type": spec.price_type.value,
        "price_micros": to_micros(spec.price),
        "trigger_sl_micros": to_micros(spec.trigger_sl),
        "trigger_tg_micros": to_micros(spec.trigger_tg),
        "stoploss_micros": to_micros(spec.stoploss),
        "target_micros": to_micros(spec.target),
        "strategy": spec.strategy,
    }


def _gtt_of(row: SandboxGtt) -> Gtt:
    spec = GttSpec(
        trigger_type=TriggerType(row.trigger_type),
        symbol=row.symbol,
        exchange=row.exchange,
        side=Side(row.action),
        product=Product(row.product),
        quantity=row.quantity,
        price_type=PriceType(row.price_type),
        price=from_micros(row.price_micros),
        trigger_sl=from_micros(row.trigger_sl_micros),
        trigger_tg=from_micros(row.trigger_tg_micros),
        stoploss=from_micros(row.stoploss_micros),
        target=from_micros(row.target_micros),
        strategy=row.strategy,
        expires_at=row.expires_at,
    )
    return Gtt(
        trigger_id=row.trigger_id,
        user_id=row.user_id,
        spec=spec,
        status=GttStatus(row.status),
        last_price=from_micros(row.last_price_micros),
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        triggered_at=row.triggered_at,
        order_id=row.order_id,
        message=row.message,
    )


def pipeline_placer(desk: Desk) -> Placer:
    """Place a fired GTT's order through the desk's order pipeline, as its owner."""
    from services.orders.pipeline import Trader

    def place(user_id: int, request: OrderRequest) -> str:
        user = desk.accounts.get(user_id)
        if user is None:
            raise NotFound(f"User {user_id} no longer exists")
        trader = Trader(user_id=user_id, broker=user.broker, order_mode=user.order_mode)
        return desk.orders.place(trader, request).report.order_id

    return place
