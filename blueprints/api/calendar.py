"""The exchange calendar over the API: market/holidays and market/timings (API.md 4.7)."""

from __future__ import annotations

from typing import Any, ClassVar

from flask_restx import Namespace, Resource

from blueprints import desk
from blueprints.api import api
from blueprints.api.request import authenticated_request, limited, success
from blueprints.api.schema import Field, request_model
from services.clock import IST, to_ist
from services.market.model import ExchangeWindow

ns = Namespace("market calendar", description="Holidays and session timings", path="/market")

HOLIDAYS_SCHEMA = {"year": Field("int", minimum=2020, maximum=2050, example=2026)}
TIMINGS_SCHEMA = {"date": Field("date", required=True, example="2026-11-23")}


def _window(window: ExchangeWindow) -> dict[str, Any]:
    return {
        "exchange": window.exchange,
        "start_time": int(window.start.timestamp() * 1000),
        "end_time": int(window.end.timestamp() * 1000),
    }


class CalendarResource(Resource):  # type: ignore[misc]
    method_decorators: ClassVar[list[Any]] = [limited("api_rate_limit")]


@ns.route("/holidays")
class Holidays(CalendarResource):
    @ns.expect(request_model(ns, "HolidaysRequest", HOLIDAYS_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Trading and settlement holidays and special sessions of a year (default: this one)."""
        _owner, parsed = authenticated_request(HOLIDAYS_SCHEMA)
        year = parsed["year"] or to_ist(desk().clock.now()).year
        rows = [
            {
                "date": record.day.isoformat(),
                "description": record.description,
                "holiday_type": record.holiday_type,
                "closed_exchanges": list(record.closed_exchanges),
                "open_exchanges": [_window(window) for window in record.open_exchanges],
            }
            for record in desk().market.calendar.holidays(year)
        ]
        return success({"year": year, "timezone": str(IST), "data": rows}, parsed)


@ns.route("/timings")
class Timings(CalendarResource):
    @ns.expect(request_model(ns, "TimingsRequest", TIMINGS_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """When each exchange is open on a date (epoch milliseconds); [] on holidays."""
        _owner, parsed = authenticated_request(TIMINGS_SCHEMA)
        windows = desk().market.calendar.timings(parsed["date"])
        return success({"data": [_window(window) for window in windows]}, parsed)


api.add_namespace(ns)
