"""Alembic environment: Signoff runs migrations from code (`Ledger.migrate`, through
`workflows.ledger.engine`), which hands over an open connection."""

from alembic import context

from workflows.ledger.tables import SQLModel

target_metadata = SQLModel.metadata
connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
