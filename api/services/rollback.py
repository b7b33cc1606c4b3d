"""Governed rollback: a request that moves a target back to the version that held it before.

The version comes from the ledger's history of the moves Signoff applied to the target (the
newest one whose version is not the target's holder now), or is named by the caller. The
request runs like any other, under the rule's `rollback:` rule when the policy gives one (else
the target's own rule), and is marked as a rollback on the record and in its events.
"""

from __future__ import annotations

from api.deps import Services
from api.services.errors import Invalid
from api.services.mlflow import mlflow_failure
from api.services.requests import open_request
from policies import Principal, is_alias
from workflows.client import Transitions
from workflows.domain import RequestSnapshot, RollbackMark
from workflows.mlflow_client import MlflowError, ResourceNotFound


async def holder_of(services: Services, name: str, target: str) -> str | None:
    """The version at the target in MLflow now (the newest one, for a stage), or None."""
    registry = services.registry
    try:
        if is_alias(target):
            return (await registry.get_model_version_by_alias(name, target)).version
        latest = await registry.get_latest_versions(name, [target])
    except ResourceNotFound:
        return None
    except MlflowError as err:
        raise mlflow_failure(err, name=name, version="?", refused="the model name") from err
    return max((v.version for v in latest), key=int, default=None)


async def open_rollback(
    services: Services,
    transitions: Transitions,
    *,
    principal: Principal,
    name: str,
    target: str,
    version: str | None,
    comment: str | None,
) -> RequestSnapshot:
    """Open the rollback request of `target` of `name` (to `version`, or the one before)."""
    holder = await holder_of(services, name, target)
    history = await services.ledger.requests.applied_moves(name, target)
    if version is None:
        previous = next((entry for entry in history if entry.version != holder), None)
        if previous is None:
            raise Invalid(
                f"Signoff has no record of another version of {name!r} at {target} before "
                f"{'version ' + holder if holder else 'now'}; name the version to roll back to "
                "(`version`)"
            )
        version = previous.version
    elif version == holder:
        raise Invalid(f"version {version} of {name!r} is already at {target}")
    before = next((entry for entry in history if entry.version == version), None)
    mark = RollbackMark(
        replaces_version=holder,
        previous_request=(before.request_id or before.id) if before else None,
    )
    return await open_request(
        services,
        transitions,
        principal=principal,
        name=name,
        version=version,
        stage=target,
        comment=comment,
        rollback=mark,
    )
