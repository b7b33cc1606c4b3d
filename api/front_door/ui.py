"""MLflow's UI through the door: which of its paths are which, and the same-origin rule for the
writes it makes with the web page's session cookie.

MLflow's UI (the built React app its wheel ships, served by MLflow under `/static-files/`) is
a single page with hash routes (`/mlflow/#/models/...`) that calls its server with paths
relative to the page: `ajax-api/2.0/mlflow/...`, `get-artifact`, `static-files/...`. Served
under `/mlflow/`, those land on `/mlflow/<MLflow's route>`; `mlflow_route` names the route.

The UI sends no CSRF token of Signoff's, only the session cookie (`SameSite=Lax`, so no other
site's POST carries it). A state-changing call authenticated by the cookie must also come from
this origin: `Sec-Fetch-Site: same-origin` when the browser sends it (every current browser
does; a page cannot forge it), else an `Origin` naming Signoff itself. A page of another port
or subdomain of the same site (which `SameSite` lets through) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

UI_PREFIX = "/mlflow"
STATIC_PREFIX = "/static-files/"
"""Where MLflow serves its UI's built files (`mlflow/server/__init__.py`)."""
_STATIC_PATH = re.compile(
    r"/static-files/(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*"
)
"""A path of the built UI: plain names only (no `..`, no `%`, no backslash)."""


def mlflow_route(path: str) -> str | None:
    """The MLflow route a path under `/mlflow/` stands for (`/mlflow/ajax-api/...` →
    `/ajax-api/...`), or None for a path outside it."""
    if not path.startswith(UI_PREFIX + "/"):
        return None
    return path[len(UI_PREFIX) :]


def is_static_file(route: str) -> bool:
    """Whether an MLflow route is one of the UI's built files (served to anyone: they hold no
    data)."""
    return _STATIC_PATH.fullmatch(route) is not None


def same_origin_write(headers: Mapping[str, str], own_origins: set[str]) -> bool:
    """Whether a state-changing call comes from a page of Signoff itself. `headers`: the
    request's (lower-case names); `own_origins`: Signoff's origins (`scheme://host[:port]`)."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = headers.get("origin")
    return origin is not None and origin.lower() in own_origins


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, lower-case."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
