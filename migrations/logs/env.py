"""Alembic environment for this database; the logic lives in database/migrate.py."""

from database.migrate import run_migrations

run_migrations()
