"""Settings: .env and the environment, validation that names the key, .env creation."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest

from config import PROJECT_ROOT, SAMPLE_ENV_FILE, ConfigError, Settings, load_settings
from services.envfile import GENERATED_SECRETS, ensure_env_file
from tests.conftest import desk_env


def _sample_keys() -> set[str]:
    text = SAMPLE_ENV_FILE.read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_fresh_env_file_gets_fresh_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    assert ensure_env_file(env_file, SAMPLE_ENV_FILE) is True
    settings = load_settings(env_file, environ={})
    assert re.fullmatch(r"[0-9a-f]{64}", settings.app_key)
    assert re.fullmatch(r"[0-9a-f]{64}", settings.api_key_pepper)
    assert settings.app_key != settings.api_key_pepper
    # Owner-only: the file holds the desk's secrets.
    assert env_file.stat().st_mode & 0o077 == 0


def test_existing_env_file_is_reused_never_overwritten(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    ensure_env_file(env_file, SAMPLE_ENV_FILE)
    first = env_file.read_text()
    assert ensure_env_file(env_file, SAMPLE_ENV_FILE) is False
    assert env_file.read_text() == first
    assert (
        load_settings(env_file, environ={}).app_key == load_settings(env_file, environ={}).app_key
    )


def test_two_fresh_files_get_different_secrets(tmp_path: Path) -> None:
    ensure_env_file(tmp_path / "a.env", SAMPLE_ENV_FILE)
    ensure_env_file(tmp_path / "b.env", SAMPLE_ENV_FILE)
    a = load_settings(tmp_path / "a.env", environ={})
    b = load_settings(tmp_path / "b.env", environ={})
    assert a.app_key != b.app_key
    assert a.api_key_pepper != b.api_key_pepper


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    ensure_env_file(env_file, SAMPLE_ENV_FILE)
    settings = load_settings(env_file, environ={"FLASK_PORT": "5123", "LOG_LEVEL": "debug"})
    assert settings.port == 5123
    assert settings.log_level == "DEBUG"
    assert load_settings(env_file, environ={}).port == 5000


def test_defaults_bind_to_loopback_with_sandbox(tmp_path: Path) -> None:
    settings = Settings.from_mapping(desk_env(tmp_path))
    assert settings.host == "127.0.0.1"
    assert settings.port == 5000
    assert settings.websocket_port == 8765
    assert settings.default_broker == "sandbox"
    assert settings.session_expiry_time == time(3, 0)


def test_sample_documents_every_key_the_settings_read() -> None:
    source = (PROJECT_ROOT / "config.py").read_text()
    read_keys = set(re.findall(r'reader\.\w+\(\s*"([A-Z][A-Z0-9_]*)"', source))
    assert read_keys, "no keys found in config.py"
    assert read_keys <= _sample_keys(), read_keys - _sample_keys()
    for key in GENERATED_SECRETS:
        assert key in _sample_keys()


def test_every_sample_key_has_a_comment() -> None:
    lines = SAMPLE_ENV_FILE.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            above = [text for text in lines[:index] if text.strip()]
            assert above and (above[-1].startswith("#") or re.match(r"^[A-Z]", above[-1])), line


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("APP_KEY", "", "APP_KEY is not set"),
        ("APP_KEY", "short", "APP_KEY must be at least 32 characters"),
        ("FLASK_PORT", "http", "FLASK_PORT must be a whole number"),
        ("FLASK_PORT", "70000", "FLASK_PORT must be a TCP port"),
        ("SESSION_EXPIRY_TIME", "3am", "SESSION_EXPIRY_TIME must be a time of day"),
        ("API_RATE_LIMIT", "fast", "API_RATE_LIMIT must look like"),
        ("SESSION_COOKIE_SECURE", "maybe", "SESSION_COOKIE_SECURE must be true or false"),
        ("DATABASE_URL", "db/dalal.db", "DATABASE_URL must be a SQLAlchemy URL"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, key: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        Settings.from_mapping(desk_env(tmp_path, **{key: value}))


def test_compound_rate_limits_are_accepted(tmp_path: Path) -> None:
    settings = Settings.from_mapping(
        desk_env(tmp_path, ORDER_RATE_LIMIT="10 per second;40 per minute")
    )
    assert settings.order_rate_limit == "10 per second;40 per minute"


def test_relative_sqlite_paths_are_anchored_at_the_project(tmp_path: Path) -> None:
    env = desk_env(tmp_path, DATABASE_URL="sqlite:///db/dalal.db")
    assert Settings.from_mapping(env).database_url == f"sqlite:///{PROJECT_ROOT}/db/dalal.db"


def test_secrets_do_not_appear_in_repr(tmp_path: Path) -> None:
    settings = Settings.from_mapping(desk_env(tmp_path))
    assert settings.app_key not in repr(settings)
    assert settings.api_key_pepper not in repr(settings)
