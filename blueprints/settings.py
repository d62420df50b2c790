"""Settings: profile, password and two-factor sign-in."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, make_response, redirect, render_template, session, url_for
from flask_login import current_user, login_user

from blueprints import desk, login_required
from blueprints.auth import LoginUser
from blueprints.forms import (
    ActionForm,
    ConfirmTwoFactorForm,
    DisableTwoFactorForm,
    PasswordForm,
    ProfileForm,
)
from services.errors import AccountError

bp = Blueprint("settings", __name__, url_prefix="/settings")


def _render(status: int = 200, **forms: Any) -> Any:
    user_id = current_user.view.id
    view = desk().accounts.get(user_id)
    context: dict[str, Any] = {
        "user": view,
        "profile_form": ProfileForm(email=view.email if view else ""),
        "password_form": PasswordForm(),
        "begin_form": ActionForm(),
        "confirm_form": ConfirmTwoFactorForm(),
        "disable_form": DisableTwoFactorForm(),
        "enrollment": desk().two_factor.pending(user_id),
        "recovery_left": desk().two_factor.remaining_recovery_codes(user_id),
        "recovery_codes": None,
    }
    context.update(forms)
    response = make_response(render_template("settings.html", **context), status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("")
@login_required
def index() -> Any:
    return _render()


@bp.post("/profile")
@login_required
def profile() -> Any:
    form = ProfileForm()
    if not form.validate_on_submit():
        return _render(400, profile_form=form)
    try:
        desk().accounts.update_email(current_user.view.id, form.email.data or "")
    except AccountError as e:
        form.email.errors = [e.message]
        return _render(400, profile_form=form)
    flash("Profile saved.", "success")
    return redirect(url_for("settings.index"))


@bp.post("/password")
@login_required
def password() -> Any:
    form = PasswordForm()
    if not form.validate_on_submit():
        return _render(400, password_form=form)
    try:
        view = desk().accounts.change_password(
            current_user.view.id, form.current.data or "", form.new.data or ""
        )
    except AccountError as e:
        form.new.errors = [e.message]
        return _render(400, password_form=form)
    # Other sessions die with the old session version; this one carries on with the new one.
    login_at = session.get("login_at")
    login_user(LoginUser(view))
    session["login_at"] = login_at
    flash("Password changed. Other signed-in sessions have ended.", "success")
    return redirect(url_for("settings.index"))


@bp.post("/2fa/begin")
@login_required
def begin_two_factor() -> Any:
    if not ActionForm().validate_on_submit():
        return _render(400)
    try:
        desk().two_factor.begin(current_user.view.id)
    except AccountError as e:
        flash(e.message, "error")
    return redirect(url_for("settings.index") + "#two-factor")


@bp.post("/2fa/confirm")
@login_required
def confirm_two_factor() -> Any:
    form = ConfirmTwoFactorForm()
    if not form.validate_on_submit():
        return _render(400, confirm_form=form)
    try:
        codes = desk().two_factor.confirm(current_user.view.id, form.code.data or "")
    except AccountError as e:
        form.code.errors = [e.message]
        return _render(400, confirm_form=form)
    flash("Two-factor sign-in is on. Store the recovery codes below now.", "success")
    return _render(recovery_codes=codes)


@bp.post("/2fa/disable")
@login_required
def disable_two_factor() -> Any:
    form = DisableTwoFactorForm()
    if not form.validate_on_submit():
        return _render(400, disable_form=form)
    try:
        desk().two_factor.disable(
            current_user.view.id, form.password.data or "", form.code.data or ""
        )
    except AccountError as e:
        form.code.errors = [e.message]
        return _render(400, disable_form=form)
    flash("Two-factor sign-in is off.", "success")
    return redirect(url_for("settings.index"))
