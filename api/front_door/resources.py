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
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar
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


def _dig(body: dict, *names: str) -> Any:  # noqa: ANN401
    """`body[a][b]...`, or "" where a level is missing."""
    value: Any = body
    for name in names:
        value = value.get(name, {}) if isinstance(value, dict) else {}
    return value if value != {} else ""


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
        return await self._lookup(
            self._names,
            experiment_id,
            "/api/2.0/mlflow/experiments/get",
            {"experiment_id": experiment_id},
            missing=f"No Experiment with id={experiment_id} exists",
            found=lambda body: str(_dig(body, "experiment", "name")),
        )

    async def run_experiment(self, run_id: str) -> str:
        return await self._lookup(
            self._run_experiments,
            run_id,
            "/api/2.0/mlflow/runs/get",
            {"run_id": run_id},
            missing=f"Run with id={run_id} not found",
            found=lambda body: str(_dig(body, "run", "info", "experiment_id")),
        )

    async def logged_model_experiment(self, model_id: str) -> str:
        return await self._lookup(
            self._model_experiments,
            model_id,
            f"/api/2.0/mlflow/logged-models/{_segment(model_id)}",
            None,
            missing=f"Logged model with ID '{model_id}' not found.",
            found=lambda body: str(_dig(body, "model", "info", "experiment_id")),
        )

    async def trace_experiment(self, trace_id: str) -> str:
        """A trace in a Databricks table, not an experiment, has nothing to judge it by: it
        counts as missing."""
        return await self._lookup(
            self._trace_experiments,
            trace_id,
            f"/api/3.0/mlflow/traces/{_segment(trace_id)}",
            None,
            missing=f"Trace with ID '{trace_id}' not found.",
            found=lambda body: str(
                _dig(
                    body,
                    "trace",
                    "trace_info",
                    "trace_location",
                    "mlflow_experiment",
                    "experiment_id",
                )
            ),  # fmt: skip
            required=True,
        )

    async def dataset_experiments(self, dataset_id: str) -> tuple[str, ...]:
        def experiment_ids(body: dict) -> tuple[str, ...]:
            found = body.get("experiment_ids", [])
            return tuple(str(i) for i in found) if isinstance(found, list) else ()

        return await self._lookup(
            self._dataset_experiments,
            dataset_id,
            f"/api/3.0/mlflow/datasets/{_segment(dataset_id)}/experiment-ids",
            None,
            missing=f"Evaluation dataset with id '{dataset_id}' not found",
            found=experiment_ids,
        )

    async def owner_experiment(self, kind: OwnedKind, key: str) -> str:
        """The experiment of an issue, a prompt-optimization job, a label schema or a review
        queue (none of them changes experiment)."""
        path, param, field_name, what = _OWNED[kind]
        return await self._lookup(
            self._owned,
            (kind, key),
            path.format(key=_segment(key)),
            {param: key} if param else None,
            missing=f"{what} with ID '{key}' not found.",
            found=lambda body: str(_dig(body, field_name, "experiment_id")),
            required=True,
        )

    async def _lookup(
        self,
        cache: _Cache[K, V],
        key: K,
        path: str,
        params: dict[str, str] | None,
        *,
        missing: str,
        found: Callable[[dict], V],
        required: bool = False,
    ) -> V:
        """The cached answer for `key`, else MLflow's (`found` reads it from the body), kept;
        `required`: an empty answer is `Missing`, and is not kept."""
        value = cache.get(key)
        if value is None:
            value = found(await self._get(path, params, missing=missing))
            if required and not value:
                raise Missing(missing)
            cache.put(key, value)
        return value

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
