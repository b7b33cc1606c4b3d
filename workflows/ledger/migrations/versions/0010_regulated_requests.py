"""Requests pin their artifacts' digest, the tags their rule read and its tier; a scheduled
request says when it applies; a rollback says so.

Revision ID: 0010
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("digest", sa.JSON),
    ("tags", sa.JSON),
    ("tier", sa.JSON),
    ("apply_at_ms", sa.BigInteger),
    ("rollback", sa.JSON),
)


def upgrade() -> None:
    with op.batch_alter_table("transition_requests") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transition_requests") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
