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
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from api.deps import PrincipalDep, Services, ServicesDep, bearer_credentials, current_principal
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
FRONT_DOOR_PATH = "/{mlflow_path:path}"


def forwarded(path: str) -> bool:
    """Whether the front door serves the path: under MLflow's prefixes, or one of its two
    artifact routes at the root."""
    return path in ROOT_ROUTES or any(path.startswith(prefix) for prefix, _ in PREFIXES)


@dataclass(frozen=True)
class OwnRoutes:
    """Signoff's own routes under the front door's paths, which win over it: the static paths
    (a call on one with another method keeps its 405), and the routes with path parameters
    that could match a forwarded path (they win when they match it in full)."""

    paths: frozenset[str]
    templated: tuple[BaseRoute, ...]

    @classmethod
    def of(cls, app: Any) -> OwnRoutes:  # noqa: ANN401 - the Starlette app of the scope
        own = _OWN.get(id(app))
        if own is None:
            routes = [
                route
                for route in (leaf_routes(app.router.routes) if app is not None else ())
                if not isinstance(route, FrontDoorRoute | FrontDoorFirst)
            ]
            own = _OWN[id(app)] = cls(
                frozenset(p for r in routes if forwarded(p := getattr(r, "path", ""))),
                tuple(r for r in routes if _may_match_forwarded(getattr(r, "path", ""))),
            )
        return own

    def win(self, scope: Scope) -> bool:
        """Whether one of Signoff's own routes serves the call (or answers 405 for it)."""
        return scope["path"] in self.paths or any(
            route.matches(scope)[0] is Match.FULL for route in self.templated
        )


_OWN: dict[int, OwnRoutes] = {}


def _may_match_forwarded(template: str) -> bool:
    """A route template with parameters (or a mount) whose literal start could begin a path
    the front door forwards."""
    if template and "{" not in template:
        return False  # static: in `OwnRoutes.paths` when forwarded
    start = template.split("{", 1)[0]
    candidates = (*(prefix for prefix, _ in PREFIXES), *ROOT_ROUTES)
    return any(c.startswith(start) or start.startswith(c) for c in candidates)


class FrontDoorRoute(APIRoute):
    """One route for every path the front door forwards and Signoff does not serve itself (with
    any method: a path of Signoff's own keeps its 405), so any other path keeps its 404 or 405.
    `FrontDoorFirst` serves its calls before the app walks its routes; this one, registered last,
    answers what that one leaves (a method the door does not take: 405)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope["path"]
        if (
            scope["type"] != "http"
            or not forwarded(path)
            or path in OwnRoutes.of(scope.get("app")).paths
        ):
            return Match.NONE, {}
        return super().matches(scope)


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


router.add_api_route(FRONT_DOOR_PATH, forward, methods=METHODS)
DOOR_ROUTE = router.routes[-1]
assert isinstance(DOOR_ROUTE, FrontDoorRoute)


class FrontDoorFirst(BaseRoute):
    """The front door's calls, taken before the app walks its routes (FastAPI matches each of
    Signoff's ~65, twice for the router that holds it) and served without FastAPI's dependency
    resolution: the first of the app's routes (`install`). It takes exactly the calls the
    catch-all `FrontDoorRoute` would (a method it serves, a forwarded path, no route of
    Signoff's own winning: `OwnRoutes`), and serves them as that route does: the caller
    authenticated and rate limited as `current_principal` does, then `forward`. For metrics,
    logs and traces the call is the catch-all's (`scope["route"]`, the same template)."""

    path = FRONT_DOOR_PATH
    methods = DOOR_ROUTE.methods

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] != "http"
            or scope["method"] not in self.methods
            or not forwarded(scope["path"])
            or OwnRoutes.of(scope.get("app")).win(scope)
        ):
            return Match.NONE, {}
        path_params = {"mlflow_path": get_route_path(scope)[1:]}
        return Match.FULL, {"endpoint": forward, "path_params": path_params, "route": DOOR_ROUTE}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:  # noqa: ANN401
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        services: Services = request.app.state.services
        principal = await current_principal(request, services, await bearer_credentials(request))
        response = await forward_path(request, scope["path"], principal, services)
        await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """The front door's routes: the catch-all last (Signoff's own routes under MLflow's
    prefixes win), and `FrontDoorFirst` first, which takes its calls at once."""
    app.include_router(router)
    app.router.routes.insert(0, FrontDoorFirst())


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
