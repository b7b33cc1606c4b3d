"""Wire shapes. Request bodies are validated here; responses keep the Databricks registry
API's field names (`to_stage`, `user_id`, epoch-millisecond timestamps) so its clients work."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from policies import (
    PermissionLevel,
    Policy,
    Principal,
    approval_refusal,
    cancel_refusal,
    normalize_target,
    rejection_refusal,
    rule_for,
)
from workflows.domain import AuditEntry, CheckResult, RequestSnapshot, RequestState

MAX_COMMENT = 10_000
MAX_VERSION = 2**63 - 1
"""MLflow stores versions as 64-bit integers; a larger number makes its server answer 500."""


def _version(value: Any) -> str:
    text = str(value).strip() if isinstance(value, int | str) else ""
    if not text.isdigit() or not 1 <= int(text) <= MAX_VERSION:
        raise ValueError(f"a model version is a positive integer, got {value!r}")
    return str(int(text))


def _target(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("stage must be a string such as 'Production' or '@champion'")
    return normalize_target(value)


ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Version = Annotated[str, BeforeValidator(_version)]
Target = Annotated[str, BeforeValidator(_target)]
Comment = Annotated[str | None, Field(default=None, max_length=MAX_COMMENT)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateTransitionRequest(_Body):
    name: ModelName
    version: Version
    stage: Target
    comment: Comment = None


class RejectTransitionRequest(_Body):
    name: ModelName
    version: Version
    stage: Target
    comment: Comment = None


class ApproveTransitionRequest(RejectTransitionRequest):
    archive_existing_versions: bool = Field(
        False, description="Accepted for compatibility; the policy rule decides."
    )


def activity_json(entry: AuditEntry) -> dict[str, Any]:
    body = {
        "id": entry.id,
        "activity_type": entry.activity_type.value,
        "creation_timestamp": entry.creation_timestamp,
        "last_updated_timestamp": entry.creation_timestamp,
        "from_stage": entry.from_stage,
        "to_stage": entry.to_stage,
        "user_id": entry.user_id,
        "comment": entry.comment,
        "system_comment": entry.system_comment,
        "request_id": entry.request_id,
    }
    return {key: value for key, value in body.items() if value is not None}


def available_actions(policy: Policy, request: RequestSnapshot, viewer: Principal) -> list[str]:
    """What the viewer may do with the request now, as Databricks' ActivityAction values."""
    if request.state is not RequestState.PENDING:
        return []
    actions = []
    rule = rule_for(policy, request.model, request.target)
    common = {"model": request.model, "target": request.target, "principal": viewer}
    if rule is not None:
        approvers = [approval.user_id for approval in request.approvals]
        if not approval_refusal(
            policy, rule, requester=request.requester, approvers=approvers, **common
        ):
            actions.append("APPROVE_TRANSITION_REQUEST")
        if not rejection_refusal(policy, rule, **common):
            actions.append("REJECT_TRANSITION_REQUEST")
    if not cancel_refusal(
        policy, model=request.model, requester=request.requester, principal=viewer
    ):
        actions.append("CANCEL_TRANSITION_REQUEST")
    return actions


def transition_request_json(
    request: RequestSnapshot, policy: Policy, viewer: Principal
) -> dict[str, Any]:
    """Databricks' TransitionRequest, plus Signoff's view of the request's progress."""
    return {
        "id": request.id,
        "name": request.model,
        "version": request.version,
        "creation_timestamp": request.created_ms,
        "last_updated_timestamp": request.updated_ms,
        "from_stage": request.from_stage,
        "to_stage": request.target,
        "user_id": request.requester,
        "comment": request.comment,
        "available_actions": available_actions(policy, request, viewer),
        "state": request.state.value,
        "reason": request.reason,
        "policy_hash": request.policy_hash,
        "quorum": request.quorum,
        "approvals": [approval.model_dump() for approval in request.approvals],
        "checks": [check_json(check) for check in request.checks],
    }


def check_json(check: CheckResult) -> dict[str, Any]:
    return {
        "name": check.check_id,
        "type": check.type,
        "status": check.status.value,
        "summary": check.summary,
        "evidence": check.evidence,
        "finished_timestamp": check.finished_ms,
    }


def open_request_activity_json(
    request: RequestSnapshot, policy: Policy, viewer: Principal
) -> dict[str, Any]:
    """An open request as Databricks lists it: a REQUESTED_TRANSITION activity."""
    full = transition_request_json(request, policy, viewer)
    keys = (
        "id",
        "creation_timestamp",
        "last_updated_timestamp",
        "from_stage",
        "to_stage",
        "user_id",
        "comment",
        "available_actions",
        "state",
    )
    return {"activity_type": "REQUESTED_TRANSITION"} | {key: full[key] for key in keys}


# --------------------------------------------------------------------------------------------
# Comments
# --------------------------------------------------------------------------------------------


def _comment_text(value: Any) -> str:
    """A comment body: kept exactly as sent, but not empty and not over the limit."""
    if not isinstance(value, str):
        raise ValueError("a comment is a string")
    if not value.strip():
        raise ValueError("a comment must not be empty or only whitespace")
    if len(value) > MAX_COMMENT:
        raise ValueError(
            f"a comment is at most {MAX_COMMENT} characters long; this one has {len(value)}"
        )
    return value


CommentText = Annotated[str, BeforeValidator(_comment_text)]
CommentId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class CreateComment(_Body):
    name: ModelName
    version: Version
    comment: CommentText


class UpdateComment(_Body):
    id: CommentId
    comment: CommentText


def comment_actions(granted: PermissionLevel, author: str, viewer: Principal) -> list[str]:
    """Databricks' CommentActivityAction values the viewer may use on a comment: the author
    with CAN_EDIT edits and deletes it; a CAN_MANAGE principal deletes anyone's."""
    own = author == viewer.sub and granted.includes(PermissionLevel.CAN_EDIT)
    actions = ["EDIT_COMMENT"] if own else []
    if own or granted.includes(PermissionLevel.CAN_MANAGE):
        actions.append("DELETE_COMMENT")
    return actions


def comment_json(
    *,
    comment_id: str,
    user_id: str,
    text: str,
    created_ms: int,
    updated_ms: int,
    available_actions: list[str],
) -> dict[str, Any]:
    """Databricks' CommentObject."""
    return {
        "id": comment_id,
        "user_id": user_id,
        "comment": text,
        "creation_timestamp": created_ms,
        "last_updated_timestamp": updated_ms,
        "available_actions": available_actions,
    }
