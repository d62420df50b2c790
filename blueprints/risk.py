"""Settings → Risk limits: the trader's own pre-trade rules (services/risk.py enforces them)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import flash, make_response, redirect, render_template, url_for
from flask_login import current_user
from wtforms import BooleanField, StringField, SubmitField
from wtforms.validators import Length

from blueprints import desk, login_required
from blueprints.forms import Form
from blueprints.trading import trading_blueprint
from services.errors import InvalidRequest
from services.risk import RiskLimits, parse_limits

bp = trading_blueprint("risk", __name__, url_prefix="/settings/risk")  # with ₹ formats

_TEXT = [Length(max=32)]
_BLANK = "Leave blank for no limit."


class RiskLimitsForm(Form):
    # Text fields, not number fields: the service parses the amounts (commas, ₹, the paise
    # grid) and says what is wrong in the trader's terms, beside the field.
    max_order_value = StringField("Maximum order value (₹)", validators=_TEXT, description=_BLANK)
    max_open_positions = StringField("Maximum open positions", validators=_TEXT, description=_BLANK)
    max_daily_loss = StringField("Maximum daily loss (₹)", validators=_TEXT, description=_BLANK)
    kill_switch = BooleanField("Kill switch")
    submit = SubmitField("Save risk limits")

    @classmethod
    def showing(cls, limits: RiskLimits) -> RiskLimitsForm:
        return cls(
            max_order_value=_plain(limits.max_order_value),
            max_open_positions=_plain(limits.max_open_positions),
            max_daily_loss=_plain(limits.max_daily_loss),
            kill_switch=limits.kill_switch,
        )


def _plain(value: Decimal | int | None) -> str:
    """A value as the form shows it: no grouping, so it reads back exactly."""
    if value is None:
        return ""
    return f"{value:.2f}" if isinstance(value, Decimal) else str(value)


def _render(form: RiskLimitsForm, status: int = 200, problem: str = "") -> Any:
    limits = desk().risk.limits(current_user.view.id, fresh=True)
    page = render_template("settings/risk.html", form=form, limits=limits, problem=problem)
    response = make_response(page, status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("")
@login_required
def index() -> Any:
    return _render(RiskLimitsForm.showing(desk().risk.limits(current_user.view.id, fresh=True)))


@bp.post("")
@login_required
def save() -> Any:
    form = RiskLimitsForm()
    if not form.validate_on_submit():
        problem = (
            "This form expired or did not come from this desk. Reload and try again."
            if "csrf_token" in form.errors
            else "Risk limits not saved: check the fields below."
        )
        return _render(form, 400, problem)
    user = current_user.view
    try:
        limits = parse_limits(
            form.max_order_value.data or "",
            form.max_open_positions.data or "",
            form.max_daily_loss.data or "",
            bool(form.kill_switch.data),
        )
        desk().risk.update(user.id, limits, actor=user.username)
    except InvalidRequest as e:
        for name, messages in e.errors.items():
            getattr(form, name).errors = list(messages)
        return _render(form, 400, e.message)
    if limits.kill_switch:
        flash("Risk limits saved. The kill switch is on: new orders are refused.", "success")
    else:
        flash("Risk limits saved.", "success")
    return redirect(url_for("risk.index"))
