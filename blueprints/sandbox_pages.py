"""The sandbox page: the paper account's capital, the market mode, the charges it applies, and
Reset (the same service as `flask sandbox reset`), for the trader themself or an admin."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import render_template
from flask_login import current_user

from blueprints import desk, login_required
from blueprints.api.serialize import funds_data
from blueprints.trading import (
    ActionResult,
    form_text,
    percent_rate,
    read_or_alert,
    run_action,
    rupees,
    trading_blueprint,
)
from services.accounts import UserView
from services.clock import to_ist
from services.errors import PermissionDenied
from services.orders.model import FundsReport
from services.sandbox.charges import ChargeSchedule, Segment, SegmentRates, schedule_on
from services.sandbox.settings import ALWAYS_OPEN_SQUAREOFF, DEFAULT_SQUAREOFF_TIMES

bp = trading_blueprint("sandbox_pages", __name__)

SEGMENT_NAMES = {
    Segment.EQUITY_DELIVERY: "Equity delivery (CNC)",
    Segment.EQUITY_INTRADAY: "Equity intraday (MIS)",
    Segment.EQUITY_FUTURES: "Equity futures",
    Segment.EQUITY_OPTIONS: "Equity options",
    Segment.CURRENCY_FUTURES: "Currency futures",
    Segment.CURRENCY_OPTIONS: "Currency options",
    Segment.COMMODITY_FUTURES: "Commodity futures",
    Segment.COMMODITY_OPTIONS: "Commodity options",
}
CRORE = Decimal(10_000_000)


@dataclass(frozen=True)
class ChargeRow:
    """One segment of the charges schedule, as a trader reads it."""

    segment: str
    brokerage: str
    stt_buy: str
    stt_sell: str
    exchange: str
    sebi: str
    stamp: str


@bp.get("/sandbox")
@login_required
def index() -> str:
    problems: list[str] = []
    user_id = current_user.view.id
    funds = read_or_alert(lambda: funds_data(desk().sandbox.funds(user_id)), None, problems)
    settings = desk().settings
    schedule = schedule_on(to_ist(desk().clock.now()).date())
    return render_template(
        "trading/sandbox.html",
        funds=funds,
        starting_capital=settings.sandbox_starting_capital,
        always_open=settings.market_mode == "always_open",
        always_open_squareoff=ALWAYS_OPEN_SQUAREOFF,
        squareoff_times=DEFAULT_SQUAREOFF_TIMES,
        auto_reset=settings.sandbox_auto_reset,
        schedule=schedule,
        charge_rows=charge_rows(schedule),
        gst=percent_rate(schedule.gst_rate),
        dp_charge=rupees(schedule.dp_charge),
        problems=problems,
    )


@bp.post("/sandbox/reset")
@login_required
def reset() -> Any:
    def action() -> ActionResult:
        me = current_user.view
        username = form_text("username")
        target = me
        if username and username.lower() != me.username.lower():
            if not me.is_admin:
                raise PermissionDenied("Only an administrator can reset another trader's sandbox.")
            target = desk().accounts.get_by_username(username)
        funds = desk().sandbox.reset(target.id)
        audit_sandbox_reset(me.username, target, funds)
        message = "Sandbox reset" if target.id == me.id else f"Sandbox of {target.username} reset"
        return message, {"sandbox": funds_data(funds) if target.id == me.id else None}

    return run_action("sandbox_pages.index", action)


def audit_sandbox_reset(actor: str, target: UserView, funds: FundsReport) -> None:
    """The reset lives in the sandbox engine, which knows nothing of who asked: the page and
    the CLI record it."""
    desk().audit.record(
        "sandbox.reset",
        actor=actor,
        user_id=target.id,
        subject=target.username,
        details={"available_cash": funds.available_cash, "reset_count": funds.reset_count},
    )


def charge_rows(schedule: ChargeSchedule) -> list[ChargeRow]:
    exchanges: dict[Segment, list[str]] = {}
    for (segment, exchange), rate in schedule.exchange_rates.items():
        exchanges.setdefault(segment, []).append(f"{exchange.value} {percent_rate(rate)}")
    return [
        ChargeRow(
            segment=name,
            brokerage=_brokerage(rates),
            stt_buy=percent_rate(rates.stt_buy),
            stt_sell=percent_rate(rates.stt_sell),
            exchange=", ".join(exchanges.get(segment, [])) or "0%",
            sebi=f"₹{rupees(rates.sebi * CRORE)} per crore",
            stamp=percent_rate(rates.stamp_buy),
        )
        for segment, name in SEGMENT_NAMES.items()
        if (rates := schedule.rates.get(segment)) is not None
    ]


def _brokerage(rates: SegmentRates) -> str:
    if rates.brokerage_rate is None:
        return "Free" if not rates.brokerage_cap else f"₹{rupees(rates.brokerage_cap)} per order"
    return (
        f"{percent_rate(rates.brokerage_rate)} or ₹{rupees(rates.brokerage_cap)} per order, "
        "whichever is lower"
    )
