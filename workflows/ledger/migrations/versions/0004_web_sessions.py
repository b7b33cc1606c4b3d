"""Web page sessions and sign-ins under way (only hashes of their ids are stored).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("roles", sa.JSON),
        sa.Column("issuer", sa.String(300), nullable=False),
        sa.Column("csrf_token", sa.String(128), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_web_sessions_expires_ms", "web_sessions", ["expires_ms"])
    op.create_table(
        "web_logins",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("return_to", sa.String(2000), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_web_logins_created_ms", "web_logins", ["created_ms"])


def downgrade() -> None:
    op.drop_index("ix_web_logins_created_ms", table_name="web_logins")
    op.drop_table("web_logins")
    op.drop_index("ix_web_sessions_expires_ms", table_name="web_sessions")
    op.drop_table("web_sessions")
