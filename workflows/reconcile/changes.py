"""What an out-of-band change is, and how it is logged and announced: pure functions, shared
by the reconciler and the API's MLflow webhook (`/hooks/mlflow`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workflows.domain import AuditEntry, AuditType
from workflows.webhooks.events import WebhookEvent, transition_events

if TYPE_CHECKING:
    from workflows.ledger import RegistryMark
    from workflows.mlflow_client import ModelVersion

OUT_OF_BAND_USER = "mlflow"
"""Who an out-of-band change is recorded as made by: MLflow does not say who."""


@dataclass(frozen=True)
class Change:
    """One difference between what Signoff expects and what MLflow shows."""

    what: str
    from_stage: str | None = None
    to_stage: str | None = None
    is_stage: bool = False


def differences(mark: RegistryMark | None, actual: ModelVersion) -> list[Change]:
    """What MLflow shows for the version that Signoff does not expect. A version never seen
    is expected as MLflow creates one: in stage None, without aliases."""
    expected_stage = mark.stage if mark else "None"
    expected_aliases = set(mark.aliases or []) if mark else set()
    changes: list[Change] = []
    if actual.current_stage != expected_stage:
        changes.append(
            Change(
                f"stage changed from {expected_stage} to {actual.current_stage}",
                expected_stage,
                actual.current_stage,
                is_stage=True,
            )
        )
    for alias in sorted(set(actual.aliases) - expected_aliases):
        changes.append(Change(f"alias @{alias} set on this version", to_stage=f"@{alias}"))
    for alias in sorted(expected_aliases - set(actual.aliases)):
        changes.append(Change(f"alias @{alias} removed from this version", from_stage=f"@{alias}"))
    return changes


def out_of_band(
    change_id: str, model: str, version: str, change: Change, *, seen_by: str, now_ms: int
) -> tuple[AuditEntry, list[WebhookEvent]]:
    """The log line and the webhook events of one out-of-band change. `change_id` must be
    stable for the change (retries record it once)."""
    entry = AuditEntry(
        id=f"oob-{change_id}",
        request_id="",
        seq=0,
        model=model,
        version=version,
        activity_type=AuditType.SYSTEM_TRANSITION,
        user_id=OUT_OF_BAND_USER,
        from_stage=change.from_stage,
        to_stage=change.to_stage,
        system_comment=(
            f"Out-of-band change, made directly in MLflow and not through Signoff: "
            f"{change.what} (seen by {seen_by})"
        ),
        creation_timestamp=now_ms,
    )
    fields = {
        "model_name": model,
        "version": version,
        "from_stage": change.from_stage,
        "to_stage": change.to_stage,
        "text": entry.system_comment,
        "event_timestamp": now_ms,
    }
    events = [
        WebhookEvent(
            event_id=f"{entry.id}/OUT_OF_BAND_CHANGE", event="OUT_OF_BAND_CHANGE", **fields
        )
    ]
    if change.is_stage and change.to_stage:
        events += transition_events(
            entry.id,
            model=model,
            version=version,
            to_stage=change.to_stage,
            from_stage=change.from_stage,
            text=entry.system_comment,
            event_timestamp=now_ms,
        )
    return entry, events


def stable_id(*parts: object) -> str:
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()[:24]
