"""Web sign-in: first-run set-up, login, rate limits, sessions, password changes and TOTP."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from database.models import User
from services.accounts import UserView
from services.clock import IST, FixedClock
from tests.conftest import (
    OTHER_STRONG_PASSWORD,
    STRONG_PASSWORD,
    csrf_token,
    desk_of,
    login,
    make_user,
    post_form,
)

_TOTP_SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
_RECOVERY_LIST = re.compile(r'id="recovery-codes">(.*?)</ul>', re.DOTALL)
_CODE = re.compile(r"<code>([^<]+)</code>")
WRONG_LOGIN = "Wrong username or password"


# --- helpers ---------------------------------------------------------------------------------


def location(response: TestResponse) -> str:
    """The redirect target's path (the test client gives absolute or relative Locations)."""
    return urlsplit(response.headers["Location"]).path


def next_param(response: TestResponse) -> str | None:
    values = parse_qs(urlsplit(response.headers["Location"]).query).get("next")
    return values[0] if values else None


def is_signed_in(client: FlaskClient) -> bool:
    response = client.get("/")
    if response.status_code == 200:
        return True
    assert response.status_code == 302
    assert location(response) == "/login"
    return False


def logout(client: FlaskClient) -> TestResponse:
    return post_form(client, "/settings", "/logout", {})


def setup_form(client: FlaskClient, **overrides: str) -> TestResponse:
    token = csrf_token(client.get("/setup").data)
    data = {
        "csrf_token": token,
        "username": "admin",
        "email": "admin@example.com",
        "password": STRONG_PASSWORD,
        "confirm": STRONG_PASSWORD,
    }
    data.update(overrides)
    return client.post("/setup", data=data)


def totp_now(secret: str, clock: FixedClock) -> str:
    return pyotp.TOTP(secret).at(clock.now())


def enable_totp(client: FlaskClient, clock: FixedClock) -> tuple[str, list[str]]:
    """Turn TOTP on for the signed-in user; returns the seed and the recovery codes.

    Afterwards the clock is a full step on, so the code used to confirm is not "replayed".
    """
    begun = post_form(client, "/settings", "/settings/2fa/begin", {})
    assert begun.status_code == 302
    page = client.get("/settings").get_data(as_text=True)
    match = _TOTP_SECRET.search(page)
    assert match, "settings page shows no TOTP secret after begin"
    secret = match.group(1)
    confirmed = post_form(
        client, "/settings", "/settings/2fa/confirm", {"code": totp_now(secret, clock)}
    )
    assert confirmed.status_code == 200
    listing = _RECOVERY_LIST.search(confirmed.get_data(as_text=True))
    assert listing, "no recovery codes shown after confirming"
    codes = _CODE.findall(listing.group(1))
    clock.advance(timedelta(seconds=30))
    return secret, codes


def password_step(client: FlaskClient) -> TestResponse:
    response = login(client)
    assert response.status_code == 302
    assert location(response) == "/login/verify"
    return response


def verify_code(client: FlaskClient, code: str) -> TestResponse:
    return post_form(client, "/login/verify", "/login/verify", {"code": code})


def stored_user(app: Flask, user_id: int) -> User:
    with desk_of(app).databases.session() as session:
        found = session.get(User, user_id)
        assert found is not None
        session.expunge(found)
        return found


# --- first-run set-up ------------------------------------------------------------------------


def test_empty_desk_sends_pages_to_setup(client: FlaskClient) -> None:
    for page in ("/", "/login"):
        response = client.get(page)
        assert response.status_code == 302, page
        assert location(response) == "/setup", page


def test_empty_desk_leaves_health_and_api_alone(client: FlaskClient) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json == {"status": "ok"}
    ping = client.post("/api/v1/ping", json={})
    assert ping.status_code == 401
    assert ping.json["status"] == "error"


def test_setup_creates_a_signed_in_admin(app: Flask, client: FlaskClient) -> None:
    response = setup_form(client)
    assert response.status_code == 302
    assert location(response) == "/"
    accounts = desk_of(app).accounts
    admin = accounts.get_by_username("admin")
    assert admin.is_admin is True
    assert accounts.user_count() == 1
    home = client.get("/")
    assert home.status_code == 200
    assert "admin" in home.get_data(as_text=True)


def test_setup_closes_once_the_admin_exists(app: Flask, client: FlaskClient) -> None:
    assert setup_form(client).status_code == 302
    assert client.get("/setup").status_code == 302
    assert location(client.get("/setup")) == "/login"

    stranger = app.test_client()
    token = csrf_token(stranger.get("/login").data)
    second = stranger.post(
        "/setup",
        data={
            "csrf_token": token,
            "username": "intruder",
            "email": "intruder@example.com",
            "password": OTHER_STRONG_PASSWORD,
            "confirm": OTHER_STRONG_PASSWORD,
        },
    )
    assert second.status_code == 302
    assert location(second) == "/login"
    assert desk_of(app).accounts.user_count() == 1
    assert not is_signed_in(stranger)


def test_setup_refuses_a_weak_password(app: Flask, client: FlaskClient) -> None:
    response = setup_form(client, password="password", confirm="password")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Password is too weak" in page
    assert "commonly used password" in page
    assert desk_of(app).accounts.user_count() == 0
    assert desk_of(app).accounts.setup_needed()


def test_setup_refuses_mismatched_confirmation(app: Flask, client: FlaskClient) -> None:
    response = setup_form(client, confirm=OTHER_STRONG_PASSWORD)
    assert response.status_code == 400
    assert "Passwords do not match." in response.get_data(as_text=True)
    assert desk_of(app).accounts.user_count() == 0


def test_setup_refuses_a_bad_username(app: Flask, client: FlaskClient) -> None:
    response = setup_form(client, username="a b")
    assert response.status_code == 400
    assert "Username must be 3-32 characters" in response.get_data(as_text=True)
    assert desk_of(app).accounts.user_count() == 0


def test_creating_a_user_headlessly_closes_setup(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    assert not desk_of(app).accounts.setup_needed()
    response = client.get("/setup")
    assert response.status_code == 302
    assert location(response) == "/login"
    assert client.get("/login").status_code == 200


# --- password sign-in ------------------------------------------------------------------------


def test_login_with_the_right_password(client: FlaskClient, user: UserView) -> None:
    response = login(client)
    assert response.status_code == 302
    assert location(response) == "/"
    assert is_signed_in(client)


def test_login_with_a_wrong_password(client: FlaskClient, user: UserView) -> None:
    response = login(client, password=OTHER_STRONG_PASSWORD)
    assert response.status_code == 401
    assert WRONG_LOGIN in response.get_data(as_text=True)
    assert not is_signed_in(client)


def test_login_as_an_unknown_user_looks_the_same(client: FlaskClient, user: UserView) -> None:
    response = login(client, username="nobody", password=STRONG_PASSWORD)
    assert response.status_code == 401
    assert WRONG_LOGIN in response.get_data(as_text=True)
    assert not is_signed_in(client)


def test_login_without_csrf_token_is_refused(client: FlaskClient, user: UserView) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "trader", "password": STRONG_PASSWORD})
    assert response.status_code == 400
    assert not is_signed_in(client)


def test_sixth_failed_login_in_a_minute_is_rate_limited(
    client: FlaskClient, user: UserView
) -> None:
    for attempt in range(5):
        assert login(client, password=OTHER_STRONG_PASSWORD).status_code == 401, attempt
    blocked = login(client)  # the right password, but too late
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers
    assert not is_signed_in(client)


def test_successful_logins_do_not_count_toward_the_limit(
    client: FlaskClient, user: UserView
) -> None:
    for attempt in range(6):
        response = login(client)
        assert response.status_code == 302, attempt
        assert is_signed_in(client)
        logout(client)
        assert not is_signed_in(client)


def test_login_follows_a_local_next(client: FlaskClient, user: UserView) -> None:
    token = csrf_token(client.get("/login?next=/apikey").data)
    response = client.post(
        "/login?next=/apikey",
        data={"csrf_token": token, "username": "trader", "password": STRONG_PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/apikey"


def test_login_ignores_a_next_to_another_host(client: FlaskClient, user: UserView) -> None:
    token = csrf_token(client.get("/login?next=//evil.example").data)
    response = client.post(
        "/login?next=//evil.example",
        data={"csrf_token": token, "username": "trader", "password": STRONG_PASSWORD},
    )
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]
    assert location(response) == "/"


def test_logout_ends_the_session(client: FlaskClient, user: UserView) -> None:
    login(client)
    assert is_signed_in(client)
    response = logout(client)
    assert response.status_code == 302
    assert location(response) == "/login"
    assert not is_signed_in(client)


def test_logout_without_csrf_token_keeps_the_session(client: FlaskClient, user: UserView) -> None:
    login(client)
    response = client.post("/logout")
    assert response.status_code == 400
    assert is_signed_in(client)


# --- session lifetime ------------------------------------------------------------------------


def test_session_survives_until_three_in_the_morning(
    client: FlaskClient, user: UserView, clock: FixedClock
) -> None:
    login(client)
    clock.set(datetime(2026, 11, 24, 2, 59, tzinfo=IST))
    assert is_signed_in(client)


def test_session_ends_at_three_ist(client: FlaskClient, user: UserView, clock: FixedClock) -> None:
    login(client)
    clock.set(datetime(2026, 11, 24, 3, 0, tzinfo=IST))
    response = client.get("/")
    assert response.status_code == 302
    assert location(response) == "/login"
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    assert "Your session ended at 03:00 IST" in page.get_data(as_text=True)
    assert not is_signed_in(client)


def test_password_change_ends_other_sessions(
    app: Flask, client: FlaskClient, user: UserView
) -> None:
    other_device = app.test_client()
    login(client)
    login(other_device)
    assert is_signed_in(other_device)

    response = post_form(
        client,
        "/settings",
        "/settings/password",
        {
            "current": STRONG_PASSWORD,
            "new": OTHER_STRONG_PASSWORD,
            "confirm": OTHER_STRONG_PASSWORD,
        },
    )
    assert response.status_code == 302
    assert location(response) == "/settings"
    assert is_signed_in(client)
    assert not is_signed_in(other_device)
    desk_of(app).accounts.authenticate("trader", OTHER_STRONG_PASSWORD)


def test_password_change_with_wrong_current_password(
    app: Flask, client: FlaskClient, user: UserView
) -> None:
    login(client)
    response = post_form(
        client,
        "/settings",
        "/settings/password",
        {
            "current": "Not-The-Password-42",
            "new": OTHER_STRONG_PASSWORD,
            "confirm": OTHER_STRONG_PASSWORD,
        },
    )
    assert response.status_code == 400
    assert "Current password is wrong." in response.get_data(as_text=True)
    assert desk_of(app).accounts.authenticate("trader", STRONG_PASSWORD).id == user.id
    assert desk_of(app).accounts.get(user.id).session_version == user.session_version  # type: ignore[union-attr]
    assert is_signed_in(client)


def test_operator_password_reset_ends_the_session(
    app: Flask, client: FlaskClient, user: UserView
) -> None:
    login(client)
    assert is_signed_in(client)
    desk_of(app).accounts.reset_password("trader", OTHER_STRONG_PASSWORD)
    assert not is_signed_in(client)


# --- two-factor sign-in ----------------------------------------------------------------------


def test_enabling_totp_shows_recovery_codes_and_seals_the_seed(
    app: Flask, client: FlaskClient, user: UserView, clock: FixedClock
) -> None:
    login(client)
    secret, codes = enable_totp(client, clock)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    view = desk_of(app).accounts.get(user.id)
    assert view is not None and view.totp_enabled is True
    stored = stored_user(app, user.id)
    assert stored.totp_secret_sealed
    assert stored.totp_secret_sealed != secret
    assert secret not in stored.totp_secret_sealed


def test_enabling_totp_with_a_wrong_code_fails(
    app: Flask, client: FlaskClient, user: UserView, clock: FixedClock
) -> None:
    login(client)
    post_form(client, "/settings", "/settings/2fa/begin", {})
    match = _TOTP_SECRET.search(client.get("/settings").get_data(as_text=True))
    assert match
    right = totp_now(match.group(1), clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    response = post_form(client, "/settings", "/settings/2fa/confirm", {"code": wrong})
    assert response.status_code == 400
    assert 'id="recovery-codes"' not in response.get_data(as_text=True)
    view = desk_of(app).accounts.get(user.id)
    assert view is not None and view.totp_enabled is False


def test_totp_login_needs_the_code(
    app: Flask, client: FlaskClient, user: UserView, clock: FixedClock
) -> None:
    login(client)
    secret, _ = enable_totp(client, clock)
    logout(client)

    password_step(client)
    assert not is_signed_in(client)
    code = totp_now(secret, clock)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert verify_code(client, wrong).status_code == 401
    assert not is_signed_in(client)
    response = verify_code(client, code)
    assert response.status_code == 302
    assert location(response) == "/"
    assert is_signed_in(client)


def test_totp_code_cannot_be_replayed(
    app: Flask, client: FlaskClient, user: UserView, clock: FixedClock
) -> None:
    login(client)
    secret, _ = enable_totp(client, clock)
    logout(client)
    code = totp_now(secret, clock)

    password_step(client)
    assert verify_code(client, code).status_code == 302
    logout(client)

    clock.advance(timedelta(seconds=5))  # same 30-second window
    assert totp_now(secret, clock) == code
    password_step(client)
    replay = verify_code(client, code)
    assert replay.status_code == 401
    assert "already used" in replay.get_data(as_text=True)
    assert not is_signed_in(client)


def test_recovery_code_works_exactly_once(
    app: Flask, client: FlaskClient, user: UserView, clock: FixedClock
) -> None:
    login(client)
    _, codes = enable_totp(client, clock)
    logout(client)

    password_step(client)
    assert verify_code(client, codes[0]).status_code == 302
    assert is_signed_in(client)
    assert desk_of(app).two_factor.remaining_recovery_codes(user.id) == 9
    logout(client)

    password_step(client)
    assert verify_code(client, codes[0]).status_code == 401
    assert not is_signed_in(client)
    assert desk_of(app).two_factor.remaining_recovery_codes(user.id) == 9


def test_pending_totp_step_times_out(
    app: Flask, client: FlaskClient, user: UserView, clock: FixedClock
) -> None:
    login(client)
    secret, _ = enable_totp(client, clock)
    logout(client)

    password_step(client)
    token = csrf_token(client.get("/login/verify").data)
    clock.advance(timedelta(seconds=301))
    response = client.post(
        "/login/verify", data={"csrf_token": token, "code": totp_now(secret, clock)}
    )
    assert response.status_code == 302
    assert location(response) == "/login"
    assert not is_signed_in(client)
    assert location(client.get("/login/verify")) == "/login"


def test_disabling_totp_needs_password_and_code(
    app: Flask, client: FlaskClient, user: UserView, clock: FixedClock
) -> None:
    login(client)
    secret, _ = enable_totp(client, clock)

    wrong_password = post_form(
        client,
        "/settings",
        "/settings/2fa/disable",
        {"password": OTHER_STRONG_PASSWORD, "code": totp_now(secret, clock)},
    )
    assert wrong_password.status_code == 400
    assert desk_of(app).accounts.get(user.id).totp_enabled is True  # type: ignore[union-attr]

    code = totp_now(secret, clock)
    wrong_code = f"{(int(code) + 1) % 1_000_000:06d}"
    bad_code = post_form(
        client,
        "/settings",
        "/settings/2fa/disable",
        {"password": STRONG_PASSWORD, "code": wrong_code},
    )
    assert bad_code.status_code == 400
    assert desk_of(app).accounts.get(user.id).totp_enabled is True  # type: ignore[union-attr]

    done = post_form(
        client,
        "/settings",
        "/settings/2fa/disable",
        {"password": STRONG_PASSWORD, "code": code},
    )
    assert done.status_code == 302
    assert desk_of(app).accounts.get(user.id).totp_enabled is False  # type: ignore[union-attr]
    assert stored_user(app, user.id).totp_secret_sealed is None


@pytest.mark.parametrize("code_kind", ["totp", "recovery"])
def test_totp_login_keeps_next(
    client: FlaskClient, user: UserView, clock: FixedClock, code_kind: str
) -> None:
    login(client)
    secret, codes = enable_totp(client, clock)
    logout(client)
    token = csrf_token(client.get("/login?next=/logs").data)
    first = client.post(
        "/login?next=/logs",
        data={"csrf_token": token, "username": "trader", "password": STRONG_PASSWORD},
    )
    assert location(first) == "/login/verify"
    code = totp_now(secret, clock) if code_kind == "totp" else codes[-1]
    response = verify_code(client, code)
    assert response.status_code == 302
    assert response.headers["Location"] == "/logs"


def login_with_next(client: FlaskClient, target: str) -> TestResponse:
    token = csrf_token(client.get("/login").data)
    return client.post(
        "/login",
        query_string={"next": target},
        data={"csrf_token": token, "username": "trader", "password": STRONG_PASSWORD},
    )


def test_login_ignores_a_next_with_a_tab_to_another_host(
    client: FlaskClient, user: UserView
) -> None:
    response = login_with_next(client, "/\t/evil.example")
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_login_with_a_newline_in_next_goes_home(client: FlaskClient, user: UserView) -> None:
    response = login_with_next(client, "/\n/evil.example")
    assert response.status_code == 302
    assert location(response) == "/"
