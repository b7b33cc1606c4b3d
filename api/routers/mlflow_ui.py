"""MLflow's UI through the door, under `/mlflow/`, for people signed in to the web page.

- `GET /mlflow/`: MLflow's own page (its `index.html`, forwarded unchanged) for a signed-in
  person; otherwise off to the sign-in, and back here after.
- `GET /mlflow/static-files/...`: the UI's built files, forwarded from MLflow with MLflow's
  cache headers (so the UI always matches the server it talks to, and Signoff needs no copy of
  it); to anyone, as they hold no data.
- `POST /mlflow/graphql`: the UI's GraphQL queries (its run page), classified by
  `api.front_door.graphql` and authorized by the same gate.
- `/mlflow/<MLflow route>` (`ajax-api/...`, `get-artifact`, ...): the UI's calls, authorized and
  forwarded exactly as the same route at the root is (`api.routers.front_door`), as the person
  of the session cookie (or a bearer token). No session: 401 in MLflow's shape. A
  state-changing call authenticated by the cookie must come from Signoff's own origin
  (`api.front_door.ui`).

Signoff's session cookie and credentials never travel on: the forwarding drops the caller's
cookie and authorization, sends Signoff's MLflow credentials, and drops MLflow's `Set-Cookie`.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from api.deps import ServicesDep, bearer_principal, enforce_rate_limit
from api.errors import ApiError, error_response
from api.front_door import FrontDoor
from api.front_door.forwarding import read_capped, streamed
from api.front_door.gate import Gate
from api.front_door.routes import BadRequest
from api.front_door.ui import UI_PREFIX, is_static_file, mlflow_route, origin_of, same_origin_write
from api.routers.front_door import forward_path, forwarded
from api.services.errors import Invalid
from api.services.web_auth import SAFE_METHODS, SESSION_COOKIE, web_sign_in
from policies import Principal

router = APIRouter(include_in_schema=False)

PAGE_HEADERS = {
    # MLflow's page needs its inline styles and its workers; nothing from another origin, and
    # no framing by another page.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
        "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache, private",
}
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _door(request: Request) -> FrontDoor:
    return request.app.state.front_door


@router.get("/mlflow", response_class=Response)
async def without_slash() -> RedirectResponse:
    return RedirectResponse(f"{UI_PREFIX}/", status_code=307, headers=PAGE_HEADERS)


@router.get("/mlflow/", response_class=Response)
async def page(request: Request) -> Response:
    """MLflow's page for a signed-in person; the sign-in otherwise."""
    sign_in = web_sign_in(request.app.state)
    if await sign_in.session(request.cookies.get(SESSION_COOKIE)) is None:
        back = f"{UI_PREFIX}/"
        if sign_in.settings.web_oidc_enabled:
            where = f"/ui/auth/login?return_to={quote(back, safe='')}"
        else:
            where = "/ui/"  # the page's own sign-in (the development one)
        return RedirectResponse(where, status_code=303, headers=PAGE_HEADERS)
    answer = await _door(request).upstream.open(
        "GET", "/", query=b"", headers=_caller_headers(request), content=None
    )
    response = streamed(answer)
    response.headers.update(PAGE_HEADERS)
    return response


@router.api_route("/mlflow/{route:path}", methods=METHODS, response_class=Response)
async def call(request: Request, services: ServicesDep, route: str) -> Response:
    """A call of MLflow's UI: a built file, or an MLflow route through the front door."""
    path = mlflow_route(request.scope["path"]) or "/"
    if is_static_file(path):
        if request.method != "GET":
            return error_response(405, f"{request.method} is not allowed on the UI's files")
        answer = await _door(request).upstream.open(
            request.method,
            path,
            query=request.scope["query_string"],
            headers=_caller_headers(request),
            content=None,
        )
        response = streamed(answer)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    if path == "/graphql":
        return await _graphql(request, services)
    if not forwarded(path):
        return error_response(404, f"no such endpoint under {UI_PREFIX}/: {path[:200]}")
    principal = await ui_principal(request, services)
    return await forward_path(request, path, principal, services)


async def _graphql(request: Request, services: ServicesDep) -> Response:
    """The UI's GraphQL queries (its run page), authorized as a REST call is
    (`api.front_door.graphql`)."""
    from api.front_door import graphql  # the GraphQL parser: only once the UI sends a query

    if request.method != "POST":
        return error_response(405, "GraphQL through Signoff takes POST")
    principal = await ui_principal(request, services)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > graphql.MAX_QUERY_BYTES:
            break
    try:
        classified = graphql.classify(bytes(body))
    except BadRequest as err:
        raise Invalid(str(err)) from err
    door = _door(request)
    gate = Gate(services, door.resources)
    await gate.authorize(principal, classified)
    answer = await door.upstream.open(
        "POST",
        "/graphql",
        query=b"",
        headers=[("content-type", "application/json"), ("accept", "application/json")],
        content=bytes(body),
        identity=True,
    )
    if answer.status_code != 200:
        return streamed(answer)
    try:
        data = json.loads(await read_capped(answer))
    finally:
        await answer.aclose()
    kept = graphql.filter_answer(data, lambda items: gate.readable_models(principal, items))
    return JSONResponse(kept)


async def ui_principal(request: Request, services: ServicesDep) -> Principal:
    """The person of the session cookie (a bearer token wins when sent); 401 without either, 403
    for a cookie-authenticated write from another origin."""
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token:
        principal = await bearer_principal(services, token.strip())
    else:
        session = await web_sign_in(request.app.state).session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise ApiError(
                401, f"not signed in: sign in at {services.settings.callback_base_url}/ui/"
            )
        if request.method not in SAFE_METHODS and not same_origin_write(
            request.headers, _own_origins(request, services)
        ):
            raise ApiError(
                403,
                "a state-changing call made with the session cookie must come from Signoff's "
                "own pages (Sec-Fetch-Site: same-origin, or a matching Origin)",
            )
        principal = Principal(sub=session.subject, roles=session.roles)
    enforce_rate_limit(services, principal)
    return principal


def _own_origins(request: Request, services: ServicesDep) -> set[str]:
    own = {origin_of(services.settings.callback_base_url)}
    host = request.headers.get("host")
    if host:
        own.add(f"{request.url.scheme}://{host}".lower())
    return own


def _caller_headers(request: Request) -> list[tuple[str, str]]:
    """The request's headers (conditional ones included, so MLflow can answer 304); the
    forwarding drops the caller's credentials."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
