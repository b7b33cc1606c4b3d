"""A look at a stack's ledger behind the API's back, on SQLite or PostgreSQL alike, and migrating
one ahead of the stack (the templates stacks' ledgers are copied from)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from sqlalchemy import text

from workflows.ledger import Ledger
from workflows.ledger.engine import make_engine


def ledger_rows(database_url: str, query: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of a read-only `query` (bound `params`) on a ledger, SQLite or PostgreSQL: what a
    test inspects behind the API's back."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(text(query), params)]
    finally:
        engine.dispose()


def migrate(database_url: str) -> None:
    """Bring the ledger at `database_url` to the newest migration, as `signoff db upgrade` does
    (`Ledger.migrate`), from any thread, inside a running event loop or not."""
    ledger = Ledger(database_url)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, ledger.migrate()).result()
    finally:
        ledger.dispose()
