"""TransitionWorkflow on real parts for the workflow suites: the production worker in process on
Temporal's time-skipping server, with the real activities over a real `mlflow server` and a
SQLite ledger; requests made the way the API makes them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from policies import Policy, Principal, load_policy_text, policy_hash, rule_for
from tests.support.mlflow import SeededVersion
from workflows.activities import SignoffActivities
from workflows.client import (
    DecisionRefused,
    NoOpenRequest,
    Transitions,
    workflow_id_for,
)
from workflows.domain import AuditEntry, AuditType, RequestSnapshot
from workflows.ledger import Ledger
from workflows.messages import Decision, TransitionInput
from workflows.mlflow_client import MlflowRegistry
from workflows.settings import WorkerSettings
from workflows.transition import TransitionWorkflow
from workflows.worker import build_worker

MakeVersion = Callable[..., SeededVersion]


# People, as the API would have authenticated them.
ALICE = Principal(sub="alice", roles=["data-scientist"])  # the requester in most tests


BOB = Principal(sub="bob", roles=["ml-lead"])


CAROL = Principal(sub="carol", roles=["risk-officer"])


ROLES = """
roles:
  data-scientist: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  risk-officer: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  auditor: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  staging-lead: {"*": CAN_MANAGE_STAGING_VERSIONS}
  platform-admin: {"*": CAN_MANAGE}
"""


def policy(transitions_yaml: str) -> Policy:
    """The roles above plus the `transitions:` section a test states."""
    return load_policy_text(ROLES + transitions_yaml, "test-policy.yaml")


TEST_CALLBACK_KEY = "signoff-test-callback-key-" + "k" * 32
"""The workers' SIGNOFF_CALLBACK_KEY: CI checks derive their jobs' callback tokens with it."""


@dataclass
class RunningWorker:
    env: WorkflowEnvironment
    task_queue: str
    ledger: Ledger
    activities: SignoffActivities


@contextlib.asynccontextmanager
async def running_worker(
    env: WorkflowEnvironment, mlflow_url: str, db_path: Path, **settings_overrides: Any
) -> AsyncIterator[RunningWorker]:
    """The production worker (`build_worker`) on a fresh task queue, with the real activities
    over `mlflow_url`, a migrated SQLite ledger at `db_path`, and settings as a deployment
    would have them (`settings_overrides`: e.g. the CI systems' URLs and credentials)."""
    ledger = Ledger(f"sqlite:///{db_path}")
    await ledger.migrate()
    task_queue = f"signoff-test-{uuid.uuid4().hex[:12]}"
    settings = WorkerSettings(
        **{
            "task_queue": task_queue,
            "database_url": ledger.url,
            "mlflow_tracking_uri": mlflow_url,
            "callback_key": SecretStr(TEST_CALLBACK_KEY),
        }
        | settings_overrides
    )
    try:
        async with MlflowRegistry(mlflow_url) as registry:
            activities = SignoffActivities(registry, ledger)
            async with build_worker(env.client, settings, activities):
                yield RunningWorker(env, task_queue, ledger, activities)
    finally:
        ledger.dispose()


async def eventually(
    probe: Callable[[], Awaitable[bool]], what: str, *, timeout: float = 30.0
) -> None:
    """Wait (in real time, without skipping workflow time) until `probe()` is true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


async def skip_time(env: WorkflowEnvironment, delta: timedelta) -> None:
    """`env.sleep`, failing clearly instead of sleeping in real time when the time-skipping
    server's clock is held: an activity still in flight when its workflow closed holds it for
    good (temporalio/sdk-java#1138), so no test may leave one behind on a shared server."""
    try:
        await asyncio.wait_for(env.sleep(delta), timeout=20)
    except TimeoutError:
        raise AssertionError(
            f"the time-skipping server did not skip {delta}: its clock is held, most likely by "
            "an activity left in flight when an earlier test's workflow closed"
        ) from None


@dataclass
class Harness:
    """Requests as the API makes them, and read-backs of MLflow and the ledger."""

    env: WorkflowEnvironment
    transitions: Transitions
    ledger: Ledger
    mlflow: MlflowRegistry
    opened: list[TransitionInput] = field(default_factory=list)
    run_ids: dict[str, str | None] = field(default_factory=dict)

    async def request(
        self,
        policy: Policy,
        version: SeededVersion,
        target: str,
        requester: Principal = ALICE,
        comment: str | None = None,
    ) -> TransitionInput:
        """What the API builds: the rule for the target pinned, the current stage read from
        MLflow, and the creation time on the (skipped) clock the workflow runs on."""
        rule = rule_for(policy, version.name, target)
        assert rule is not None, f"the test policy has no rule for {target}"
        current = await self.mlflow.get_model_version(version.name, version.version)
        now = await self.env.get_current_time()
        return TransitionInput(
            request_id=uuid.uuid4().hex,
            model=version.name,
            version=version.version,
            target=target,
            from_stage=current.current_stage,
            requester=requester,
            comment=comment,
            policy=policy,
            rule=rule,
            policy_hash=policy_hash(policy),
            created_ms=int(now.timestamp() * 1000),
        )

    async def start(self, inp: TransitionInput) -> RequestSnapshot:
        opened = await self.transitions.start(inp)
        self.opened.append(inp)
        self.run_ids[inp.request_id] = opened.run_id
        return opened

    async def open_request(
        self,
        policy: Policy,
        version: SeededVersion,
        target: str,
        requester: Principal = ALICE,
        comment: str | None = None,
    ) -> TransitionInput:
        inp = await self.request(policy, version, target, requester, comment)
        await self.start(inp)
        return inp

    def handle(self, inp: TransitionInput) -> WorkflowHandle[TransitionWorkflow, RequestSnapshot]:
        """The run of this very request (a later request for the same target has another)."""
        return self.transitions.client.get_workflow_handle_for(
            TransitionWorkflow.run,
            workflow_id_for(inp.model, inp.version, inp.target),
            run_id=self.run_ids[inp.request_id],
        )

    async def decide(
        self, action: str, inp: TransitionInput, principal: Principal, comment: str | None = None
    ) -> AuditEntry:
        """The decision, as the API sends it; returns the audit entry it made."""
        result = await self.transitions.decide(
            action,
            inp.model,
            inp.version,
            inp.target,
            Decision(principal=principal, comment=comment),
        )
        return result.entry

    async def snapshot(self, inp: TransitionInput) -> RequestSnapshot:
        return await self.transitions.snapshot(inp.model, inp.version, inp.target)

    async def wait_for(
        self, inp: TransitionInput, condition: Callable[[RequestSnapshot], bool], what: str
    ) -> RequestSnapshot:
        """Query the live request until `condition` holds (no workflow time passes)."""
        latest: list[RequestSnapshot] = []

        async def probe() -> bool:
            latest[:] = [await self.snapshot(inp)]
            return condition(latest[0])

        await eventually(probe, what)
        return latest[0]

    async def outcome(self, inp: TransitionInput) -> RequestSnapshot:
        """The request once decided and its workflow finished (every ledger write done)."""
        await self.wait_for(inp, lambda s: not s.state.is_open, "the request to be decided")
        return await self.handle(inp).result()

    async def stage(self, version: SeededVersion) -> str:
        return (await self.mlflow.get_model_version(version.name, version.version)).current_stage

    async def aliases(self, version: SeededVersion) -> list[str]:
        return (await self.mlflow.get_model_version(version.name, version.version)).aliases

    async def trail(self, version: SeededVersion) -> list[tuple[AuditType, str]]:
        return [
            (entry.activity_type, entry.user_id)
            for entry in await self.ledger.requests.audit_trail(version.name, version.version)
        ]

    async def close(self) -> None:
        """Close what a test left open through the workflow itself (the requester cancels) and
        wait for it to finish. Terminating instead could leave an activity in flight, which
        holds the time-skipping server's clock for later tests (temporalio/sdk-java#1138)."""
        for inp in reversed(self.opened):  # the newest run of a workflow id first
            handle = self.handle(inp)
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                continue
            with contextlib.suppress(DecisionRefused, NoOpenRequest):
                await self.decide("cancel", inp, inp.requester, "test finished")
            if (await handle.query(TransitionWorkflow.snapshot)).state.is_open:
                continue  # stuck applying: nothing a test can do about it
            await asyncio.wait_for(handle.result(), timeout=30)


def make_harness(worker: RunningWorker, reader: MlflowRegistry) -> Harness:
    return Harness(
        env=worker.env,
        transitions=Transitions(worker.env.client, worker.task_queue),
        ledger=worker.ledger,
        mlflow=reader,
    )


@contextlib.asynccontextmanager
async def harness_on_new_worker(
    env: WorkflowEnvironment, mlflow_url: str, db_path: Path, **settings_overrides: Any
) -> AsyncIterator[Harness]:
    """`running_worker` and a Harness on it, for suites that need their own configuration."""
    async with (
        running_worker(env, mlflow_url, db_path, **settings_overrides) as worker,
        MlflowRegistry(mlflow_url) as reader,
    ):
        harness = make_harness(worker, reader)
        try:
            yield harness
        finally:
            await harness.close()
