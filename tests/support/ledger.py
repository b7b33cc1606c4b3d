"""A look at a stack's ledger behind the API's back, on SQLite or PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

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
