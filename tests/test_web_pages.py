"""The signed-in pages: API key, API logs, settings profile, errors and security headers."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from database.engine import DatabaseName
from database.models import ApiLog
from services.accounts import UserView
from tests.conftest import OTHER_STRONG_PASSWORD, desk_of, login, make_user, post_form

_NEW_KEY = re.compile(r'id="api-key-value">([0-9a-f]+)</code>')
_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
_LOG_ROW = re.compile(r'<tr class="status-\dxx">(.*?)</tr>', re.DOTALL)
_CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.DOTALL)
PAGES = ["/", "/apikey", "/logs", "/settings"]


def location(response: TestResponse) -> str:
    return urlsplit(response.headers["Location"]).path


def ping(client: FlaskClient, key: str) -> int:
    return client.post("/api/v1/ping", json={"apikey": key}).status_code


def generate_key(client: FlaskClient) -> tuple[TestResponse, str]:
    response = post_form(client, "/apikey", "/apikey/generate", {})
    assert response.status_code == 200
    match = _NEW_KEY.search(response.get_data(as_text=True))
    assert match, "no new key shown after generate"
    return response, match.group(1)


def log_rows(html: str) -> list[list[str]]:
    """The cells of each row of the logs table."""
    return [_CELL.findall(row) for row in _LOG_ROW.findall(html)]


def stored_logs(app: Flask) -> list[ApiLog]:
    desk_of(app).api_log.flush()
    with desk_of(app).databases.session(DatabaseName.LOGS) as session:
        rows = list(session.scalars(select(ApiLog).order_by(ApiLog.id)))
        session.expunge_all()
        return rows


@pytest.fixture
def signed_in(client: FlaskClient, user: UserView) -> FlaskClient:
    assert login(client).status_code == 302
    return client


# --- /apikey ---------------------------------------------------------------------------------


def test_generated_key_is_shown_once_and_works(
    app: Flask, signed_in: FlaskClient, user: UserView
) -> None:
    response, key = generate_key(signed_in)
    assert len(key) == 64
    assert "no-store" in response.headers["Cache-Control"]
    assert ping(app.test_client(), key) == 200

    reloaded = signed_in.get("/apikey")
    assert reloaded.status_code == 200
    page = reloaded.get_data(as_text=True)
    assert key not in page
    assert 'id="api-key-value"' not in page
    assert f"<code>{key[:6]}…</code>" in page
    assert key[:7] not in page
    info = desk_of(app).api_keys.info(user.id)
    assert info is not None and info.prefix == key[:6]


def test_regenerating_retires_the_old_key(app: Flask, signed_in: FlaskClient) -> None:
    _, old = generate_key(signed_in)
    api = app.test_client()
    assert ping(api, old) == 200  # also puts the old key in the verified cache
    _, new = generate_key(signed_in)
    assert new != old
    assert ping(api, new) == 200
    assert ping(api, old) == 403


def test_revoking_stops_the_key(app: Flask, signed_in: FlaskClient, user: UserView) -> None:
    _, key = generate_key(signed_in)
    api = app.test_client()
    assert ping(api, key) == 200
    response = post_form(signed_in, "/apikey", "/apikey/revoke", {})
    assert response.status_code == 302
    assert location(response) == "/apikey"
    assert "API key revoked" in signed_in.get("/apikey").get_data(as_text=True)
    assert desk_of(app).api_keys.info(user.id) is None
    assert ping(api, key) == 403


def test_generate_without_csrf_token_changes_nothing(
    app: Flask, signed_in: FlaskClient, user: UserView
) -> None:
    _, key = generate_key(signed_in)
    before = desk_of(app).api_keys.info(user.id)
    response = signed_in.post("/apikey/generate")
    assert response.status_code == 400
    assert not _HEX64.search(response.get_data(as_text=True))
    assert desk_of(app).api_keys.info(user.id) == before
    assert ping(app.test_client(), key) == 200


def test_revoke_without_csrf_token_changes_nothing(
    app: Flask, signed_in: FlaskClient, user: UserView
) -> None:
    _, key = generate_key(signed_in)
    before = desk_of(app).api_keys.info(user.id)
    response = signed_in.post("/apikey/revoke")
    assert response.status_code == 400
    assert desk_of(app).api_keys.info(user.id) == before
    assert ping(app.test_client(), key) == 200


def test_first_generate_without_csrf_token_creates_no_key(
    app: Flask, signed_in: FlaskClient, user: UserView
) -> None:
    response = signed_in.post("/apikey/generate", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert desk_of(app).api_keys.info(user.id) is None


# --- /logs -----------------------------------------------------------------------------------


def make_traffic(client: FlaskClient, key: str) -> None:
    assert client.post("/api/v1/ping", json={"apikey": key}).status_code == 200
    assert client.post(f"/api/v1/ping?apikey={key}").status_code == 200
    wrong = ("0" if key[0] != "0" else "1") + key[1:]
    assert client.post("/api/v1/ping", json={"apikey": wrong}).status_code == 403


def test_logs_page_lists_api_calls_with_status(
    app: Flask, client: FlaskClient, api_key: str
) -> None:
    make_traffic(app.test_client(), api_key)
    login(client)
    response = client.get("/logs")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "3 requests" in page
    rows = log_rows(page)
    assert len(rows) == 3
    # Newest first: the 403, then the two successes.
    assert [row[3] for row in rows] == ["403", "200", "200"]
    assert all("/api/v1/ping" in row[2] for row in rows)
    assert rows[0][8] == "Invalid openalgo apikey"
    assert [row[5] for row in rows] == ["—", "trader", "trader"]


def test_logs_never_show_or_store_the_key(app: Flask, client: FlaskClient, api_key: str) -> None:
    make_traffic(app.test_client(), api_key)
    login(client)
    page = client.get("/logs").get_data(as_text=True)
    assert api_key not in page
    assert api_key[:16] not in page
    assert "***" in page

    rows = stored_logs(app)
    assert len(rows) == 3
    for row in rows:
        assert api_key not in row.request_body
        assert api_key not in row.query
        assert api_key[:16] not in (row.error_message or "")
    body_row, query_row, wrong_row = rows
    assert body_row.request_body == '{"apikey":"***"}'
    assert wrong_row.request_body == '{"apikey":"***"}'
    assert query_row.request_body == ""
    assert parse_qs(query_row.query) == {"apikey": ["***"]}


def test_logs_show_the_redaction_marker_in_query_strings(
    app: Flask, client: FlaskClient, api_key: str
) -> None:
    assert app.test_client().post(f"/api/v1/ping?apikey={api_key}").status_code == 200
    (row,) = stored_logs(app)
    assert row.query == "apikey=***"
    login(client)
    assert "/api/v1/ping?apikey=***</code>" in client.get("/logs").get_data(as_text=True)


def test_logs_filter_by_status_class(app: Flask, client: FlaskClient, api_key: str) -> None:
    make_traffic(app.test_client(), api_key)
    login(client)
    page = client.get("/logs?status=4xx").get_data(as_text=True)
    assert "1 request." in page
    rows = log_rows(page)
    assert [row[3] for row in rows] == ["403"]
    ok_rows = log_rows(client.get("/logs?status=2xx").get_data(as_text=True))
    assert [row[3] for row in ok_rows] == ["200", "200"]


def test_non_admin_sees_only_their_own_traffic(
    app: Flask, client: FlaskClient, api_key: str
) -> None:
    other = make_user(app, "other", OTHER_STRONG_PASSWORD)
    other_key = desk_of(app).api_keys.create(other.id)
    api = app.test_client()
    make_traffic(api, api_key)  # the admin's traffic, and one anonymous 403
    assert ping(api, other_key) == 200

    login(client, "other", OTHER_STRONG_PASSWORD)
    page = client.get("/logs").get_data(as_text=True)
    assert "1 request." in page
    rows = log_rows(page)
    assert len(rows) == 1
    assert rows[0][3] == "200"
    assert rows[0][5] == "other"
    assert "trader" not in page
    assert "403" not in [row[3] for row in rows]


# --- every page ------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_pages_require_login(client: FlaskClient, user: UserView, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 302
    assert location(response) == "/login"
    assert parse_qs(urlsplit(response.headers["Location"]).query) == {"next": [page]}


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_when_signed_in(signed_in: FlaskClient, page: str) -> None:
    response = signed_in.get(page)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "trader" in response.get_data(as_text=True)  # the signed-in user in the top bar


def test_login_page_has_security_headers(client: FlaskClient, user: UserView) -> None:
    response = client.get("/login")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_unknown_page_is_a_404_page(signed_in: FlaskClient) -> None:
    response = signed_in.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<h1>404</h1>" in page
    assert "Not found" in page
    assert "Traceback" not in page
    assert 'File "' not in page
    assert response.headers["X-Frame-Options"] == "DENY"


# --- settings: profile -----------------------------------------------------------------------


def test_profile_email_update(app: Flask, signed_in: FlaskClient, user: UserView) -> None:
    response = post_form(signed_in, "/settings", "/settings/profile", {"email": "desk@example.org"})
    assert response.status_code == 302
    assert location(response) == "/settings"
    assert desk_of(app).accounts.get(user.id).email == "desk@example.org"  # type: ignore[union-attr]
    page = signed_in.get("/settings").get_data(as_text=True)
    assert "Profile saved." in page
    assert 'value="desk@example.org"' in page


def test_profile_rejects_an_invalid_email(
    app: Flask, signed_in: FlaskClient, user: UserView
) -> None:
    response = post_form(signed_in, "/settings", "/settings/profile", {"email": "not-an-email"})
    assert response.status_code == 400
    assert "Email address is not valid" in response.get_data(as_text=True)
    assert desk_of(app).accounts.get(user.id).email == user.email  # type: ignore[union-attr]
