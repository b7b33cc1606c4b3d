"""The MLflow front door, with the real `mlflow` client configured only by
`MLFLOW_TRACKING_URI` (Signoff) and `MLFLOW_TRACKING_TOKEN` (a JWT), against the real stack and
an MLflow server that serves artifacts itself, so they too travel through Signoff.

Tracking calls, artifacts and models work as they do against MLflow; the moves the policy
governs are refused with how to request them and MLflow is left unchanged; protected tags,
unbound principals, memory on a 200 MB artifact, and MLflow stopped and back."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import mlflow
import mlflow.tracking._tracking_service.utils as tracking_utils
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.tracing.constant import SpansLocation, TraceTagKey
from mlflow.tracking.request_header import registry as header_registry
from mlflow.tracking.request_header.abstract_request_header_provider import (
    RequestHeaderProvider,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.mlflow import (
    MlflowServer,
    SeededVersion,
    mlflow_version,
    seed_version,
    start_mlflow,
)
from tests.support.processes import free_port, stop_process
from tests.support.stack import SignoffStack, running_stack
from tests.support.tcp_relay import TcpRelay, running_relay
from tests.support.temporal import TemporalServer
from tests.support.tokens import mint_token

POLICY = """
roles:
  data-scientist: {"*": CAN_EDIT}
  fraud-team: {"fraud-*": CAN_EDIT}
  qa-lead: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  platform-admin: {"*": CAN_MANAGE}
tracking:
  data-scientist: {"*": EDIT}
  fraud-team: {"fraud-*": EDIT}
  platform-admin: {"*": MANAGE}
protected_tags:
  validated_by: [qa-lead]
transitions:
  - to: Production
    checks:
      - {type: tag, key: validated_by}
      - {type: tag, key: data_review}
    approvals: {quorum: 1, roles: [ml-lead]}
    break_glass: true
  - to: "@champion"
    approvals: {quorum: 1, roles: [ml-lead]}
    break_glass: true
"""
MB = 1024 * 1024


@pytest.fixture(scope="module")
def own_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """An MLflow of this module's own that serves artifacts (`mlflow-artifacts:/`)."""
    server = start_mlflow(tmp_path_factory.mktemp("door-mlflow"), free_port(), proxy_artifacts=True)
    yield server
    stop_process(server.process)


@pytest.fixture(scope="module")
def relay(own_mlflow: MlflowServer) -> Iterator[TcpRelay]:
    """Signoff reaches MLflow through it, so a test can make MLflow vanish and come back."""
    with running_relay(int(own_mlflow.url.rsplit(":", 1)[1])) as running:
        yield running


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, temporal_server: TemporalServer, relay: TcpRelay
) -> Iterator[SignoffStack]:
    address = temporal_server.address
    with running_stack(tmp_path_factory, "front-door", address, relay.url, policy=POLICY) as s:
        yield s


@pytest.fixture
def mlflow_as(stack: SignoffStack, monkeypatch: pytest.MonkeyPatch) -> Callable[..., MlflowClient]:
    """`mlflow_as(sub, *roles)`: MLflow's client (and fluent API) configured only by the two
    environment variables, pointed at Signoff as `sub`; switch principals by calling again."""
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)  # another test may have set one
    for name in list(os.environ):
        if name.startswith("MLFLOW_TRACKING_"):
            monkeypatch.delenv(name)

    # Not configuration: a refusal must fail the test at once, not after 7 retries; a trace is
    # exported before the traced call returns, so the test reads what it logged.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")

    def configure(sub: str, *roles: str) -> MlflowClient:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", stack.api_url)
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", mint_token(sub, *roles))
        return MlflowClient()

    return configure


@pytest.fixture(scope="module")
def seeded(own_mlflow: MlflowServer) -> Callable[..., SeededVersion]:
    def make(name: str | None = None) -> SeededVersion:
        with httpx.Client(base_url=own_mlflow.url, timeout=30) as client:
            return seed_version(client, name)

    return make


class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        return model_input * 2


def test_a_team_works_through_signoff_as_with_mlflow(
    mlflow_as: Callable[..., MlflowClient], own_mlflow: MlflowServer, tmp_path: Path
) -> None:
    client = mlflow_as("lee", "data-scientist")
    name = f"churn-{uuid.uuid4().hex[:8]}"
    experiment_id = mlflow.create_experiment(f"exp-{name}")
    notes = tmp_path / "notes.txt"
    notes.write_bytes(os.urandom(4096))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params({"depth": 3, "lr": 0.1})
        mlflow.log_metric("auc", 0.91)
        mlflow.log_artifact(str(notes))
        info = mlflow.pyfunc.log_model(
            name="model", python_model=Doubler(), pip_requirements=[], registered_model_name=name
        )
    client.set_model_version_tag(name, "1", "owner", "lee")

    found = mlflow.search_runs(experiment_ids=[experiment_id], output_format="list")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    assert found[0].data.params == {"depth": "3", "lr": "0.1"}
    assert found[0].data.metrics == {"auc": 0.91}
    versions = client.search_model_versions(f"name = '{name}'")
    assert [(v.version, v.tags) for v in versions] == [("1", {"owner": "lee"})]
    assert versions[0].source == info.model_uri

    downloaded = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="notes.txt", dst_path=str(tmp_path / "out")
    )
    assert Path(downloaded).read_bytes() == notes.read_bytes()
    model = mlflow.pyfunc.load_model(f"models:/{name}/1")
    assert model.predict(pd.DataFrame({"x": [1, 2]}))["x"].tolist() == [2, 4]
    # It all happened in MLflow itself.
    direct = httpx.get(
        f"{own_mlflow.url}/get-artifact",
        params={"run_id": run.info.run_id, "path": "notes.txt"},
        timeout=30,
    )
    assert direct.content == notes.read_bytes()


def test_governed_moves_are_refused_with_how_to_request_them(
    mlflow_as: Callable[..., MlflowClient],
    seeded: Callable[..., SeededVersion],
    own_mlflow: MlflowServer,
) -> None:
    version = seeded()
    client = mlflow_as("mia", "ml-lead")  # may approve, yet not move it herself
    with pytest.raises(MlflowException) as refused:
        client.transition_model_version_stage(version.name, version.version, "Production")
    message = str(refused.value)
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert f"signoff request {version.name} {version.version} Production" in message
    assert "/api/2.0/mlflow/transition-requests/create" in message
    with pytest.raises(MlflowException) as alias_refused:
        client.set_registered_model_alias(version.name, "champion", version.version)
    assert f"signoff request {version.name} {version.version} @champion" in str(alias_refused.value)
    unchanged = mlflow_version(own_mlflow.url, version)
    assert unchanged["current_stage"] == "None"
    assert "aliases" not in unchanged

    client.set_registered_model_alias(version.name, "shadow", version.version)  # not governed
    client.transition_model_version_stage(version.name, version.version, "Staging")
    moved = mlflow_version(own_mlflow.url, version)
    assert (moved["aliases"], moved["current_stage"]) == (["shadow"], "Staging")


class SignoffReason(RequestHeaderProvider):
    """Sends `X-Signoff-Reason` with every call of MLflow's client while `reason` is set: how a
    team adds the header to MLflow's client (a `mlflow.request_header_provider` plugin)."""

    reason: str | None = None

    def in_context(self) -> bool:
        return self.reason is not None

    def request_headers(self) -> dict[str, str]:
        return {"X-Signoff-Reason": self.reason or ""}


@pytest.fixture
def signoff_reason(monkeypatch: pytest.MonkeyPatch) -> SignoffReason:
    provider = SignoffReason()
    registry = header_registry._request_header_provider_registry
    monkeypatch.setattr(registry, "_registry", [*registry._registry, provider])
    return provider


def test_a_break_glass_caller_moves_a_governed_stage_and_alias_through_the_door_on_the_record(
    stack: SignoffStack,
    mlflow_as: Callable[..., MlflowClient],
    seeded: Callable[..., SeededVersion],
    own_mlflow: MlflowServer,
    signoff_reason: SignoffReason,
) -> None:
    version = seeded()
    pat = mlflow_as("pat", "platform-admin")  # CAN_MANAGE; the rules say break_glass: true
    with pytest.raises(MlflowException) as no_reason:
        pat.transition_model_version_stage(version.name, version.version, "Production")
    assert no_reason.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "X-Signoff-Reason" in str(no_reason.value)
    assert mlflow_version(own_mlflow.url, version)["current_stage"] == "None"

    signoff_reason.reason = "INC-4521: the scorer is down"
    moved = pat.transition_model_version_stage(version.name, version.version, "Production")
    assert moved.current_stage == "Production"
    pat.set_registered_model_alias(version.name, "champion", version.version)
    in_mlflow = mlflow_version(own_mlflow.url, version)
    assert (in_mlflow["current_stage"], in_mlflow["aliases"]) == ("Production", ["champion"])
    with pytest.raises(MlflowException) as again:
        pat.set_registered_model_alias(version.name, "champion", version.version)
    assert "already @champion" in str(again.value)
    # Deleting a governed alias is never break-glass: refused, and the alias stays.
    with pytest.raises(MlflowException) as deleting:
        pat.delete_registered_model_alias(version.name, "champion")
    assert deleting.value.error_code == "PERMISSION_DENIED"
    assert mlflow_version(own_mlflow.url, version)["aliases"] == ["champion"]

    with stack.client("pat", "platform-admin") as http:
        found = http.get(
            "/api/2.0/signoff/activities/list",
            params={"name": version.name, "version": version.version},
        )
    assert found.status_code == 200, found.text
    moves = [
        (a["activity_type"], a["user_id"], a["to_stage"], a["comment"])
        for a in found.json()["activities"]
    ]
    reason = "INC-4521: the scorer is down"
    assert moves == [
        ("APPLIED_TRANSITION", "pat", "Production", reason),
        ("APPLIED_TRANSITION", "pat", "@champion", reason),
    ]
    for activity in found.json()["activities"]:
        assert activity["system_comment"].startswith("Break-glass transition by pat (CAN_MANAGE)")


def test_the_tag_a_check_needs_is_set_only_by_whom_the_policy_names(
    mlflow_as: Callable[..., MlflowClient],
    seeded: Callable[..., SeededVersion],
    own_mlflow: MlflowServer,
) -> None:
    version = seeded()
    lee = mlflow_as("lee", "data-scientist")
    for key in ("validated_by", "data_review"):  # protected; relied on by a check
        with pytest.raises(MlflowException) as refused:
            lee.set_model_version_tag(version.name, version.version, key, "lee")
        assert refused.value.error_code == "PERMISSION_DENIED"
        assert repr(key) in str(refused.value)
    lee.set_model_version_tag(version.name, version.version, "notes", "fine")
    mlflow_as("quinn", "qa-lead").set_model_version_tag(
        version.name, version.version, "validated_by", "quinn"
    )
    mlflow_as("pat", "platform-admin").set_model_version_tag(
        version.name, version.version, "data_review", "passed"
    )
    tags = {t["key"]: t["value"] for t in mlflow_version(own_mlflow.url, version)["tags"]}
    assert tags == {"notes": "fine", "validated_by": "quinn", "data_review": "passed"}


def test_a_principal_without_a_binding_cannot_tell_a_model_from_a_missing_one(
    mlflow_as: Callable[..., MlflowClient], seeded: Callable[..., SeededVersion]
) -> None:
    hidden, visible = (
        seeded(f"credit-{uuid.uuid4().hex[:8]}"),
        seeded(f"fraud-{uuid.uuid4().hex[:8]}"),
    )
    missing = f"credit-{uuid.uuid4().hex[:8]}"
    fraud = mlflow_as("fay", "fraud-team")

    def answers(name: str) -> list[tuple[str, str]]:
        calls = (
            lambda: fraud.get_registered_model(name),
            lambda: fraud.get_model_version(name, "1"),
            lambda: fraud.set_model_version_tag(name, "1", "k", "v"),
            lambda: fraud.delete_registered_model(name),
        )
        seen = []
        for call in calls:
            with pytest.raises(MlflowException) as refused:
                call()
            seen.append((refused.value.error_code, str(refused.value).replace(name, "NAME")))
        return seen

    assert answers(hidden.name) == answers(missing)
    assert answers(hidden.name)[0][0] == "RESOURCE_DOES_NOT_EXIST"
    listed = {m.name for m in fraud.search_registered_models()}
    assert visible.name in listed and hidden.name not in listed
    found = {v.name for v in fraud.search_model_versions(f"name = '{hidden.name}'")}
    assert found == set()
    assert fraud.get_registered_model(visible.name).name == visible.name


def _status(pid: int) -> dict[str, int]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines)
    return {key: int(fields[key].split()[0]) * 1024 for key in ("VmRSS", "VmHWM")}


def test_a_200_mb_artifact_streams_through_with_flat_memory(
    stack: SignoffStack, mlflow_as: Callable[..., MlflowClient]
) -> None:
    client = mlflow_as("lee", "data-scientist")
    experiment_id = client.create_experiment(f"big-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id)
    assert stack.api is not None
    pid = stack.api.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
    before = _status(pid)["VmRSS"]

    # Where MLflow's client puts a run's artifact: mlflow-artifacts:/<experiment>/<run>/artifacts
    where = f"{experiment_id}/{run.info.run_id}/artifacts/big.bin"
    headers = {"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=120) as http:
        uploaded = http.put(
            f"/api/2.0/mlflow-artifacts/artifacts/{where}",
            content=(bytes(MB) for _ in range(200)),
            headers={"Content-Length": str(200 * MB)},
        )
        assert uploaded.status_code == 200, uploaded.text
        digest, size = hashlib.sha256(), 0
        params = {"run_id": run.info.run_id, "path": "big.bin"}
        with http.stream("GET", "/get-artifact", params=params) as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes(MB):
                digest.update(chunk)
                size += len(chunk)
    zeros = hashlib.sha256()
    for _ in range(200):
        zeros.update(bytes(MB))
    assert (size, digest.hexdigest()) == (200 * MB, zeros.hexdigest())
    peak = _status(pid)["VmHWM"]
    assert peak - before < 40 * MB, f"the API grew by {(peak - before) / MB:.0f} MB"


def test_mlflow_stopped_answers_503_and_the_next_call_after_it_is_back_works(
    stack: SignoffStack, relay: TcpRelay, seeded: Callable[..., SeededVersion]
) -> None:
    version = seeded()
    params = {"name": version.name, "version": version.version}
    with stack.client("lee", "data-scientist") as lee:
        assert lee.get("/api/2.0/mlflow/model-versions/get", params=params).status_code == 200
        with relay.down():  # connections refused, the pooled ones cut
            down = lee.get("/api/2.0/mlflow/model-versions/get", params=params)
        assert down.status_code == 503, down.text
        body = down.json()
        assert body["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert body["dependency"] == "mlflow" and "MLflow" in body["message"]
        assert down.headers["Retry-After"]
        back = lee.get("/api/2.0/mlflow/model-versions/get", params=params)
        assert back.status_code == 200, back.text
        assert back.json()["model_version"]["name"] == version.name


# -- MLflow 3: traces, assessments, datasets, scorers, prompts ---------------------------------


@pytest.fixture
def tracing(mlflow_as: Callable[..., MlflowClient]) -> Iterator[None]:
    """MLflow's tracer set up afresh for the principal `mlflow_as` configures (it keeps the
    tracking URI it first saw)."""
    mlflow.tracing.reset()
    yield
    mlflow.tracing.reset()


def _log_a_trace(experiment_id: str) -> str:
    @mlflow.trace(name="answer")
    def answer(question: str) -> str:
        with mlflow.start_span(name="retrieve") as span:
            span.set_inputs({"q": question})
        return question.upper()

    mlflow.set_experiment(experiment_id=experiment_id)
    assert answer("why?") == "WHY?"
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id is not None
    return trace_id


def test_a_team_traces_tags_and_assesses_through_signoff(
    mlflow_as: Callable[..., MlflowClient], tracing: None
) -> None:
    client = mlflow_as("lee", "data-scientist")
    experiment_id = client.create_experiment(f"genai-{uuid.uuid4().hex[:8]}")
    trace_id = _log_a_trace(experiment_id)

    found = mlflow.search_traces(locations=[experiment_id], return_type="list")
    assert [t.info.trace_id for t in found] == [trace_id]
    mlflow.set_trace_tag(trace_id, "reviewed", "yes")
    mlflow.log_feedback(trace_id=trace_id, name="correct", value=True)
    trace = mlflow.get_trace(trace_id)
    assert trace is not None
    assert trace.info.tags["reviewed"] == "yes"
    assert [(a.name, a.value) for a in trace.info.assessments] == [("correct", True)]
    assert sorted(span.name for span in trace.data.spans) == ["answer", "retrieve"]
    assert {span.name: span.outputs for span in trace.data.spans}["answer"] == "WHY?"
    # The spans went in as MLflow's client sends them to MLflow 3: OTLP, through the door.
    assert trace.info.tags[TraceTagKey.SPANS_LOCATION] == SpansLocation.TRACKING_STORE.value


def test_a_principal_without_the_experiment_cannot_tell_a_trace_from_a_missing_one(
    mlflow_as: Callable[..., MlflowClient], tracing: None
) -> None:
    lee = mlflow_as("lee", "data-scientist")
    experiment_id = lee.create_experiment(f"credit-{uuid.uuid4().hex[:8]}")
    trace_id = _log_a_trace(experiment_id)
    missing = "tr-" + uuid.uuid4().hex

    fraud = mlflow_as("fay", "fraud-team")

    def answers(an_id: str) -> list[tuple[str, str]]:
        calls = (
            lambda: fraud.get_trace(an_id),
            lambda: fraud.set_trace_tag(an_id, "k", "v"),
            lambda: mlflow.log_feedback(trace_id=an_id, name="correct", value=False),
            lambda: fraud.delete_trace_tag(an_id, "k"),
        )
        seen = []
        for call in calls:
            with pytest.raises(MlflowException) as refused:
                call()
            seen.append((refused.value.error_code, str(refused.value).replace(an_id, "ID")))
        return seen

    assert answers(trace_id) == answers(missing)
    assert answers(trace_id)[0][0] == "RESOURCE_DOES_NOT_EXIST"
    # Nor add spans to it from an experiment of its own (MLflow would add them to the trace).
    theirs = fraud.create_experiment(f"fraud-{uuid.uuid4().hex[:8]}")
    export = ExportTraceServiceRequest()
    span = export.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes.fromhex(trace_id.removeprefix("tr-"))
    span.span_id, span.name = os.urandom(8), "injected"
    span.start_time_unix_nano = span.end_time_unix_nano = 1
    headers = {
        "Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}",
        "Content-Type": "application/x-protobuf",
        "X-Mlflow-Experiment-Id": theirs,
    }
    posted = httpx.post(
        f"{os.environ['MLFLOW_TRACKING_URI']}/v1/traces",
        content=export.SerializeToString(),
        headers=headers,
        timeout=30,
    )
    assert posted.status_code == 403, posted.text
    with pytest.raises(MlflowException) as searching:
        mlflow.search_traces(locations=[experiment_id], return_type="list")
    assert searching.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # Nothing changed in MLflow.
    trace = mlflow_as("lee", "data-scientist").get_trace(trace_id)
    assert "k" not in trace.info.tags and trace.info.assessments == []
    assert "injected" not in {span.name for span in trace.data.spans}


def test_an_evaluation_dataset_and_a_scorer_round_trip_through_signoff(
    mlflow_as: Callable[..., MlflowClient],
) -> None:
    from mlflow.genai import datasets
    from mlflow.genai.scorers import Guidelines, get_scorer, list_scorers

    client = mlflow_as("lee", "data-scientist")
    experiment_id = client.create_experiment(f"eval-{uuid.uuid4().hex[:8]}")
    hidden = client.create_experiment(f"credit-eval-{uuid.uuid4().hex[:8]}")
    dataset = datasets.create_dataset(
        name=f"qa-{uuid.uuid4().hex[:6]}", experiment_id=experiment_id
    )
    dataset.merge_records([{"inputs": {"q": "2+2?"}, "expectations": {"answer": "4"}}])
    datasets.create_dataset(name=f"hidden-{uuid.uuid4().hex[:6]}", experiment_id=hidden)
    again = datasets.get_dataset(dataset_id=dataset.dataset_id)
    assert again.to_df()["inputs"].tolist() == [{"q": "2+2?"}]
    listed = {d.dataset_id for d in datasets.search_datasets(experiment_ids=[experiment_id])}
    assert listed == {dataset.dataset_id}

    Guidelines(name="polite", guidelines="Be polite").register(experiment_id=experiment_id)
    assert [s.name for s in list_scorers(experiment_id=experiment_id)] == ["polite"]
    assert get_scorer(name="polite", experiment_id=experiment_id).name == "polite"

    mlflow_as("fay", "fraud-team")
    with pytest.raises(MlflowException) as refused:
        datasets.get_dataset(dataset_id=dataset.dataset_id)
    assert refused.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException):
        list_scorers(experiment_id=experiment_id)
    assert list(datasets.search_datasets()) == []  # every dataset's experiment is hidden


def test_prompts_register_and_load_through_signoff_by_the_model_levels(
    mlflow_as: Callable[..., MlflowClient],
) -> None:
    from mlflow.genai import load_prompt, register_prompt, search_prompts

    mlflow_as("fay", "fraud-team")
    name = f"fraud-greeting-{uuid.uuid4().hex[:6]}"
    register_prompt(name=name, template="Hello {{name}}!")
    register_prompt(name=name, template="Hi {{name}}!")
    assert load_prompt(f"prompts:/{name}/2").format(name="Ann") == "Hi Ann!"
    assert [p.name for p in search_prompts(filter_string=f"name = '{name}'")] == [name]
    other = f"credit-greeting-{uuid.uuid4().hex[:6]}"
    with pytest.raises(MlflowException):
        register_prompt(name=other, template="Hello")
    mlflow_as("lee", "data-scientist")
    assert load_prompt(f"prompts:/{name}/1").template == "Hello {{name}}!"
    register_prompt(name=other, template="Hello")
    mlflow_as("fay", "fraud-team")
    with pytest.raises(MlflowException) as hidden:
        load_prompt(f"prompts:/{other}/1")
    assert hidden.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_filtered_search_pages_are_full_and_page_through_the_readable_set_once(
    stack: SignoffStack, own_mlflow: MlflowServer, seeded: Callable[..., SeededVersion]
) -> None:
    tag = uuid.uuid4().hex[:6]
    readable = set()
    with httpx.Client(base_url=own_mlflow.url, timeout=30) as direct:
        for i in range(7):  # interleaved, so every page of MLflow's holds hidden ones
            name = f"{'fraud' if i % 3 == 0 else 'credit'}-{tag}-{i}"
            created = direct.post("/api/2.0/mlflow/experiments/create", json={"name": name})
            assert created.status_code == 200, created.text
            readable |= {name} if name.startswith("fraud") else set()
            seeded(name)
    query = f"name LIKE '%-{tag}-%'"
    with stack.client("fay", "fraud-team") as fay:
        for method, route, key in (
            ("GET", "experiments/search", "experiments"),
            ("POST", "experiments/search", "experiments"),  # MLflow's client: a JSON body
            ("GET", "registered-models/search", "registered_models"),
            ("GET", "model-versions/search", "model_versions"),
        ):
            seen, token = [], None
            while True:
                params = {
                    "filter": query,
                    "max_results": 2,
                    **({"page_token": token} if token else {}),
                }
                page = (
                    fay.get(f"/api/2.0/mlflow/{route}", params=params)
                    if method == "GET"
                    else fay.post(f"/api/2.0/mlflow/{route}", json=params)
                )
                assert page.status_code == 200, page.text
                body = page.json()
                items = [item["name"] for item in body.get(key, [])]
                token = body.get("next_page_token")
                if token:
                    assert len(items) == 2, f"a short page of {route}: {items}"
                seen += items
                if not token:
                    break
            assert sorted(seen) == sorted(readable), (method, route)  # each once, none left out
