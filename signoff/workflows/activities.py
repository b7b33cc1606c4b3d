"""Activities: every piece of I/O a TransitionWorkflow does. Each one is safe to run twice."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from signoff.policies import MetricCheck, TagCheck, is_alias
from signoff.workflows.checks import evaluate_metric, evaluate_tag
from signoff.workflows.ledger import Ledger
from signoff.workflows.mlflow_client import InvalidRequest, MlflowRegistry, ResourceNotFound
from signoff.workflows.types import (
    ApplyInput,
    ApplyOutcome,
    CheckInput,
    CheckResult,
    CheckStatus,
    LedgerUpdate,
)

STALE_REQUEST = "StaleRequest"
"""Error type of an apply that must not be retried: the version is gone or moved meanwhile."""


MLFLOW_REFUSED = "MlflowRefused"


class SignoffActivities:
    def __init__(self, registry: MlflowRegistry, ledger: Ledger) -> None:
        self.registry = registry
        self.ledger = ledger

    @activity.defn
    async def run_check(self, inp: CheckInput) -> CheckResult:
        check = inp.check
        try:
            version = await self.registry.get_model_version(inp.model, inp.version)
            if isinstance(check, TagCheck):
                return evaluate_tag(check, version.tags)
            if isinstance(check, MetricCheck):
                if not version.run_id:
                    return CheckResult(
                        check_id=check.check_id,
                        type=check.type,
                        status=CheckStatus.FAILED,
                        summary="the version has no run, so it has no metrics",
                    )
                return evaluate_metric(check, await self.registry.get_run_metrics(version.run_id))
        except ResourceNotFound as err:
            return CheckResult(
                check_id=check.check_id,
                type=check.type,
                status=CheckStatus.FAILED,
                summary=f"not found in MLflow: {err.message}",
            )
        raise ApplicationError(f"unknown check type {check.type!r}", non_retryable=True)

    @activity.defn
    async def apply_transition(self, inp: ApplyInput) -> ApplyOutcome:
        """Re-read the version, then move it. A retry that finds the move done reports it
        instead of moving again, so MLflow sees the transition once."""
        try:
            version = await self.registry.get_model_version(inp.model, inp.version)
        except ResourceNotFound as err:
            raise ApplicationError(
                f"version {inp.version} of {inp.model} no longer exists in MLflow",
                type=STALE_REQUEST,
                non_retryable=True,
            ) from err
        if is_alias(inp.target):
            alias = inp.target.removeprefix("@")
            if alias in version.aliases:
                return ApplyOutcome(
                    from_stage=inp.from_stage, to_stage=inp.target, already_applied=True
                )
            await self.registry.set_alias(inp.model, alias, inp.version)
            return ApplyOutcome(from_stage=inp.from_stage, to_stage=inp.target)
        if version.current_stage == inp.target:
            return ApplyOutcome(
                from_stage=inp.from_stage, to_stage=inp.target, already_applied=True
            )
        if version.current_stage != inp.from_stage:
            raise ApplicationError(
                f"version {inp.version} of {inp.model} moved from {inp.from_stage} to "
                f"{version.current_stage} outside Signoff since the request; request again",
                type=STALE_REQUEST,
                non_retryable=True,
            )
        try:
            await self.registry.transition_stage(
                inp.model,
                inp.version,
                inp.target,
                archive_existing_versions=inp.archive_existing_versions,
            )
        except InvalidRequest as err:
            raise ApplicationError(
                f"MLflow refused the transition: {err.message}",
                type=MLFLOW_REFUSED,
                non_retryable=True,
            ) from err
        return ApplyOutcome(from_stage=inp.from_stage, to_stage=inp.target)

    @activity.defn
    async def record_ledger(self, update: LedgerUpdate) -> None:
        await asyncio.to_thread(self.ledger.record, update)
