"""The Action Center: orders from algorithms held for the trader's approval (semi-auto mode).

SEBI's framework for retail algorithmic trading lets a client keep a human between an
algorithm and the exchange. In semi-auto mode every order that does not come from the trader's
own clicks (the REST API, webhooks, hosted strategies, Telegram) is validated, stored here and
sent only when the trader approves it. Approval runs the normal pipeline, so the risk rules
are checked as they stand at approval, not as they stood when the order was queued. Anything
still pending when its exchange's trading day ends expires; every decision is kept and
written to the audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from database.models import PendingOrder, User
from services.clock import IST
from services.errors import Conflict, DalalError, InvalidRequest, NotFound
from services.events import ACTION_CENTER
from services.orders.intents import Execution, Intent, dumps, intent_from_json
from services.orders.model import Source
from services.orders.pipeline import Trader

if TYPE_CHECKING:
    from services.desk import Desk

AUTO = "auto"
SEMI_AUTO = "semi_auto"
ORDER_MODES = (AUTO, SEMI_AUTO)
PENDING, APPROVING, APPROVED, REJECTED, EXPIRED, FAILED = (
    "pending",
    "approving",
    "approved",
    "rejected",
    "expired",
    "failed",
)
QUEUED_MESSAGE = "Order queued for approval in Action Center"
MAX_REASON = 500
_MICRO = Decimal(1_000_000)


def holds_for_approval(order_mode: str, source: Source) -> bool:
    """Whether an order from `source` waits for approval: the trader's own clicks never do."""
    return order_mode == SEMI_AUTO and source is not Source.UI


@dataclass(frozen=True, slots=True)
class PendingView:
    """One queued order and, once decided, what became of it."""

    id: int
    user_id: int
    source: str
    strategy: str
    algo_id: str
    kind: str
    description: str
    symbol: str
    exchange: str
    side: str
    quantity: int
    price_type: str
    price: Decimal
    legs: int
    status: str
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_by: str
    reason: str
    results: tuple[dict[str, Any], ...]

    def age_seconds(self, now: datetime) -> int:
        return max(0, int((now - self.created_at).total_seconds()))

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "strategy": self.strategy,
            "algo_id": self.algo_id,
            "kind": self.kind,
            "description": self.description,
            "symbol": self.symbol,
            "exchange": self.exchange,
            "action": self.side,
            "quantity": self.quantity,
            "pricetype": self.price_type,
            "price": str(self.price),
            "legs": self.legs,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "age_seconds": self.age_seconds(now),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decided_by": self.decided_by,
            "reason": self.reason,
            "results": list(self.results),
        }


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """approve_all / reject_all: what was decided and what was refused (with why)."""

    decided: tuple[PendingView, ...]
    refused: tuple[tuple[int, str], ...]


def _view(row: PendingOrder) -> PendingView:
    results = tuple(json.loads(row.result)) if row.result else ()
    return PendingView(
        id=row.id,
        user_id=row.user_id,
        source=row.source,
        strategy=row.strategy,
        algo_id=row.algo_id,
        kind=row.kind,
        description=intent_from_json(row.kind, json.loads(row.payload)).describe(),
        symbol=row.symbol,
        exchange=row.exchange,
        side=row.side,
        quantity=row.quantity,
        price_type=row.price_type,
        price=Decimal(row.price_micros) / _MICRO,
        legs=row.legs,
        status=row.status,
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        reason=row.reason,
        results=results,
    )


class ActionCenter:
    def __init__(self, desk: Desk) -> None:
        self._desk = desk
        self._db = desk.databases

    # ------------------------------------------------------------------ order mode

    def set_mode(self, user_id: int, mode: str, *, actor: str) -> str:
        """Switch a user between auto and semi-auto (pages and CLI only, never the API)."""
        if mode not in ORDER_MODES:
            raise InvalidRequest(
                f"Order mode must be 'auto' or 'semi_auto', not {mode!r}.",
                errors={"mode": ["auto or semi_auto"]},
            )
        with self._db.session() as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFound(f"User {user_id} not found.")
            before, user.order_mode = user.order_mode, mode
        self._desk.api_keys.forget_user(user_id)
        if before != mode:
            self._desk.audit.record(
                "account.order_mode_changed",
                actor=actor,
                user_id=user_id,
                details={"from": before, "to": mode},
            )
            self._announce(user_id)
        return mode

    # ------------------------------------------------------------------ queueing

    def submit(self, trader: Trader, intent: Intent) -> PendingView | Execution:
        """The door for every source that is not a REST call shaping its own answer
        (webhooks, hosted strategies, Telegram): queued in semi-auto mode, else executed.
        The intent must be validated already (a malformed order is never queued)."""
        if holds_for_approval(trader.order_mode, intent.first.source):
            return self.queue(trader, intent)
        return intent.execute(self._desk, trader)

    def queue(self, trader: Trader, intent: Intent) -> PendingView:
        """Store a validated intent for approval (the caller has checked it against the
        instrument master: a malformed order is refused at once, never queued)."""
        now = self._desk.clock.now()
        first = intent.first
        row = PendingOrder(
            user_id=trader.user_id,
            source=first.source.value,
            strategy=first.strategy[:64],
            algo_id=first.algo_id[:32],
            kind=intent.kind,
            payload=dumps(intent),
            symbol=first.symbol,
            exchange=first.exchange,
            side=first.side.value,
            quantity=first.quantity,
            price_type=first.price_type.value,
            price_micros=int(first.price * _MICRO),
            legs=len(intent.legs),
            status=PENDING,
            created_at=now,
            expires_at=self.expiry(first.exchange, now),
            decided_by="",
            reason="",
            result="",
        )
        with self._db.session() as session:
            session.add(row)
            session.flush()
            view = _view(row)
        self._desk.audit.record(
            "approval.queued",
            actor=trader.who,
            user_id=trader.user_id,
            subject=f"pending {view.id}",
            details={
                "source": view.source,
                "strategy": view.strategy,
                "algo_id": view.algo_id,
                "order": view.description,
            },
        )
        self._announce(trader.user_id)
        return view

    def expiry(self, exchange: str, now: datetime) -> datetime:
        """The end of the exchange's trading day: today's last session close if it is still
        ahead, else the close of the next trading day."""
        calendar = self._desk.market.calendar
        day = now.astimezone(IST).date()
        for _ in range(30):
            sessions = calendar.sessions(exchange, day)
            if sessions and sessions[-1].end > now:
                return sessions[-1].end
            day += timedelta(days=1)
        return now + timedelta(days=1)  # past the bundled calendar: a day, never forever

    # ------------------------------------------------------------------ reading

    def pending(self, user_id: int) -> list[PendingView]:
        self.expire_stale()
        with self._db.session() as session:
            return [_view(row) for row in _pending_rows(session, user_id)]

    def pending_count(self, user_id: int) -> int:
        self.expire_stale()
        with self._db.session() as session:
            found = session.scalar(
                select(func.count())
                .select_from(PendingOrder)
                .where(PendingOrder.user_id == user_id, PendingOrder.status == PENDING)
            )
            return int(found or 0)

    def history(self, user_id: int, limit: int = 100) -> list[PendingView]:
        """Decided orders, newest decision first."""
        with self._db.session() as session:
            rows = session.scalars(
                select(PendingOrder)
                .where(PendingOrder.user_id == user_id, PendingOrder.status != PENDING)
                .order_by(PendingOrder.decided_at.desc(), PendingOrder.id.desc())
                .limit(limit)
            ).all()
            return [_view(row) for row in rows]

    def get(self, user_id: int, pending_id: int) -> PendingView:
        with self._db.session() as session:
            row = session.get(PendingOrder, pending_id)
            if row is None or row.user_id != user_id:
                raise NotFound(f"Pending order {pending_id} not found.")
            return _view(row)

    # ------------------------------------------------------------------ deciding

    def approve(self, user_id: int, pending_id: int, *, actor: str) -> PendingView:
        """Send a queued order through the pipeline; refused (and left pending) when the
        risk rules or the instrument master say no now."""
        row = self._decidable(user_id, pending_id)
        intent = intent_from_json(row.kind, json.loads(row.payload))
        trader = self._trader(user_id, actor)
        try:
            intent.vet(self._desk, trader)
        except DalalError as e:
            self._desk.audit.record(
                "approval.refused",
                actor=actor,
                user_id=user_id,
                subject=f"pending {pending_id}",
                details={"reason": e.message},
            )
            # Same class (so the same HTTP status), the reason prefixed; validation and risk
            # errors take (message, errors=...).
            raise type(e)(f"Approval refused: {e.message}", errors=e.errors) from None
        self._claim(pending_id)
        try:
            execution = intent.execute(self._desk, trader)
        except DalalError as e:
            execution = Execution((), e.message)
            status = FAILED
        else:
            status = APPROVED
        view = self._finish(pending_id, status, actor, execution.message, execution)
        self._desk.audit.record(
            "approval.approved" if status == APPROVED else "approval.failed",
            actor=actor,
            user_id=user_id,
            subject=f"pending {pending_id}",
            details={"orders": list(view.results), "message": execution.message},
        )
        self._announce(user_id, (view,))
        return view

    def reject(self, user_id: int, pending_id: int, *, actor: str, reason: str) -> PendingView:
        reason = _reason(reason)
        self._decidable(user_id, pending_id)
        self._claim(pending_id)
        view = self._finish(pending_id, REJECTED, actor, reason, None)
        self._desk.audit.record(
            "approval.rejected",
            actor=actor,
            user_id=user_id,
            subject=f"pending {pending_id}",
            details={"reason": reason, "order": view.description},
        )
        self._announce(user_id, (view,))
        return view

    def approve_all(self, user_id: int, *, actor: str) -> BatchOutcome:
        """Approve every pending order, oldest first; a refused one stays pending."""
        decided: list[PendingView] = []
        refused: list[tuple[int, str]] = []
        for item in self.pending(user_id):
            try:
                decided.append(self.approve(user_id, item.id, actor=actor))
            except DalalError as e:
                refused.append((item.id, e.message))
        return BatchOutcome(tuple(decided), tuple(refused))

    def reject_all(self, user_id: int, *, actor: str, reason: str) -> BatchOutcome:
        reason = _reason(reason)
        decided: list[PendingView] = []
        refused: list[tuple[int, str]] = []
        for item in self.pending(user_id):
            try:
                decided.append(self.reject(user_id, item.id, actor=actor, reason=reason))
            except DalalError as e:
                refused.append((item.id, e.message))
        return BatchOutcome(tuple(decided), tuple(refused))

    def expire_stale(self, now: datetime | None = None) -> int:
        """Expire every pending order whose trading day has ended (all users)."""
        now = now or self._desk.clock.now()
        with self._db.session() as session:
            stale = session.execute(
                select(PendingOrder.id, PendingOrder.user_id).where(
                    PendingOrder.status == PENDING, PendingOrder.expires_at <= now
                )
            ).all()
            if not stale:
                return 0
            session.execute(
                update(PendingOrder)
                .where(PendingOrder.id.in_([row.id for row in stale]))
                .where(PendingOrder.status == PENDING)
                .values(
                    status=EXPIRED,
                    decided_at=now,
                    decided_by="system",
                    reason="Expired at the end of the trading day",
                )
            )
        for pending_id, user_id in stale:
            self._desk.audit.record(
                "approval.expired", actor="system", user_id=user_id, subject=f"pending {pending_id}"
            )
        for user_id in {user_id for _id, user_id in stale}:
            self._announce(user_id)
        return len(stale)

    # ------------------------------------------------------------------ internals

    def _decidable(self, user_id: int, pending_id: int) -> PendingOrder:
        self.expire_stale()
        with self._db.session() as session:
            row = session.get(PendingOrder, pending_id)
            if row is None or row.user_id != user_id:
                raise NotFound(f"Pending order {pending_id} not found.")
            if row.status != PENDING:
                raise Conflict(f"Pending order {pending_id} is already {row.status}.")
            session.expunge(row)
            return row

    def _claim(self, pending_id: int) -> None:
        """Take the order out of the queue atomically: two approvals (two tabs, a double
        click, two processes) can never both send it."""
        with self._db.session() as session:
            claimed = session.execute(
                update(PendingOrder)
                .where(PendingOrder.id == pending_id, PendingOrder.status == PENDING)
                .values(status=APPROVING)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                raise Conflict(f"Pending order {pending_id} was decided meanwhile.")

    def _finish(
        self,
        pending_id: int,
        status: str,
        actor: str,
        reason: str,
        execution: Execution | None,
    ) -> PendingView:
        results = [result.as_dict() for result in execution.results] if execution else []
        with self._db.session() as session:
            row = session.get(PendingOrder, pending_id)
            if row is None:  # claimed above and rows are never deleted, but say so if so
                raise NotFound(f"Pending order {pending_id} disappeared while being decided.")
            row.status = status
            row.decided_at = self._desk.clock.now()
            row.decided_by = actor[:64]
            row.reason = reason[:MAX_REASON]
            row.result = json.dumps(results, separators=(",", ":"))
            session.flush()
            return _view(row)

    def _trader(self, user_id: int, actor: str) -> Trader:
        user = self._desk.accounts.get(user_id)
        if user is None:
            raise NotFound(f"User {user_id} not found.")
        return Trader(user_id=user_id, broker=user.broker, order_mode=AUTO, actor=actor)

    def _announce(self, user_id: int, decided: tuple[PendingView, ...] = ()) -> None:
        """Tell the user's open pages (Socket.IO) that the queue changed (and what was
        just decided, for the Decisions table)."""
        now = self._desk.clock.now()
        with self._db.session() as session:
            pending = [_view(row).as_json(now) for row in _pending_rows(session, user_id)]
            mode = session.scalar(select(User.order_mode).where(User.id == user_id))
        self._desk.events.publish(
            ACTION_CENTER,
            user_id,
            {
                "pending_count": len(pending),
                "pending": pending,
                "decided": [item.as_json(now) for item in decided],
                "order_mode": mode,
            },
        )


def _pending_rows(session: Session, user_id: int) -> Sequence[PendingOrder]:
    """The user's orders awaiting a decision, oldest first."""
    return session.scalars(
        select(PendingOrder)
        .where(PendingOrder.user_id == user_id, PendingOrder.status == PENDING)
        .order_by(PendingOrder.id)
    ).all()


def _reason(text: str) -> str:
    reason = " ".join(text.split())[:MAX_REASON]
    if not reason:
        raise InvalidRequest(
            "Give a reason for rejecting: it is kept with the decision.",
            errors={"reason": ["required"]},
        )
    return reason


def pending_count(desk: Desk, user_id: int) -> int:
    """How many of the user's orders await approval (the dashboard's figure)."""
    return desk.action_center.pending_count(user_id)
