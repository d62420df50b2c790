"""The API key page: generate (shown once), regenerate and revoke."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints import desk, login_required
from blueprints.forms import ActionForm

bp = Blueprint("apikey", __name__, url_prefix="/apikey")


def _page(new_key: str | None = None) -> Any:
    user_id = current_user.view.id
    response = make_response(
        render_template(
            "apikey.html",
            info=desk().api_keys.info(user_id),
            new_key=new_key,
            form=ActionForm(),
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
