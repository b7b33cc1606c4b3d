"""Replay TransitionWorkflow histories against the current workflow code.

A change to `workflows/transition.py` that would make running requests fail when
their workers pick up the new code (a command added, removed or reordered) fails here. Two
sources of histories:

- requests run by this module on the dev server (applied, rejected, expired, failed
  validation, failed apply, alias, auto-approved), replayed right after they finish;
- the JSON files committed under `tests/workflows/histories/`, recorded from an earlier
  version of the code. These are what catch a change that is deterministic with itself but
  not with runs already in flight. Refresh them only on purpose, after guarding the change
  with `workflow.patched(...)`:

      SIGNOFF_RECORD_HISTORIES=1 pytest tests/workflows/test_replay.py
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from tests.support.harness import BOB, CAROL, Harness, make_harness, policy, running_worker
from tests.support.mlflow import MlflowServer, seed_version
from tests.support.replay import HISTORIES, RECORD, replayer
from tests.support.temporal import TemporalServer
from workflows.domain import RequestState
from workflows.messages import TransitionInput
from workflows.mlflow_client import MlflowRegistry

RECORDED = ("applied_with_checks", "expired")
"""The scenarios whose histories are committed as JSON."""

RULES = policy(
    """
transitions:
  - to: Production
    checks:
      - {type: metric, name: auc, min: 0.9}
      - {type: tag, key: validated_by}
    approvals: {quorum: 2, roles: [ml-lead, risk-officer]}
    archive_existing_versions: true
    expires_after: 2h
  - to: Archived
    checks:
      - {type: metric, name: auc, min: 0.9}  # one check: none left in flight when it fails
    approvals: {quorum: 1, roles: [ml-lead]}
  - to: Staging
    approvals: {quorum: 0}
  - to: "@champion"
    approvals: {quorum: 1, roles: [risk-officer]}
  - to: "@short-lived"
    approvals: {quorum: 1, roles: [risk-officer]}
    expires_after: 2s
"""
)

# Its Temporal workers keep a ledger of their own (not the `--ledger` backend).
pytestmark = pytest.mark.own_ledger


async def run_scenarios(harness: Harness, mlflow: httpx.Client) -> dict[str, WorkflowHistory]:
    """Drive one request down each path of the workflow; return their finished histories."""
    good = {"metrics": {"auc": 0.95}, "tags": {"validated_by": "qa-team"}}
    finished: dict[str, tuple[TransitionInput, RequestState]] = {}

    incumbent = seed_version(mlflow, **good)
    await harness.mlflow.transition_stage(
        incumbent.name, incumbent.version, "Production", archive_existing_versions=False
    )
    version = seed_version(mlflow, incumbent.name, **good)
    inp = await harness.open_request(RULES, version, "Production", comment="better recall")
    await harness.wait_for(
        inp, lambda s: all(c.status.value == "PASSED" for c in s.checks), "the checks to pass"
    )
    await harness.decide("approve", inp, BOB)
    await harness.decide("approve", inp, CAROL)
    finished["applied_with_checks"] = (inp, RequestState.APPLIED)

    inp = await harness.open_request(RULES, seed_version(mlflow, **good), "Production")
    await harness.wait_for(inp, lambda s: s.checks[-1].finished_ms is not None, "the checks")
    await harness.decide("approve", inp, BOB)
    await harness.decide("reject", inp, CAROL, "not this quarter")
    finished["rejected"] = (inp, RequestState.REJECTED)

    inp = await harness.open_request(RULES, seed_version(mlflow, **good), "@short-lived")
    await harness.outcome(inp)  # expires after 2 s of real time on the dev server
    finished["expired"] = (inp, RequestState.EXPIRED)

    bad = seed_version(mlflow, metrics={"auc": 0.5})
    inp = await harness.open_request(RULES, bad, "Archived")
    finished["failed_validation"] = (inp, RequestState.FAILED_VALIDATION)
    await harness.outcome(inp)

    moved = seed_version(mlflow)
    inp = await harness.open_request(RULES, moved, "@champion")
    await harness.decide("approve", inp, CAROL)
    finished["alias"] = (inp, RequestState.APPLIED)

    inp = await harness.open_request(RULES, seed_version(mlflow), "Staging")
    finished["auto_approved"] = (inp, RequestState.APPLIED)

    stale = seed_version(mlflow, **good)
    inp = await harness.open_request(RULES, stale, "Production")
    await harness.wait_for(inp, lambda s: s.checks[-1].finished_ms is not None, "the checks")
    await harness.mlflow.transition_stage(
        stale.name, stale.version, "Archived", archive_existing_versions=False
    )
    await harness.decide("approve", inp, BOB)
    await harness.decide("approve", inp, CAROL)
    finished["failed_apply"] = (inp, RequestState.FAILED)

    histories: dict[str, WorkflowHistory] = {}
    for name, (inp, state) in finished.items():
        handle = harness.handle(inp)
        assert (await handle.result()).state is state, name
        histories[name] = await handle.fetch_history()
    return histories


@pytest.fixture(scope="module")
async def finished_histories(
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[dict[str, WorkflowHistory]]:
    """The scenarios run on the real dev server, in real time (the one timer that matters is
    a 2 s expiry): no time-skipping quirk can hold them up."""
    db_path = tmp_path_factory.mktemp("replay-ledger") / "ledger.db"
    client = await Client.connect(temporal_server.address, data_converter=pydantic_data_converter)
    env = WorkflowEnvironment.from_client(client)
    with httpx.Client(base_url=mlflow_server.url, timeout=30) as mlflow:
        async with (
            running_worker(env, mlflow_server.url, db_path) as worker,
            MlflowRegistry(mlflow_server.url) as reader,
        ):
            harness = make_harness(worker, reader)
            try:
                histories = await run_scenarios(harness, mlflow)
            finally:
                await harness.close()
    if RECORD:
        HISTORIES.mkdir(exist_ok=True)
        for name in RECORDED:
            (HISTORIES / f"{name}.json").write_text(histories[name].to_json() + "\n")
    yield histories


async def test_finished_workflows_replay(finished_histories: dict[str, WorkflowHistory]) -> None:
    assert set(finished_histories) >= set(RECORDED)
    for name, history in finished_histories.items():
        result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{name}: {result.replay_failure}"


def committed_histories() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"recorded/{path.stem}", path.read_text())


def test_recorded_histories_are_committed() -> None:
    assert {path.stem for path in committed_histories()} >= set(RECORDED), (
        "record them with SIGNOFF_RECORD_HISTORIES=1 pytest tests/workflows/test_replay.py"
    )


@pytest.mark.parametrize("path", committed_histories(), ids=lambda path: path.stem)
async def test_committed_history_replays(path: Path) -> None:
    history = load(path)
    assert history.events, f"{path} holds no events"

    await replayer().replay_workflow(history)


@workflow.defn(name="TransitionWorkflow")
class ChangedTransitionWorkflow:
    """A stand-in that starts with a timer where the real one schedules its checks and ledger
    write: what an incompatible edit looks like."""

    @workflow.run
    async def run(self, inp: TransitionInput) -> None:
        await workflow.sleep(timedelta(seconds=1))


async def test_replay_catches_an_incompatible_change() -> None:
    """The guard above is only worth something if a changed workflow fails it."""
    path = HISTORIES / f"{RECORDED[0]}.json"
    changed = Replayer(
        workflows=[ChangedTransitionWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=UnsandboxedWorkflowRunner(),  # the stand-in lives in this test module
    )

    with pytest.raises(NondeterminismError):
        await changed.replay_workflow(load(path))
