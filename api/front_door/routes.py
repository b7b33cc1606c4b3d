"""Which MLflow route touches what, at which level: the front door's route table.

Pure: a request's method, path and parameters in, a `Classified` out (what the caller must hold,
which registry move or tag change the policy may govern, which search answer to filter). No I/O;
`api.front_door.gate` applies it to the policy, looking up experiments where a route names a run
or a logged model.

The parameters are read the way MLflow's server reads them (`mlflow/server/handlers.py`,
`_get_request_message`): from the query string for a GET that has one, else from the JSON body
(decoded a second time when a legacy client double-encoded it), first value of a repeated query
parameter; `/get-artifact` and `/model-versions/get-artifact` read only the query. A route not
in the table (traces, the AI gateway, datasets, scorers, MLflow's own webhooks, workspaces, ...)
is open only to registry admins.
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

PREFIXES: tuple[tuple[str, str], ...] = (
    ("/api/2.0/mlflow/", "v2"),
    ("/ajax-api/2.0/mlflow/", "v2"),
    ("/api/3.0/mlflow/", "v3"),
    ("/ajax-api/3.0/mlflow/", "v3"),
    ("/api/2.0/mlflow-artifacts/", "artifacts"),
    ("/ajax-api/2.0/mlflow-artifacts/", "artifacts"),
)
"""The path prefixes the front door forwards, and the route family each one serves."""
ROOT_ROUTES = ("/get-artifact", "/model-versions/get-artifact")
"""MLflow's two artifact routes outside the API prefixes (query parameters only)."""

NeedKind = Literal[
    "model", "new_model", "experiment", "experiment_name", "run", "logged_model", "admin", "role"
]


@dataclass(frozen=True)
class Need:
    """One thing the caller must hold. `key` names the model, experiment (id or name), run or
    logged model; `level` is a PermissionLevel for models, a TrackingLevel for the rest."""

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


@dataclass(frozen=True)
class Classified:
    route: str
    needs: tuple[Need, ...] = ()
    move: Move | None = None
    tag_keys: tuple[tuple[str, str], ...] = ()
    """(model, tag key) pairs the call sets or deletes."""
    filter: Literal["registered_models", "model_versions", "experiments"] | None = None
    renames_experiment: str | None = None
    """An experiment id whose cached name the call may change."""


class BadRequest(ValueError):
    """The request cannot name what it touches (a required parameter missing or mistyped)."""


@dataclass(frozen=True)
class Params:
    """A request's parameters, as MLflow reads them."""

    values: Mapping[str, Any] = field(default_factory=dict)
    from_query: bool = False

    def text(self, name: str, *, required: bool = True) -> str:
        value = self.values.get(name)
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
        value = self.values.get(name)
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
        tags = self.values.get(name) or []
        if not isinstance(tags, list):
            raise BadRequest(f"Invalid value for parameter '{name}': expected a list of tags.")
        keys = []
        for tag in tags:
            if not isinstance(tag, dict) or not isinstance(tag.get("key"), str):
                raise BadRequest(f"Invalid value for parameter '{name}': each tag needs a key.")
            keys.append(tag["key"])
        return keys


def parse_json_params(body: bytes) -> Params:
    """The JSON body as MLflow's server reads it: `{}` when empty or not JSON, a string body
    decoded once more (legacy clients double-encode)."""
    try:
        data = json.loads(body) if body.strip() else {}
        if isinstance(data, str):
            data = json.loads(data)
    except ValueError:
        data = {}
    return Params(data if isinstance(data, dict) else {})


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


def _search(route: str, kind: Literal["registered_models", "model_versions", "experiments"]):
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

_V3: dict[tuple[str, str], Builder] = {
    ("GET", "server-info"): lambda _p: Classified("server-info", (Need("role"),)),
}

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
    found_prefix = next(((p, f) for p, f in PREFIXES if path.startswith(p)), None)
    if found_prefix is None:
        return None
    prefix, family = found_prefix
    rest = path[len(prefix) :]
    if family == "artifacts":
        return _artifact_route(method, rest)
    table = _V2 if family == "v2" else _V3
    build = table.get((method, rest))
    if build is not None:
        return Route(build)
    if family == "v2" and (found := _LOGGED_MODEL.fullmatch(rest)) and found["id"] != "search":
        return _logged_model_route(method, found["id"], found["rest"] or "")
    return _admin(f"{method} {rest}")


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
    """Refuse paths MLflow's router could read as another route: empty, `.` or `..` segments."""
    parts = path.split("/")[1:]
    if any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in (".", ".."):
        raise BadRequest(f"Invalid path: {path!r}")
