"""The audit chain: each audit entry's place (`chain_seq`, `recorded_ms`) and hashes
(`prev_hash`, `entry_hash`), the chain's head, and its anchors. Entries written before are
chained in the order of their trail (time, then sequence, then id), a page at a time.

Revision ID: 0009
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from workflows.ledger.audit import row_content
from workflows.ledger.chain import GENESIS_HASH, seal

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None

PAGE = 1000
_activities = sa.table(
    "activities",
    sa.column("id", sa.String),
    sa.column("request_id", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("model_name", sa.String),
    sa.column("version", sa.String),
    sa.column("activity_type", sa.String),
    sa.column("user_id", sa.String),
    sa.column("from_stage", sa.String),
    sa.column("to_stage", sa.String),
    sa.column("comment", sa.Text),
    sa.column("system_comment", sa.Text),
    sa.column("created_ms", sa.BigInteger),
    sa.column("roles", sa.JSON),
    sa.column("chain_seq", sa.BigInteger),
    sa.column("recorded_ms", sa.BigInteger),
    sa.column("prev_hash", sa.String),
    sa.column("entry_hash", sa.String),
)
_chain = sa.table(
    "audit_chain",
    sa.column("id", sa.Integer),
    sa.column("length", sa.BigInteger),
    sa.column("head_hash", sa.String),
    sa.column("recorded_ms", sa.BigInteger),
)

_SET_CHAIN = (
    sa.update(_activities)
    .where(_activities.c.id == sa.bindparam("_id"))
    .values(
        chain_seq=sa.bindparam("_seq"),
        recorded_ms=sa.bindparam("_at"),
        prev_hash=sa.bindparam("_prev"),
        entry_hash=sa.bindparam("_hash"),
    )
)


class _Row:
    """A stored entry with the chain fields the back-fill gives it."""

    def __init__(self, mapping: sa.RowMapping, chain_seq: int, recorded_ms: int) -> None:
        self.__dict__.update(mapping)
        self.chain_seq = chain_seq
        self.recorded_ms = recorded_ms


def upgrade() -> None:
    with op.batch_alter_table("activities") as batch:
        batch.add_column(sa.Column("chain_seq", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("recorded_ms", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("entry_hash", sa.String(64), nullable=True))
    length, head, recorded = _backfill(op.get_bind())
    with op.batch_alter_table("activities") as batch:
        for name in ("chain_seq", "recorded_ms"):
            batch.alter_column(name, existing_type=sa.BigInteger, nullable=False)
        for name in ("prev_hash", "entry_hash"):
            batch.alter_column(name, existing_type=sa.String(64), nullable=False)
    op.create_index("ix_activities_chain_seq", "activities", ["chain_seq"], unique=True)
    op.create_index("ix_activities_recorded_ms", "activities", ["recorded_ms"])
    op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("recorded_ms", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        _chain, [{"id": 1, "length": length, "head_hash": head, "recorded_ms": recorded}]
    )
    op.create_table(
        "audit_anchors",
        sa.Column("length", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("anchored_ms", sa.BigInteger, nullable=False),
    )


def _backfill(bind: sa.Connection) -> tuple[int, str, int]:
    """Chain every stored entry, oldest first; returns the chain's length, head and time."""
    order = (_activities.c.created_ms, _activities.c.seq, _activities.c.id)
    length, head, recorded = 0, GENESIS_HASH, 0
    last: tuple[int, int, str] | None = None
    while True:
        query = sa.select(_activities).order_by(*order).limit(PAGE)
        if last is not None:
            query = query.where(sa.tuple_(*order) > sa.tuple_(*last))
        rows = bind.execute(query).mappings().all()
        if not rows:
            return length, head, recorded
        updates = []
        for mapping in rows:
            recorded = max(recorded, mapping["created_ms"])
            length += 1
            digest = seal(row_content(_Row(mapping, length, recorded)), head)
            updates.append(
                {
                    "_id": mapping["id"],
                    "_seq": length,
                    "_at": recorded,
                    "_prev": head,
                    "_hash": digest,
                }
            )
            head = digest
        bind.execute(_SET_CHAIN, updates)  # one executemany per page
        final = rows[-1]
        last = (final["created_ms"], final["seq"], final["id"])


def downgrade() -> None:
    op.drop_table("audit_anchors")
    op.drop_table("audit_chain")
    op.drop_index("ix_activities_recorded_ms", table_name="activities")
    op.drop_index("ix_activities_chain_seq", table_name="activities")
    with op.batch_alter_table("activities") as batch:
        for name in ("entry_hash", "prev_hash", "recorded_ms", "chain_seq"):
            batch.drop_column(name)
