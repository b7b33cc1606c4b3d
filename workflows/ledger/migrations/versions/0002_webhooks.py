"""Registry webhooks and their deliveries.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("model_name", sa.String(256), index=True),
        sa.Column("events", sa.JSON),
        sa.Column("description", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("enable_ssl_verification", sa.Boolean, nullable=False),
        sa.Column("secret_enc", sa.Text),
        sa.Column("authorization_enc", sa.Text),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.JSON),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "created_ms"]
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
