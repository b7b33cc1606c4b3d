"""Comments on a model version: Databricks' `CommentObject` and its request bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from api.models.common import MAX_COMMENT, Body, ModelName, Version
from policies import PermissionLevel, Principal
from workflows.ledger import Comment

CommentAction = Literal["EDIT_COMMENT", "DELETE_COMMENT"]


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


CommentText = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_COMMENT), BeforeValidator(_comment_text)
]
CommentId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class CreateComment(Body):
    name: ModelName
    version: Version
    comment: CommentText


class UpdateComment(Body):
    id: CommentId
    comment: CommentText


def comment_actions(
    granted: PermissionLevel, author: str, viewer: Principal
) -> list[CommentAction]:
    """Databricks' CommentActivityAction values the viewer may use on a comment: the author
    with CAN_EDIT edits and deletes it; a CAN_MANAGE principal deletes anyone's."""
    own = author == viewer.sub and granted.includes(PermissionLevel.CAN_EDIT)
    actions: list[CommentAction] = ["EDIT_COMMENT"] if own else []
    if own or granted.includes(PermissionLevel.CAN_MANAGE):
        actions.append("DELETE_COMMENT")
    return actions


class CommentObject(BaseModel):
    """Databricks' CommentObject."""

    id: str
    user_id: str
    comment: str
    creation_timestamp: int = Field(description="Epoch milliseconds.")
    last_updated_timestamp: int = Field(description="Epoch milliseconds.")
    available_actions: list[CommentAction]

    @classmethod
    def of(cls, row: Comment, *, granted: PermissionLevel, viewer: Principal) -> CommentObject:
        return cls(
            id=row.id,
            user_id=row.user_id,
            comment=row.comment,
            creation_timestamp=row.created_ms,
            last_updated_timestamp=row.updated_ms,
            available_actions=comment_actions(granted, row.user_id, viewer),
        )


class CommentResponse(BaseModel):
    """`{"comment": ...}`."""

    comment: CommentObject


class CommentList(BaseModel):
    """The comments on one model version, oldest first."""

    comments: list[CommentObject]
