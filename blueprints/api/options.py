"""Options analytics: optionsymbol, optionchain, syntheticfuture, (multi)optiongreeks (4.6)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from flask_restx import Namespace, Resource

from blueprints import desk
from blueprints.api import api
from blueprints.api.request import authenticated_request, limited, success
from blueprints.api.schema import Field, request_model
from blueprints.api.serialize import money, quote_data
from services.errors import DalalError
from services.market.analytics import ChainSide, OptionGreeks, OptionsAnalytics
from services.market.model import Greeks

ns = Namespace("options", description="Option symbols, chains and greeks (API.md 4.6)", path="/")

UNDERLYING = Field(
    "str",
    required=True,
    example="NIFTY",
    description="NIFTY, RELIANCE, or with expiry NIFTY24NOV26FUT",
)
UNDERLYING_EXCHANGE = Field(
    "str",
    required=True,
    example="NSE_INDEX",
    description="Where the underlying is quoted: NSE_INDEX, NSE, BSE_INDEX, NFO, MCX…",
)
EXPIRY = Field("str", example="24NOV26", description="Expiry as DDMMMYY")
RATE = Field(
    "decimal",
    default=Decimal(0),
    minimum=0,
    maximum=100,
    example=6.5,
    description="Annual interest rate in percent (greeks only)",
)
OPTION_TYPE = Field("str", required=True, choices=("CE", "PE"), case_insensitive=True)

OPTIONSYMBOL_SCHEMA = {
    "underlying": UNDERLYING,
    "exchange": UNDERLYING_EXCHANGE,
    "expiry_date": EXPIRY,
    "strike_int": Field(
        "decimal",
        minimum=1,
        example=50,
        description="Strike step; omitted = the listed strikes (recommended)",
    ),
    "offset": Field(
        "str", required=True, example="ATM", description="ATM, ITM1..ITM50, OTM1..OTM50"
    ),
    "option_type": OPTION_TYPE,
    "strategy": Field("str", description="Ignored (kept for compatibility)"),
}
CHAIN_SCHEMA = {
    "underlying": UNDERLYING,
    "exchange": UNDERLYING_EXCHANGE,
    "expiry_date": Field("str", required=True, example="24NOV26", description="Expiry as DDMMMYY"),
    "strike_count": Field(
        "int",
        minimum=1,
        maximum=100,
        example=10,
        description="Strikes each side of ATM (whole chain when omitted)",
    ),
    "with_greeks": Field("bool", default=False, example=True),
    "interest_rate": RATE,
}
SYNTHETIC_SCHEMA = {
    "underlying": UNDERLYING,
    "exchange": UNDERLYING_EXCHANGE,
    "expiry_date": Field("str", required=True, example="24NOV26", description="Expiry as DDMMMYY"),
}
GREEKS_SCHEMA = {
    "symbol": Field("str", required=True, example="NIFTY24NOV2626000CE"),
    "exchange": Field("str", required=True, choices=("NFO", "BFO", "MCX", "CDS", "BCD")),
    "interest_rate": RATE,
    "forward_price": Field(
        "decimal", minimum=0, description="Use this forward instead of spot·e^(rT)"
    ),
    "underlying_symbol": Field("str", description="Accepted; the master knows the underlying"),
    "underlying_exchange": Field("str", description="Accepted; the master knows the underlying"),
    "expiry_time": Field("str", pattern=r"\d{2}:\d{2}", description="HH:MM; default cut-off"),
}
MULTI_GREEKS_SCHEMA = {
    "symbols": Field(
        "list",
        required=True,
        min_items=1,
        max_items=50,
        items={
            "symbol": GREEKS_SCHEMA["symbol"],
            "exchange": GREEKS_SCHEMA["exchange"],
            "underlying_symbol": GREEKS_SCHEMA["underlying_symbol"],
            "underlying_exchange": GREEKS_SCHEMA["underlying_exchange"],
        },
    ),
    "interest_rate": RATE,
    "expiry_time": GREEKS_SCHEMA["expiry_time"],
}


def analytics() -> OptionsAnalytics:
    return OptionsAnalytics(desk().market)


class OptionsResource(Resource):  # type: ignore[misc]
    method_decorators: ClassVar[list[Any]] = [limited("api_rate_limit")]


@ns.route("/optionsymbol")
class OptionSymbol(OptionsResource):
    @ns.expect(request_model(ns, "OptionSymbolRequest", OPTIONSYMBOL_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """The option contract at an offset from ATM."""
        _owner, parsed = authenticated_request(OPTIONSYMBOL_SCHEMA)
        pick = analytics().pick(
            parsed["underlying"],
            parsed["exchange"],
            parsed["expiry_date"],
            parsed["offset"],
            parsed["option_type"],
            parsed["strike_int"],
        )
        option = pick.option
        return success(
            {
                "symbol": option.symbol,
                "exchange": option.exchange.value,
                "lotsize": option.lot_size,
                "tick_size": float(option.tick_size),
                "freeze_qty": option.freeze_qty,
                "underlying_ltp": money(pick.underlying.ltp),
            },
            parsed,
        )


@ns.route("/optionchain")
class OptionChainResource(OptionsResource):
    @ns.expect(request_model(ns, "OptionChainRequest", CHAIN_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Strikes around ATM with both legs' quotes, labels and (optionally) greeks."""
        _owner, parsed = authenticated_request(CHAIN_SCHEMA)
        rate = float(parsed["interest_rate"]) / 100
        chain = analytics().chain(
            parsed["underlying"],
            parsed["exchange"],
            parsed["expiry_date"],
            parsed["strike_count"],
            parsed["with_greeks"],
            rate,
        )
        return success(
            {
                "underlying": chain.underlying.name,
                "underlying_ltp": money(chain.underlying.ltp),
                "underlying_prev_close": money(chain.underlying.prev_close),
                "expiry_date": parsed["expiry_date"].upper(),
                "expiry_ts": int(chain.expiry_at.timestamp()),
                "server_ts": int(desk().clock.now().timestamp()),
                "atm_strike": float(chain.atm_strike),
                "quotes_included": True,
                "greeks_included": bool(parsed["with_greeks"]),
                "forward_price": round(chain.forward, 2) if chain.forward is not None else None,
                "chain": [
                    {"strike": float(row.strike), "ce": _side(row.call), "pe": _side(row.put)}
                    for row in chain.rows
                ],
            },
            parsed,
        )


def _side(side: ChainSide | None) -> dict[str, Any] | None:
    if side is None:
        return None
    quote = side.quote
    data: dict[str, Any] = {
        "symbol": side.option.symbol,
        "label": side.label,
        **quote_data(quote),
        "bid_qty": side.bid_quantity,
        "ask_qty": side.ask_quantity,
        "lotsize": side.option.lot_size,
        "tick_size": float(side.option.tick_size),
    }
    if side.greeks is not None and side.implied_volatility is not None:
        data["implied_volatility"] = round(side.implied_volatility * 100, 2)
        data.update(_greeks(side.greeks))
    return data


def _greeks(greeks: Greeks) -> dict[str, float]:
    return {
        "delta": round(greeks.delta, 4),
        "gamma": round(greeks.gamma, 6),
        "theta": round(greeks.theta, 4),
        "vega": round(greeks.vega, 4),
        "rho": round(greeks.rho, 4),
    }


@ns.route("/syntheticfuture")
class SyntheticFuture(OptionsResource):
    @ns.expect(request_model(ns, "SyntheticFutureRequest", SYNTHETIC_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """ATM strike + call price - put price: the forward the option market implies."""
        _owner, parsed = authenticated_request(SYNTHETIC_SCHEMA)
        underlying, atm, synthetic = analytics().synthetic_future(
            parsed["underlying"], parsed["exchange"], parsed["expiry_date"]
        )
        return success(
            {
                "underlying": underlying.name,
                "underlying_ltp": money(underlying.ltp),
                "expiry": parsed["expiry_date"].upper(),
                "atm_strike": float(atm),
                "synthetic_future_price": money(synthetic),
            },
            parsed,
        )


def _greeks_payload(result: OptionGreeks) -> dict[str, Any]:
    option = result.option
    volatility = result.implied_volatility
    return {
        "symbol": option.symbol,
        "exchange": option.exchange.value,
        "underlying": result.underlying_name,
        "strike": float(option.strike or 0),
        "option_type": option.instrument_type.value,
        "expiry_date": result.expiry_at.strftime("%d-%b-%Y"),
        "days_to_expiry": round(result.days_to_expiry, 4),
        "spot_price": money(result.spot),
        "option_price": money(result.option_price),
        "interest_rate": round(result.interest_rate * 100, 4),
        "implied_volatility": round(volatility * 100, 2) if volatility is not None else None,
        "greeks": _greeks(result.greeks) if result.greeks else None,
    }


@ns.route("/optiongreeks")
class OptionGreeksResource(OptionsResource):
    @ns.expect(request_model(ns, "OptionGreeksRequest", GREEKS_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Implied volatility and Black-76 greeks of one option at its current price."""
        _owner, parsed = authenticated_request(GREEKS_SCHEMA)
        result = analytics().option_greeks(
            parsed["symbol"],
            parsed["exchange"],
            float(parsed["interest_rate"]) / 100,
            parsed["forward_price"],
        )
        return success(_greeks_payload(result), parsed)


@ns.route("/multioptiongreeks")
class MultiOptionGreeks(OptionsResource):
    @ns.expect(request_model(ns, "MultiOptionGreeksRequest", MULTI_GREEKS_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Greeks of up to 50 options; one bad symbol does not fail the others."""
        _owner, parsed = authenticated_request(MULTI_GREEKS_SCHEMA)
        service, rate = analytics(), float(parsed["interest_rate"]) / 100
        data: list[dict[str, Any]] = []
        for item in parsed["symbols"]:
            try:
                result = service.option_greeks(item["symbol"], item["exchange"], rate, None)
                data.append({"status": "success", **_greeks_payload(result)})
            except DalalError as e:
                data.append(
                    {
                        "status": "error",
                        "symbol": item["symbol"],
                        "exchange": item["exchange"],
                        "message": e.message,
                    }
                )
        failed = sum(1 for row in data if row["status"] == "error")
        summary = {"total": len(data), "success": len(data) - failed, "failed": failed}
        return success({"data": data, "summary": summary}, parsed)


api.add_namespace(ns)
