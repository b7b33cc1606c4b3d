"""The one way Signoff changes a version in MLflow: a stage transition or an alias, made
between the registry marks (see `ledger.marks.set_pending`), so that MLflow's webhook about the
change, or a reconciler pass, recognises it as Signoff's and not as a bypass. Used by the
governed path (`apply_transition`) and by break-glass."""

from __future__ import annotations

from policies import is_alias
from workflows.domain import now_ms
from workflows.ledger import Ledger
from workflows.mlflow_client import InvalidRequest, MlflowRegistry, ModelVersion


class MoveInProgress(Exception):
    """Another move of this version is being applied right now (an exclusive move only)."""


class AlreadyMoved(Exception):
    """Re-read under the mark, the version is no longer where the caller saw it."""

    def __init__(self, current_stage: str) -> None:
        super().__init__(current_stage)
        self.current_stage = current_stage


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
    exclusive: bool = False,
) -> ModelVersion | None:
    """Move `version` to `target` (a stage, or an alias `@name`); MLflow's answer to a stage
    transition is returned (an alias change answers nothing). MLflow's errors propagate;
    on a refusal (InvalidRequest) the pending mark is withdrawn, since nothing will change.
    Other errors leave it for the retry that may still make the move (not on an exclusive
    move, which is never retried).

    `exclusive` (break-glass, where two people may act at once): raise MoveInProgress while
    another move of the version holds the mark, and AlreadyMoved if the version, re-read once
    the mark is held, is no longer in `current_stage`; so of two such calls at most one moves."""
    held = await ledger.marks.set_pending(
        model=model,
        version=version,
        request_id=change_id,
        target=target,
        stage=current_stage,
        now_ms=now_ms(),
        exclusive=exclusive,
    )
    if not held:
        raise MoveInProgress(f"another transition of version {version} of {model} is in flight")
    if exclusive:
        now = await registry.get_model_version(model, version)
        if now.current_stage != current_stage:
            await ledger.marks.clear_pending(model=model, version=version, request_id=change_id)
            raise AlreadyMoved(now.current_stage)
    moved = None
    try:
        if is_alias(target):
            await registry.set_alias(model, target.removeprefix("@"), version)
        else:
            moved = await registry.transition_stage(
                model, version, target, archive_existing_versions=archive_existing_versions
            )
    except Exception as err:
        # A refusal changes nothing; an exclusive move is never retried, so it lets go too
        # (if MLflow moved the version after all, the reconciler will say so).
        if isinstance(err, InvalidRequest) or exclusive:
            await ledger.marks.clear_pending(model=model, version=version, request_id=change_id)
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
    await ledger.marks.set_applied(
        model=model,
        version=version,
        target=target,
        archive_others=archive_existing_versions,
        request_id=change_id,
        now_ms=now_ms(),
    )
