"""Headless administration through the real `flask --app app` command line."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from config import Settings
from database.engine import Databases
from services.accounts import AccountService
from services.api_keys import ApiKeyService
from services.clock import SystemClock
from services.errors import LoginFailed
from tests.conftest import OTHER_STRONG_PASSWORD, STRONG_PASSWORD, desk_env, run_flask_cli


class Desk:
    """A desk's environment on disk, driven by the CLI as an operator would."""

    def __init__(self, tmp_path: Path) -> None:
        self.env = {**os.environ, **desk_env(tmp_path), "DALAL_ENV_FILE": str(tmp_path / ".env")}

    def flask(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_flask_cli(self.env, *args)

    def settings(self) -> Settings:
        return Settings.from_mapping(self.env)


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return Desk(tmp_path)


def _create(desk: Desk, name: str = "ops", *extra: str) -> subprocess.CompletedProcess[str]:
    return desk.flask(
        "user", "create", name, "--email", f"{name}@example.com", "--password", STRONG_PASSWORD,
        *extra,
    )  # fmt: skip


def test_user_create_then_duplicate_fails_clearly(desk: Desk) -> None:
    created = _create(desk, "ops", "--admin")
    assert created.returncode == 0, created.stderr
    assert "Created admin ops." in created.stdout
    again = _create(desk, "ops")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert "Traceback" not in again.stderr


def test_user_create_refuses_a_weak_password(desk: Desk) -> None:
    result = desk.flask(
        "user", "create", "weak", "--email", "w@example.com", "--password", "password"
    )
    assert result.returncode == 1
    assert "Password is too weak" in result.stderr
    # Nothing was created: the name is still free.
    assert _create(desk, "weak").returncode == 0


def test_apikey_create_prints_the_key_alone_on_the_last_line(desk: Desk) -> None:
    assert _create(desk).returncode == 0
    result = desk.flask("apikey", "create", "ops")
    assert result.returncode == 0, result.stderr
    last_line = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{64}", last_line)
    settings = desk.settings()
    databases = Databases.from_settings(settings)
    keys = ApiKeyService(databases, settings.api_key_pepper, SystemClock())
    assert keys.verify(last_line).username == "ops"

    regenerated = desk.flask("apikey", "create", "ops")
    new_key = regenerated.stdout.strip().splitlines()[-1]
    assert "Regenerated" in regenerated.stdout
    assert new_key != last_line
    assert keys.verify(new_key).username == "ops"

    revoked = desk.flask("apikey", "revoke", "ops")
    assert revoked.returncode == 0
    assert "Revoked" in revoked.stdout
    assert new_key not in revoked.stdout + revoked.stderr
    again = desk.flask("apikey", "revoke", "ops")
    assert again.returncode == 1
    assert "no API key" in again.stderr
    databases.dispose()


def test_apikey_for_unknown_user_fails_clearly(desk: Desk) -> None:
    result = desk.flask("apikey", "create", "ghost")
    assert result.returncode == 1
    assert "No user named 'ghost'" in result.stderr


def test_reset_password(desk: Desk) -> None:
    assert _create(desk).returncode == 0
    weak = desk.flask("user", "reset-password", "ops", "--password", "short")
    assert weak.returncode == 1
    assert "too weak" in weak.stderr
    done = desk.flask("user", "reset-password", "ops", "--password", OTHER_STRONG_PASSWORD)
    assert done.returncode == 0, done.stderr
    assert OTHER_STRONG_PASSWORD not in done.stdout + done.stderr
    settings = desk.settings()
    databases = Databases.from_settings(settings)
    accounts = AccountService(databases, settings.api_key_pepper, SystemClock(), "sandbox")
    assert accounts.authenticate("ops", OTHER_STRONG_PASSWORD).username == "ops"
    with pytest.raises(LoginFailed):
        accounts.authenticate("ops", STRONG_PASSWORD)
    databases.dispose()
    missing = desk.flask("user", "reset-password", "ghost", "--password", OTHER_STRONG_PASSWORD)
    assert missing.returncode == 1


def test_db_upgrade(desk: Desk) -> None:
    result = desk.flask("db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "newest schema" in result.stdout


def test_sandbox_reset(desk: Desk) -> None:
    assert _create(desk).returncode == 0
    result = desk.flask("sandbox", "reset", "ops")
    assert result.returncode == 0, result.stderr
    assert "Reset the paper account of ops: available cash ₹10,000,000.00 (reset #1)." in (
        result.stdout
    )
    assert desk.flask("sandbox", "reset", "ghost").returncode == 1
