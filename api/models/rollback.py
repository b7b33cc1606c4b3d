"""Governed rollback on the wire: `POST /api/2.0/signoff/rollback`."""

from __future__ import annotations

from api.models.common import Body, Comment, ModelName, Target, Version


class RollbackRequest(Body):
    """Move `target` of `name` back to `version`, or (without it) to the version that held it
    before the current one, by Signoff's record."""

    name: ModelName
    target: Target
    version: Version | None = None
    comment: Comment = None
