"""`signoff db ...`: the ledger's database."""

from __future__ import annotations

import logging

import typer

from api.cli.client import fail, load_settings
from api.cli.helptext import SignoffCommand, SignoffGroup

db_app = typer.Typer(
    cls=SignoffGroup,
    help="The ledger's database (SIGNOFF_DATABASE_URL).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@db_app.command("upgrade", cls=SignoffCommand)
def db_upgrade() -> None:
    """Apply the ledger's migrations up to the newest, then print the revision.

    Waits (with backoff, up to SIGNOFF_STARTUP_TIMEOUT_S) for the database at
    SIGNOFF_DATABASE_URL to answer. Safe to run while API and worker processes run, and beside
    their own start-up migrations: all of them take the same lock. Run it before rolling out a
    release (a compose `db-upgrade` service, a Helm pre-upgrade hook)."""
    import asyncio

    from workflows.ledger import Ledger
    from workflows.ledger.engine import head_revision
    from workflows.startup import StartupFailed, database_name, wait_for

    settings = load_settings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    ledger = Ledger(settings.database_url or "")
    kind, where = database_name(ledger.url)

    async def upgrade() -> tuple[str | None, str | None]:
        await wait_for(
            kind,
            where,
            "SIGNOFF_DATABASE_URL",
            ledger.ping,
            timeout_s=settings.startup_timeout_s,
        )
        before = await ledger.schema_revision()
        await ledger.migrate()
        return before, await ledger.schema_revision()

    try:
        before, after = asyncio.run(upgrade())
    except StartupFailed as err:
        fail(str(err))
    finally:
        ledger.dispose()
    if after != head_revision():  # pragma: no cover - the migrations end at the head
        fail(f"the {kind} ledger at {where} is at {after}, not at {head_revision()}")
    if before == after:
        typer.echo(f"{kind} ledger at {where}: already at revision {after} (the newest)")
    else:
        was = f"revision {before}" if before else "an empty database"
        typer.echo(f"{kind} ledger at {where}: upgraded from {was} to revision {after}")
