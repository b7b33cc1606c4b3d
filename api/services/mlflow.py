"""MLflow as the services meet it: the reads done before anything starts, and the one
translation of MLflow's errors into the services' errors."""

from __future__ import annotations

from api.deps import Services
from api.services.errors import (
    Invalid,
    NotFound,
    ServiceError,
    Unavailable,
    UpstreamFailed,
)
from policies import condition_keys
from workflows.mlflow_client import (
    InvalidRequest,
    MlflowError,
    MlflowUnavailable,
    ModelVersion,
    ResourceNotFound,
)


def mlflow_failure(err: MlflowError, *, name: str, version: str, refused: str) -> ServiceError:
    """What an MLflow error about version `version` of `name` means to the caller. `refused`
    names what MLflow refused when it calls the request invalid ("the transition")."""
    if isinstance(err, ResourceNotFound):
        return NotFound(f"version {version} of model {name!r} does not exist in MLflow")
    if isinstance(err, InvalidRequest):
        # A 4xx about what was asked (a model name MLflow does not allow, '/' or ':'; a move
        # it refuses): the caller's to change.
        return Invalid(f"MLflow refused {refused}: {err.message}")
    if isinstance(err, MlflowUnavailable):
        return Unavailable(f"MLflow is not reachable: {err.message}", which="mlflow")
    return UpstreamFailed(f"MLflow answered with an error: {err.message}", which="mlflow")


async def policy_tags(services: Services, version: ModelVersion) -> dict[str, str]:
    """The tags of the version over its registered model's (the version's own win), limited to
    the keys the policy's `when` conditions read: what a request pins to choose its rule."""
    keys = condition_keys(services.policy)
    if not keys:
        return {}
    try:
        model = await services.registry.get_registered_model(version.name)
    except MlflowError as err:
        raise mlflow_failure(
            err, name=version.name, version=version.version, refused="the model name"
        ) from err
    merged = {tag["key"]: tag.get("value", "") for tag in model.get("tags") or []}
    merged |= version.tags
    return {key: value for key, value in merged.items() if key in keys}


async def existing_version(services: Services, name: str, version: str) -> ModelVersion:
    """The version as MLflow has it now; NotFound if it does not exist."""
    try:
        return await services.registry.get_model_version(name, version)
    except MlflowError as err:
        raise mlflow_failure(
            err, name=name, version=version, refused="the model name or version"
        ) from err
