"""The `signature`, `compare` and `http` checks end to end: TransitionWorkflow on Temporal's
time-skipping server with the real activities, a real `mlflow server` holding real logged models
(MLmodel files written by MLflow itself), and check URLs played by HTTP servers on loopback.

Each test states its policy as YAML, lets the request run to its end (quorum 0, so a request
whose checks pass is applied without anyone approving), and reads back the final snapshot, the
version in MLflow and the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from mlflow.models import Model, ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec

from tests.support.harness import (
    Harness,
    MakeVersion,
    policy,
    skip_time,
)
from tests.support.mlflow import SEED_EXPERIMENT, MlflowServer, SeededVersion
from tests.support.processes import free_port
from workflows.domain import AuditType, CheckResult, CheckStatus, RequestSnapshot, RequestState
from workflows.messages import TransitionInput
from workflows.mlflow_client import ResourceNotFound

# MLflow nags about models logged without type hints or an input example; these are on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:mlflow")

# --------------------------------------------------------------------------------------------
# Harness: this module's own worker on the session's time-skipping server
# --------------------------------------------------------------------------------------------


async def finish(harness: Harness, inp: TransitionInput) -> RequestSnapshot:
    """The request's final snapshot. Awaiting the workflow result lets the time-skipping server
    skip the checks' retry backoff and timeouts."""
    return await asyncio.wait_for(harness.handle(inp).result(), timeout=60)


async def skip_backoff(harness: Harness, delta: timedelta) -> None:
    """Skip workflow time over an activity's retry backoff. Awaiting the result does not: the
    test server holds its clock while an activity is scheduled, retries included; an explicit
    sleep does skip it (between attempts nothing is in flight)."""
    await asyncio.sleep(0.2)  # let the first attempt fail
    await skip_time(harness.env, delta)


def only_check(final: RequestSnapshot) -> CheckResult:
    [check] = final.checks
    assert check.finished_ms is not None
    return check


async def assert_recorded(harness: Harness, final: RequestSnapshot) -> None:
    """The ledger holds the request exactly as the workflow ended it."""
    row = await harness.ledger.requests.get(final.id)
    assert row is not None
    assert (row.state, row.reason) == (final.state, final.reason)
    assert row.checks == final.checks


async def requested_only(harness: Harness, version: SeededVersion) -> None:
    assert await harness.trail(version) == [(AuditType.REQUESTED_TRANSITION, "alice")]


# --------------------------------------------------------------------------------------------
# MLflow models with a real MLmodel file
# --------------------------------------------------------------------------------------------

FRAUD_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("double", "amount"), ColSpec("string", "country")]),
    outputs=Schema([TensorSpec(np.dtype("float64"), (-1,))]),
)
INPUTS_ONLY = ModelSignature(inputs=Schema([ColSpec("double", "amount")]))


class Echo(mlflow.pyfunc.PythonModel):
    # `model_input` stays unannotated: MLflow 3 derives a signature from its type hint, and a
    # model logged with `signature=None` must have none.
    def predict(self, context: object, model_input, params: dict[str, Any] | None = None):
        return model_input


@contextlib.contextmanager
def tracking_uri(url: str) -> Iterator[mlflow.MlflowClient]:
    """MLflow's fluent API pointed at `url` for the duration (restored afterwards)."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(url)
    try:
        yield mlflow.MlflowClient(tracking_uri=url)
    finally:
        mlflow.set_tracking_uri(previous)


def log_model_version(
    server: MlflowServer,
    *,
    signature: ModelSignature | None,
    name: str | None = None,
) -> SeededVersion:
    """MLflow 3's way: `mlflow.pyfunc.log_model` in a run (a LoggedModel whose files live under
    the model's own artifact directory), registered with source `models:/m-…`."""
    name = name or f"model-{uuid.uuid4().hex[:8]}"
    with tracking_uri(server.url) as client:
        experiment = client.get_experiment_by_name(SEED_EXPERIMENT)
        experiment_id = (
            experiment.experiment_id if experiment else client.create_experiment(SEED_EXPERIMENT)
        )
        with mlflow.start_run(experiment_id=experiment_id) as run:
            info = mlflow.pyfunc.log_model(
                name="model", python_model=Echo(), signature=signature, pip_requirements=[]
            )
        with contextlib.suppress(mlflow.exceptions.MlflowException):  # exists already
            client.create_registered_model(name)
        version = client.create_model_version(
            name, info.model_uri, run.info.run_id, model_id=info.model_id
        )
    return SeededVersion(name=name, version=str(version.version), run_id=run.info.run_id)


def upload_mlmodel(server: MlflowServer, run_id: str, signature: ModelSignature | None) -> None:
    """The MLflow 2 layout: an MLmodel file (written by MLflow's own `Model`) uploaded under
    `model/` of the run, which is what a version with source `runs:/<run>/model` points at."""
    model = Model(artifact_path="model", run_id=run_id, signature=signature)
    model.add_flavor("python_function", loader_module="mlflow.pyfunc.model")
    with tempfile.TemporaryDirectory() as tmp, tracking_uri(server.url) as client:
        path = Path(tmp) / "MLmodel"
        model.save(str(path))
        client.log_artifact(run_id, str(path), "model")


SIGNATURE_RULE = """
transitions:
  - to: Staging
    checks:
      - {{type: signature{extra}}}
    approvals: {{quorum: 0}}
"""


# --------------------------------------------------------------------------------------------
# signature
# --------------------------------------------------------------------------------------------


async def test_signature_present_passes_and_says_where_it_was_read(
    harness: Harness, mlflow_server: MlflowServer
) -> None:
    version = await asyncio.to_thread(log_model_version, mlflow_server, signature=FRAUD_SIGNATURE)
    inp = await harness.open_request(policy(SIGNATURE_RULE.format(extra="")), version, "Staging")

    final = await finish(harness, inp)

    assert final.state is RequestState.APPLIED
    check = only_check(final)
    assert (check.check_id, check.status) == ("signature", CheckStatus.PASSED)
    assert check.summary == (
        "signature inputs [amount: double, country: string]; outputs [tensor float64 (-1,)]"
    )
    evidence = check.evidence
    assert evidence["source"].startswith("models:/m-")
    assert evidence["artifact_uri"].endswith("/artifacts")  # the logged model's directory
    assert evidence["url"] == (
        f"{mlflow_server.url}/model-versions/get-artifact?name={version.name}"
        f"&version={version.version}&path=MLmodel"
    )
    assert evidence["inputs"] == ["amount: double", "country: string"]
    assert evidence["outputs"] == ["tensor float64 (-1,)"]
    assert await harness.stage(version) == "Staging"
    await assert_recorded(harness, final)
    assert (await harness.trail(version))[-1][0] is AuditType.APPLIED_TRANSITION


async def test_model_without_signature_fails_validation(
    harness: Harness, mlflow_server: MlflowServer
) -> None:
    version = await asyncio.to_thread(log_model_version, mlflow_server, signature=None)
    inp = await harness.open_request(policy(SIGNATURE_RULE.format(extra="")), version, "Staging")

    final = await finish(harness, inp)

    assert final.state is RequestState.FAILED_VALIDATION
    check = only_check(final)
    assert check.status is CheckStatus.FAILED
    assert check.summary.startswith("the model at ")
    assert check.summary.endswith(
        "has no signature; log it with `signature=` or an `input_example`"
    )
    assert final.reason == f"signature: {check.summary}"
    assert check.evidence["source"].startswith("models:/m-")
    assert "inputs" not in check.evidence
    assert await harness.stage(version) == "None"
    await assert_recorded(harness, final)
    await requested_only(harness, version)


async def test_signature_without_outputs_fails_unless_outputs_are_optional(
    harness: Harness, mlflow_server: MlflowServer, make_version: MakeVersion
) -> None:
    strict = make_version()  # source runs:/<run>/model: the MLflow 2 layout
    lenient = make_version()
    for seeded in (strict, lenient):
        await asyncio.to_thread(upload_mlmodel, mlflow_server, seeded.run_id, INPUTS_ONLY)
    strict_inp = await harness.open_request(
        policy(SIGNATURE_RULE.format(extra="")), strict, "Staging"
    )
    lenient_inp = await harness.open_request(
        policy(SIGNATURE_RULE.format(extra=", require_outputs: false")), lenient, "Staging"
    )

    failed = await finish(harness, strict_inp)
    passed = await finish(harness, lenient_inp)

    assert failed.state is RequestState.FAILED_VALIDATION
    check = only_check(failed)
    assert check.summary == (
        f"the model's signature at runs:/{strict.run_id}/model has inputs but no outputs "
        "(set require_outputs: false to accept that)"
    )
    assert check.evidence["inputs"] == ["amount: double"]
    assert check.evidence["artifact_uri"] == f"runs:/{strict.run_id}/model"
    assert check.evidence["require_outputs"] is True
    await assert_recorded(harness, failed)
    await requested_only(harness, strict)

    assert passed.state is RequestState.APPLIED
    check = only_check(passed)
    assert (check.status, check.summary) == (
        CheckStatus.PASSED,
        "signature inputs [amount: double]; no outputs",
    )
    assert await harness.stage(lenient) == "Staging"
    await assert_recorded(harness, passed)


async def test_version_without_an_mlmodel_fails_with_a_clear_summary(
    harness: Harness, make_version: MakeVersion
) -> None:
    version = make_version()  # registered from a run that logged no model
    inp = await harness.open_request(policy(SIGNATURE_RULE.format(extra="")), version, "Staging")

    final = await finish(harness, inp)

    assert final.state is RequestState.FAILED_VALIDATION
    check = only_check(final)
    assert check.summary == (
        f"no MLmodel file at runs:/{version.run_id}/model: the version's source is not a "
        "logged MLflow model, so it has no signature"
    )
    assert check.evidence["source"] == f"runs:/{version.run_id}/model"
    await assert_recorded(harness, final)
    await requested_only(harness, version)


async def test_registry_reads_a_versions_artifacts(
    harness: Harness, mlflow_server: MlflowServer, make_version: MakeVersion
) -> None:
    seeded = make_version()
    await asyncio.to_thread(upload_mlmodel, mlflow_server, seeded.run_id, FRAUD_SIGNATURE)
    registry = harness.mlflow

    mlmodel = await registry.get_model_version_artifact(seeded.name, seeded.version, "MLmodel")
    uri = await registry.get_model_version_download_uri(seeded.name, seeded.version)

    assert b"signature:" in mlmodel
    assert uri == f"runs:/{seeded.run_id}/model"
    with pytest.raises(ResourceNotFound, match="Failed to download artifacts from path"):
        await registry.get_model_version_artifact(seeded.name, seeded.version, "nope.yaml")
    with pytest.raises(ResourceNotFound, match="not found"):
        await registry.get_model_version_artifact(seeded.name, "99", "MLmodel")


# --------------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------------


def compare_rule(target: str, check: str) -> str:
    return f"""
transitions:
  - to: "{target}"
    checks:
      - {check}
    approvals: {{quorum: 0}}
"""


async def test_compare_beat_needs_a_strictly_better_metric(
    harness: Harness, make_version: MakeVersion
) -> None:
    champion = make_version(metrics={"auc": 0.90})
    await harness.mlflow.transition_stage(
        champion.name, champion.version, "Production", archive_existing_versions=False
    )
    tie = make_version(champion.name, metrics={"auc": 0.90})
    better = make_version(champion.name, metrics={"auc": 0.91})
    rules = policy(compare_rule("Production", "{type: compare, metric: auc, mode: beat}"))

    tied = await finish(harness, await harness.open_request(rules, tie, "Production"))
    beaten = await finish(harness, await harness.open_request(rules, better, "Production"))

    assert tied.state is RequestState.FAILED_VALIDATION
    assert tied.reason == (
        "compare:auc: does not beat the champion: auc 0.9 vs 0.9 of the champion version 1 "
        "at Production (higher is better)"
    )
    assert only_check(tied).evidence == {
        "metric": "auc",
        "mode": "beat",
        "higher_is_better": True,
        "tolerance": 0.0,
        "target": "Production",
        "champion_version": "1",
        "candidate_version": tie.version,
        "candidate": 0.9,
        "champion": 0.9,
        "improvement": 0.0,
    }
    assert await harness.stage(tie) == "None"
    await assert_recorded(harness, tied)
    await requested_only(harness, tie)

    assert beaten.state is RequestState.APPLIED
    check = only_check(beaten)
    assert check.status is CheckStatus.PASSED
    assert check.summary == (
        "beats: auc 0.91 vs 0.9 of the champion version 1 at Production (higher is better)"
    )
    assert (check.evidence["candidate"], check.evidence["champion"]) == (0.91, 0.9)
    assert await harness.stage(better) == "Production"
    await assert_recorded(harness, beaten)


async def test_compare_not_worse_within_tolerance_lower_is_better(
    harness: Harness, make_version: MakeVersion
) -> None:
    champion = make_version(metrics={"loss": 0.20})
    await harness.mlflow.transition_stage(
        champion.name, champion.version, "Production", archive_existing_versions=False
    )
    much_worse = make_version(champion.name, metrics={"loss": 0.25})
    at_tolerance = make_version(champion.name, metrics={"loss": 0.22})  # 0.02 worse: allowed
    rules = policy(
        compare_rule(
            "Production",
            "{type: compare, metric: loss, higher_is_better: false, tolerance: 0.02}",
        )
    )

    worse = await finish(harness, await harness.open_request(rules, much_worse, "Production"))
    within = await finish(harness, await harness.open_request(rules, at_tolerance, "Production"))

    assert worse.state is RequestState.FAILED_VALIDATION
    check = only_check(worse)
    assert check.summary == (
        "worse than the champion by 0.05, more than the tolerance 0.02: loss 0.25 vs 0.2 of "
        "the champion version 1 at Production (lower is better)"
    )
    assert check.evidence["mode"] == "not_worse"
    assert (check.evidence["candidate"], check.evidence["champion"]) == (0.25, 0.2)
    assert check.evidence["tolerance"] == 0.02
    await assert_recorded(harness, worse)
    await requested_only(harness, much_worse)

    assert within.state is RequestState.APPLIED
    check = only_check(within)
    assert check.status is CheckStatus.PASSED
    assert check.summary == (
        "not worse: loss 0.22 vs 0.2 of the champion version 1 at Production (lower is "
        "better), worse by 0.02 within tolerance 0.02"
    )
    await assert_recorded(harness, within)


async def test_compare_without_a_champion_passes(
    harness: Harness, make_version: MakeVersion
) -> None:
    staging_only = make_version(metrics={"auc": 0.7})
    await harness.mlflow.transition_stage(
        staging_only.name, staging_only.version, "Staging", archive_existing_versions=False
    )
    version = make_version(staging_only.name, metrics={"auc": 0.8})
    rules = policy(compare_rule("Production", "{type: compare, metric: auc, mode: beat}"))

    final = await finish(harness, await harness.open_request(rules, version, "Production"))

    assert final.state is RequestState.APPLIED
    check = only_check(final)
    assert (check.status, check.summary) == (
        CheckStatus.PASSED,
        "no champion at Production; nothing to compare",
    )
    assert check.evidence["champion_version"] is None
    assert check.evidence["candidate"] == 0.8
    await assert_recorded(harness, final)


async def test_compare_against_the_version_holding_the_alias(
    harness: Harness, make_version: MakeVersion
) -> None:
    holder = make_version(metrics={"auc": 0.95})
    await harness.mlflow.set_alias(holder.name, "champion", holder.version)
    in_production = make_version(holder.name, metrics={"auc": 0.50})  # not the alias' champion
    await harness.mlflow.transition_stage(
        in_production.name, in_production.version, "Production", archive_existing_versions=False
    )
    candidate = make_version(holder.name, metrics={"auc": 0.90})
    rules = policy(compare_rule("@champion", "{type: compare, metric: auc, tolerance: 0.01}"))

    final = await finish(harness, await harness.open_request(rules, candidate, "@champion"))

    assert final.state is RequestState.FAILED_VALIDATION
    check = only_check(final)
    assert check.evidence["champion_version"] == holder.version
    assert (check.evidence["candidate"], check.evidence["champion"]) == (0.9, 0.95)
    assert check.summary.startswith("worse than the champion by 0.05, more than the tolerance")
    assert "of the champion version 1 at @champion" in check.summary
    assert await harness.aliases(holder) == ["champion"]
    assert await harness.aliases(candidate) == []
    await assert_recorded(harness, final)
    await requested_only(harness, candidate)


async def test_compare_with_a_missing_metric_says_which_side_lacks_it(
    harness: Harness, make_version: MakeVersion
) -> None:
    rules = policy(compare_rule("Production", "{type: compare, metric: auc}"))
    champions = [make_version(metrics={"auc": 0.9}), make_version(metrics={"loss": 0.1})]
    for champion in champions:
        await harness.mlflow.transition_stage(
            champion.name, champion.version, "Production", archive_existing_versions=False
        )
    no_auc = make_version(champions[0].name, metrics={"loss": 0.1})
    has_auc = make_version(champions[1].name, metrics={"auc": 0.9})

    candidate_side = await finish(harness, await harness.open_request(rules, no_auc, "Production"))
    champion_side = await finish(harness, await harness.open_request(rules, has_auc, "Production"))

    assert candidate_side.state is RequestState.FAILED_VALIDATION
    assert candidate_side.reason == (
        "compare:auc: metric 'auc' is not logged on the candidate's run (logged: loss)"
    )
    assert "candidate" not in only_check(candidate_side).evidence
    await assert_recorded(harness, candidate_side)

    assert champion_side.state is RequestState.FAILED_VALIDATION
    assert champion_side.reason == (
        "compare:auc: metric 'auc' is not logged on the run of the champion version 1 at "
        "Production (logged: loss)"
    )
    evidence = only_check(champion_side).evidence
    assert (evidence["candidate"], evidence["champion_version"]) == (0.9, "1")
    assert "champion" not in evidence
    await assert_recorded(harness, champion_side)


# --------------------------------------------------------------------------------------------
# http: check URLs played by loopback servers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"

    @classmethod
    def of(cls, status: int, document: object) -> Answer:
        return cls(status, json.dumps(document).encode())


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class CheckEndpoint:
    """A check service on loopback: answers POSTs with `answers` in turn (the last one
    repeats) and records what it received."""

    answers: list[Answer]
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/validate"

    def answer(self) -> Answer:
        index = min(len(self.received) - 1, len(self.answers) - 1)
        return self.answers[index]


@pytest.fixture
def check_endpoint() -> Iterator[Callable[..., CheckEndpoint]]:
    started: list[ThreadingHTTPServer] = []

    def start(*answers: Answer) -> CheckEndpoint:
        endpoint = CheckEndpoint(list(answers))
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    endpoint.received.append(
                        Received(self.path, dict(self.headers.items()), json.loads(raw))
                    )
                    answer = endpoint.answer()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        endpoint.server = server
        started.append(server)
        return endpoint

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def http_rule(url: str, extra: str = "") -> str:
    return f"""
transitions:
  - to: Staging
    checks:
      - {{type: http, url: "{url}", name: model-review{extra}}}
    approvals: {{quorum: 0}}
"""


async def test_http_check_passed_posts_the_request_context(
    harness: Harness, make_version: MakeVersion, check_endpoint: Callable[..., CheckEndpoint]
) -> None:
    details = {"suite": "fairness", "cases": 12, "failures": 0}
    endpoint = check_endpoint(Answer.of(200, {"passed": True, "details": details}))
    version = make_version()
    rules = policy(http_rule(endpoint.url, ", headers: {Authorization: Bearer s3cret}"))
    inp = await harness.open_request(rules, version, "Staging")

    final = await finish(harness, inp)

    assert final.state is RequestState.APPLIED
    check = only_check(final)
    assert (check.check_id, check.status, check.summary) == (
        "http:model-review",
        CheckStatus.PASSED,
        "model-review passed",
    )
    assert check.evidence == {"url": endpoint.url, "status": 200, "details": details, "attempt": 1}
    [received] = endpoint.received
    assert received.path == "/validate"
    assert received.headers["Authorization"] == "Bearer s3cret"
    assert received.headers["Content-Type"] == "application/json"
    assert received.body == {
        "request_id": inp.request_id,
        "model": version.name,
        "version": version.version,
        "target": "Staging",
        "check": "http:model-review",
        "from_stage": "None",
        "run_id": version.run_id,
    }
    assert "s3cret" not in final.model_dump_json()  # headers are not evidence
    assert await harness.stage(version) == "Staging"
    await assert_recorded(harness, final)


async def test_http_check_failed_fails_validation_with_its_details(
    harness: Harness, make_version: MakeVersion, check_endpoint: Callable[..., CheckEndpoint]
) -> None:
    endpoint = check_endpoint(
        Answer.of(200, {"passed": False, "details": "bias audit: 2 groups over threshold"})
    )
    version = make_version()
    inp = await harness.open_request(policy(http_rule(endpoint.url)), version, "Staging")

    final = await finish(harness, inp)

    assert final.state is RequestState.FAILED_VALIDATION
    assert final.reason == (
        "http:model-review: model-review failed: bias audit: 2 groups over threshold"
    )
    check = only_check(final)
    assert check.evidence == {
        "url": endpoint.url,
        "status": 200,
        "details": "bias audit: 2 groups over threshold",
        "attempt": 1,
    }
    assert len(endpoint.received) == 1
    await assert_recorded(harness, final)
    await requested_only(harness, version)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (Answer(200, b"<html>OK</html>", "text/html"), "with a body that is not JSON"),
        (Answer.of(200, {"passed": "yes", "details": None}), "with 'passed' is \"yes\""),
        (Answer.of(200, {"ok": True}), "with no 'passed'"),
        (Answer.of(200, [True]), "with a JSON list"),
    ],
    ids=["not-json", "passed-not-bool", "no-passed", "not-an-object"],
)
async def test_http_check_with_a_badly_shaped_answer_fails(
    harness: Harness,
    make_version: MakeVersion,
    check_endpoint: Callable[..., CheckEndpoint],
    answer: Answer,
    problem: str,
) -> None:
    endpoint = check_endpoint(answer)
    version = make_version()
    inp = await harness.open_request(policy(http_rule(endpoint.url)), version, "Staging")

    final = await finish(harness, inp)

    assert final.state is RequestState.FAILED_VALIDATION
    check = only_check(final)
    assert check.summary.startswith(f"POST {endpoint.url} answered HTTP 200 {problem}; expected")
    assert check.evidence["body"] == answer.body.decode()
    assert len(endpoint.received) == 1  # a wrong answer is an answer: not retried
    await assert_recorded(harness, final)


async def test_http_check_4xx_fails_without_retrying(
    harness: Harness, make_version: MakeVersion, check_endpoint: Callable[..., CheckEndpoint]
) -> None:
    endpoint = check_endpoint(Answer.of(403, {"error": "token not allowed"}))
    version = make_version()
    inp = await harness.open_request(policy(http_rule(endpoint.url)), version, "Staging")

    final = await finish(harness, inp)

    assert final.state is RequestState.FAILED_VALIDATION
    check = only_check(final)
    assert check.summary == (
        f'POST {endpoint.url} answered HTTP 403: {{"error": "token not allowed"}}'
    )
    assert (check.evidence["url"], check.evidence["status"]) == (endpoint.url, 403)
    assert len(endpoint.received) == 1
    await assert_recorded(harness, final)
    await requested_only(harness, version)


async def test_http_check_retries_5xx_until_the_service_recovers(
    harness: Harness, make_version: MakeVersion, check_endpoint: Callable[..., CheckEndpoint]
) -> None:
    endpoint = check_endpoint(
        Answer(503, b"warming up", "text/plain"),
        Answer(503, b"warming up", "text/plain"),
        Answer.of(200, {"passed": True, "details": {"attempts_seen": 3}}),
    )
    version = make_version()
    inp = await harness.open_request(policy(http_rule(endpoint.url)), version, "Staging")

    await skip_backoff(harness, timedelta(seconds=10))  # retries after 1 s, then 2 s
    final = await finish(harness, inp)

    assert final.state is RequestState.APPLIED
    check = only_check(final)
    assert (check.status, check.evidence["status"]) == (CheckStatus.PASSED, 200)
    assert check.evidence["attempt"] == 3
    assert len(endpoint.received) == 3
    assert {r.body["request_id"] for r in endpoint.received} == {inp.request_id}
    assert await harness.stage(version) == "Staging"
    await assert_recorded(harness, final)


async def test_http_check_down_past_its_timeout_fails_validation(
    harness: Harness, make_version: MakeVersion
) -> None:
    url = f"http://127.0.0.1:{free_port()}/validate"  # nothing listens there
    version = make_version()
    inp = await harness.open_request(policy(http_rule(url, ", timeout: 30s")), version, "Staging")

    await skip_backoff(harness, timedelta(seconds=40))
    final = await finish(harness, inp)

    assert final.state is RequestState.FAILED_VALIDATION
    check = only_check(final)
    assert check.status is CheckStatus.FAILED
    assert check.summary.startswith(f"did not finish within 30s: POST {url} could not connect")
    assert check.evidence["error"].startswith(f"POST {url} could not connect")
    assert final.reason == f"http:model-review: {check.summary}"
    # Retried with backoff on the workflow's clock (attempts at 0, 1, 3, 7 and 15 s); Temporal
    # gives up when the next backoff (16 s) would overrun the 30 s timeout.
    assert final.updated_ms - final.created_ms >= 15_000
    await assert_recorded(harness, final)
    await requested_only(harness, version)
