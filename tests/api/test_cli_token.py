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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.actions_oidc import REQUEST_TOKEN, actions_endpoint, actions_env
from tests.support.loopback import Loopback, api_server


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
    # A rejection is followed by a look at the record, for who rejected and why.
    calls = ["create", "wait"] + (["list"] if final == "REJECTED" else [])
    assert [s.path.rsplit("/", 1)[-1] for s in api.seen] == calls
    used = [_claims(s.authorization)["n"] for s in api.seen]
    assert len(set(used)) == len(calls), used


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
