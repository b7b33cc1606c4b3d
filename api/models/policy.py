"""The policy explained on the wire: `GET /api/2.0/signoff/policy/explain`."""

from __future__ import annotations

from pydantic import BaseModel

from policies.explain import Explanation


class PolicyExplainResponse(BaseModel):
    """`{"explanation": ...}`: which rule applies and why, what it needs, and what the
    principal (the caller, or the one named by `as` and `role`) may do there."""

    explanation: Explanation
    policy_hash: str
    """The running policy's hash: the one a request opened now would pin."""
