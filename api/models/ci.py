"""The answer to a CI job's report on its validation check (`POST /api/2.0/signoff/ci/callback`;
the body is `api.routers.ci.CiCallbackBody`)."""

from __future__ import annotations

from pydantic import BaseModel

from api.models.transition_requests import Check


class CiCallbackResponse(BaseModel):
    """The check as it stands after the report."""

    request_id: str
    check: Check
