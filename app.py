"""Dalal's app factory. Run as a script it sets the desk up and serves it:

python app.py serve   create .env if missing, migrate the databases, start the desk
python app.py init    the same set-up, without starting the server
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timedelta

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from config import Settings, load_settings
from extensions import csrf
from services.clock import Clock, to_ist
from services.desk import Desk


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, migrate: bool | None = None
) -> Flask:
    """Build the desk's web app; `migrate` defaults to the AUTO_MIGRATE setting."""
    settings = settings or load_settings()
    if migrate if migrate is not None else settings.auto_migrate:
        from database.migrate import upgrade_all

        upgrade_all(settings)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.app_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SESSION_COOKIE_NAME="dalal_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        # The server ends sessions at SESSION_EXPIRY_TIME; this only bounds the cookie.
        PERMANENT_SESSION_LIFETIME=timedelta(days=1),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session, which ends daily
        ERROR_404_HELP=False,
        RESTX_MASK_SWAGGER=False,
        RESTX_JSON={"separators": (",", ":"), "ensure_ascii": False},
        TESTING=settings.testing,
    )
    # Every route answers with and without a trailing slash, without redirecting: the openalgo
    # SDK does not follow redirects.
    app.url_map.strict_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]  # "status" first, as written
    app.session_interface = PageSessionInterface()
    app.extensions["dalal"] = Desk.build(settings, clock)

    csrf.init_app(app)
    app.add_template_filter(format_ist, "ist")
    _register_blueprints(app)
    app.after_request(_security_headers)

    from blueprints.cli import register_cli

    register_cli(app)
    return app


class PageSessionInterface(SecureCookieSessionInterface):
    """Cookie sessions for pages only: the REST API authenticates every call by its key.

    An /api request gets a null session (nothing read, nothing written), which spares the
    order path the cookie's signature work and keeps API responses free of Set-Cookie.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/api/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def _register_blueprints(app: Flask) -> None:
    from blueprints import (
        action_center,
        apikey,
        audit,
        broker_pages,
        charts,
        funds,
        health,
        holdings,
        home,
        latency,
        logs,
        market_pages,
        orderbook,
        positions,
        sandbox_pages,
        ticket,
        tradebook,
    )
    from blueprints import risk as risk_pages
    from blueprints import settings as settings_pages
    from blueprints.api import init_api
    from blueprints.api.traffic import init_traffic_log
    from blueprints.auth import init_auth
    from blueprints.errors import register_error_handlers
    from blueprints.realtime import init_realtime

    init_auth(app)
    pages = (
        health.bp, home.bp, orderbook.bp, tradebook.bp, positions.bp, holdings.bp, funds.bp,
        market_pages.bp, charts.bp, sandbox_pages.bp, ticket.bp, apikey.bp, logs.bp,
        settings_pages.bp, risk_pages.bp, action_center.bp, broker_pages.bp, audit.bp,
        latency.bp,
    )  # fmt: skip
    for blueprint in pages:
        app.register_blueprint(blueprint)
    init_api(app)
    init_traffic_log(app)
    init_realtime(app)
    register_error_handlers(app)


def format_ist(instant: datetime | None) -> str:
    """Show stored UTC instants in IST, as traders read them."""
    if instant is None:
        return ""
    return to_ist(instant).strftime("%d %b %Y %H:%M:%S IST")


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def main(argv: list[str] | None = None) -> int:
    from server import prepare, serve

    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "serve"
    if command not in ("serve", "init"):
        print("usage: python app.py [serve|init]", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = prepare()
    if command == "init":
        return 0
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
