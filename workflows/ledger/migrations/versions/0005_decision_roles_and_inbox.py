"""Roles beside decisions, the inbox's index of approver roles, the ID token of a web session.

- `activities.roles`: the roles in which a decision was made.
- `transition_requests.approver_roles` / `self_approval`: from the pinned policy, and the
  `request_approver_roles` index the inbox queries (rows only while a request is PENDING);
  requests written before stay NULL until their next write or the inbox indexes them.
- Indexes for the inbox's keyset pages (open by age, by requester, by last change).
- `web_sessions.id_token_enc`: the ID token for RP-initiated logout, encrypted.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("activities") as batch:
        batch.add_column(sa.Column("roles", sa.JSON(none_as_null=True)))
    with op.batch_alter_table("transition_requests") as batch:
        batch.add_column(sa.Column("approver_roles", sa.JSON(none_as_null=True)))
        batch.add_column(
            sa.Column("self_approval", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_index(
        "ix_transition_requests_state_created",
        "transition_requests",
        ["state", "created_ms", "id"],
    )
    op.create_index(
        "ix_transition_requests_requester_created",
        "transition_requests",
        ["requester", "created_ms", "id"],
    )
    op.create_index("ix_transition_requests_updated", "transition_requests", ["updated_ms", "id"])
    op.create_table(
        "request_approver_roles",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(256), primary_key=True),
    )
    op.create_index(
        "ix_request_approver_roles_role", "request_approver_roles", ["role", "request_id"]
    )
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(sa.Column("id_token_enc", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("id_token_enc")
    op.drop_index("ix_request_approver_roles_role", table_name="request_approver_roles")
    op.drop_table("request_approver_roles")
    op.drop_index("ix_transition_requests_updated", table_name="transition_requests")
    op.drop_index("ix_transition_requests_requester_created", table_name="transition_requests")
    op.drop_index("ix_transition_requests_state_created", table_name="transition_requests")
    with op.batch_alter_table("transition_requests") as batch:
        batch.drop_column("self_approval")
        batch.drop_column("approver_roles")
    with op.batch_alter_table("activities") as batch:
        batch.drop_column("roles")
