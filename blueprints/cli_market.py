"""`flask --app app master-contract`: rebuild today's instrument master and store it."""

from __future__ import annotations

from collections import Counter

import click
from flask.cli import with_appcontext

from blueprints import desk
from services.market.model import Exchange


@click.command("master-contract")
@with_appcontext
def master_contract_command() -> None:
    """Rebuild the instrument master for today (IST) and print the count per exchange."""
    master = desk().market.reload_master()
    counts = Counter(instrument.exchange.value for instrument in master.all())
    for exchange in Exchange:
        if counts[exchange.value]:
            click.echo(f"{exchange.value:<10} {counts[exchange.value]:>8,}")
    click.echo(f"Loaded {len(master):,} instruments for {master.built_on.isoformat()}.")
