"""Setting a desk up and serving it with gunicorn (never Werkzeug's development server).

`prepare()` creates `.env` with fresh secrets when it is missing and migrates every database,
once, before any worker starts. `serve()` runs gunicorn's threaded workers in the foreground;
it reads nothing from standard input, so it runs the same in a terminal, in the background
or under a service manager.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from config import DEFAULT_ENV_FILE, SAMPLE_ENV_FILE, ConfigError, Settings, load_settings
from database.migrate import upgrade_all
from services.envfile import ensure_env_file
from services.runtime import tune_garbage_collector

log = logging.getLogger("dalal")

# Access log without the query string: an `apikey` sent in a URL must never reach a log file.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'


def prepare() -> Settings:
    env_file = Path(os.environ.get("DALAL_ENV_FILE") or DEFAULT_ENV_FILE)
    if ensure_env_file(env_file, SAMPLE_ENV_FILE):
        log.info("Created %s with freshly generated secrets.", env_file)
    try:
        settings = load_settings(env_file)
    except ConfigError as e:
        sys.exit(f"Configuration error: {e}")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    upgrade_all(settings)
    log.info("Databases are at their newest schema.")
    return settings


class AccessLogger(Logger):  # type: ignore[misc]
    """gunicorn's access log for pages and assets; /api calls are in the API log database.

    Every API call is already stored there with its owner, status and redacted body, so a
    console line per order would only repeat it (and cost the order path its formatting).
    """

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if str(environ.get("PATH_INFO", "")).startswith("/api/"):
            return
        super().access(resp, req, environ, request_time)


class DalalServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        url = f"http://{self.settings.host}:{self.settings.port}"
        feed = f"ws://{self.settings.websocket_host}:{self.settings.websocket_port}"
        options: dict[str, Any] = {
            "bind": f"{self.settings.host}:{self.settings.port}",
            "workers": self.settings.web_workers,
            "worker_class": "gthread",
            # A page's live-update socket holds a thread while it is open: those get threads
            # of their own (blueprints/realtime.py admits no more), the API keeps WEB_THREADS.
            "threads": self.settings.web_threads + self.settings.socketio_max_clients,
            "timeout": 120,
            "graceful_timeout": 20,
            "accesslog": "-",
            "logger_class": AccessLogger,
            "access_log_format": ACCESS_LOG_FORMAT,
            "errorlog": "-",
            "loglevel": self.settings.log_level.lower(),
            "proc_name": "dalal",
            # No control socket: it defaults to one shared path in $HOME, which a second desk
            # on the same machine would fight over; stop the desk with a signal instead.
            "control_socket_disable": True,
            "when_ready": lambda _server: print(
                f"Dalal is running. Open {url} in your browser (Ctrl+C stops it).\n"
                f"Market data streams at {feed} (OpenAlgo WebSocket protocol).",
                flush=True,
            ),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from app import create_app

        tune_garbage_collector()
        # Migrations already ran in prepare(), once, before the workers started.
        app = create_app(self.settings, migrate=False)
        # The heartbeat belongs to the serving process (one worker on the embedded default).
        app.extensions["dalal"].start_background()
        return app


def serve(settings: Settings) -> int:
    DalalServer(settings).run()
    return 0
