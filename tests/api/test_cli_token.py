"""Where `signoff` client commands get their token in a pipeline: `SIGNOFF_TOKEN`, else the
GitHub Actions OIDC token, fetched the way GitHub's toolkit does (`GET
$ACTIONS_ID_TOKEN_REQUEST_URL&audience=<aud>`, bearer `$ACTIONS_ID_TOKEN_REQUEST_TOKEN`, answer
`{"value": <jwt>}`).

The CLI runs as a subprocess against two loopback servers: one plays the Actions token
endpoint, one plays the Signoff API and records the Authorization header it receives (token
validation is the API's business and tested elsewhere)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

REQUEST_TOKEN = "actions-runtime-request-token"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None


Responder = Callable[[Seen, int], tuple[int, dict[str, Any]]]


@dataclass
class Loopback:
    """A loopback HTTP server answering with `respond(seen, index)` and recording requests."""

    respond: Responder
    seen: list[Seen] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Loopback:
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                seen = Seen(
                    method=self.command,
                    path=split.path,
                    query={k: v[-1] for k, v in parse_qs(split.query).items()},
                    authorization=self.headers.get("Authorization"),
                )
                loopback.seen.append(seen)
                status, body = loopback.respond(seen, len(loopback.seen) - 1)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


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


REQUEST = {
    "id": "req-abc",
    "name": "fraud-detector",
    "version": "7",
    "to_stage": "Production",
    "state": "PENDING",
    "approvals": [],
    "quorum": 1,
    "checks": [],
}


def api_server(final_state: str = "APPLIED", reject_first: bool = False) -> Loopback:
    """Plays the few Signoff API routes the CLI commands below call."""

    def respond(seen: Seen, index: int) -> tuple[int, dict[str, Any]]:
        if reject_first and index == 0:
            return 401, {"error_code": "UNAUTHENTICATED", "message": "the token has expired"}
        if seen.path.endswith("/transition-requests/create"):
            return 200, {"request": REQUEST}
        if seen.path.endswith("/transition-requests/wait"):
            approvals = [{"user_id": "mia"}]
            return 200, {"request": REQUEST | {"state": final_state, "approvals": approvals}}
        if seen.path.endswith("/transition-requests/search"):
            return 200, {"requests": []}
        return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": seen.path}

    return Loopback(respond)


def run_cli(
    tmp_path: Path, api: Loopback, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "ACTIONS_ID_TOKEN_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=base | {"SIGNOFF_API_URL": api.url} | env,
        cwd=tmp_path,  # no stray .env
        capture_output=True,
        text=True,
        timeout=60,
    )


def actions_env(endpoint: Loopback, **extra: str) -> dict[str, str]:
    # GitHub's URL already carries a query (api-version); the audience is appended with '&'.
    return {
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{endpoint.url}/_apis/token?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
    } | extra


@pytest.fixture
def api() -> Iterator[Loopback]:
    with api_server() as server:
        yield server


def test_signoff_token_wins_over_the_actions_environment(tmp_path: Path, api: Loopback) -> None:
    with actions_endpoint() as endpoint:
        result = run_cli(
            tmp_path, api, "requests", **actions_env(endpoint, SIGNOFF_TOKEN="static-token")
        )
    assert result.returncode == 0, result.stderr
    assert [s.authorization for s in api.seen] == ["Bearer static-token"]
    assert endpoint.seen == []


def test_github_actions_oidc_token_with_the_default_audience(tmp_path: Path, api: Loopback) -> None:
    with actions_endpoint() as endpoint:
        result = run_cli(tmp_path, api, "requests", **actions_env(endpoint))
    assert result.returncode == 0, result.stderr
    (asked,) = endpoint.seen
    assert asked.method == "GET" and asked.path == "/_apis/token"
    assert asked.authorization == f"Bearer {REQUEST_TOKEN}"
    assert asked.query == {"api-version": "2.0", "audience": "signoff"}
    (used,) = api.seen
    assert _claims(used.authorization)["n"] == 1  # the token GitHub issued, as the bearer


def test_the_audience_comes_from_signoff_oidc_audience(tmp_path: Path, api: Loopback) -> None:
    audience = "https://signoff.example.com/api & more"
    with actions_endpoint() as endpoint:
        result = run_cli(
            tmp_path, api, "requests", **actions_env(endpoint, SIGNOFF_OIDC_AUDIENCE=audience)
        )
    assert result.returncode == 0, result.stderr
    assert endpoint.seen[0].query["audience"] == audience  # encoded on the wire, intact here


@pytest.mark.parametrize(("final", "code"), [("APPLIED", 0), ("REJECTED", 2)])
def test_request_wait_in_a_pipeline_refreshes_short_lived_tokens(
    tmp_path: Path, final: str, code: int
) -> None:
    """Each token expires within the refresh margin, so every API call gets a fresh one."""
    with api_server(final) as api, actions_endpoint(ttl_s=30) as endpoint:
        result = run_cli(
            tmp_path,
            api,
            "request", "fraud-detector", "7", "Production", "--wait", "--timeout", "30",
            **actions_env(endpoint),
        )  # fmt: skip
    assert result.returncode == code, (result.stdout, result.stderr)
    assert final in result.stdout and "approved by mia" in result.stdout
    assert [s.path.rsplit("/", 1)[-1] for s in api.seen] == ["create", "wait"]
    used = [_claims(s.authorization)["n"] for s in api.seen]
    assert len(set(used)) == 2, used


def test_a_401_from_the_api_fetches_a_new_oidc_token_once(tmp_path: Path) -> None:
    with api_server(reject_first=True) as api, actions_endpoint() as endpoint:
        result = run_cli(tmp_path, api, "requests", **actions_env(endpoint))
    assert result.returncode == 0, result.stderr
    assert len(endpoint.seen) == 2
    assert [_claims(s.authorization)["n"] for s in api.seen] == [1, 2]


def test_a_static_token_refused_is_not_retried(tmp_path: Path) -> None:
    with api_server(reject_first=True) as api:
        result = run_cli(tmp_path, api, "requests", SIGNOFF_TOKEN="expired")
    assert result.returncode == 1
    assert "the token has expired (401 UNAUTHENTICATED)" in result.stderr
    assert len(api.seen) == 1


def test_no_token_anywhere_says_what_to_do(tmp_path: Path, api: Loopback) -> None:
    result = run_cli(tmp_path, api, "requests")
    assert result.returncode == 1
    assert "SIGNOFF_TOKEN" in result.stderr and "id-token: write" in result.stderr
    assert api.seen == []


def test_half_an_actions_environment_names_what_is_missing(tmp_path: Path, api: Loopback) -> None:
    result = run_cli(
        tmp_path, api, "requests", ACTIONS_ID_TOKEN_REQUEST_URL="http://127.0.0.1:9/x?a=b"
    )
    assert result.returncode == 1
    assert "ACTIONS_ID_TOKEN_REQUEST_TOKEN is missing" in result.stderr


def test_a_refused_token_request_is_a_clear_error(tmp_path: Path, api: Loopback) -> None:
    with actions_endpoint(status=403) as endpoint:
        result = run_cli(tmp_path, api, "requests", **actions_env(endpoint))
    assert result.returncode == 1
    assert "could not get the GitHub Actions OIDC token (audience 'signoff')" in result.stderr
    assert "403" in result.stderr
    assert api.seen == []


def _claims(authorization: str | None) -> dict[str, Any]:
    assert authorization and authorization.startswith("Bearer ")
    payload = authorization.removeprefix("Bearer ").split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
