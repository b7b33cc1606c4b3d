"""Search answers the front door filters, filled to the caller's page size.

MLflow pages a search (`max_results`, `page_token`) over everything; the caller may read only
part of it (`Gate.readable`), so a filtered page comes back short. To keep paging as MLflow's
clients expect, the front door asks MLflow for the next pages until the caller's `max_results`
is filled or MLflow has no more, at most `MAX_UPSTREAM_PAGES` per call; then it answers with
what it has and MLflow's token for where it stopped, so paging on skips and repeats nothing.

Each further page asks MLflow for only as many results as are still missing: a page can then
never hold more readable results than the answer has room for, and MLflow's own token for the
page after it is always the right one to hand back (MLflow's tokens are opaque).
Without `max_results` the caller gets MLflow's default page size, as learnt from the first
page (a full page with a token after it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
from starlette.responses import Response

from api.front_door.forwarding import Upstream, answer_headers, read_capped
from api.front_door.gate import Gate
from api.front_door.routes import Classified, Params
from policies import Principal

MAX_UPSTREAM_PAGES = 10
"""The most pages of MLflow's one call of the caller's reads (the first one included)."""

_PAGING = ("max_results", "maxResults", "page_token", "pageToken")


async def filled_page(
    upstream: Upstream,
    gate: Gate,
    principal: Principal,
    call: Classified,
    first: httpx.Response,
    *,
    method: str,
    path: str,
    params: Params,
) -> Response:
    """The caller's page: MLflow's first answer (`first`, status 200, body unread) filtered,
    then topped up from MLflow's next pages."""
    key = call.filter
    assert key is not None
    headers = answer_headers(first, rewritten=True)
    data = await _json(first)
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        return _answer(data, headers)
    items = data[key]
    token = data.get("next_page_token")
    wanted = _max_results(params) or (len(items) if token else 0)
    kept = await gate.readable(principal, key, items)
    pages = 1
    while token and len(kept) < wanted and pages < MAX_UPSTREAM_PAGES:
        page = await _next_page(upstream, method, path, params, token, wanted - len(kept))
        pages += 1
        if not isinstance(page, dict) or not isinstance(page.get(key, []), list):
            break  # MLflow answered oddly: hand back what we have, and where we were
        kept += await gate.readable(principal, key, page.get(key, []))
        token = page.get("next_page_token")
    if kept or key == "configs":  # a plain JSON answer, not a proto's: it keeps its list
        data[key] = kept
    else:
        data.pop(key)  # as MLflow leaves an empty repeated field out
    if token:
        data["next_page_token"] = token
    else:
        data.pop("next_page_token", None)
    return _answer(data, headers)


def _max_results(params: Params) -> int:
    value = params.get("max_results")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(int(value), 0) if value is not None else 0
    except (TypeError, ValueError):
        return 0  # MLflow refused it already; the first answer was not a 200


async def _next_page(
    upstream: Upstream, method: str, path: str, params: Params, token: str, size: int
) -> Any:  # noqa: ANN401 - MLflow's JSON
    """The same search, from `token`, for `size` results."""
    paging = {"page_token": token, "max_results": size}
    if params.from_query or method == "GET":
        query = [
            (name, value)
            for name, values in params.values.items()
            if name not in _PAGING
            for value in (values if isinstance(values, list) else [values])
        ]
        query += [(name, str(value)) for name, value in paging.items()]
        body, encoded = None, str(httpx.QueryParams(query)).encode()
    else:
        values = {k: v for k, v in params.values.items() if k not in _PAGING}
        body, encoded = json.dumps({**values, **paging}).encode(), b""
    headers = [("accept", "application/json")]
    if body is not None:
        headers.append(("content-type", "application/json"))
    response = await upstream.open(
        method, path, query=encoded, headers=headers, content=body, identity=True
    )
    if response.status_code != 200:
        await response.aclose()
        return None
    return await _json(response)


async def _json(response: httpx.Response) -> Any:  # noqa: ANN401
    try:
        body = await read_capped(response)
    finally:
        await response.aclose()
    try:
        return json.loads(body) if body else {}
    except ValueError:
        return None


def _answer(data: Any, headers: Mapping[str, str]) -> Response:  # noqa: ANN401
    return Response(
        json.dumps(data), status_code=200, headers=dict(headers), media_type="application/json"
    )
