"""First-run set-up, sign-in (password, then TOTP when on), sign-out and session expiry.

Sessions end at SESSION_EXPIRY_TIME IST every day (03:00 by default), when Indian brokers'
tokens die too, and whenever the user's password changes.

Sign-ins (succeeded and failed, with the name tried but never the password) and sign-outs
go to the audit trail from here: only the page knows the client's address and whether the
second factor was passed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import UserMixin, current_user, login_user, logout_user
from werkzeug.wrappers import Response as BaseResponse

from blueprints import desk, login_required
from blueprints.forms import ActionForm, LoginForm, SetupForm, TwoFactorForm
from extensions import login_manager
from services.accounts import UserView
from services.clock import latest_cutoff
from services.errors import AccountError, InvalidRequest, LoginFailed, SetupClosed

bp = Blueprint("auth", __name__)

PENDING_2FA_SECONDS = 300
# Pages and routes reachable before the first admin exists.
_OPEN_ENDPOINTS = {"auth.setup", "static", "health.health"}


class LoginUser(UserMixin):  # type: ignore[misc]
    """Flask-Login's view of a user; the id carries the session version."""

    def __init__(self, view: UserView) -> None:
        self.view = view

    def get_id(self) -> str:
        return f"{self.view.id}:{self.view.session_version}"

    @property
    def username(self) -> str:
        return self.view.username

    @property
    def is_admin(self) -> bool:
        return self.view.is_admin


def _session_expired() -> bool:
    login_at = session.get("login_at")
    if not isinstance(login_at, int | float):
        return True
    settings = desk().settings
    cutoff = latest_cutoff(desk().clock.now(), settings.session_expiry_time)
    return login_at < cutoff.timestamp()


def load_user(user_id: str) -> LoginUser | None:
    try:
        raw_id, raw_version = user_id.split(":", 1)
        wanted_id, wanted_version = int(raw_id), int(raw_version)
    except ValueError:
        return None
    if _session_expired():
        g.session_expired = True
        return None
    view = desk().accounts.get(wanted_id)
    if view is None or view.session_version != wanted_version:
        return None
    return LoginUser(view)


def unauthorized() -> BaseResponse:
    if g.get("session_expired"):
        session.clear()
        expiry = desk().settings.session_expiry_time.strftime("%H:%M")
        flash(f"Your session ended at {expiry} IST, as it does every day. Sign in again.", "info")
    return redirect(url_for("auth.login", next=request.path))


def gate_setup() -> BaseResponse | None:
    """Before any page: an empty desk goes to /setup first."""
    # Once set up, always set up: remembered per process so pages skip the query.
    if current_app.extensions.get("dalal.setup_done"):
        return None
    if request.endpoint in _OPEN_ENDPOINTS or request.path.startswith("/api/"):
        return None
    if desk().accounts.setup_needed():
        return redirect(url_for("auth.setup"))
    current_app.extensions["dalal.setup_done"] = True
    return None


def _audit_sign_in(
    action: str, subject: str, *, user: UserView | None = None, **details: object
) -> None:
    # A failed attempt is nobody's until it succeeds, even when the password was right.
    signed_in = user is not None and action == "auth.login"
    desk().audit.record(
        action,
        actor=user.username if user and signed_in else "anonymous",
        user_id=user.id if user else None,
        subject=subject.strip(),
        details={"ip": request.remote_addr or "", **details},
    )


def _start_session(view: UserView) -> None:
    # A fresh session on every sign-in: nothing an attacker planted before it survives.
    session.clear()
    login_user(LoginUser(view))
    session["login_at"] = desk().clock.now().timestamp()
    session.permanent = False


_SIGN_IN_LIMITS = ("login_rate_limit_min", "login_rate_limit_hour")


def _sign_in_limits[F: Callable[..., Any]](view: F) -> F:
    """Failed sign-in attempts (only failures count) per client address, per minute and hour.

    A client over the limit is refused before its password is even checked, so a correct
    guess after too many wrong ones still gets 429.
    """

    @functools.wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        if request.method != "POST":
            return view(*args, **kwargs)
        found = desk()
        caller = request.remote_addr or "unknown"
        for setting in _SIGN_IN_LIMITS:
            found.rate_limits.ensure_allowed(getattr(found.settings, setting), setting, caller)
        response = current_app.make_response(view(*args, **kwargs))
        if response.status_code == 401:
            for setting in _SIGN_IN_LIMITS:
                found.rate_limits.count(getattr(found.settings, setting), setting, caller)
        return response

    return cast(F, limited)


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> Any:
    accounts = desk().accounts
    if not accounts.setup_needed():
        flash("Dalal is already set up; sign in.", "info")
        return redirect(url_for("auth.login"))
    form = SetupForm()
    if form.validate_on_submit():
        try:
            view = accounts.create_first_admin(
                form.username.data or "", form.email.data or "", form.password.data or ""
            )
        except SetupClosed as e:
            flash(e.message, "info")
            return redirect(url_for("auth.login"))
        except (AccountError, InvalidRequest) as e:
            form.password.errors = [*form.password.errors, e.message]
            return render_template("auth/setup.html", form=form), 400
        _start_session(view)
        flash(f"Welcome, {view.username}. Your desk is ready.", "success")
        return redirect(url_for("home.index"))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/setup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
@_sign_in_limits
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if form.validate_on_submit():
        username = form.username.data or ""
        try:
            view = desk().accounts.authenticate(username, form.password.data or "")
        except LoginFailed as e:
            _audit_sign_in("auth.login_failed", username, reason="wrong username or password")
            form.password.errors = [e.message]
            return render_template("auth/login.html", form=form), 401
        if view.totp_enabled:
            session.clear()
            session["pending_2fa"] = {
                "user_id": view.id,
                "version": view.session_version,
                "at": desk().clock.now().timestamp(),
                "next": _safe_next(),
            }
            return redirect(url_for("auth.verify"))
        _start_session(view)
        _audit_sign_in("auth.login", view.username, user=view, two_factor=False)
        return redirect(_safe_next() or url_for("home.index"))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/login/verify", methods=["GET", "POST"])
@_sign_in_limits
def verify() -> Any:
    pending = session.get("pending_2fa")
    now = desk().clock.now().timestamp()
    if not isinstance(pending, dict) or now - float(pending.get("at", 0)) > PENDING_2FA_SECONDS:
        session.pop("pending_2fa", None)
        flash("Sign in again: the two-factor step timed out.", "info")
        return redirect(url_for("auth.login"))
    form = TwoFactorForm()
    if form.validate_on_submit():
        user_id = int(pending["user_id"])
        view = desk().accounts.get(user_id)
        if (
            view is None
            or view.session_version != pending.get("version")
            or not desk().two_factor.verify(user_id, form.code.data or "")
        ):
            _audit_sign_in(
                "auth.login_failed",
                view.username if view else "",
                user=view,
                reason="two-factor code not valid",
            )
            form.code.errors = ["That code is not valid, or was already used."]
            return render_template("auth/verify.html", form=form), 401
        next_url = pending.get("next")
        _start_session(view)
        _audit_sign_in("auth.login", view.username, user=view, two_factor=True)
        return redirect(next_url or url_for("home.index"))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/verify.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> BaseResponse:
    form = ActionForm()
    if form.validate_on_submit():
        view = current_user.view
        logout_user()
        session.clear()
        desk().audit.record(
            "auth.logout", actor=view.username, user_id=view.id, subject=view.username
        )
        flash("Signed out.", "info")
    return redirect(url_for("auth.login"))


def _safe_next() -> str | None:
    """Only same-site paths: `next=` must never send a trader to another host."""
    target = request.args.get("next", "")
    # Browsers drop tabs and newlines inside URLs ("/\t/evil" becomes "//evil"), and a
    # control character cannot go into a Location header at all: refuse them outright.
    if not target or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:
        return None
    return target


def init_auth(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(load_user)
    login_manager.unauthorized_handler(unauthorized)
    login_manager.session_protection = "strong"
    app.before_request(gate_setup)
    app.register_blueprint(bp)
