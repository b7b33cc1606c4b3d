"""The ledger: Signoff's durable, queryable record (requests, activity log, comments)."""

from workflows.ledger.store import Ledger

__all__ = ["Ledger"]
