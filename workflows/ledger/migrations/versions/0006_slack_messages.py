"""The Slack message that follows each request of a rule with `notify.slack`.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_messages",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(256), nullable=False),
        sa.Column("channel_id", sa.String(64)),
        sa.Column("ts", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sent_revision", sa.Integer),
        sa.Column("attempts", sa.JSON),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slack_messages")
