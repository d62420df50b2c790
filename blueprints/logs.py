"""The API traffic page: every /api request, newest first, with secrets already redacted."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user

from blueprints import desk, login_required
from services.api_log import recent_entries

bp = Blueprint("logs", __name__, url_prefix="/logs")

_STATUS_CLASSES = {"2xx": 2, "4xx": 4, "5xx": 5}


@bp.get("")
@login_required
def index() -> str:
    page = request.args.get("page", default=1, type=int) or 1
    status = request.args.get("status", "")
    path = request.args.get("path", "").strip()[:100]
    # Admins see the whole desk's traffic; everyone else sees their own.
    user_id = None if current_user.view.is_admin else current_user.view.id
    desk().api_log.flush(timeout=2.0)
    result = recent_entries(
        desk().databases,
        page=page,
        user_id=user_id,
        status_class=_STATUS_CLASSES.get(status),
        path_contains=path,
    )
    return render_template("logs.html", result=result, status=status, path=path)
