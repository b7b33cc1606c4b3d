"""Change windows and freezes on Temporal's time-skipping server: a request approved outside its
rule's window is SCHEDULED, waits on a timer, re-checks and applies when the window opens; it
can be cancelled while it waits. Real worker and activities, real `mlflow server`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import (
    BOB,
    Harness,
    MakeVersion,
    policy,
    skip_time,
)
from tests.support.mlflow import MlflowServer
from workflows.client import DecisionRefused
from workflows.domain import AuditType, RequestState
from workflows.messages import Decision, DecisionResult, TransitionInput

ZURICH = ZoneInfo("Europe/Zurich")

MON_THU = policy(
    """
transitions:
  - to: Production
    checks:
      - {type: tag, key: validated_by}
    approvals: {quorum: 1, roles: [ml-lead]}
    expires_after: 30d
    windows: [{days: [mon-thu], from: "09:00", to: "16:00", tz: Europe/Zurich}]
"""
)


async def now_of(env: WorkflowEnvironment) -> datetime:
    return (await env.get_current_time()).astimezone(UTC)


async def skip_to(env: WorkflowEnvironment, when: datetime) -> None:
    now = await now_of(env)
    assert when > now, f"{when} is already past ({now})"
    await skip_time(env, when - now)


def next_friday_evening(after: datetime) -> datetime:
    local = after.astimezone(ZURICH) + timedelta(days=1)
    days = (4 - local.weekday()) % 7
    friday = (local + timedelta(days=days)).date()
    return datetime(friday.year, friday.month, friday.day, 18, 30, tzinfo=ZURICH)


async def approve(harness: Harness, inp: TransitionInput) -> DecisionResult:
    return await harness.transitions.decide(
        "approve", inp.model, inp.version, inp.target, Decision(principal=BOB)
    )


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


async def test_approved_friday_evening_applies_monday_at_nine(
    harness: Harness, make_version: MakeVersion
) -> None:
    env = harness.env
    friday = next_friday_evening(await now_of(env))
    monday_nine = datetime.combine(
        (friday + timedelta(days=3)).date(), datetime.min.time().replace(hour=9), tzinfo=ZURICH
    )
    await skip_to(env, friday)
    version = make_version(tags={"validated_by": "qa"})
    inp = await harness.open_request(MON_THU, version, "Production")
    await harness.wait_for(inp, lambda s: s.checks[0].finished_ms is not None, "the check")

    result = await approve(harness, inp)

    assert result.state is RequestState.SCHEDULED
    scheduled = await harness.snapshot(inp)
    assert scheduled.apply_at_ms == ms(monday_nine)
    assert scheduled.reason == (
        "approved outside the change window (mon,tue,wed,thu 09:00-16:00 Europe/Zurich); "
        f"applies at Mon {monday_nine:%Y-%m-%d} 09:00 Europe/Zurich"
    )
    assert await harness.stage(version) == "None"
    row = await harness.ledger.requests.get(inp.request_id)
    assert row is not None and row.state is RequestState.SCHEDULED
    with pytest.raises(DecisionRefused, match="approved and scheduled"):
        await harness.decide("reject", inp, BOB)

    await skip_to(env, monday_nine - timedelta(minutes=1))
    assert (await harness.snapshot(inp)).state is RequestState.SCHEDULED
    assert await harness.stage(version) == "None"
    await skip_time(env, timedelta(minutes=2))

    final = await harness.outcome(inp)
    assert final.state is RequestState.APPLIED
    assert final.apply_at_ms is None
    assert await harness.stage(version) == "Production"
    applied = (await harness.ledger.requests.audit_trail(version.name, version.version))[-1]
    assert applied.activity_type is AuditType.APPLIED_TRANSITION
    assert applied.creation_timestamp >= ms(monday_nine)
    assert "applied when the change window opened" in (applied.system_comment or "")
    # The tag check ran again when the window opened.
    assert final.checks[0].finished_ms is not None
    assert final.checks[0].finished_ms >= ms(monday_nine)


def freeze_policy(start: datetime, days: int) -> str:
    end = start + timedelta(days=days)
    return f"""
transitions:
  - to: Staging
    approvals: {{quorum: 1, roles: [ml-lead]}}
    expires_after: 30d
    freezes: [{{from: {start.date()}, to: {end.date()}, reason: quarter close}}]
"""


async def test_approved_inside_a_freeze_applies_after_it(
    harness: Harness, make_version: MakeVersion
) -> None:
    env = harness.env
    start = await now_of(env) + timedelta(days=1)
    rules = policy(freeze_policy(start, 1))
    freeze_end = datetime.combine(
        (start + timedelta(days=2)).date(), datetime.min.time(), tzinfo=UTC
    )
    await skip_time(env, timedelta(days=1, hours=1))
    version = make_version()
    inp = await harness.open_request(rules, version, "Staging")

    result = await approve(harness, inp)

    assert result.state is RequestState.SCHEDULED
    assert result.reason is not None and result.reason.startswith(
        f"approved inside the freeze 'quarter close' ({start.date()} to "
    )
    assert (await harness.snapshot(inp)).apply_at_ms == ms(freeze_end)
    await skip_to(env, freeze_end + timedelta(minutes=1))
    final = await harness.outcome(inp)
    assert final.state is RequestState.APPLIED
    assert await harness.stage(version) == "Staging"


async def test_cancel_while_scheduled_leaves_mlflow_alone(
    harness: Harness, make_version: MakeVersion
) -> None:
    env = harness.env
    start = await now_of(env) + timedelta(days=1)
    rules = policy(freeze_policy(start, 2))
    await skip_time(env, timedelta(days=1, hours=1))
    version = make_version()
    inp = await harness.open_request(rules, version, "Staging")
    assert (await approve(harness, inp)).state is RequestState.SCHEDULED

    entry = await harness.decide("cancel", inp, inp.requester, "not this week")

    assert entry.activity_type is AuditType.CANCELLED_REQUEST
    final = await harness.outcome(inp)
    assert (final.state, final.reason) == (RequestState.CANCELLED, "cancelled by alice")
    await skip_time(env, timedelta(days=3))
    assert await harness.stage(version) == "None"


async def test_a_check_that_fails_when_the_window_opens_stops_the_move(
    harness: Harness, make_version: MakeVersion, mlflow_server: MlflowServer
) -> None:
    env = harness.env
    friday = next_friday_evening(await now_of(env))
    await skip_to(env, friday)
    version = make_version(tags={"validated_by": "qa"})
    inp = await harness.open_request(MON_THU, version, "Production")
    await harness.wait_for(inp, lambda s: s.checks[0].finished_ms is not None, "the check")
    assert (await approve(harness, inp)).state is RequestState.SCHEDULED

    deleted = httpx.request(
        "DELETE",
        f"{mlflow_server.url}/api/2.0/mlflow/model-versions/delete-tag",
        json={"name": version.name, "version": version.version, "key": "validated_by"},
        timeout=30,
    )
    assert deleted.status_code == 200, deleted.text
    await skip_time(env, timedelta(days=3))

    final = await harness.outcome(inp)
    assert final.state is RequestState.FAILED_VALIDATION
    assert final.reason is not None
    assert final.reason.startswith("re-checked as the change window opened: tag:validated_by")
    assert await harness.stage(version) == "None"
