"""`python app.py serve` (what `make run` runs): a real gunicorn desk on a loopback port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from config import PROJECT_ROOT
from tests.conftest import STRONG_PASSWORD, desk_env, run_flask_cli

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RunningDesk:
    def __init__(self, tmp_path: Path) -> None:
        self.port = _free_port()
        self.env_file = tmp_path / ".env"
        env = desk_env(tmp_path)
        # Secrets must come from the generated .env, as on a newcomer's machine.
        del env["APP_KEY"], env["API_KEY_PEPPER"]
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("APP_KEY", "API_KEY_PEPPER")},
            **env,
            "DALAL_ENV_FILE": str(self.env_file),
            "FLASK_PORT": str(self.port),
            "WEB_THREADS": "4",
        }
        self.url = f"http://127.0.0.1:{self.port}"
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


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[RunningDesk]:
    running = RunningDesk(tmp_path)
    yield running
    if running.process and running.process.poll() is None:
        running.stop()


def test_serve_sets_up_and_answers_ping(desk: RunningDesk) -> None:
    assert not desk.env_file.exists()
    desk.start()

    # A fresh .env with generated secrets.
    text = desk.env_file.read_text()
    app_key = re.search(r"^APP_KEY=([0-9a-f]{64})$", text, re.MULTILINE)
    assert app_key and re.search(r"^API_KEY_PEPPER=[0-9a-f]{64}$", text, re.MULTILINE)

    # A production server, not Werkzeug's development server.
    first = httpx.get(desk.url + "/", follow_redirects=False)
    assert first.status_code == 302
    assert first.headers["location"].endswith("/setup")
    assert "werkzeug" not in first.headers.get("server", "").lower()
    setup = httpx.get(desk.url + "/setup")
    assert setup.status_code == 200
    assert 'name="csrf_token"' in setup.text

    desk.cli("user", "create", "admin", "--email", "a@example.com",
             "--password", STRONG_PASSWORD, "--admin")  # fmt: skip
    key = desk.cli("apikey", "create", "admin").strip().splitlines()[-1]
    pong = httpx.post(desk.url + "/api/v1/ping", json={"apikey": key})
    assert pong.status_code == 200
    assert pong.json() == {"status": "success", "data": {"message": "pong", "broker": "sandbox"}}
    assert httpx.get(desk.url + "/setup", follow_redirects=False).status_code == 302

    assert desk.stop() == 0
    log = desk.log.read_text()
    assert "Dalal is running. Open http://127.0.0.1:" in log
    assert key not in log  # nothing secret in the server's output

    # Restart: the same .env is reused, so the key still works.
    desk.start()
    assert (
        re.search(r"^APP_KEY=([0-9a-f]{64})$", desk.env_file.read_text(), re.MULTILINE)[1]
        == (app_key[1])
    )
    again = httpx.post(desk.url + "/api/v1/ping", headers={"X-API-KEY": key})
    assert again.json()["status"] == "success"
    query = httpx.post(desk.url + "/api/v1/ping", params={"apikey": key})
    assert query.status_code == 200
    desk.stop()
    # The access log shows paths without query strings: a key in a URL is not logged.
    assert key not in desk.log.read_text()
