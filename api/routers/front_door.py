"""The MLflow front door's catch-all routes: every MLflow REST call Signoff does not serve itself
(under `/api/2.0/mlflow/`, `/ajax-api/2.0/mlflow/`, `/api/3.0/mlflow/`, `/ajax-api/3.0/mlflow/`,
`/api/2.0/mlflow-artifacts/`, plus `/get-artifact` and `/model-versions/get-artifact`) is
authorized (`api.front_door.gate`) and forwarded to MLflow (`api.front_door.forwarding`).

Registered after every other router, so Signoff's own routes under the same prefixes
(transition requests, comments, registry webhooks, break-glass) keep winning. Left out of the
OpenAPI document: MLflow's REST API documents these routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from api.deps import PrincipalDep, Services, ServicesDep
from api.errors import error_response, leaf_routes
from api.front_door import FrontDoor
from api.front_door.forwarding import passed_on
from api.front_door.gate import REASON_HEADER, Gate, break_glass_reason, require_reason
from api.front_door.routes import (
    PREFIXES,
    ROOT_ROUTES,
    BadRequest,
    Classified,
    Params,
    Route,
    check_path,
    match,
    parse_json_params,
)
from api.front_door.searching import filled_page
from api.services.break_glass import break_glass
from api.services.errors import Invalid
from policies import Principal, normalize_target

MAX_JSON_BODY = 8 * 1024 * 1024
"""The largest JSON body the front door reads to learn what a call touches; larger is 413.
Artifact uploads are never read: they stream to MLflow untouched."""
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def forwarded(path: str) -> bool:
    """Whether the front door serves the path: under MLflow's prefixes, or one of its two
    artifact routes at the root."""
    return path in ROOT_ROUTES or any(path.startswith(prefix) for prefix, _ in PREFIXES)


class FrontDoorRoute(APIRoute):
    """One route for every path the front door forwards and Signoff does not serve itself (with
    any method: a path of Signoff's own keeps its 405), so any other path keeps its 404 or 405."""

    _own: dict[int, frozenset[str]] = {}

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope["path"]
        if scope["type"] != "http" or not forwarded(path) or path in self._own_paths(scope):
            return Match.NONE, {}
        return super().matches(scope)

    def _own_paths(self, scope: Scope) -> frozenset[str]:
        app = scope.get("app")
        own = self._own.get(id(app))
        if own is None:
            routes = leaf_routes(app.router.routes) if app is not None else ()
            own = self._own[id(app)] = frozenset(
                path
                for route in routes
                if not isinstance(route, FrontDoorRoute)
                and forwarded(path := getattr(route, "path", ""))
            )
        return own


router = APIRouter(tags=["mlflow"], include_in_schema=False, route_class=FrontDoorRoute)


class BodyTooLarge(Exception):
    pass


async def forward(request: Request, principal: PrincipalDep, services: ServicesDep) -> Response:
    """Authorize the call by the policy and pass it on to MLflow, or refuse it."""
    return await forward_path(request, request.scope["path"], principal, services)


async def forward_path(
    request: Request, path: str, principal: Principal, services: Services
) -> Response:
    """`forward` for MLflow's route `path` (the request's own path, or the one under `/mlflow/`
    that MLflow's UI calls, `api.routers.mlflow_ui`)."""
    door: FrontDoor = request.app.state.front_door
    route = match(request.method, path)
    if route is None:  # not reachable: only the prefixes above are routed here
        return error_response(404, "no such endpoint; see /docs for the API")
    try:
        check_path(path)
        params, content = await _params(request, route)
        call = route.build(params)
    except BadRequest as err:
        raise Invalid(str(err)) from err
    except BodyTooLarge:
        return JSONResponse(
            status_code=413,
            content={
                "error_code": "INVALID_PARAMETER_VALUE",
                "message": f"the JSON body is larger than {MAX_JSON_BODY // (1024 * 1024)} MiB, "
                "more than Signoff's front door reads",
            },
        )
    gate = Gate(services, door.resources)
    await gate.authorize(principal, call)
    if call.move is not None and (rule := gate.governing_rule(call.move)) is not None:
        if not gate.may_break_glass(principal, call.move, rule):
            raise gate.refusal(principal, call.move, rule)
        return await _break_glass(request, services, door, principal, call, params)
    response = await door.upstream.open(
        request.method,
        path,
        query=request.scope["query_string"],
        headers=_headers(request, body_read=isinstance(content, bytes)),
        content=content,
        identity=call.filter is not None,
    )
    if call.renames_experiment is not None:
        door.resources.forget_experiment(call.renames_experiment)
    if call.moves_dataset is not None:
        door.resources.forget_dataset(call.moves_dataset)
    if call.filter is not None and response.status_code == 200:
        return await filled_page(
            door.upstream, gate, principal, call, response,
            method=request.method, path=path, params=params,
        )  # fmt: skip
    return await passed_on(response)


router.add_api_route("/{mlflow_path:path}", forward, methods=METHODS)


async def _params(
    request: Request, route: Route
) -> tuple[Params, bytes | AsyncIterator[bytes] | None]:
    """The call's parameters as MLflow reads them, and the body to send on (read whole only
    when it holds the parameters; streamed otherwise; none for a read that has none)."""
    query = request.query_params
    from_query = Params(
        {key: query.getlist(key) for key in query}, from_query=True, headers=request.headers
    )
    bodiless = request.method in ("GET", "HEAD") and not (
        request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    )
    if not route.reads_params or route.query_only:
        return from_query, None if bodiless else request.stream()
    if request.method == "GET" and len(query):
        return from_query, None if bodiless else request.stream()
    body = await _read_body(request)
    return parse_json_params(body, request.headers), body


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_JSON_BODY:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BODY:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _headers(request: Request, *, body_read: bool) -> list[tuple[str, str]]:
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    if body_read:  # httpx sets the length of what it sends
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    return headers


async def _break_glass(
    request: Request,
    services: Services,
    door: FrontDoor,
    principal: Principal,
    call: Classified,
    params: Params,
) -> Response:
    """A governed stage transition or alias set by someone who may break glass: recorded and
    announced as every break-glass move is; answered as MLflow answers `transition-stage` (the
    version) or `registered-models/alias` (nothing)."""
    move = call.move
    assert move is not None and move.version is not None
    reason = require_reason(
        break_glass_reason(params.values.get("comment"), request.headers.get(REASON_HEADER))
    )
    try:
        target = normalize_target(move.target)
    except ValueError as err:
        raise Invalid(str(err)) from err
    await break_glass(
        services,
        principal=principal,
        name=move.model,
        version=move.version,
        stage=target,
        archive_existing_versions=move.archive_existing_versions,
        comment=reason,
    )
    if move.kind == "alias_set":
        return JSONResponse(status_code=200, content={})
    status, body = await door.upstream.call(
        "GET", "/api/2.0/mlflow/model-versions/get", {"name": move.model, "version": move.version}
    )
    return JSONResponse(status_code=status, content=body)
