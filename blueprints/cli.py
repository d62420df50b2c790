"""Headless administration: `flask --app app user|apikey|db|sandbox|order-mode ...`,
honouring the same settings.

Errors exit with status 1 and a one-line message on standard error; secrets are never echoed
except the new API key, which `apikey create` prints alone on the last line of standard output.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from blueprints import desk
from services.errors import DalalError

user_cli = AppGroup("user", help="Create users and reset passwords.")
apikey_cli = AppGroup("apikey", help="Create, regenerate and revoke API keys.")
db_cli = AppGroup("db", help="Database schema migrations.")
sandbox_cli = AppGroup("sandbox", help="The paper-trading exchange.")
broker_cli = AppGroup("broker", help="Live-broker accounts.")
CLI_ACTOR = "cli"  # who the audit trail says acted: the operator at the command line


def _fail(error: DalalError) -> click.ClickException:
    return click.ClickException(error.message)


@user_cli.command("create")
@click.argument("username")
@click.option("--email", required=True, help="The user's email address.")
@click.option("--password", required=True, help="At least 10 characters, mixed.")
@click.option("--admin", is_flag=True, help="Give the user administrator rights.")
def create_user(username: str, email: str, password: str, admin: bool) -> None:
    """Create a user (fails if the name is taken or the password is weak)."""
    try:
        view = desk().accounts.create_user(
            username, email, password, is_admin=admin, actor=CLI_ACTOR
        )
    except DalalError as e:
        raise _fail(e) from None
    role = "admin" if view.is_admin else "user"
    click.echo(f"Created {role} {view.username}.")


@user_cli.command("reset-password")
@click.argument("username")
@click.option("--password", required=True, help="The new password.")
def reset_password(username: str, password: str) -> None:
    """Set a new password; the user's open sessions end."""
    try:
        view = desk().accounts.reset_password(username, password, actor=CLI_ACTOR)
    except DalalError as e:
        raise _fail(e) from None
    click.echo(f"Password of {view.username} reset; their sessions have ended.")


@apikey_cli.command("create")
@click.argument("username")
def create_key(username: str) -> None:
    """Create or regenerate USERNAME's key; prints it alone on the last line."""
    try:
        view = desk().accounts.get_by_username(username)
        had_key = desk().api_keys.info(view.id) is not None
        key = desk().api_keys.create(view.id, actor=CLI_ACTOR)
    except DalalError as e:
        raise _fail(e) from None
    verb = "Regenerated (the old key no longer works)" if had_key else "Created"
    click.echo(f"{verb} API key for {view.username}. It is shown only now:")
    click.echo(key)


@apikey_cli.command("revoke")
@click.argument("username")
def revoke_key(username: str) -> None:
    """Revoke USERNAME's key; programs using it are refused from now on."""
    try:
        view = desk().accounts.get_by_username(username)
    except DalalError as e:
        raise _fail(e) from None
    if desk().api_keys.revoke(view.id, actor=CLI_ACTOR):
        click.echo(f"Revoked the API key of {view.username}.")
    else:
        raise click.ClickException(f"{view.username} has no API key to revoke.")


@sandbox_cli.command("reset")
@click.argument("username")
def reset_sandbox(username: str) -> None:
    """Wipe USERNAME's paper orders, positions and holdings; capital back to the start."""
    try:
        view = desk().accounts.get_by_username(username)
        funds = desk().sandbox.reset(view.id)
    except DalalError as e:
        raise _fail(e) from None
    desk().audit.record(
        "sandbox.reset",
        actor=CLI_ACTOR,
        user_id=view.id,
        subject=view.username,
        details={"available_cash": funds.available_cash, "reset_count": funds.reset_count},
    )
    click.echo(
        f"Reset the paper account of {view.username}: available cash "
        f"₹{funds.available_cash:,.2f} (reset #{funds.reset_count})."
    )


@db_cli.command("upgrade")
def upgrade() -> None:
    """Bring all four databases to the newest schema."""
    from database.migrate import upgrade_all

    upgrade_all(desk().settings)
    click.echo("All databases are at their newest schema.")


@db_cli.command("revision")
@click.argument("database", type=click.Choice(["main", "sandbox", "latency", "logs"]))
@click.argument("message")
def revision(database: str, message: str) -> None:
    """Autogenerate a migration for DATABASE from the models (review it before committing)."""
    from alembic import command

    from database.engine import DatabaseName
    from database.migrate import alembic_config

    name = DatabaseName(database)
    config = alembic_config(name, desk().databases.engines[name])
    command.revision(config, message=message, autogenerate=True)


@broker_cli.command("rotate-keys")
def rotate_broker_keys() -> None:
    """Re-seal every stored broker credential and token under the newest key in
    BROKER_ENCRYPTION_KEYS (after putting a new key first); then the old key may go."""
    try:
        count = desk().broker_accounts.rotate()
    except DalalError as e:
        raise _fail(e) from None
    desk().audit.record("broker.keys_rotated", actor=CLI_ACTOR, details={"accounts": count})
    desk().audit.flush()
    click.echo(f"Re-sealed {count} broker account(s) under the newest key.")


@click.command("order-mode")
@click.argument("username")
@click.argument("mode", type=click.Choice(["auto", "semi_auto"]))
@with_appcontext
def order_mode(username: str, mode: str) -> None:
    """Switch USERNAME's order mode: auto, or semi_auto (API orders wait for approval)."""
    try:
        user = desk().accounts.get_by_username(username)
        desk().action_center.set_mode(user.id, mode, actor=CLI_ACTOR)
    except DalalError as e:
        raise _fail(e) from None
    desk().audit.flush()
    if mode == "semi_auto":
        click.echo(
            f"{user.username} is in semi-auto mode: orders from the API, webhooks, strategies "
            "and Telegram wait for approval in the Action Center."
        )
    else:
        click.echo(f"{user.username} is in auto mode: orders go straight to the broker.")


def register_cli(app: Flask) -> None:
    from blueprints.cli_audit import audit_cli
    from blueprints.cli_market import master_contract_command

    commands = (
        user_cli,
        apikey_cli,
        db_cli,
        sandbox_cli,
        broker_cli,
        order_mode,
        master_contract_command,
    )
    for command in commands:
        app.cli.add_command(command)
    app.cli.add_command(audit_cli)
