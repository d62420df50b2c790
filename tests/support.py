"""A real desk process for end-to-end tests: `python app.py serve` on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask

from config import PROJECT_ROOT
from tests.conftest import desk_env, free_port, run_flask_cli


class RunningDesk:
    def __init__(self, tmp_path: Path, **overrides: str) -> None:
        self.port = free_port()
        self.ws_port = free_port()
        self.env_file = tmp_path / ".env"
        env = desk_env(tmp_path)
        # Secrets must come from the generated .env, as on a newcomer's machine.
        del env["APP_KEY"], env["API_KEY_PEPPER"]
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("APP_KEY", "API_KEY_PEPPER")},
            **env,
            "DALAL_ENV_FILE": str(self.env_file),
            "FLASK_PORT": str(self.port),
            "WEBSOCKET_PORT": str(self.ws_port),
            "WEB_THREADS": "4",
            **overrides,
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.ws_port}"
        self.log = tmp_path / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "app.py", "serve"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,  # as under a service manager
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("desk did not start:\n" + self.log.read_text())

    def stop(self) -> int:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=30)

    def cli(self, *args: str) -> str:
        return run_flask_cli(self.env, *args, check=True).stdout

    def admin_key(self, password: str) -> str:
        """Create an admin through the CLI and return a fresh API key for it."""
        self.cli("user", "create", "admin", "--email", "admin@example.com",
                 "--password", password, "--admin")  # fmt: skip
        return self.cli("apikey", "create", "admin").strip().splitlines()[-1]


def served_desk(prefix: str, **overrides: str) -> Callable[..., Any]:
    """A module-scoped `desk` fixture: one `python app.py serve` shared by a test file."""

    @pytest.fixture(scope="module")
    def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDesk]:
        running = RunningDesk(Path(tmp_path_factory.mktemp(prefix)), **overrides)
        running.start()
        yield running
        running.stop()

    return desk


def desk_in_process(folder: Path, **overrides: str) -> tuple[Flask, str, str]:
    """A desk built in this process with its background services (the feed included)
    running: (app, its WebSocket URL, an API key of a fresh user). Close it with
    `desk_of(app).close()`."""
    from app import create_app
    from config import Settings
    from tests.conftest import desk_of, make_user

    env = desk_env(folder, **{"WEBSOCKET_PORT": str(free_port()), **overrides})
    app = create_app(Settings.from_mapping(env))
    desk = desk_of(app)
    key = desk.api_keys.create(make_user(app).id)
    desk.start_background()
    assert desk.feed_server is not None
    return app, f"ws://127.0.0.1:{desk.feed_server.port}", key
