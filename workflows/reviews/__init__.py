"""Break-glass reviews: the BreakGlassReviewWorkflow (`workflow.py`) and how the API starts
and acknowledges them (`client.py`)."""

from workflows.reviews.workflow import BreakGlassReviewWorkflow, review_workflow_id

__all__ = ["BreakGlassReviewWorkflow", "review_workflow_id"]
