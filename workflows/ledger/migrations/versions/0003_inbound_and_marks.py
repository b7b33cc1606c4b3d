"""Inbound webhooks (decisions, MLflow's events), registry marks and reconciler runs.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_hooks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(256)),
        sa.Column("claim", sa.String(330), unique=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("event", sa.String(64)),
        sa.Column("user_id", sa.String(256)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_inbound_hooks_source", "inbound_hooks", ["source", "received_ms"])
    op.create_table(
        "registry_marks",
        sa.Column("model_name", sa.String(256), primary_key=True),
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("aliases", sa.JSON),
        sa.Column("pending_request", sa.String(64)),
        sa.Column("pending_target", sa.String(300)),
        sa.Column("pending_ms", sa.BigInteger),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "reconciler_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("started_ms", sa.BigInteger, nullable=False),
        sa.Column("finished_ms", sa.BigInteger, nullable=False),
        sa.Column("versions", sa.Integer, nullable=False),
        sa.Column("changes", sa.Integer, nullable=False),
        sa.Column("baseline", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reconciler_runs")
    op.drop_table("registry_marks")
    op.drop_index("ix_inbound_hooks_source", table_name="inbound_hooks")
    op.drop_table("inbound_hooks")
