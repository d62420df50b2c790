"""Alembic, driven from code: one migration history per database under `migrations/<name>/`.

`upgrade_all()` runs on start (and from `flask --app app db upgrade`), so a desk's schema is
always at head. Revisions only ever add or transform; none drops data a trader put there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

from config import PROJECT_ROOT, Settings
from database.base import LatencyBase, LogsBase, MainBase, SandboxBase, UtcDateTime
from database.engine import DatabaseName, build_engine, database_urls

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"

METADATA: dict[DatabaseName, MetaData] = {
    DatabaseName.MAIN: MainBase.metadata,
    DatabaseName.SANDBOX: SandboxBase.metadata,
    DatabaseName.LATENCY: LatencyBase.metadata,
    DatabaseName.LOGS: LogsBase.metadata,
}


def alembic_config(name: DatabaseName, engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(MIGRATIONS_DIR / name.value)))
    config.set_main_option("dalal.database", name.value)
    config.attributes["engine"] = engine
    return config


def upgrade(name: DatabaseName, engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(name, engine), revision)


def upgrade_all(settings: Settings) -> None:
    """Bring every database to its newest revision, creating SQLite files as needed."""
    import database.models  # noqa: F401  (registers every table on its metadata)

    for name, url in database_urls(settings).items():
        engine = build_engine(url)
        try:
            upgrade(name, engine)
        finally:
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(name: DatabaseName) -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR / name.value))
    return ScriptDirectory.from_config(config).get_current_head()


def _render_item(kind: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    # Revisions name the stored type, so they never import Dalal's code.
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations() -> None:
    """Body of every `migrations/<name>/env.py`: migrate the engine handed in by `upgrade()`."""
    import database.models  # noqa: F401

    config = context.config
    name = DatabaseName(config.get_main_option("dalal.database") or "main")
    engine: Engine = config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=METADATA[name],
            # SQLite cannot ALTER most things; batch mode copies the table and keeps its rows.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=_render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
