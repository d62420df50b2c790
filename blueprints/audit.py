"""The audit trail page: whether the hash chain is intact, the records newest first, and a
CSV export. Admins see every user's records; everyone else sees their own. The chain's status
is the whole desk's and shown to all."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask_login import current_user

from blueprints import desk, login_required
from services.audit import AuditRecord, canonical_json
from services.clock import to_ist
from services.errors import InvalidRequest

bp = Blueprint("audit", __name__, url_prefix="/audit")

PAGE_SIZE = 100
_ACTION_PREFIX = re.compile(r"^[a-z0-9._-]{0,64}$")


def _own_user_id() -> int | None:
    """None (everyone) for an admin, else the signed-in user's id."""
    view = current_user.view
    return None if view.is_admin else view.id


def _action_prefix() -> str:
    text = request.args.get("action", "").strip().lower()
    if not _ACTION_PREFIX.match(text):
        raise InvalidRequest(
            "The action filter takes the start of an action name, such as 'auth' or "
            "'apikey.created': lowercase letters, digits, '.', '_' or '-', at most 64.",
            errors={"action": ["an action name prefix"]},
        )
    return text


def _before_seq() -> int | None:
    text = request.args.get("before", "").strip()
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise InvalidRequest(
            f"'before' must be a record number (a whole number of at least 1), not {text[:20]!r}.",
            errors={"before": ["a record number"]},
        )
    return int(text)


@bp.get("")
@login_required
def index() -> str:
    action = _action_prefix()
    before = _before_seq()
    trail = desk().audit
    verification = trail.verify()  # flushes first: the page shows what was just done too
    rows = trail.events(
        user_id=_own_user_id(), action_prefix=action, limit=PAGE_SIZE + 1, before_seq=before
    )
    older = rows[PAGE_SIZE - 1].seq if len(rows) > PAGE_SIZE else None
    rows = rows[:PAGE_SIZE]
    return render_template(
        "audit/index.html",
        verification=verification,
        rows=rows,
        usernames=_usernames(rows),
        action=action,
        before=before,
        older=older,
        everyone=_own_user_id() is None,
        details_text=details_text,
    )


@bp.get("/export.csv")
@login_required
def export_csv() -> Response:
    user_id = _own_user_id()
    stamp = to_ist(desk().clock.now()).strftime("%Y%m%d-%H%M")
    response = Response(desk().audit.iter_csv(user_id=user_id), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="dalal-audit-{stamp}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _usernames(rows: list[AuditRecord]) -> dict[int, str]:
    found: dict[int, str] = {}
    for user_id in {row.user_id for row in rows if row.user_id is not None}:
        view = desk().accounts.get(user_id)
        found[user_id] = view.username if view else f"#{user_id} (deleted)"
    return found


def details_text(details: dict[str, Any]) -> str:
    """`key: value` pairs, as a person reads them."""
    return ", ".join(f"{key}: {_plain(value)}" for key, value in sorted(details.items()))


def _plain(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return canonical_json(value)
    return str(value)
