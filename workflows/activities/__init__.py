"""Activities: every piece of I/O the workflows do, each safe to run twice.

- `checks`: `run_check`, one validation check against MLflow;
- `registry`: `apply_transition`, the one move in MLflow, and `close_superseded`, which tells
  the other open requests on the version that it moved;
- `outbox`: `record_ledger`, the workflow's state copied to the ledger;
- `ci`: `dispatch_ci` and `poll_ci`, the CI checks;
- `reviews`: `record_review`, a break-glass review copied to the ledger.

Activity names are the method names: they are in workflow histories, so they never change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workflows.activities.checks import CheckActivities
from workflows.activities.ci import CiActivities
from workflows.activities.outbox import LedgerActivities
from workflows.activities.registry import RegistryActivities
from workflows.activities.reviews import ReviewActivities
from workflows.ledger import Ledger
from workflows.mlflow_client import MlflowRegistry

__all__ = [
    "CheckActivities",
    "CiActivities",
    "LedgerActivities",
    "RegistryActivities",
    "ReviewActivities",
    "SignoffActivities",
]


class SignoffActivities:
    """The activities of a TransitionWorkflow over one registry and one ledger, except the CI
    ones (`CiActivities`, which need the CI systems' settings)."""

    def __init__(self, registry: MlflowRegistry, ledger: Ledger) -> None:
        self.registry = registry
        self.ledger = ledger
        self.checks = CheckActivities(registry)
        self.moves = RegistryActivities(registry, ledger)
        self.outbox = LedgerActivities(ledger)
        self.reviews = ReviewActivities(ledger)

    def defns(self) -> list[Callable[..., Any]]:
        """The activity functions to register on a worker."""
        return [
            self.checks.run_check,
            self.moves.apply_transition,
            self.moves.close_superseded,
            self.outbox.record_ledger,
            self.reviews.record_review,
        ]
