"""Initial ledger: transition requests, activities, comments.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transition_requests",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workflow_id", sa.String(600), nullable=False, index=True),
        sa.Column("run_id", sa.String(64)),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("from_stage", sa.String(32)),
        sa.Column("requester", sa.String(256), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("state", sa.String(32), nullable=False, index=True),
        sa.Column("reason", sa.Text),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("quorum", sa.Integer, nullable=False),
        sa.Column("checks", sa.JSON),
        sa.Column("approvals", sa.JSON),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_transition_requests_model_version", "transition_requests", ["model_name", "version"]
    )
    op.create_table(
        "activities",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("request_id", sa.String(64), index=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("activity_type", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("from_stage", sa.String(300)),
        sa.Column("to_stage", sa.String(300)),
        sa.Column("comment", sa.Text),
        sa.Column("system_comment", sa.Text),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_activities_model_version", "activities", ["model_name", "version"])
    op.create_table(
        "comments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_comments_model_version", "comments", ["model_name", "version"])


def downgrade() -> None:
    op.drop_table("comments")
    op.drop_table("activities")
    op.drop_table("transition_requests")
