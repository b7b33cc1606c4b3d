"""What a tracking call touches, looked up in MLflow with Signoff's credentials: the name of an
experiment (levels bind to names), the experiment of a run, a logged model or a trace, and the
experiments of an evaluation dataset.

A run, a logged model and a trace never change experiment, so those answers are kept (bounded,
least recently used first out). An experiment's name can change (renamed), and a dataset's
experiments too (`add-experiments`, `remove-experiments`), so those are kept for `NAME_TTL_S`
at most, and forgotten at once when the change goes through the front door. Only found things
are kept: a miss asks again next time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, Literal, TypeVar
from urllib.parse import quote

from api.front_door.forwarding import Upstream
from api.services.errors import NotFound, UpstreamFailed

NAME_TTL_S = 30.0
MAX_ENTRIES = 50_000

K = TypeVar("K")
V = TypeVar("V")


class _Cache(Generic[K, V]):
    def __init__(self, ttl_s: float | None, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if self.ttl_s is not None and expires < time.monotonic():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        expires = time.monotonic() + (self.ttl_s or 0.0)
        self._items[key] = (expires, value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def forget(self, key: K) -> None:
        self._items.pop(key, None)


OwnedKind = Literal["issue", "prompt_job", "label_schema", "review_queue"]
_OWNED: dict[OwnedKind, tuple[str, str | None, str, str]] = {
    # kind -> (MLflow's GET path, its id parameter, the answer's field, what to call it)
    "issue": ("/api/3.0/mlflow/issues/{key}", None, "issue", "Issue"),
    "prompt_job": (
        "/api/3.0/mlflow/prompt-optimization/jobs/{key}",
        None,
        "job",
        "Prompt optimization job",
    ),
    "label_schema": (
        "/api/3.0/mlflow/label-schemas/get",
        "schema_id",
        "label_schema",
        "Label schema",
    ),
    "review_queue": (
        "/api/3.0/mlflow/review-queues/get",
        "queue_id",
        "review_queue",
        "Review queue",
    ),
}


def _segment(value: str) -> str:
    """An id as one path segment (percent-encoded: it cannot name another route)."""
    return quote(value, safe="")


class Missing(NotFound):
    """What the call names does not exist in MLflow (or the caller may not know it does)."""


class Resources:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self._names: _Cache[str, str] = _Cache(NAME_TTL_S)
        self._run_experiments: _Cache[str, str] = _Cache(None)
        self._model_experiments: _Cache[str, str] = _Cache(None)
        self._trace_experiments: _Cache[str, str] = _Cache(None)
        self._dataset_experiments: _Cache[str, tuple[str, ...]] = _Cache(NAME_TTL_S)
        self._owned: _Cache[tuple[OwnedKind, str], str] = _Cache(None)

    async def experiment_name(self, experiment_id: str) -> str:
        name = self._names.get(experiment_id)
        if name is None:
            body = await self._get(
                "/api/2.0/mlflow/experiments/get",
                {"experiment_id": experiment_id},
                missing=f"No Experiment with id={experiment_id} exists",
            )
            name = str(body.get("experiment", {}).get("name", ""))
            self._names.put(experiment_id, name)
        return name

    async def run_experiment(self, run_id: str) -> str:
        experiment_id = self._run_experiments.get(run_id)
        if experiment_id is None:
            body = await self._get(
                "/api/2.0/mlflow/runs/get",
                {"run_id": run_id},
                missing=f"Run with id={run_id} not found",
            )
            experiment_id = str(body.get("run", {}).get("info", {}).get("experiment_id", ""))
            self._run_experiments.put(run_id, experiment_id)
        return experiment_id

    async def logged_model_experiment(self, model_id: str) -> str:
        experiment_id = self._model_experiments.get(model_id)
        if experiment_id is None:
            body = await self._get(
                f"/api/2.0/mlflow/logged-models/{_segment(model_id)}",
                None,
                missing=f"Logged model with ID '{model_id}' not found.",
            )
            experiment_id = str(body.get("model", {}).get("info", {}).get("experiment_id", ""))
            self._model_experiments.put(model_id, experiment_id)
        return experiment_id

    async def trace_experiment(self, trace_id: str) -> str:
        experiment_id = self._trace_experiments.get(trace_id)
        if experiment_id is None:
            body = await self._get(
                f"/api/3.0/mlflow/traces/{_segment(trace_id)}",
                None,
                missing=f"Trace with ID '{trace_id}' not found.",
            )
            location = body.get("trace", {}).get("trace_info", {}).get("trace_location", {})
            experiment_id = str(location.get("mlflow_experiment", {}).get("experiment_id", ""))
            if not experiment_id:  # a Databricks table, not an experiment: nothing to judge by
                raise Missing(f"Trace with ID '{trace_id}' not found.")
            self._trace_experiments.put(trace_id, experiment_id)
        return experiment_id

    async def dataset_experiments(self, dataset_id: str) -> tuple[str, ...]:
        experiment_ids = self._dataset_experiments.get(dataset_id)
        if experiment_ids is None:
            body = await self._get(
                f"/api/3.0/mlflow/datasets/{_segment(dataset_id)}/experiment-ids",
                None,
                missing=f"Evaluation dataset with id '{dataset_id}' not found",
            )
            found = body.get("experiment_ids", [])
            experiment_ids = tuple(str(i) for i in found) if isinstance(found, list) else ()
            self._dataset_experiments.put(dataset_id, experiment_ids)
        return experiment_ids

    async def owner_experiment(self, kind: OwnedKind, key: str) -> str:
        """The experiment of an issue, a prompt-optimization job, a label schema or a review
        queue (none of them changes experiment)."""
        cached = self._owned.get((kind, key))
        if cached is not None:
            return cached
        path, param, field_name, what = _OWNED[kind]
        body = await self._get(
            path.format(key=_segment(key)),
            {param: key} if param else None,
            missing=f"{what} with ID '{key}' not found.",
        )
        experiment_id = str(body.get(field_name, {}).get("experiment_id", ""))
        if not experiment_id:
            raise Missing(f"{what} with ID '{key}' not found.")
        self._owned.put((kind, key), experiment_id)
        return experiment_id

    def forget_experiment(self, experiment_id: str) -> None:
        self._names.forget(experiment_id)

    def forget_dataset(self, dataset_id: str) -> None:
        self._dataset_experiments.forget(dataset_id)

    async def _get(self, path: str, params: dict[str, str] | None, *, missing: str) -> dict:
        status, body = await self.upstream.call("GET", path, params)
        if status == 200:
            return body
        if status in (400, 404):
            raise Missing(missing)
        raise UpstreamFailed(
            f"MLflow answered {status} when Signoff looked up what the call touches: "
            f"{body.get('message', '')}",
            which="mlflow",
        )
