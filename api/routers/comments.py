"""Comments on a model version: Databricks' `/api/2.0/mlflow/comments/{create,update,delete}`
and Signoff's `GET /api/2.0/signoff/comments/list`.

Bodies live in the ledger (never in workflow history). Each new comment also appends a
`NEW_COMMENT` entry, with the text as first posted, to the version's append-only audit trail;
edits change the comment only, and a deletion removes the comment and leaves that entry.

Who may do what (Databricks' permission levels, bound by the policy's `roles:`): `CAN_READ`
comments; the author, holding `CAN_EDIT`, edits and deletes their own comment; a `CAN_MANAGE`
principal deletes anyone's.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, Services, ServicesDep
from api.errors import error_responses
from api.models.comments import (
    CommentId,
    CommentList,
    CommentObject,
    CommentResponse,
    CreateComment,
    UpdateComment,
    comment_actions,
)
from api.models.common import Empty, ModelName, Version
from api.services.errors import NotFound, Refused
from api.services.mlflow import existing_version
from api.services.permissions import has_binding, require_permission
from policies import PermissionLevel, Principal
from workflows.domain import now_ms
from workflows.ledger import Comment
from workflows.webhooks.events import comment_event

router = APIRouter(tags=["comments"], responses=error_responses(400, 401, 403, 404))

MLFLOW_COMMENTS = "/api/2.0/mlflow/comments"


async def _visible_comment(
    comment_id: str, principal: Principal, services: Services
) -> tuple[Comment, PermissionLevel]:
    """The comment and the caller's level on its model: 404 if there is no such comment or the
    caller has no binding on its model (the same answer)."""
    row = await services.ledger.comments.get(comment_id)
    if row is None or not has_binding(services, principal, row.model_name):
        raise NotFound(f"no comment with id {comment_id!r}")
    granted = require_permission(services, principal, row.model_name, PermissionLevel.CAN_READ)
    return row, granted


@router.post(f"{MLFLOW_COMMENTS}/create", responses=error_responses(502, 503))
async def create_comment(
    body: CreateComment, principal: PrincipalDep, services: ServicesDep
) -> CommentResponse:
    granted = require_permission(services, principal, body.name, PermissionLevel.CAN_READ)
    await existing_version(services, body.name, body.version)
    row = await services.ledger.comments.add(
        comment_id=uuid.uuid4().hex,
        model=body.name,
        version=body.version,
        user_id=principal.sub,
        text=body.comment,
        now_ms=now_ms(),
    )
    await services.announce(
        [
            comment_event(
                row.id,
                model=row.model_name,
                version=row.version,
                user_id=row.user_id,
                text=row.comment,
                created_ms=row.created_ms,
            )
        ]
    )
    return CommentResponse(comment=CommentObject.of(row, granted=granted, viewer=principal))


@router.patch(f"{MLFLOW_COMMENTS}/update")
async def update_comment(
    body: UpdateComment, principal: PrincipalDep, services: ServicesDep
) -> CommentResponse:
    row, granted = await _visible_comment(body.id, principal, services)
    if row.user_id != principal.sub:
        raise Refused(f"only the author ({row.user_id}) may edit comment {body.id!r}")
    require_permission(services, principal, row.model_name, PermissionLevel.CAN_EDIT)
    updated = await services.ledger.comments.update(
        comment_id=body.id, text=body.comment, now_ms=now_ms()
    )
    if updated is None:  # deleted since we read it
        raise NotFound(f"no comment with id {body.id!r}")
    return CommentResponse(comment=CommentObject.of(updated, granted=granted, viewer=principal))


@router.delete(f"{MLFLOW_COMMENTS}/delete")
async def delete_comment(
    id: Annotated[CommentId, Query()], principal: PrincipalDep, services: ServicesDep
) -> Empty:
    row, granted = await _visible_comment(id, principal, services)
    if "DELETE_COMMENT" not in comment_actions(granted, row.user_id, principal):
        if row.user_id == principal.sub:
            require_permission(services, principal, row.model_name, PermissionLevel.CAN_EDIT)
        raise Refused(
            f"comment {id!r} is by {row.user_id}; only its author or a CAN_MANAGE principal "
            f"may delete it, and {principal.sub} has {granted.value} on {row.model_name!r}"
        )
    if not await services.ledger.comments.delete(comment_id=id):
        raise NotFound(f"no comment with id {id!r}")
    return Empty()


@router.get("/api/2.0/signoff/comments/list", responses=error_responses(502, 503))
async def list_comments(
    name: Annotated[ModelName, Query()],
    version: Annotated[Version, Query()],
    principal: PrincipalDep,
    services: ServicesDep,
) -> CommentList:
    """The comments on one model version, oldest first."""
    granted = require_permission(services, principal, name, PermissionLevel.CAN_READ)
    await existing_version(services, name, version)
    rows = await services.ledger.comments.on_version(name, version)
    return CommentList(
        comments=[CommentObject.of(row, granted=granted, viewer=principal) for row in rows]
    )
