"""MLflow reads the API does before it starts anything, with MLflow's errors turned into ours."""

from __future__ import annotations

from api.deps import Services
from api.errors import ApiError, bad_request, not_found
from workflows.mlflow_client import (
    InvalidRequest,
    MlflowError,
    MlflowUnavailable,
    ModelVersion,
    ResourceNotFound,
)


async def existing_version(services: Services, name: str, version: str) -> ModelVersion:
    try:
        return await services.registry.get_model_version(name, version)
    except ResourceNotFound as err:
        raise not_found(f"version {version} of model {name!r} does not exist in MLflow") from err
    except InvalidRequest as err:
        if err.error_code == "INVALID_PARAMETER_VALUE":
            # e.g. a model name MLflow does not allow ('/' or ':'): the caller's mistake.
            raise bad_request(f"MLflow refused the model name or version: {err.message}") from err
        raise ApiError(502, f"MLflow answered with an error: {err.message}") from err
    except MlflowUnavailable as err:
        raise ApiError(503, f"MLflow is not reachable: {err.message}") from err
    except MlflowError as err:
        raise ApiError(502, f"MLflow answered with an error: {err.message}") from err
