"""The front door's route table for MLflow 3's routes (pure: no stack): what each call touches
and at which level, read the way MLflow's handlers read it."""

from __future__ import annotations

import json

import pytest

from api.front_door.routes import (
    BadRequest,
    Need,
    Params,
    check_path,
    match,
    otlp_trace_ids,
    parse_json_params,
)
from policies import PermissionLevel
from policies.front_door import TrackingLevel as T

V2, V3 = "/api/2.0/mlflow/", "/api/3.0/mlflow/"


def needs(method: str, path: str, body: dict | None = None, **query: object) -> tuple[Need, ...]:
    route = match(method, path)
    assert route is not None
    if query:
        params = Params({k: v if isinstance(v, list) else [v] for k, v in query.items()}, True)
    else:
        params = parse_json_params(json.dumps(body or {}).encode())
    return route.build(params).needs


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("GET", V3 + "traces/tr-1", None, [Need("trace", "tr-1", T.READ)]),
        ("PATCH", V3 + "traces/tr-1/tags", None, [Need("trace", "tr-1", T.EDIT)]),
        ("POST", V3 + "traces/tr-1/assessments", None, [Need("trace", "tr-1", T.EDIT)]),
        ("GET", V3 + "traces/tr-1/assessments/a-1", None, [Need("trace", "tr-1", T.READ)]),
        ("DELETE", V3 + "traces/tr-1/assessments/a-1", None, [Need("trace", "tr-1", T.EDIT)]),
        ("GET", V2 + "traces/tr-1/info", None, [Need("trace", "tr-1", T.READ)]),
        ("PATCH", V2 + "traces/tr-1", None, [Need("trace", "tr-1", T.EDIT)]),
        ("POST", V2 + "traces", {"experiment_id": "4"}, [Need("experiment", "4", T.EDIT)]),
        ("POST", V3 + "traces/delete-traces", {"experiment_id": "4"},
         [Need("experiment", "4", T.MANAGE)]),
        ("POST", V3 + "traces/batchGetInfos", {"trace_ids": ["a", "b"]},
         [Need("trace", "a", T.READ), Need("trace", "b", T.READ)]),
        ("POST", V3 + "traces/search",
         {"locations": [{"mlflow_experiment": {"experiment_id": "4"}},
                        {"mlflowExperiment": {"experimentId": "5"}}]},
         [Need("experiment", "4", T.READ), Need("experiment", "5", T.READ)]),
        ("POST", V2 + "traces/link-to-run", {"run_id": "r", "trace_ids": ["a"]},
         [Need("run", "r", T.EDIT), Need("trace", "a", T.READ)]),
        ("POST", V2 + "traces/link-prompts",
         {"trace_id": "a", "prompt_versions": [{"name": "p", "version": "1"}]},
         [Need("trace", "a", T.EDIT), Need("model", "p", PermissionLevel.CAN_READ)]),
        ("POST", V3 + "datasets/create", {"name": "d", "experiment_ids": ["4"]},
         [Need("experiment", "4", T.EDIT)]),
        ("GET", V3 + "datasets/d-1/records", None, [Need("dataset", "d-1", T.READ)]),
        ("DELETE", V3 + "datasets/d-1", None, [Need("dataset", "d-1", T.MANAGE)]),
        ("DELETE", V3 + "datasets/d-1/tags/k", None, [Need("dataset", "d-1", T.EDIT)]),
        ("POST", V3 + "datasets/d-1/add-experiments", {"experiment_ids": ["7"]},
         [Need("dataset", "d-1", T.EDIT), Need("experiment", "7", T.EDIT)]),
        ("POST", V3 + "scorers/register", {"experiment_id": "4", "name": "s"},
         [Need("experiment", "4", T.EDIT)]),
        ("DELETE", V3 + "scorers/delete", {"experiment_id": "4", "name": "s"},
         [Need("experiment", "4", T.MANAGE)]),
        ("PATCH", V3 + "issues/i-1", None, [Need("issue", "i-1", T.EDIT)]),
        ("DELETE", V3 + "prompt-optimization/jobs/j-1", None,
         [Need("prompt_job", "j-1", T.MANAGE)]),
        ("POST", V3 + "prompt-optimization/jobs", {"experiment_id": "4"},
         [Need("experiment", "4", T.EDIT)]),
        ("POST", V3 + "review-queues/delete", {"queue_id": "q"},
         [Need("review_queue", "q", T.MANAGE)]),
        ("POST", V3 + "review-queues/items/add", {"queue_id": "q"}, [Need("admin")]),
        # Left to registry admins: MLflow's webhooks, the gateway's set-up, workspaces.
        ("POST", V2 + "webhooks", {}, [Need("admin")]),
        ("POST", V3 + "gateway/secrets/create", {}, [Need("admin")]),
        ("POST", V3 + "workspaces", {}, [Need("admin")]),
        ("POST", "/gateway/chat/mlflow/invocations", {}, [Need("admin")]),
        ("GET", V3 + "gateway/supported-providers", None, [Need("role")]),
    ],
)  # fmt: skip
def test_mlflow_3_routes_need_levels_on_the_experiment_they_belong_to(
    method: str, path: str, body: dict | None, expected: list[Need]
) -> None:
    assert list(needs(method, path, body)) == expected


def test_a_trace_started_or_spans_exported_need_the_experiment_and_any_trace_they_add_to() -> None:
    body = {
        "trace": {
            "trace_info": {
                "trace_id": "tr-9",
                "trace_location": {"mlflow_experiment": {"experiment_id": "4"}},
            }
        }
    }
    assert needs("POST", V3 + "traces", body) == (
        Need("experiment", "4", T.EDIT),
        Need("new_trace", "tr-9", T.EDIT),
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    export = ExportTraceServiceRequest()
    span = export.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes.fromhex("0a" * 16)
    raw = export.SerializeToString()
    params = Params({}, raw=raw, headers={"x-mlflow-experiment-id": "4"})
    route = match("POST", "/v1/traces")
    assert route is not None
    assert route.build(params).needs == (
        Need("experiment", "4", T.EDIT),
        Need("new_trace", "tr-" + "0a" * 16, T.EDIT),
    )
    assert otlp_trace_ids(params) == ["tr-" + "0a" * 16]
    with pytest.raises(BadRequest, match="X-Mlflow-Experiment-Id"):
        route.build(Params({}, raw=raw))


def test_both_spellings_of_a_field_at_once_are_refused() -> None:
    with pytest.raises(BadRequest, match="both"):
        needs("POST", V2 + "runs/create", {"experiment_id": "1", "experimentId": "2"})
    assert needs("POST", V2 + "runs/create", {"experimentId": "2"}) == (
        Need("experiment", "2", T.EDIT),
    )
    # MLflow reads a query string by proto names only: an alias there names nothing.
    assert needs("GET", V3 + "scorers/list", experimentId="2") == (Need("admin"),)


def test_trace_searches_need_every_experiment_they_name() -> None:
    assert needs("GET", V2 + "traces", experiment_ids=["1", "2"]) == (
        Need("experiment", "1", T.READ),
        Need("experiment", "2", T.READ),
    )
    with pytest.raises(BadRequest):
        needs("POST", V3 + "traces/search", {})
    assert needs("GET", V3 + "scorers/list") == (Need("admin"),)  # across every experiment


@pytest.mark.parametrize("path", [V3 + "traces/a?b", V2 + "logged-models/x#y", V2 + "runs//get"])
def test_paths_mlflow_could_read_otherwise_are_refused(path: str) -> None:
    with pytest.raises(BadRequest, match="Invalid path"):
        check_path(path)
