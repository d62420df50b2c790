"""`python app.py serve` (what `make run` runs): a real gunicorn desk on a loopback port."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import STRONG_PASSWORD
from tests.support import RunningDesk

pytestmark = pytest.mark.slow


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
    # Pages are in the access log; API calls are in the API log database instead.
    assert '"GET /setup HTTP/1.1" 200' in log
    assert "/api/v1/ping" not in log

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
