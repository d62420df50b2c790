"""The signed-in trader's home: account, broker connection and the way to the API."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from blueprints import desk, login_required
from broker.base import broker_for

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index() -> str:
    user = current_user.view
    broker = broker_for(user.broker, user.id, desk())
    return render_template(
        "home.html",
        user=user,
        broker=broker,
        broker_status=broker.session_status(),
        api_key=desk().api_keys.info(user.id),
        settings=desk().settings,
    )
