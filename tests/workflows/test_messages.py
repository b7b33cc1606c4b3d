"""Temporal's messages read what older workers wrote: a field renamed in `workflows/messages.py`
must still accept the payloads already in histories and task queues."""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter

from workflows.domain import AuditEntry, AuditType, RequestSnapshot, RequestState
from workflows.messages import LedgerUpdate

SNAPSHOT = RequestSnapshot(
    id="r1",
    workflow_id="transition/m/1/Staging",
    model="m",
    version="1",
    target="Staging",
    requester="lee",
    state=RequestState.PENDING,
    policy_hash="0" * 64,
    created_ms=1,
    updated_ms=1,
)
ENTRY = AuditEntry(
    id="r1-1",
    request_id="r1",
    seq=1,
    model="m",
    version="1",
    activity_type=AuditType.REQUESTED_TRANSITION,
    user_id="lee",
    creation_timestamp=1,
)


def test_a_ledger_update_written_with_activities_keeps_its_entries() -> None:
    """Before the audit entries were called `entries`, `record_ledger`'s input named them
    `activities`; a task scheduled by such a worker must not lose them."""
    old = {"snapshot": SNAPSHOT.model_dump(mode="json"), "activities": [ENTRY.model_dump()]}
    assert LedgerUpdate.model_validate(old).entries == [ENTRY]


def test_a_ledger_update_round_trips_through_the_data_converter() -> None:
    update = LedgerUpdate(snapshot=SNAPSHOT, entries=[ENTRY])
    converter = pydantic_data_converter.payload_converter
    [payload] = converter.to_payloads([update])
    [back] = converter.from_payloads([payload], [LedgerUpdate])
    assert back == update
