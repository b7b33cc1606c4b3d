"""Indexes for the reads that had none, so no read scans a table that grows with the ledger:

- `transition_requests (created_ms, id)`: every request, newest first (search, unfiltered);
- `transition_requests (state) WHERE approver_roles IS NULL`: the inbox's look for requests
  written before Signoff indexed their approver roles (a handful, found without reading the
  thousands of indexed PENDING ones);
- `activities (activity_type, created_ms)`: entries of one type since a time (the
  reconciler's new comments);
- `activities (request_id, activity_type, user_id)`: has this person approved this request
  (the inbox's test for each waiting request; without it a planner may pick the type index
  above and read every approval on the record for each request);
- `activities (model_name, activity_type, to_stage, created_ms)`: a target's applied moves,
  newest first (rollback);
- `inbound_hooks (received_ms)`: the newest inbound messages of every source;
- `reconciler_runs (started_ms)`: the newest passes.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UNINDEXED = sa.text("approver_roles IS NULL")


def upgrade() -> None:
    op.create_index("ix_transition_requests_created", "transition_requests", ["created_ms", "id"])
    op.create_index(
        "ix_transition_requests_unindexed",
        "transition_requests",
        ["state"],
        sqlite_where=UNINDEXED,
        postgresql_where=UNINDEXED,
    )
    op.create_index("ix_activities_type_created", "activities", ["activity_type", "created_ms"])
    op.create_index(
        "ix_activities_request_decisions", "activities", ["request_id", "activity_type", "user_id"]
    )
    op.create_index(
        "ix_activities_model_moves",
        "activities",
        ["model_name", "activity_type", "to_stage", "created_ms"],
    )
    op.create_index("ix_inbound_hooks_received", "inbound_hooks", ["received_ms"])
    op.create_index("ix_reconciler_runs_started", "reconciler_runs", ["started_ms"])


def downgrade() -> None:
    op.drop_index("ix_reconciler_runs_started", table_name="reconciler_runs")
    op.drop_index("ix_inbound_hooks_received", table_name="inbound_hooks")
    op.drop_index("ix_activities_model_moves", table_name="activities")
    op.drop_index("ix_activities_request_decisions", table_name="activities")
    op.drop_index("ix_activities_type_created", table_name="activities")
    op.drop_index("ix_transition_requests_unindexed", table_name="transition_requests")
    op.drop_index("ix_transition_requests_created", table_name="transition_requests")
