"""The rules of Signoff: the policy schema, its loader and the pure decisions made from it.

Safe to import inside the Temporal workflow sandbox: standard library, pydantic and yaml only,
and no I/O beyond `load_policy` reading the file it is given.
"""

from signoff.policies.decisions import (
    approval_refusal,
    approvals_needed,
    cancel_refusal,
    permission_for,
    quorum_met,
    rejection_refusal,
    required_level,
    rule_for,
)
from signoff.policies.loader import (
    PolicyError,
    PolicyIssue,
    check_policy_file,
    default_policy_path,
    load_policy,
    load_policy_text,
)
from signoff.policies.schema import (
    STAGES,
    Approvals,
    BaseCheck,
    Check,
    Duration,
    MetricCheck,
    PermissionLevel,
    Policy,
    Principal,
    TagCheck,
    TransitionRule,
    format_duration,
    is_alias,
    normalize_target,
    policy_hash,
)

__all__ = [
    "STAGES",
    "Approvals",
    "BaseCheck",
    "Check",
    "Duration",
    "MetricCheck",
    "PermissionLevel",
    "Policy",
    "PolicyError",
    "PolicyIssue",
    "Principal",
    "TagCheck",
    "TransitionRule",
    "approval_refusal",
    "approvals_needed",
    "cancel_refusal",
    "check_policy_file",
    "default_policy_path",
    "format_duration",
    "is_alias",
    "load_policy",
    "load_policy_text",
    "normalize_target",
    "permission_for",
    "policy_hash",
    "quorum_met",
    "rejection_refusal",
    "required_level",
    "rule_for",
]
