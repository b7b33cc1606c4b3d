"""The one way Signoff changes a version in MLflow: a stage transition or an alias, made
between the registry marks (see `Ledger.mark_pending`), so that MLflow's webhook about the
change, or a reconciler pass, recognises it as Signoff's and not as a bypass. Used by the
governed path (`apply_transition`) and by break-glass."""

from __future__ import annotations

import asyncio
import time

from signoff.policies import is_alias
from signoff.workflows.ledger import Ledger
from signoff.workflows.mlflow_client import InvalidRequest, MlflowRegistry, ModelVersion


async def move_version(
    registry: MlflowRegistry,
    ledger: Ledger,
    *,
    model: str,
    version: str,
    current_stage: str,
    target: str,
    archive_existing_versions: bool,
    change_id: str,
) -> ModelVersion | None:
    """Move `version` to `target` (a stage, or an alias `@name`); MLflow's answer to a stage
    transition is returned (an alias change answers nothing). MLflow's errors propagate;
    on a refusal (InvalidRequest) the pending mark is withdrawn, since nothing will change.
    Other errors leave it: a retry may still make the move."""
    await asyncio.to_thread(
        ledger.mark_pending,
        model,
        version,
        request_id=change_id,
        target=target,
        stage=current_stage,
        now_ms=_now_ms(),
    )
    moved = None
    try:
        if is_alias(target):
            await registry.set_alias(model, target.removeprefix("@"), version)
        else:
            moved = await registry.transition_stage(
                model, version, target, archive_existing_versions=archive_existing_versions
            )
    except InvalidRequest:
        await asyncio.to_thread(ledger.clear_pending, model, version, change_id)
        raise
    await expect_moved(ledger, model, version, target, archive_existing_versions, change_id)
    return moved


async def expect_moved(
    ledger: Ledger,
    model: str,
    version: str,
    target: str,
    archive_existing_versions: bool,
    change_id: str,
) -> None:
    """Record that Signoff moved the version (now, or in an earlier attempt)."""
    await asyncio.to_thread(
        ledger.mark_applied,
        model,
        version,
        target=target,
        archive_others=archive_existing_versions,
        request_id=change_id,
        now_ms=_now_ms(),
    )


def _now_ms() -> int:
    return int(time.time() * 1000)
