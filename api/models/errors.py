"""MLflow's error shape, the one body of every failure the API answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ErrorResponse(BaseModel):
    """`{"error_code": ..., "message": ...}`, as MLflow and Databricks answer errors. Some
    errors add a field (a conflicting create adds the open `request`)."""

    model_config = ConfigDict(extra="allow")

    error_code: str = Field(
        description="MLflow's error code, e.g. INVALID_PARAMETER_VALUE or PERMISSION_DENIED",
        examples=["INVALID_PARAMETER_VALUE"],
    )
    message: str = Field(description="What went wrong, in a sentence a person can act on.")
