"""The REST API at /api/v1 (OpenAlgo-compatible; see shared API.md), with Swagger at /docs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask
from flask_restx import Api

from blueprints.errors import api_error_response
from extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class DalalApi(Api):  # type: ignore[misc]
    """Flask-RESTX, with every error answered by the desk's one error mapping."""

    def handle_error(self, e: Exception) -> Any:
        return api_error_response(e)


api = DalalApi(
    bp,
    version="1",
    title="Dalal API",
    description=(
        "OpenAlgo-compatible REST API of the Dalal trading desk. Authenticate with `apikey` in "
        "the JSON body or query string, or with the `X-API-KEY` header. Every success is HTTP "
        '200 with `"status": "success"`; every error is `{"status": "error", "message": ...}`.'
    ),
    doc="/docs",
    authorizations={"apikey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"}},
    security="apikey",
    catch_all_404s=False,
)


def init_api(app: Flask) -> None:
    # Importing a module registers its namespace on `api`.
    from blueprints.api import (  # noqa: F401
        account,
        calendar,
        gtt,
        market,
        options,
        order_tools,
        orders,
        ping,
        symbols,
    )

    # Programs authenticate with an API key, not a browser session: no CSRF token applies.
    csrf.exempt(bp)
    app.register_blueprint(bp)
