"""GitHub environments: the run that opened a request, and the deployments waiting on Signoff.

Revision ID: 0007
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transition_requests") as batch:
        batch.add_column(sa.Column("github_repository_id", sa.String(256)))
        batch.add_column(sa.Column("github_run_id", sa.String(256)))
        batch.add_column(sa.Column("github", sa.JSON))
    op.create_index(
        "ix_transition_requests_github_run",
        "transition_requests",
        ["github_repository_id", "github_run_id"],
    )
    op.create_table(
        "deployment_gates",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("gate_id", sa.String(600), nullable=False),
        sa.Column("repository", sa.String(256), nullable=False),
        sa.Column("repository_id", sa.String(256), nullable=False),
        sa.Column("run_id", sa.String(256), nullable=False),
        sa.Column("environment", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("request_ids", sa.JSON),
        sa.Column("status_code", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_deployment_gates_run", "deployment_gates", ["repository_id", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_deployment_gates_run", table_name="deployment_gates")
    op.drop_table("deployment_gates")
    op.drop_index("ix_transition_requests_github_run", table_name="transition_requests")
    with op.batch_alter_table("transition_requests") as batch:
        batch.drop_column("github")
        batch.drop_column("github_run_id")
        batch.drop_column("github_repository_id")
