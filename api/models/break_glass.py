"""Break-glass on the wire: Databricks' direct stage transition and its answer,
`ModelVersionDatabricks`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.models.common import MAX_COMMENT, Body, Comment, ModelName, Stage, Version, omitted
from api.models.transition_requests import OpenRequestActivity
from policies import PermissionLevel, Policy, Principal
from workflows.domain import RequestSnapshot
from workflows.mlflow_client import ModelVersion


def _comment_required(schema: dict[str, Any]) -> None:
    """The document says what a request that can succeed carries: a comment that is not blank.
    The server checks it after who may break glass where (`api.services.break_glass`), so a
    principal who may not learns that first; either way a request without one is refused."""
    schema["required"] = [*schema.get("required", []), "comment"]
    schema["properties"]["comment"] = {
        "type": "string",
        "maxLength": MAX_COMMENT,
        "pattern": r"\S",
        "description": "Required: why this cannot wait for the governed path (not blank).",
    }


class TransitionModelVersionStageDatabricks(Body):
    """Databricks' request body, field for field."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_comment_required)

    name: ModelName
    version: Version
    stage: Stage
    archive_existing_versions: bool = Field(
        False,
        description="Archive the versions now in the target stage (Staging or Production).",
    )
    comment: Comment = None


class ModelVersionTag(BaseModel):
    key: str
    value: str


class ModelVersionDatabricks(BaseModel):
    """Databricks' ModelVersionDatabricks from what MLflow answered (fields MLflow's answer
    does not carry through `ModelVersion` are omitted, as Databricks omits unset fields)."""

    name: str
    version: str
    current_stage: str
    last_updated_timestamp: int | None = omitted("Epoch milliseconds.")
    run_id: str | None = omitted()
    source: str | None = omitted()
    status: str | None = omitted()
    tags: list[ModelVersionTag]
    permission_level: PermissionLevel
    open_requests: list[OpenRequestActivity]

    @classmethod
    def of(
        cls,
        version: ModelVersion,
        *,
        granted: PermissionLevel,
        open_requests: list[RequestSnapshot],
        policy: Policy,
        viewer: Principal,
    ) -> ModelVersionDatabricks:
        return cls(
            name=version.name,
            version=version.version,
            current_stage=version.current_stage,
            last_updated_timestamp=version.last_updated_timestamp,
            run_id=version.run_id,
            source=version.source,
            status=version.status,
            tags=[ModelVersionTag(key=key, value=value) for key, value in version.tags.items()],
            permission_level=granted,
            open_requests=[
                OpenRequestActivity.of(request, policy=policy, viewer=viewer)
                for request in open_requests
            ],
        )


class TransitionStageResponse(BaseModel):
    """`{"model_version_databricks": ...}`: the version as it is after the move."""

    model_version_databricks: ModelVersionDatabricks
