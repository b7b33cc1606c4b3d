"""The TransitionWorkflow (`workflow.py`) and its parts: the request's record (`record.py`),
one run per CI check (`ci_check.py`), and the outbox that feeds the ledger and the webhook
announcer (`outbox.py`)."""

from workflows.transition.workflow import APPLY_WAIT, SYSTEM_USER, TransitionWorkflow

__all__ = ["APPLY_WAIT", "SYSTEM_USER", "TransitionWorkflow"]
