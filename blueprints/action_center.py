"""The Action Center page: orders held for approval in semi-auto mode, and the decisions.

Thin over services/action_center.py: approve, reject (with a reason), approve all, reject
all. Actions are CSRF forms answered in place (JSON to the page's script) or, without
script, with a redirect.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import render_template
from flask_login import current_user

from blueprints import desk, login_required
from blueprints.trading import ActionResult, form_text, run_action, trading_blueprint
from services.action_center import BatchOutcome, PendingView

bp = trading_blueprint("action_center", __name__, url_prefix="/action-center")


def _queue_state(user_id: int, decided: Iterable[PendingView] = ()) -> dict[str, Any]:
    """The queue as the page's script redraws it (the same dict the Socket.IO push carries),
    with what was just decided, so the page is right even when the push does not arrive."""
    center, now = desk().action_center, desk().clock.now()
    pending = [item.as_json(now) for item in center.pending(user_id)]
    return {
        "pending_count": len(pending),
        "pending": pending,
        "decided": [item.as_json(now) for item in decided],
        "order_mode": current_user.view.order_mode,
    }


@bp.get("")
@login_required
def index() -> str:
    user = current_user.view
    center = desk().action_center
    return render_template(
        "trading/action_center.html",
        pending=center.pending(user.id),
        history=center.history(user.id),
        order_mode=user.order_mode,
        now=desk().clock.now(),
    )


@bp.post("/<int:pending_id>/approve")
@login_required
def approve(pending_id: int) -> Any:
    def action() -> ActionResult:
        user = current_user.view
        view = desk().action_center.approve(user.id, pending_id, actor=user.username)
        placed = ", ".join(
            str(result.get("orderid")) for result in view.results if "orderid" in result
        )
        message = f"Order {pending_id} approved" + (f": {placed}" if placed else "")
        if view.reason:
            message += f" ({view.reason})"
        return message, {"action_center": _queue_state(user.id, (view,))}

    return run_action("action_center.index", action)


@bp.post("/<int:pending_id>/reject")
@login_required
def reject(pending_id: int) -> Any:
    def action() -> ActionResult:
        user = current_user.view
        view = desk().action_center.reject(
            user.id, pending_id, actor=user.username, reason=form_text("reason")
        )
        return f"Order {pending_id} rejected", {"action_center": _queue_state(user.id, (view,))}

    return run_action("action_center.index", action)


@bp.post("/approve-all")
@login_required
def approve_all() -> Any:
    def action() -> ActionResult:
        user = current_user.view
        outcome = desk().action_center.approve_all(user.id, actor=user.username)
        state = _queue_state(user.id, outcome.decided)
        return _summary("approved", outcome), {"action_center": state}

    return run_action("action_center.index", action)


@bp.post("/reject-all")
@login_required
def reject_all() -> Any:
    def action() -> ActionResult:
        user = current_user.view
        outcome = desk().action_center.reject_all(
            user.id, actor=user.username, reason=form_text("reason")
        )
        state = _queue_state(user.id, outcome.decided)
        return _summary("rejected", outcome), {"action_center": state}

    return run_action("action_center.index", action)


def _summary(verb: str, outcome: BatchOutcome) -> str:
    if not outcome.decided and not outcome.refused:
        return "No orders are waiting for approval"
    message = f"{len(outcome.decided)} {'order' if len(outcome.decided) == 1 else 'orders'} {verb}"
    if outcome.refused:
        message += "; still pending: " + "; ".join(
            f"{pending_id}: {why}" for pending_id, why in outcome.refused
        )
    return message
