"""GitHub Actions' OIDC token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL`) played on loopback."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from tests.support.loopback import Loopback, Seen

REQUEST_TOKEN = "actions-runtime-request-token"


def fake_jwt(n: int, ttl_s: float) -> str:
    """Something shaped like a JWT, with an `exp` the CLI reads to know when to refresh."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": "repo:acme/models:ref:refs/heads/main", "n": n, "exp": time.time() + ttl_s}
    return f"{part({'alg': 'RS256', 'kid': 'k'})}.{part(claims)}.c2lnbmF0dXJl"


def actions_endpoint(ttl_s: float = 600, status: int = 200) -> Loopback:
    def respond(seen: Seen, index: int) -> tuple[int, dict[str, Any]]:
        if status != 200:
            return status, {"message": "Forbidden"}
        return 200, {"count": 1, "value": fake_jwt(index + 1, ttl_s)}

    return Loopback(respond)


def actions_env(endpoint: Loopback, **extra: str) -> dict[str, str]:
    # GitHub's URL already carries a query (api-version); the audience is appended with '&'.
    return {
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{endpoint.url}/_apis/token?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
    } | extra
