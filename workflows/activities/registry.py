"""The `apply_transition` activity: re-read the version in MLflow, then move it once."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from policies import is_alias
from workflows.errors import MLFLOW_REFUSED, STALE_REQUEST
from workflows.ledger import Ledger
from workflows.messages import ApplyInput, ApplyOutcome
from workflows.mlflow_client import InvalidRequest, MlflowRegistry, ResourceNotFound
from workflows.moves import expect_moved, move_version


class RegistryActivities:
    def __init__(self, registry: MlflowRegistry, ledger: Ledger) -> None:
        self.registry = registry
        self.ledger = ledger

    @activity.defn
    async def apply_transition(self, inp: ApplyInput) -> ApplyOutcome:
        """Re-read the version, then move it. A retry that finds the move done reports it
        instead of moving again, so MLflow sees the transition once. The registry marks are
        set pending before MLflow is called, so MLflow's webhook about this very change (which
        may arrive before this activity returns) is not taken for a bypass."""
        try:
            version = await self.registry.get_model_version(inp.model, inp.version)
        except ResourceNotFound as err:
            raise ApplicationError(
                f"version {inp.version} of {inp.model} no longer exists in MLflow",
                type=STALE_REQUEST,
                non_retryable=True,
            ) from err
        already = (
            inp.target.removeprefix("@") in version.aliases
            if is_alias(inp.target)
            else version.current_stage == inp.target
        )
        if not already:
            if not is_alias(inp.target) and version.current_stage != inp.from_stage:
                raise ApplicationError(
                    f"version {inp.version} of {inp.model} moved from {inp.from_stage} to "
                    f"{version.current_stage} outside Signoff since the request; request again",
                    type=STALE_REQUEST,
                    non_retryable=True,
                )
            try:
                await move_version(
                    self.registry,
                    self.ledger,
                    model=inp.model,
                    version=inp.version,
                    current_stage=version.current_stage,
                    target=inp.target,
                    archive_existing_versions=inp.archive_existing_versions,
                    change_id=inp.request_id,
                )
            except InvalidRequest as err:
                raise ApplicationError(
                    f"MLflow refused the transition: {err.message}",
                    type=MLFLOW_REFUSED,
                    non_retryable=True,
                ) from err
        else:
            # Moved by an earlier attempt whose answer was lost: Signoff made this change.
            await expect_moved(
                self.ledger,
                inp.model,
                inp.version,
                inp.target,
                inp.archive_existing_versions,
                inp.request_id,
            )
        return ApplyOutcome(from_stage=inp.from_stage, to_stage=inp.target, already_applied=already)
