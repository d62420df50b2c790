"""Engines and sessions for the four databases, built from settings; nothing connects at import."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from config import Settings


class DatabaseName(StrEnum):
    MAIN = "main"
    SANDBOX = "sandbox"
    LATENCY = "latency"
    LOGS = "logs"


def database_urls(settings: Settings) -> dict[DatabaseName, str]:
    return {
        DatabaseName.MAIN: settings.database_url,
        DatabaseName.SANDBOX: settings.sandbox_database_url,
        DatabaseName.LATENCY: settings.latency_database_url,
        DatabaseName.LOGS: settings.logs_database_url,
    }


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web threads read while a writer commits; busy_timeout waits out brief locks
    # instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def build_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    return create_engine(url, pool_pre_ping=True)


@dataclass
class Databases:
    """The desk's four engines and their session factories."""

    engines: dict[DatabaseName, Engine]
    sessions: dict[DatabaseName, sessionmaker[Session]]

    @classmethod
    def from_settings(cls, settings: Settings) -> Databases:
        engines = {name: build_engine(url) for name, url in database_urls(settings).items()}
        sessions = {
            name: sessionmaker(bind=engine, expire_on_commit=False)
            for name, engine in engines.items()
        }
        return cls(engines=engines, sessions=sessions)

    @contextmanager
    def session(self, name: DatabaseName = DatabaseName.MAIN) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with self.sessions[name]() as session, session.begin():
            yield session

    def dispose(self) -> None:
        for engine in self.engines.values():
            engine.dispose()
