"""Break-glass reviews and the pinned policies.

- `break_glass_reviews`: the after-the-fact review of each break-glass move (a projection of
  its BreakGlassReviewWorkflow), indexed for the open/overdue lists and per version.
- `pinned_policies`: each policy the API ran with, by hash, as the document the hash covers,
  for the evidence packets.

Revision ID: 0011
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "break_glass_reviews",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("workflow_id", sa.String(300), nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("from_stage", sa.String(32), nullable=False),
        sa.Column("to_stage", sa.String(32), nullable=False),
        sa.Column("mover", sa.String(256), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("roles", sa.JSON),
        sa.Column("quorum", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("opened_ms", sa.BigInteger, nullable=False),
        sa.Column("deadline_ms", sa.BigInteger, nullable=False),
        sa.Column("overdue_ms", sa.BigInteger),
        sa.Column("acknowledged_ms", sa.BigInteger),
        sa.Column("acknowledgements", sa.JSON),
        sa.Column("revision", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_break_glass_reviews_state_deadline", "break_glass_reviews", ["state", "deadline_ms"]
    )
    op.create_index(
        "ix_break_glass_reviews_model_version", "break_glass_reviews", ["model_name", "version"]
    )
    op.create_table(
        "pinned_policies",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("document", sa.JSON),
        sa.Column("first_seen_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pinned_policies")
    op.drop_index("ix_break_glass_reviews_model_version", table_name="break_glass_reviews")
    op.drop_index("ix_break_glass_reviews_state_deadline", table_name="break_glass_reviews")
    op.drop_table("break_glass_reviews")
