"""Which MLflow route touches what, at which level: the front door's route table.

Pure: a request's method, path and parameters in, a `Classified` out (what the caller must hold,
which registry move or tag change the policy may govern, which search answer to filter). No I/O;
`api.front_door.gate` applies it to the policy, looking up experiments where a route names a run
or a logged model.

The parameters are read the way MLflow's server reads them (`mlflow/server/handlers.py`,
`_get_request_message`): from the query string for a GET that has one, else from the JSON body
(decoded a second time when a legacy client double-encoded it), first value of a repeated query
parameter; `/get-artifact` and `/model-versions/get-artifact` read only the query. A field is
read by its proto name or its JSON name (`experimentId`), as MLflow's `ParseDict` accepts both.

MLflow 3's routes follow the permission table of MLflow's own auth app
(`mlflow/server/auth/__init__.py`): a trace, an assessment, a trace artifact by the trace's
experiment (looked up, like a run's); an evaluation dataset by every experiment it belongs to;
scorers by the `experiment_id` they name; issues, label schemas, review queues and
prompt-optimization jobs by the one they name or belong to (looked up); OTLP spans
(`/v1/traces`) by the experiment in the `X-Mlflow-Experiment-Id` header and, as MLflow adds
spans to a trace that exists whatever the header says, by every trace they add to. Prompts are
registered models.

Open only to registry admins, on purpose:
- MLflow's own webhooks: they would announce registry events past Signoff's governed ones, to
  any URL, without its SSRF checks; Signoff serves registry webhooks itself.
- The AI gateway: its set-up holds provider secrets and spends the organisation's money, and its
  invocation routes (`/gateway/...`) belong to no experiment a `tracking:` level could judge;
  only its static catalogue (supported providers and models) is open to every role.
- Workspaces, MLflow's users and roles, demo data, jobs: MLflow's own administration (Signoff
  talks to MLflow as one service account).
- A review queue's items (they name traces and other items of any experiment), scorer and
  issue invocations and `genai/evaluate` (they run jobs that spend the gateway's secrets), and
  any route not in the table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from policies import PermissionLevel
from policies.front_door import TrackingLevel

OTLP_TRACES = "/v1/traces"
PREFIXES: tuple[tuple[str, str], ...] = (
    ("/api/2.0/mlflow/", "v2"),
    ("/ajax-api/2.0/mlflow/", "v2"),
    ("/api/3.0/mlflow/", "v3"),
    ("/ajax-api/3.0/mlflow/", "v3"),
    ("/api/2.0/mlflow-artifacts/", "artifacts"),
    ("/ajax-api/2.0/mlflow-artifacts/", "artifacts"),
    ("/gateway/", "gateway"),
)
"""The path prefixes the front door forwards, and the route family each one serves."""
ROOT_ROUTES = ("/get-artifact", "/model-versions/get-artifact", OTLP_TRACES, "/version")
"""MLflow's routes outside the API prefixes: two artifact routes (query parameters only), OTLP
span ingestion (the experiment in a header), and MLflow's version (the client sends spans by
OTLP only to a server that says it is 3.4 or later)."""

NeedKind = Literal[
    "model", "new_model", "experiment", "experiment_name", "run", "logged_model", "trace",
    "new_trace", "dataset", "issue", "prompt_job", "label_schema", "review_queue", "admin",
    "role",
]  # fmt: skip


@dataclass(frozen=True)
class Need:
    """One thing the caller must hold. `key` names the model, experiment (id or name), run,
    logged model, trace or evaluation dataset; `level` is a PermissionLevel for models, a
    TrackingLevel for the rest. A `new_trace` may not exist yet (a trace being started): when it
    does, the caller needs the level on its experiment too."""

    kind: NeedKind
    key: str = ""
    level: PermissionLevel | TrackingLevel | None = None


@dataclass(frozen=True)
class Move:
    """A registry move the policy may govern: a stage transition, or an alias set or deleted."""

    kind: Literal["stage", "alias_set", "alias_delete"]
    model: str
    target: str
    """The stage, or the alias with its '@'."""
    version: str | None = None
    archive_existing_versions: bool = False


FilterKind = Literal["registered_models", "model_versions", "experiments", "datasets", "configs"]
"""The list in a search answer the gate filters to what the caller may read."""


@dataclass(frozen=True)
class Classified:
    route: str
    needs: tuple[Need, ...] = ()
    move: Move | None = None
    tag_keys: tuple[tuple[str, str], ...] = ()
    """(model, tag key) pairs the call sets or deletes."""
    filter: FilterKind | None = None
    renames_experiment: str | None = None
    """An experiment id whose cached name the call may change."""
    moves_dataset: str | None = None
    """A dataset id whose cached experiments the call may change."""


class BadRequest(ValueError):
    """The request cannot name what it touches (a required parameter missing or mistyped)."""


@dataclass(frozen=True)
class Params:
    """A request's parameters, as MLflow reads them."""

    values: Mapping[str, Any] = field(default_factory=dict)
    from_query: bool = False
    raw: bytes = b""
    """The body as sent, when it was read (an OTLP export is protobuf, not JSON)."""
    headers: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Any:  # noqa: ANN401 - whatever the JSON holds
        """A field by its proto name or, in a JSON body, its JSON name (`experimentId`): MLflow's
        `ParseDict` accepts both there, so the gate must judge the one the handler will read. A
        query string is read by proto names only (as MLflow reads it)."""
        return self.values.get(name) if self.from_query else _field(self.values, name)

    def text(self, name: str, *, required: bool = True) -> str:
        value = self.get(name)
        if isinstance(value, list) and self.from_query:
            value = value[0] if value else None
        if value is None or value == "":
            if required:
                raise BadRequest(f"Missing value for required parameter '{name}'.")
            return ""
        if isinstance(value, int | float) and not isinstance(value, bool) and name == "version":
            return str(value)
        if not isinstance(value, str):
            raise BadRequest(f"Invalid value for parameter '{name}': expected a string.")
        return value

    def texts(self, name: str) -> list[str]:
        value = self.get(name)
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in items):
            raise BadRequest(f"Invalid value for parameter '{name}': expected strings.")
        return list(items)

    def run_id(self) -> str:
        run_id = self.text("run_id", required=False) or self.text("run_uuid", required=False)
        if not run_id:
            raise BadRequest("Missing value for required parameter 'run_id'.")
        return run_id

    def tag_keys(self, name: str = "tags") -> list[str]:
        tags = self.get(name) or []
        if not isinstance(tags, list):
            raise BadRequest(f"Invalid value for parameter '{name}': expected a list of tags.")
        keys = []
        for tag in tags:
            if not isinstance(tag, dict) or not isinstance(tag.get("key"), str):
                raise BadRequest(f"Invalid value for parameter '{name}': each tag needs a key.")
            keys.append(tag["key"])
        return keys


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _field(values: Any, name: str) -> Any:  # noqa: ANN401
    """`values[name]`, or under its JSON name; both spellings at once is refused."""
    if not isinstance(values, Mapping):
        return None
    camel = _camel(name)
    value, alias = values.get(name), values.get(camel) if camel != name else None
    if value is not None and alias is not None:
        raise BadRequest(f"Invalid request: both '{name}' and '{camel}' are set.")
    return value if value is not None else alias


def dig(values: Any, *names: str) -> Any:  # noqa: ANN401
    """A nested field (`trace.trace_info.trace_id`), each level by either spelling."""
    for name in names:
        values = _field(values, name)
    return values


def parse_json_params(body: bytes, headers: Mapping[str, str] | None = None) -> Params:
    """The JSON body as MLflow's server reads it: `{}` when empty or not JSON, a string body
    decoded once more (legacy clients double-encode)."""
    try:
        data = json.loads(body) if body.strip() else {}
        if isinstance(data, str):
            data = json.loads(data)
    except ValueError:
        data = {}
    return Params(data if isinstance(data, dict) else {}, raw=body, headers=headers or {})


R = PermissionLevel
T = TrackingLevel
Builder = Callable[[Params], Classified]


def _model(level: PermissionLevel) -> Callable[[str], Builder]:
    def route(name: str) -> Builder:
        return lambda p: Classified(name, (Need("model", p.text("name"), level),))

    return route


_read_model, _edit_model, _manage_model = (
    _model(R.CAN_READ),
    _model(R.CAN_EDIT),
    _model(R.CAN_MANAGE),
)


def _run(level: TrackingLevel) -> Callable[[str], Builder]:
    def route(name: str) -> Builder:
        return lambda p: Classified(name, (Need("run", p.run_id(), level),))

    return route


_read_run, _edit_run, _manage_run = _run(T.READ), _run(T.EDIT), _run(T.MANAGE)


def _experiment(level: TrackingLevel) -> Callable[[str], Builder]:
    def route(name: str) -> Builder:
        return lambda p: Classified(name, (Need("experiment", p.text("experiment_id"), level),))

    return route


_edit_experiment, _manage_experiment = _experiment(T.EDIT), _experiment(T.MANAGE)


def _experiments_read(name: str, field_name: str = "experiment_ids") -> Builder:
    def build(p: Params) -> Classified:
        ids = p.texts(field_name)
        if not ids:
            raise BadRequest(f"Missing value for required parameter '{field_name}'.")
        return Classified(name, tuple(Need("experiment", i, T.READ) for i in ids))

    return build


def _create_model(p: Params) -> Classified:
    name = p.text("name")
    tags = tuple((name, key) for key in p.tag_keys())
    needs = (Need("new_model", name, R.CAN_EDIT),)
    return Classified("registered-models/create", needs, None, tags)


def _rename_model(p: Params) -> Classified:
    needs = (
        Need("model", p.text("name"), R.CAN_MANAGE),
        Need("new_model", p.text("new_name"), R.CAN_MANAGE),
    )
    return Classified("registered-models/rename", needs)


def _create_version(p: Params) -> Classified:
    name = p.text("name")
    tags = tuple((name, key) for key in p.tag_keys())
    return Classified("model-versions/create", (Need("model", name, R.CAN_EDIT),), None, tags)


def _tag(route: str) -> Builder:
    def build(p: Params) -> Classified:
        name = p.text("name")
        return Classified(route, (Need("model", name, R.CAN_EDIT),), None, ((name, p.text("key")),))

    return build


def _transition(p: Params) -> Classified:
    name = p.text("name")
    archive = p.values.get("archive_existing_versions")
    move = Move(
        "stage",
        name,
        p.text("stage"),
        version=p.text("version"),
        archive_existing_versions=archive is True or str(archive).lower() == "true",
    )
    return Classified("model-versions/transition-stage", (Need("model", name, R.CAN_EDIT),), move)


def _set_alias(p: Params) -> Classified:
    name = p.text("name")
    move = Move("alias_set", name, "@" + p.text("alias"), version=p.text("version"))
    return Classified("registered-models/alias", (Need("model", name, R.CAN_EDIT),), move)


def _delete_alias(p: Params) -> Classified:
    name = p.text("name")
    move = Move("alias_delete", name, "@" + p.text("alias"))
    return Classified("registered-models/alias", (Need("model", name, R.CAN_EDIT),), move)


def _update_experiment(p: Params) -> Classified:
    experiment_id = p.text("experiment_id")
    new_name = p.text("new_name", required=False)
    needs = [Need("experiment", experiment_id, T.MANAGE if new_name else T.EDIT)]
    if new_name:
        needs.append(Need("experiment_name", new_name, T.MANAGE))
    return Classified("experiments/update", tuple(needs), renames_experiment=experiment_id)


def _bulk_interval(p: Params) -> Classified:
    ids = p.texts("run_ids")
    if not ids:
        raise BadRequest("Missing value for required parameter 'run_ids'.")
    needs = tuple(Need("run", run_id, T.READ) for run_id in ids)
    return Classified("metrics/get-history-bulk-interval", needs)


def _search(route: str, kind: FilterKind) -> Builder:
    return lambda _p: Classified(route, (Need("role"),), filter=kind)


_V2: dict[tuple[str, str], Builder] = {
    # The model registry: by the model's name.
    ("POST", "registered-models/create"): _create_model,
    ("GET", "registered-models/get"): _read_model("registered-models/get"),
    ("POST", "registered-models/rename"): _rename_model,
    ("PATCH", "registered-models/update"): _edit_model("registered-models/update"),
    ("DELETE", "registered-models/delete"): _manage_model("registered-models/delete"),
    ("GET", "registered-models/search"): _search("registered-models/search", "registered_models"),
    ("GET", "registered-models/get-latest-versions"): _read_model("get-latest-versions"),
    ("POST", "registered-models/get-latest-versions"): _read_model("get-latest-versions"),
    ("POST", "registered-models/set-tag"): _tag("registered-models/set-tag"),
    ("DELETE", "registered-models/delete-tag"): _tag("registered-models/delete-tag"),
    ("POST", "registered-models/alias"): _set_alias,
    ("DELETE", "registered-models/alias"): _delete_alias,
    ("GET", "registered-models/alias"): _read_model("registered-models/alias"),
    ("POST", "model-versions/create"): _create_version,
    ("GET", "model-versions/get"): _read_model("model-versions/get"),
    ("GET", "model-versions/get-download-uri"): _read_model("model-versions/get-download-uri"),
    ("PATCH", "model-versions/update"): _edit_model("model-versions/update"),
    ("DELETE", "model-versions/delete"): _manage_model("model-versions/delete"),
    ("GET", "model-versions/search"): _search("model-versions/search", "model_versions"),
    ("POST", "model-versions/transition-stage"): _transition,
    ("POST", "model-versions/set-tag"): _tag("model-versions/set-tag"),
    ("DELETE", "model-versions/delete-tag"): _tag("model-versions/delete-tag"),
    # Tracking: by the experiment (a run's or a logged model's, looked up by the gate).
    ("POST", "experiments/create"): lambda p: Classified(
        "experiments/create", (Need("experiment_name", p.text("name"), T.EDIT),)
    ),
    ("GET", "experiments/get"): lambda p: Classified(
        "experiments/get", (Need("experiment", p.text("experiment_id"), T.READ),)
    ),
    ("GET", "experiments/get-by-name"): lambda p: Classified(
        "experiments/get-by-name", (Need("experiment_name", p.text("experiment_name"), T.READ),)
    ),
    ("POST", "experiments/delete"): _manage_experiment("experiments/delete"),
    ("POST", "experiments/restore"): _manage_experiment("experiments/restore"),
    ("POST", "experiments/update"): _update_experiment,
    ("POST", "experiments/set-experiment-tag"): _edit_experiment("set-experiment-tag"),
    ("POST", "experiments/delete-experiment-tag"): _edit_experiment("delete-experiment-tag"),
    ("GET", "experiments/search"): _search("experiments/search", "experiments"),
    ("POST", "experiments/search"): _search("experiments/search", "experiments"),
    ("POST", "runs/create"): _edit_experiment("runs/create"),
    ("GET", "runs/get"): _read_run("runs/get"),
    ("POST", "runs/delete"): _manage_run("runs/delete"),
    ("POST", "runs/restore"): _manage_run("runs/restore"),
    ("POST", "runs/search"): _experiments_read("runs/search"),
    ("GET", "metrics/get-history"): _read_run("metrics/get-history"),
    ("GET", "metrics/get-history-bulk-interval"): _bulk_interval,
    ("GET", "artifacts/list"): _read_run("artifacts/list"),
    ("POST", "logged-models"): _edit_experiment("logged-models/create"),
    ("POST", "logged-models/search"): _experiments_read("logged-models/search"),
}
for _name in (
    "update", "log-metric", "log-parameter", "log-batch", "log-model", "log-inputs", "outputs",
    "set-tag", "delete-tag",
):  # fmt: skip
    _V2[("POST", f"runs/{_name}")] = _edit_run(f"runs/{_name}")

# -- MLflow 3: traces, assessments, evaluation datasets, scorers, ... --------------------------


def _trace(level: TrackingLevel, field_name: str = "trace_id") -> Callable[[str], Builder]:
    def route(name: str) -> Builder:
        return lambda p: Classified(name, (Need("trace", p.text(field_name), level),))

    return route


_read_trace, _edit_trace = _trace(T.READ), _trace(T.EDIT)


def _each(kind: NeedKind, field_name: str, level: TrackingLevel, route: str) -> Builder:
    """Every id the list field names, at least one, each at `level`."""

    def build(p: Params) -> Classified:
        ids = p.texts(field_name)
        if not ids:
            raise BadRequest(f"Missing value for required parameter '{field_name}'.")
        return Classified(route, tuple(Need(kind, i, level) for i in ids))

    return build


def _start_trace_v3(p: Params) -> Classified:
    info = dig(p.values, "trace", "trace_info")
    experiment_id = dig(info, "trace_location", "mlflow_experiment", "experiment_id")
    if not isinstance(experiment_id, str) or not experiment_id:
        # Only an MLflow experiment is a location Signoff can judge (not a Databricks table).
        raise BadRequest(
            "Missing value for required parameter "
            "'trace.trace_info.trace_location.mlflow_experiment.experiment_id'."
        )
    needs = [Need("experiment", experiment_id, T.EDIT)]
    trace_id = dig(info, "trace_id")
    if isinstance(trace_id, str) and trace_id:  # MLflow adds to a trace that exists: judge it
        needs.append(Need("new_trace", trace_id, T.EDIT))
    return Classified("traces/start-v3", tuple(needs))


def _search_traces_v3(p: Params) -> Classified:
    locations = p.get("locations") or []
    if not isinstance(locations, list) or not locations:
        raise BadRequest("Missing value for required parameter 'locations'.")
    needs = []
    for location in locations:
        experiment_id = dig(location, "mlflow_experiment", "experiment_id")
        if not isinstance(experiment_id, str) or not experiment_id:
            return Classified("traces/search", (Need("admin"),))  # not an MLflow experiment
        needs.append(Need("experiment", experiment_id, T.READ))
    return Classified("traces/search", tuple(needs))


def _link_traces_to_run(p: Params) -> Classified:
    traces = tuple(Need("trace", i, T.READ) for i in p.texts("trace_ids"))
    return Classified("traces/link-to-run", (Need("run", p.run_id(), T.EDIT), *traces))


def _link_prompts(p: Params) -> Classified:
    refs = p.get("prompt_versions") or []
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise BadRequest("Invalid value for parameter 'prompt_versions': expected a list.")
    prompts = tuple(
        Need("model", Params(ref).text("name"), R.CAN_READ)
        for ref in refs  # a prompt is a registered model
    )
    return Classified("traces/link-prompts", (Need("trace", p.text("trace_id"), T.EDIT), *prompts))


def _create_dataset(p: Params) -> Classified:
    ids = p.texts("experiment_ids")
    if not ids:  # a dataset of no experiment: nothing to judge it by (MLflow's auth agrees)
        return Classified("datasets/create", (Need("admin"),))
    return Classified("datasets/create", tuple(Need("experiment", i, T.EDIT) for i in ids))


def _search_datasets(p: Params) -> Classified:
    """Datasets of the experiments named (each readable), or of every experiment: the answer
    keeps the datasets whose every experiment the caller may read."""
    needs = tuple(Need("experiment", i, T.READ) for i in p.texts("experiment_ids"))
    return Classified("datasets/search", needs or (Need("role"),), filter="datasets")


def _scorers(level: TrackingLevel, route: str) -> Builder:
    return lambda p: Classified(route, (Need("experiment", p.text("experiment_id"), level),))


def _list_scorers(p: Params) -> Classified:
    ids = [i for i in [p.text("experiment_id", required=False), *p.texts("experiment_ids")] if i]
    if not ids:  # across every experiment: MLflow filters it by its own accounts, not ours
        return Classified("scorers/list", (Need("admin"),))
    return Classified("scorers/list", tuple(Need("experiment", i, T.READ) for i in ids))


def _by_experiment(level: TrackingLevel, route: str) -> Builder:
    return lambda p: Classified(route, (Need("experiment", p.text("experiment_id"), level),))


def _owned(kind: NeedKind, field_name: str, level: TrackingLevel) -> Builder:
    return lambda p: Classified(kind, (Need(kind, p.text(field_name), level),))


def _role(route: str) -> Builder:
    return lambda _p: Classified(route, (Need("role"),))


def _otlp_export(p: Params) -> Classified:
    """`POST /v1/traces` (OTLP spans): into the experiment the header names, and into traces
    that already exist only when the caller may edit theirs (MLflow adds spans to them)."""
    experiment_id = p.headers.get("x-mlflow-experiment-id", "")
    if not experiment_id:
        raise BadRequest("Missing required header: X-Mlflow-Experiment-Id")
    traces = tuple(Need("new_trace", i, T.EDIT) for i in otlp_trace_ids(p))
    return Classified("otlp/traces", (Need("experiment", experiment_id, T.EDIT), *traces))


def otlp_trace_ids(p: Params) -> list[str]:
    """The MLflow trace ids (`tr-<hex>`) of the spans of an OTLP export (protobuf or JSON)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    if p.headers.get("content-encoding"):
        raise BadRequest("Signoff's front door reads OTLP exports uncompressed only.")
    if "json" in p.headers.get("content-type", ""):
        ids = [
            str(span.get("traceId", ""))
            for resource in _items(p.get("resource_spans"))
            for scope in _items(_field(resource, "scope_spans"))
            for span in _items(_field(scope, "spans"))
        ]
        return sorted({f"tr-{i.lower()}" for i in ids if i})
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(p.raw)
    except Exception as err:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise BadRequest("Invalid OpenTelemetry format") from err
    return sorted(
        {
            "tr-" + span.trace_id.hex()
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        }
    )


def _items(value: Any) -> list[Any]:  # noqa: ANN401
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


_V2_TRACES: dict[tuple[str, str], Builder] = {
    ("POST", "traces"): _by_experiment(T.EDIT, "traces/start"),
    ("GET", "traces"): _experiments_read("traces/search"),
    ("POST", "traces/delete-traces"): _by_experiment(T.MANAGE, "traces/delete-traces"),
    ("POST", "traces/link-to-run"): _link_traces_to_run,
    ("POST", "traces/link-prompts"): _link_prompts,
    ("GET", "get-trace-artifact"): _trace(T.READ, "request_id")("get-trace-artifact"),
    ("POST", "experiments/search-datasets"): _experiments_read("experiments/search-datasets"),
    ("POST", "runs/create-promptlab-run"): _by_experiment(T.EDIT, "runs/create-promptlab-run"),
    ("POST", "upload-artifact"): _edit_run("upload-artifact"),
    ("GET", "metrics/get-history-bulk"): _each("run", "run_id", T.READ, "get-history-bulk"),
    ("POST", "artifacts/presigned-download-url"): _read_run("presigned-download-url"),
    ("POST", "artifacts/presigned-upload-url"): lambda p: Classified(
        "presigned-upload-url",
        (Need("logged_model", p.text("model_id"), T.EDIT),)
        if p.text("model_id", required=False)
        else (Need("run", p.run_id(), T.EDIT),),
    ),
}

_V2.update(_V2_TRACES)

_V3: dict[tuple[str, str], Builder] = {
    ("GET", "server-info"): _role("server-info"),
    ("GET", "ui-telemetry"): _role("ui-telemetry"),
    ("POST", "ui-telemetry"): _role("ui-telemetry"),
    ("POST", "traces"): _start_trace_v3,
    ("POST", "traces/search"): _search_traces_v3,
    ("GET", "traces/get"): _read_trace("traces/get"),
    ("GET", "traces/batchGet"): _each("trace", "trace_ids", T.READ, "traces/batchGet"),
    ("POST", "traces/batchGetInfos"): _each("trace", "trace_ids", T.READ, "traces/batchGetInfos"),
    ("POST", "traces/delete-traces"): _by_experiment(T.MANAGE, "traces/delete-traces"),
    ("POST", "traces/metrics"): _experiments_read("traces/metrics"),
    ("POST", "traces/calculate-filter-correlation"): _experiments_read(
        "traces/calculate-filter-correlation"
    ),
    ("GET", "get-trace-artifact"): _trace(T.READ, "request_id")("get-trace-artifact"),
    ("POST", "datasets/create"): _create_dataset,
    ("GET", "datasets/search"): _search_datasets,
    ("POST", "datasets/search"): _search_datasets,
    ("POST", "scorers/register"): _scorers(T.EDIT, "scorers/register"),
    ("GET", "scorers/list"): _list_scorers,
    ("GET", "scorers/get"): _scorers(T.READ, "scorers/get"),
    ("GET", "scorers/versions"): _scorers(T.READ, "scorers/versions"),
    ("DELETE", "scorers/delete"): _scorers(T.MANAGE, "scorers/delete"),
    # Online scoring: the configurations answered are those of readable experiments.
    ("GET", "scorers/online-configs"): lambda _p: Classified(
        "scorers/online-configs", (Need("role"),), filter="configs"
    ),
    ("PUT", "scorers/online-config"): _scorers(T.EDIT, "scorers/online-config"),
    ("POST", "prompt-optimization/jobs"): _by_experiment(T.EDIT, "prompt-optimization/jobs"),
    ("GET", "prompt-optimization/jobs/search"): _by_experiment(T.READ, "prompt-optimization"),
    ("POST", "prompt-optimization/jobs/search"): _by_experiment(T.READ, "prompt-optimization"),
    ("POST", "issues"): _by_experiment(T.EDIT, "issues/create"),
    ("POST", "issues/search"): _by_experiment(T.READ, "issues/search"),
    ("POST", "label-schemas/create"): _by_experiment(T.EDIT, "label-schemas/create"),
    ("GET", "label-schemas/list"): _by_experiment(T.READ, "label-schemas/list"),
    ("GET", "label-schemas/get-by-name"): _by_experiment(T.READ, "label-schemas/get-by-name"),
    ("POST", "review-queues/create"): _by_experiment(T.EDIT, "review-queues/create"),
    ("GET", "review-queues/list"): _by_experiment(T.READ, "review-queues/list"),
    ("GET", "review-queues/get-by-name"): _by_experiment(T.READ, "review-queues/get-by-name"),
    ("POST", "review-queues/get-or-create-user"): _by_experiment(T.EDIT, "get-or-create-user"),
    # By the experiment of what they name (looked up by the gate).
    ("GET", "label-schemas/get"): _owned("label_schema", "schema_id", T.READ),
    ("PATCH", "label-schemas/update"): _owned("label_schema", "schema_id", T.MANAGE),
    ("DELETE", "label-schemas/delete"): _owned("label_schema", "schema_id", T.MANAGE),
    ("GET", "review-queues/get"): _owned("review_queue", "queue_id", T.READ),
    ("POST", "review-queues/update"): _owned("review_queue", "queue_id", T.EDIT),
    ("POST", "review-queues/delete"): _owned("review_queue", "queue_id", T.MANAGE),
}
for _name in ("supported-providers", "supported-models", "provider-config"):
    # The AI gateway's catalogue (providers, models, the shape of their settings): no secrets.
    _V3[("GET", f"gateway/{_name}")] = _role(f"gateway/{_name}")

_TRACE_ID = re.compile(
    r"traces/(?P<id>[^/]+)(?P<rest>|/info|/tags|/assessments|/assessments/(?P<aid>[^/]+))"
)
_DATASET_ID = re.compile(r"datasets/(?P<id>[^/]+)(?P<rest>/.*)?")
_OWNED_ID = re.compile(r"(?P<kind>issues|prompt-optimization/jobs)/(?P<id>[^/]+)(?P<rest>|/cancel)")
_OWNED_LEVELS: dict[tuple[str, str, str], TrackingLevel] = {
    ("issues", "GET", ""): T.READ,
    ("issues", "PATCH", ""): T.EDIT,
    ("prompt-optimization/jobs", "GET", ""): T.READ,
    ("prompt-optimization/jobs", "POST", "/cancel"): T.EDIT,
    ("prompt-optimization/jobs", "DELETE", ""): T.MANAGE,
}
_TRACE_LEVELS: dict[tuple[str, str, str], TrackingLevel] = {
    # (family, method, what follows the id) -> level on the trace's experiment
    ("v2", "PATCH", ""): T.EDIT,  # EndTrace
    ("v2", "GET", "/info"): T.READ,
    ("v2", "PATCH", "/tags"): T.EDIT,
    ("v2", "DELETE", "/tags"): T.EDIT,
    ("v3", "GET", ""): T.READ,
    ("v3", "PATCH", "/tags"): T.EDIT,
    ("v3", "DELETE", "/tags"): T.EDIT,
    ("v3", "POST", "/assessments"): T.EDIT,
    ("v3", "GET", "/assessments/"): T.READ,
    ("v3", "PATCH", "/assessments/"): T.EDIT,
    ("v3", "DELETE", "/assessments/"): T.EDIT,
}
_DATASET_LEVELS: dict[tuple[str, str], TrackingLevel] = {
    # (method, what follows the id) -> level on every experiment of the dataset
    ("GET", ""): T.READ,
    ("DELETE", ""): T.MANAGE,
    ("GET", "/experiment-ids"): T.READ,
    ("GET", "/records"): T.READ,
    ("POST", "/records"): T.EDIT,
    ("DELETE", "/records"): T.EDIT,
    ("PATCH", "/tags"): T.EDIT,
    ("POST", "/remove-experiments"): T.EDIT,
    ("POST", "/add-experiments"): T.EDIT,
}


def _trace_route(family: str, method: str, found: re.Match[str]) -> Route | None:
    rest = found["rest"]
    level = _TRACE_LEVELS.get((family, method, "/assessments/" if found["aid"] else rest))
    if level is None:
        return None
    trace_id = found["id"]
    return Route(
        lambda _p: Classified(f"traces{rest}", (Need("trace", trace_id, level),)),
        reads_params=False,
    )


def _dataset_route(method: str, found: re.Match[str]) -> Route | None:
    dataset_id, rest = found["id"], found["rest"] or ""
    tag_delete = method == "DELETE" and rest.startswith("/tags/") and rest.count("/") == 2
    level = T.EDIT if tag_delete else _DATASET_LEVELS.get((method, rest))
    if level is None:
        return None
    route = f"datasets{'/tags' if tag_delete else rest}"
    need = Need("dataset", dataset_id, level)
    if rest == "/add-experiments":  # and the experiments it joins
        return Route(
            lambda p: Classified(
                route,
                (need, *(Need("experiment", i, T.EDIT) for i in p.texts("experiment_ids"))),
                moves_dataset=dataset_id,
            )
        )
    moves = dataset_id if rest == "/remove-experiments" else None
    return Route(lambda _p: Classified(route, (need,), moves_dataset=moves), reads_params=False)


_LOGGED_MODEL = re.compile(r"logged-models/(?P<id>[^/]+)(?P<rest>/.*)?")
_ARTIFACT = re.compile(
    r"(?P<op>artifacts|mpu/create|mpu/complete|mpu/abort|presigned)(?:/(?P<path>.*))?"
)
_EXPERIMENT_ID = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Route:
    """A matched route: whether its parameters are needed (`reads_params`), and how to
    classify the call once they are known."""

    build: Builder
    reads_params: bool = True
    query_only: bool = False


def _admin(route: str) -> Route:
    return Route(lambda _p: Classified(route, (Need("admin"),)), reads_params=False)


def match(method: str, path: str) -> Route | None:
    """The route for a request, or None when the path is not one the front door forwards."""
    if path == "/get-artifact":
        return Route(lambda p: Classified("get-artifact", (Need("run", p.run_id(), T.READ),)),
                     query_only=True)  # fmt: skip
    if path == "/model-versions/get-artifact":
        return Route(_read_model("model-versions/get-artifact"), query_only=True)
    if path == "/version":
        return Route(_role("version"), reads_params=False)
    if path == OTLP_TRACES:
        return Route(_otlp_export) if method == "POST" else _admin(f"{method} {path}")
    found_prefix = next(((p, f) for p, f in PREFIXES if path.startswith(p)), None)
    if found_prefix is None:
        return None
    prefix, family = found_prefix
    rest = path[len(prefix) :]
    if family == "artifacts":
        return _artifact_route(method, rest)
    if family == "gateway":
        return _admin(f"{method} gateway/{rest}")
    table = _V2 if family == "v2" else _V3
    build = table.get((method, rest))
    if build is not None:
        return Route(build)
    return _with_id(family, method, rest) or _admin(f"{method} {rest}")


def _with_id(family: str, method: str, rest: str) -> Route | None:
    """A route whose path names what it touches: a logged model, a trace, a dataset."""
    if family == "v2" and (found := _LOGGED_MODEL.fullmatch(rest)) and found["id"] != "search":
        return _logged_model_route(method, found["id"], found["rest"] or "")
    if found := _TRACE_ID.fullmatch(rest):
        return _trace_route(family, method, found)
    if family == "v3" and (found := _DATASET_ID.fullmatch(rest)):
        return _dataset_route(method, found)
    if family == "v3" and (found := _OWNED_ID.fullmatch(rest)):
        level = _OWNED_LEVELS.get((found["kind"], method, found["rest"]))
        if level is not None:
            kind: NeedKind = "issue" if found["kind"] == "issues" else "prompt_job"
            key = found["id"]
            return Route(lambda _p: Classified(kind, (Need(kind, key, level),)), reads_params=False)
    return None


def _logged_model_route(method: str, model_id: str, rest: str) -> Route:
    level = T.READ if method == "GET" else T.EDIT
    if method == "DELETE" and not rest:
        level = T.MANAGE
    return Route(
        lambda _p: Classified("logged-models", (Need("logged_model", model_id, level),)),
        reads_params=False,
    )


def _artifact_route(method: str, rest: str) -> Route:
    """`mlflow-artifacts/...`: the artifact's path starts with the experiment's id for every
    experiment whose artifacts MLflow stores itself (`mlflow-artifacts:/<id>/...`)."""
    found = _ARTIFACT.fullmatch(rest)
    if found is None:
        return _admin(f"{method} mlflow-artifacts/{rest}")
    op, in_path = found["op"], found["path"]
    if op == "artifacts" and in_path is None:
        if method != "GET":
            return _admin(f"{method} mlflow-artifacts/{rest}")
        return Route(
            lambda p: _artifact_access("artifacts", p.text("path", required=False), T.READ),
            query_only=True,
        )
    if in_path is None:
        return _admin(f"{method} mlflow-artifacts/{rest}")
    level = {"GET": T.READ, "PUT": T.EDIT, "POST": T.EDIT, "DELETE": T.MANAGE}.get(method)
    wrong_method = (op == "presigned" and method != "GET") or (
        op.startswith("mpu") and method != "POST"
    )
    if level is None or wrong_method:
        return _admin(f"{method} mlflow-artifacts/{rest}")
    path = in_path
    return Route(lambda _p: _artifact_access(op, path, level), reads_params=False)


def _artifact_access(op: str, path: str, level: TrackingLevel) -> Classified:
    route = f"mlflow-artifacts/{op}"
    check_artifact_path(path)
    first = path.strip("/").split("/", 1)[0]
    if not _EXPERIMENT_ID.fullmatch(first):
        # The store's root, or an artifact location of a name: no experiment to judge it by.
        return Classified(route, (Need("admin"),))
    return Classified(route, (Need("experiment", first, level),))


def check_artifact_path(path: str) -> None:
    """Refuse what MLflow's `validate_path_is_safe` would read differently from us: a second
    level of percent-encoding, `..` and `.` segments, backslashes, absolute paths."""
    if "%" in path or "\\" in path or path.startswith("/") or unquote(path) != path:
        raise BadRequest(f"Invalid artifact path: {path!r}")
    if any(part in (".", "..") for part in path.split("/")):
        raise BadRequest(f"Invalid artifact path: {path!r}")


def check_path(path: str) -> None:
    """Refuse paths MLflow's router could read as another route: empty, `.` or `..` segments,
    and a `?` or `#` percent-encoded into the path (no MLflow id holds one)."""
    if "?" in path or "#" in path:
        raise BadRequest(f"Invalid path: {path!r}")
    parts = path.split("/")[1:]
    if any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in (".", ".."):
        raise BadRequest(f"Invalid path: {path!r}")
