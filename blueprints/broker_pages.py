"""Settings -> Broker: which broker the trader trades with, each live broker's credentials,
the broker login (a redirect to the broker and its callback) and logout; and the banner every
page shows when a live session has lapsed.

Secrets typed here go straight into services/broker_accounts.py (sealed) and are never shown
back, logged or put in a redirect: the form shows whether a secret is stored, not what it is.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from blueprints import desk, login_required
from blueprints.forms import ActionForm
from broker.base import Broker, SessionStatus, TradingMode, broker_for, registered_brokers
from services.broker_accounts import BrokerCredentials, select_broker
from services.errors import DalalError, InvalidRequest, NotFound

bp = Blueprint("broker_pages", __name__, url_prefix="/settings/broker")


def _live_brokers() -> dict[str, type[Broker]]:
    return {
        name: cls
        for name, cls in sorted(registered_brokers().items())
        if cls.mode is TradingMode.LIVE
    }


def _live_class(name: str) -> type[Broker]:
    found = _live_brokers().get(name)
    if found is None:
        raise NotFound(f"No live broker named {name!r} on this desk.")
    return found


def _render(status: int = 200, problem: str = "") -> Any:
    user = current_user.view
    accounts = desk().broker_accounts
    brokers = [
        {
            "cls": cls,
            "account": accounts.summary(user.id, name),
            "status": broker_for(name, user.id, desk()).session_status(),
        }
        for name, cls in _live_brokers().items()
    ]
    page = render_template(
        "settings/broker.html",
        brokers=brokers,
        active=user.broker,
        form=ActionForm(),
        problem=problem,
        callback=lambda name: url_for("broker_pages.callback", name=name, _external=True),
    )
    response = make_response(page, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _valid_form() -> bool:
    if ActionForm().validate_on_submit():
        return True
    flash("The form expired; try again.", "error")
    return False


@bp.get("")
@login_required
def index() -> Any:
    return _render()


@bp.post("/<name>/credentials")
@login_required
def credentials(name: str) -> Any:
    if not _valid_form():
        return redirect(url_for("broker_pages.index"))
    user = current_user.view
    try:
        cls = _live_class(name)
        entered = {
            field.name: request.form.get(field.name, "").strip() for field in cls.credential_fields
        }
        missing = [
            field.label
            for field in cls.credential_fields
            if not entered[field.name]
            and not (field.secret and desk().broker_accounts.summary(user.id, name).has_credentials)
        ]
        if missing:
            raise InvalidRequest(f"{cls.display_name}: enter {', '.join(missing)}.")
        desk().broker_accounts.save_credentials(
            user.id,
            name,
            BrokerCredentials(
                api_key=entered.get("api_key", ""),
                api_secret=entered.get("api_secret", ""),
                client_id=entered.get("client_id", ""),
            ),
        )
    except DalalError as e:
        return _render(e.status if 400 <= e.status < 500 else 400, e.message)
    desk().audit.record(
        "broker.credentials_saved", actor=user.username, user_id=user.id, subject=name
    )
    flash(f"{cls.display_name} credentials saved. Log in to start a session.", "success")
    return redirect(url_for("broker_pages.index"))


@bp.post("/use")
@login_required
def use() -> Any:
    """Trade with the sandbox or a live broker (the API's analyzer mode follows this)."""
    if not _valid_form():
        return redirect(url_for("broker_pages.index"))
    user = current_user.view
    try:
        chosen = select_broker(desk(), user.id, request.form.get("broker", ""), actor=user.username)
    except DalalError as e:
        return _render(e.status if 400 <= e.status < 500 else 400, e.message)
    flash(f"Orders now go to {registered_brokers()[chosen].display_name}.", "success")
    return redirect(url_for("broker_pages.index"))


@bp.post("/<name>/login")
@login_required
def login(name: str) -> Any:
    if not _valid_form():
        return redirect(url_for("broker_pages.index"))
    try:
        _live_class(name)
        broker = broker_for(name, current_user.view.id, desk())
        target = broker.login_url(url_for("broker_pages.callback", name=name, _external=True))
    except DalalError as e:
        return _render(e.status if 400 <= e.status < 500 else 400, e.message)
    return redirect(target, 303)


@bp.get("/<name>/callback")
@login_required
def callback(name: str) -> Any:
    """Where the broker sends the trader back after logging in."""
    try:
        _live_class(name)
        broker = broker_for(name, current_user.view.id, desk())
        status: SessionStatus = broker.complete_login(dict(request.args))
    except DalalError as e:
        return _render(e.status if 400 <= e.status < 500 else 400, e.message)
    flash(f"Logged in to {broker.display_name}. {status.message}", "success")
    return redirect(url_for("broker_pages.index"))


@bp.post("/<name>/logout")
@login_required
def logout(name: str) -> Any:
    if not _valid_form():
        return redirect(url_for("broker_pages.index"))
    try:
        _live_class(name)
        broker = broker_for(name, current_user.view.id, desk())
        broker.logout()
    except DalalError as e:
        return _render(e.status if 400 <= e.status < 500 else 400, e.message)
    flash(f"Logged out of {broker.display_name}.", "success")
    return redirect(url_for("broker_pages.index"))


@bp.app_context_processor
def _broker_banner() -> dict[str, Any]:
    """Every signed-in page: a banner when the trader's live broker needs a login."""
    if not current_user.is_authenticated:
        return {"broker_banner": None}
    user = current_user.view
    try:
        broker = broker_for(user.broker, user.id, desk())
        status = broker.session_status()
    except DalalError:
        return {"broker_banner": None}
    if status.connected or not status.needs_login:
        return {"broker_banner": None}
    return {"broker_banner": {"message": status.message, "broker": broker.name}}
