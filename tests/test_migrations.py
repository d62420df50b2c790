"""The four databases: migrations match the models, upgrades keep data, SQLite runs in WAL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from config import Settings
from database.engine import DatabaseName, Databases, build_engine, database_urls
from database.migrate import METADATA, current_revision, head_revision, upgrade, upgrade_all
from database.models import ApiLog, User
from services.accounts import AccountService
from services.clock import SystemClock
from tests.conftest import STRONG_PASSWORD, desk_env


@pytest.fixture
def migrated(tmp_path: Path) -> Settings:
    settings = Settings.from_mapping(desk_env(tmp_path))
    upgrade_all(settings)
    return settings


def test_every_database_gets_its_own_file_at_head(migrated: Settings, tmp_path: Path) -> None:
    for name in DatabaseName:
        assert (tmp_path / f"{'dalal' if name is DatabaseName.MAIN else name.value}.db").exists()
    for name, url in database_urls(migrated).items():
        engine = build_engine(url)
        assert current_revision(engine) == head_revision(name)
        engine.dispose()


@pytest.mark.parametrize("name", list(DatabaseName))
def test_models_and_migrations_agree(migrated: Settings, name: DatabaseName) -> None:
    engine = build_engine(database_urls(migrated)[name])
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, METADATA[name])
    engine.dispose()
    assert differences == [], f"{name}: write a migration for {differences}"


def test_tables_live_in_their_own_database(migrated: Settings) -> None:
    urls = database_urls(migrated)
    tables = {name: set(inspect(build_engine(url)).get_table_names()) for name, url in urls.items()}
    assert {"users", "api_keys", "recovery_codes", "desk_settings"} <= tables[DatabaseName.MAIN]
    assert "sandbox_accounts" in tables[DatabaseName.SANDBOX]
    assert "order_latency" in tables[DatabaseName.LATENCY]
    assert "api_logs" in tables[DatabaseName.LOGS]
    assert "api_logs" not in tables[DatabaseName.MAIN]
    assert "users" not in tables[DatabaseName.LOGS]


def test_upgrade_again_keeps_every_row(migrated: Settings) -> None:
    databases = Databases.from_settings(migrated)
    accounts = AccountService(databases, migrated.api_key_pepper, SystemClock(), "sandbox")
    accounts.create_user("keeper", "keeper@example.com", STRONG_PASSWORD)
    databases.dispose()

    upgrade_all(migrated)
    upgrade_all(migrated)

    databases = Databases.from_settings(migrated)
    with databases.session() as session:
        assert session.scalars(select(User.username)).all() == ["keeper"]
    databases.dispose()


def test_upgrade_from_an_empty_history_applies_each_revision(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path}/logs.db")
    assert current_revision(engine) is None
    upgrade(DatabaseName.LOGS, engine)
    assert current_revision(engine) == head_revision(DatabaseName.LOGS)
    assert ApiLog.__tablename__ in inspect(engine).get_table_names()
    engine.dispose()


def test_sqlite_runs_in_wal_mode(migrated: Settings) -> None:
    databases = Databases.from_settings(migrated)
    for name in DatabaseName:
        with databases.engines[name].connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    databases.dispose()
