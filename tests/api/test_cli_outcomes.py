"""What `signoff approve`, `reject` and `cancel` print, from the API's answer: where the
request stands, in words (the answers themselves are tested end to end in test_cli.py and
tests/faults)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from api.cli.transitions import outcome_line


def answer(state: str, approvals: int = 1, quorum: int = 2, reason: str | None = None) -> dict:
    request: dict[str, Any] = {"state": state, "approvals": approvals, "quorum": quorum}
    return {"activity": {}, "request": request | {"reason": reason}}


@pytest.mark.parametrize(
    ("done", "target", "given", "printed"),
    [
        ("approved", "Production", answer("PENDING"), "approved (1 of 2; waiting for one more)"),
        (
            "approved",
            "Production",
            answer("PENDING", 1, 3),
            "approved (1 of 3; waiting for two more)",
        ),
        (
            "approved",
            "Staging",
            answer("PENDING", 1, 1),
            "approved (1 of 1; waiting for the checks to pass)",
        ),
        (
            "approved",
            "Production",
            answer("APPLIED", 2, 2),
            "approved; applied: fraud-detector v1 is now in Production",
        ),
        (
            "approved",
            "@champion",
            answer("APPLIED", 1, 1),
            "approved; applied: fraud-detector v1 is now at @champion",
        ),
        (
            "approved",
            "Production",
            answer("APPLYING", 2, 2, "MLflow is unreachable, Signoff keeps retrying"),
            "approved; MLflow is unreachable, Signoff keeps retrying (request APPLYING)",
        ),
        (
            "rejected",
            "Production",
            answer("REJECTED"),
            "rejected: fraud-detector v1 will not move to Production",
        ),
    ],
)
def test_a_decision_is_printed_as_where_the_request_stands(
    done: str, target: str, given: dict, printed: str
) -> None:
    assert outcome_line(done, "fraud-detector", "1", target, given) == printed


def test_a_scheduled_request_is_printed_with_when_it_applies_on_this_machines_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        at = int(datetime(2099, 12, 31, 15, 0, tzinfo=UTC).timestamp() * 1000)
        reason = "approved inside the freeze 'year-end' (2099-12-20 to 2099-12-31); applies at …"
        given = {"request": {"state": "SCHEDULED", "reason": reason, "apply_at": at}}
        line = outcome_line("approved", "fraud-detector", "1", "Production", given)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert re.fullmatch(
        r"approved; waiting for its change window: applies at Fri 2100-01-01 00:00 JST "
        rf"\(in \d+ days\) \(request SCHEDULED: {re.escape(reason)}\)",
        line,
    ), line
