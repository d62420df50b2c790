"""The API key page: generate (shown once), regenerate and revoke; the order mode."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from blueprints import desk, login_required
from blueprints.errors import api_error_response
from blueprints.forms import ActionForm
from services.action_center import SEMI_AUTO
from services.errors import DalalError

bp = Blueprint("apikey", __name__, url_prefix="/apikey")


def _page(new_key: str | None = None) -> Any:
    user_id = current_user.view.id
    response = make_response(
        render_template(
            "apikey.html",
            info=desk().api_keys.info(user_id),
            new_key=new_key,
            form=ActionForm(),
            order_mode=current_user.view.order_mode,
            api_url=request.host_url.rstrip("/") + "/api/v1",
        )
    )
    # The key appears in this response only; no cache may keep a copy.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("")
@login_required
def show() -> Any:
    return _page()


@bp.post("/generate")
@login_required
def generate() -> Any:
    if not ActionForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("apikey.show"))
    key = desk().api_keys.create(current_user.view.id)
    return _page(new_key=key)


@bp.post("/revoke")
@login_required
def revoke() -> Any:
    if not ActionForm().validate_on_submit():
        flash("The form expired; try again.", "error")
    elif desk().api_keys.revoke(current_user.view.id):
        flash("API key revoked. Programs using it are now refused.", "success")
    else:
        flash("There was no API key to revoke.", "info")
    return redirect(url_for("apikey.show"))


@bp.post("/mode")
@login_required
def mode() -> Any:
    """Switch the order mode: auto, or semi-auto (API orders wait in the Action Center).

    Only here and on the command line, never through the REST API: an algorithm must not be
    able to lift the approval that holds its own orders (API.md 1.7).
    """
    wants_json = request.is_json
    if wants_json:
        body = request.get_json(silent=True)
        chosen = body.get("mode") if isinstance(body, dict) else None
    else:
        chosen = request.form.get("mode")
    user = current_user.view
    try:
        desk().action_center.set_mode(user.id, str(chosen or ""), actor=user.username)
    except DalalError as e:
        if wants_json:
            return api_error_response(e)
        flash(e.message, "error")
        return redirect(url_for("apikey.show"))
    label = "Semi-auto" if chosen == SEMI_AUTO else "Auto"
    message = f"Order mode is now {label}."
    if chosen == SEMI_AUTO:
        message += " Orders from the API wait for your approval in the Action Center."
    if wants_json:
        return jsonify({"status": "success", "mode": chosen, "message": message})
    flash(message, "success")
    return redirect(url_for("apikey.show"))
