"""The broker latency monitor page: p50/p90/p99 of every live-broker call, by operation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, make_response, render_template, request

from blueprints import desk, login_required
from services.errors import InvalidRequest

bp = Blueprint("latency", __name__, url_prefix="/settings/latency")
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}


@bp.get("")
@login_required
def index() -> Any:
    window = request.args.get("window", "24h")
    if window not in WINDOWS:
        raise InvalidRequest(f"window must be one of {', '.join(WINDOWS)}, not {window!r}.")
    since = desk().clock.now() - WINDOWS[window]
    rows = desk().broker_latency.summary(since)
    response = make_response(
        render_template("settings/latency.html", rows=rows, window=window, windows=WINDOWS)
    )
    response.headers["Cache-Control"] = "no-store"
    return response
