"""Comments on a model version: Databricks' `/api/2.0/mlflow/comments/{create,update,delete}`
and Signoff's `GET /api/2.0/signoff/comments/list`.

Bodies live in the ledger (never in workflow history). Each new comment also appends a
`NEW_COMMENT` line, with the text as first posted, to the version's append-only activity log;
edits change the comment only, and a deletion removes the comment and leaves that line.

Who may do what (DESIGN.md): `CAN_READ` comments; the author, holding `CAN_EDIT`, edits and
deletes their own comment; a `CAN_MANAGE` principal deletes anyone's.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, Services, ServicesDep, has_binding, require_permission
from api.errors import forbidden, not_found
from api.mlflow_lookup import existing_version
from api.schemas import (
    CommentId,
    CreateComment,
    ModelName,
    UpdateComment,
    Version,
    comment_actions,
    comment_json,
)
from policies import PermissionLevel, Principal
from workflows.domain import now_ms
from workflows.ledger.models import CommentRow
from workflows.webhooks.events import comment_event

router = APIRouter(tags=["comments"])

MLFLOW_COMMENTS = "/api/2.0/mlflow/comments"


def _json(row: CommentRow, granted: PermissionLevel, viewer: Principal) -> dict[str, Any]:
    return comment_json(
        comment_id=row.id,
        user_id=row.user_id,
        text=row.comment,
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
        available_actions=comment_actions(granted, row.user_id, viewer),
    )


async def _visible_comment(
    comment_id: str, principal: Principal, services: Services
) -> tuple[CommentRow, PermissionLevel]:
    """The comment and the caller's level on its model: 404 if there is no such comment or the
    caller has no binding on its model (the same answer)."""
    row = await asyncio.to_thread(services.ledger.get_comment, comment_id)
    if row is None or not has_binding(services, principal, row.model_name):
        raise not_found(f"no comment with id {comment_id!r}")
    granted = require_permission(services, principal, row.model_name, PermissionLevel.CAN_READ)
    return row, granted


@router.post(f"{MLFLOW_COMMENTS}/create")
async def create_comment(
    body: CreateComment, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    granted = require_permission(services, principal, body.name, PermissionLevel.CAN_READ)
    await existing_version(services, body.name, body.version)
    row = await asyncio.to_thread(
        services.ledger.add_comment,
        uuid.uuid4().hex,
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
    return {"comment": _json(row, granted, principal)}


@router.patch(f"{MLFLOW_COMMENTS}/update")
async def update_comment(
    body: UpdateComment, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    row, granted = await _visible_comment(body.id, principal, services)
    if row.user_id != principal.sub:
        raise forbidden(f"only the author ({row.user_id}) may edit comment {body.id!r}")
    require_permission(services, principal, row.model_name, PermissionLevel.CAN_EDIT)
    updated = await asyncio.to_thread(
        services.ledger.update_comment, body.id, text=body.comment, now_ms=now_ms()
    )
    if updated is None:  # deleted since we read it
        raise not_found(f"no comment with id {body.id!r}")
    return {"comment": _json(updated, granted, principal)}


@router.delete(f"{MLFLOW_COMMENTS}/delete")
async def delete_comment(
    id: Annotated[CommentId, Query()], principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    row, granted = await _visible_comment(id, principal, services)
    if "DELETE_COMMENT" not in comment_actions(granted, row.user_id, principal):
        if row.user_id == principal.sub:
            require_permission(services, principal, row.model_name, PermissionLevel.CAN_EDIT)
        raise forbidden(
            f"comment {id!r} is by {row.user_id}; only its author or a CAN_MANAGE principal "
            f"may delete it, and {principal.sub} has {granted.value} on {row.model_name!r}"
        )
    if not await asyncio.to_thread(services.ledger.delete_comment, id):
        raise not_found(f"no comment with id {id!r}")
    return {}


@router.get("/api/2.0/signoff/comments/list")
async def list_comments(
    name: Annotated[ModelName, Query()],
    version: Annotated[Version, Query()],
    principal: PrincipalDep,
    services: ServicesDep,
) -> dict[str, Any]:
    """The comments on one model version, oldest first."""
    granted = require_permission(services, principal, name, PermissionLevel.CAN_READ)
    await existing_version(services, name, version)
    rows = await asyncio.to_thread(services.ledger.list_comments, name, version)
    return {"comments": [_json(row, granted, principal) for row in rows]}
