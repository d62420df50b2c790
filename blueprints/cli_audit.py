"""`flask --app app audit verify|export|purge`: the audit trail from the command line.

`verify` exits 0 when the chain is intact and 1 (naming the first broken record) when not, so a
cron job or a monitoring check can act on it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from blueprints import desk
from services.errors import DalalError

audit_cli = AppGroup("audit", help="Verify, export and prune the tamper-evident audit trail.")


@audit_cli.command("verify")
def verify() -> None:
    """Check every link of the hash chain; exit 1 at the first broken record."""
    result = desk().audit.verify()
    if result.intact:
        noun = "record" if result.checked == 1 else "records"
        click.echo(f"Audit trail intact: {result.checked} {noun} verified.")
        return
    click.echo(f"Audit trail broken at record {result.first_broken_seq}: {result.problem}.")
    click.echo(f"{result.checked} records before it verified.")
    sys.exit(1)


@audit_cli.command("export")
@click.option("--user", "username", default=None, help="Only this user's records.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to FILE instead of standard output.",
)
def export(username: str | None, output: Path | None) -> None:
    """Write the trail as CSV (oldest first; times in IST)."""
    user_id = None
    if username is not None:
        try:
            user_id = desk().accounts.get_by_username(username).id
        except DalalError as e:
            raise click.ClickException(e.message) from None
    if output is None:
        rows = desk().audit.export_csv(sys.stdout, user_id=user_id)
    else:
        with output.open("w", encoding="utf-8", newline="") as out:
            rows = desk().audit.export_csv(out, user_id=user_id)
    # On standard error, so that standard output stays pure CSV.
    where = f" to {output}" if output is not None else ""
    click.echo(f"Exported {rows} audit records{where}.", err=True)


@audit_cli.command("purge")
def purge() -> None:
    """Delete records older than AUDIT_RETENTION_DAYS; the rest still verifies."""
    trail = desk().audit
    purged = trail.purge_expired()
    click.echo(
        f"Purged {purged} audit record{'' if purged == 1 else 's'} older than "
        f"{trail.retention_days} days."
    )
