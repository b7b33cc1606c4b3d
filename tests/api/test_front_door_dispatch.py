"""Which calls the front door's first route takes (pure: the app's routes, no stack): exactly
those the app's own routing would give the catch-all registered last, so Signoff's own routes
under MLflow's prefixes keep winning and keep their 405s."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from starlette.routing import Match

from api.app import create_app
from api.routers import front_door
from api.routers.front_door import DOOR_ROUTE, FrontDoorFirst
from api.settings import ApiSettings


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(ApiSettings())


def scope_of(app: FastAPI, method: str, path: str) -> dict:
    return {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(),
        "query_string": b"", "headers": [], "root_path": "", "app": app,
    }  # fmt: skip


def routed_to_the_catch_all(app: FastAPI, method: str, path: str) -> bool:
    """What the app's routing picks without the first route: the first route matching in
    full, else the first matching the path only (its 405)."""
    chosen = None
    for route in app.router.routes:
        if isinstance(route, FrontDoorFirst):
            continue
        match, _ = route.matches(scope_of(app, method, path))
        if match is Match.FULL:
            chosen = route
            break
        if match is Match.PARTIAL and chosen is None:
            chosen = route
    if chosen is None:
        return False
    full, _ = chosen.matches(scope_of(app, method, path))
    return getattr(chosen, "original_router", None) is front_door.router and full is Match.FULL


CALLS = [
    ("GET", "/api/2.0/mlflow/model-versions/get"),
    ("POST", "/api/2.0/mlflow/model-versions/transition-stage"),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/a.bin"),
    ("GET", "/ajax-api/2.0/mlflow/registered-models/search"),
    ("POST", "/api/3.0/mlflow/traces"),
    ("GET", "/get-artifact"),
    ("GET", "/model-versions/get-artifact"),
    ("POST", "/v1/traces"),
    ("GET", "/version"),
    ("GET", "/gateway/anything"),
    # Signoff's own, under MLflow's prefix: served by Signoff, or its 405.
    ("POST", "/api/2.0/mlflow/transition-requests/create"),
    ("GET", "/api/2.0/mlflow/transition-requests/create"),
    ("GET", "/api/2.0/mlflow/transition-requests/list"),
    ("PATCH", "/api/2.0/mlflow/comments/update"),
    ("POST", "/api/2.0/mlflow/comments/update"),
    ("POST", "/api/2.0/mlflow/databricks/model-versions/transition-stage"),
    ("DELETE", "/api/2.0/mlflow/registry-webhooks/delete"),
    # Methods the door does not take (the catch-all's 405), and paths it does not serve.
    ("HEAD", "/api/2.0/mlflow/model-versions/get"),
    ("OPTIONS", "/api/2.0/mlflow/model-versions/get"),
    ("GET", "/healthz"),
    ("GET", "/api/2.0/signoff/transition-requests/get"),
    ("GET", "/mlflow/ajax-api/2.0/mlflow/experiments/search"),
    ("GET", "/api/2.0/mlflowish"),
    ("GET", "/"),
]


@pytest.mark.parametrize(("method", "path"), CALLS)
def test_the_first_route_takes_exactly_what_the_catch_all_would(
    app: FastAPI, method: str, path: str
) -> None:
    first = app.router.routes[0]
    assert isinstance(first, FrontDoorFirst)
    match, child = first.matches(scope_of(app, method, path))
    assert (match is Match.FULL) == routed_to_the_catch_all(app, method, path)
    if match is Match.FULL:  # metrics and logs name the catch-all's template, as before
        assert child["route"] is DOOR_ROUTE
        assert DOOR_ROUTE.path == "/{mlflow_path:path}"


def test_the_forwarded_calls_are_taken_first_and_signoffs_own_are_not(app: FastAPI) -> None:
    first = app.router.routes[0]
    taken = {call for call in CALLS if first.matches(scope_of(app, *call))[0] is Match.FULL}
    assert ("GET", "/api/2.0/mlflow/model-versions/get") in taken
    assert ("GET", "/get-artifact") in taken
    assert not any("transition-requests" in path or "comments" in path for _, path in taken)
