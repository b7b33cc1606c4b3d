"""The `signoff` command: run the stack's processes, and act on requests through the API."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import typer
import uvicorn

from policies import check_policy_file
from workflows.settings import InsecureSettingsError, Settings

app = typer.Typer(
    help="Signoff: governed, audited MLflow registry transitions.",
    no_args_is_help=True,
    add_completion=False,
)
policy_app = typer.Typer(help="Work with policy files.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

EXIT_CODES = {
    "APPLIED": 0,
    "REJECTED": 2,
    "FAILED_VALIDATION": 3,
    "EXPIRED": 4,
    "CANCELLED": 5,
    "FAILED": 6,
}
"""Exit codes of `signoff request --wait`, so a CI step can tell outcomes apart (1: error)."""


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _production_settings() -> Settings:
    settings = Settings()
    try:
        settings.require_production_secret()
    except InsecureSettingsError as err:
        _fail(str(err))
    return settings


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# -- processes -------------------------------------------------------------------------------


@app.command()
def dev(
    host: Annotated[str, typer.Option(help="Interface the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API listens on.")] = 8000,
) -> None:
    """Run the whole stack on the embedded defaults: Temporal, MLflow, worker and API."""
    from api.devstack import DevStackError, run_dev

    try:
        run_dev(Settings(), host, port, say=typer.echo)
    except DevStackError as err:
        _fail(str(err))


@app.command()
def worker() -> None:
    """Run a worker: executes transition workflows and their activities."""
    from workflows.worker import run_worker

    settings = _production_settings()
    _logging()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker(settings))


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the HTTP API."""
    from api.app import create_app

    settings = _production_settings()
    _logging()
    uvicorn.run(create_app(settings), host=host, port=port)


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="The user the token names.")],
    role: Annotated[list[str], typer.Option(help="A role; repeat for several.")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 12 * 3600,
) -> None:
    """Print a development token signed with SIGNOFF_JWT_SECRET."""
    from api.auth import issue_dev_token

    typer.echo(issue_dev_token(Settings(), sub, role, ttl_s=ttl))


@policy_app.command("check")
def policy_check(file: Annotated[Path, typer.Argument(help="The policy YAML file.")]) -> None:
    """Validate a policy file; print every problem with its line."""
    issues = check_policy_file(file)
    if issues:
        for issue in issues:
            typer.secho(str(issue), fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.secho(f"{file}: OK", fg=typer.colors.GREEN)


# -- API client commands ---------------------------------------------------------------------


OIDC_AUDIENCE_ENV = "SIGNOFF_OIDC_AUDIENCE"
DEFAULT_OIDC_AUDIENCE = "signoff"
_REFRESH_MARGIN_S = 60.0


def _jwt_expiry(token: str) -> float | None:
    """The `exp` of a JWT, read without verifying it (only to know when to fetch a new one)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
    except (IndexError, ValueError, AttributeError):
        return None
    return float(exp) if isinstance(exp, int | float) else None


class TokenSource:
    """Where client commands get their bearer token: `SIGNOFF_TOKEN`, else, inside a GitHub
    Actions job with `permissions: id-token: write`, the job's OIDC token for the audience
    `SIGNOFF_OIDC_AUDIENCE` (default `signoff`). An OIDC token lives minutes, so it is fetched
    again when it is about to expire and when the API answers 401."""

    def __init__(self, settings: Settings) -> None:
        self._static = settings.token.get_secret_value() if settings.token else None
        self._token: str | None = None
        self._oidc: tuple[str, str] | None = None
        self.audience = os.environ.get(OIDC_AUDIENCE_ENV) or DEFAULT_OIDC_AUDIENCE
        if self._static:
            return
        url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
        request_token = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        if not url and not request_token:
            _fail(
                "no token: export SIGNOFF_TOKEN (for development: "
                "`export SIGNOFF_TOKEN=$(signoff token --sub me --role data-scientist)`), or, in "
                "a GitHub Actions job, grant `permissions: id-token: write` so the job's OIDC "
                "token is used"
            )
        if not url or not request_token:
            missing = (
                "ACTIONS_ID_TOKEN_REQUEST_URL" if not url else "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
            )
            _fail(
                f"no token: SIGNOFF_TOKEN is not set and {missing} is missing, so the GitHub "
                "Actions OIDC token cannot be requested; grant the job "
                "`permissions: id-token: write`, or export SIGNOFF_TOKEN"
            )
        self._oidc = (url, request_token)

    @property
    def refreshable(self) -> bool:
        return self._static is None

    def current(self) -> str:
        if self._static is not None:
            return self._static
        if self._token is None or self._expiring(self._token):
            self._token = self._fetch()
        return self._token

    def refresh(self) -> str:
        self._token = None
        return self.current()

    @staticmethod
    def _expiring(token: str) -> bool:
        exp = _jwt_expiry(token)
        return exp is not None and exp - time.time() < _REFRESH_MARGIN_S

    def _fetch(self) -> str:
        """`GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<aud>` with the request token as bearer,
        as GitHub's own toolkit does; the answer is `{"value": "<jwt>"}`."""
        assert self._oidc is not None, "only an OIDC token source fetches"
        url, request_token = self._oidc
        separator = "&" if "?" in url else "?"
        full = f"{url}{separator}audience={quote(self.audience, safe='')}"
        what = f"the GitHub Actions OIDC token (audience {self.audience!r})"
        problem = ""
        for attempt in range(3):
            if attempt:
                time.sleep(attempt)
            try:
                response = httpx.get(
                    full,
                    headers={
                        "Authorization": f"Bearer {request_token}",
                        "Accept": "application/json",
                    },
                    timeout=10.0,
                )
            except httpx.HTTPError as err:
                problem = f"cannot reach ACTIONS_ID_TOKEN_REQUEST_URL ({err})"
                continue
            if response.status_code >= 500:
                problem = f"ACTIONS_ID_TOKEN_REQUEST_URL answered {response.status_code}"
                continue
            if response.status_code != 200:
                _fail(
                    f"could not get {what}: ACTIONS_ID_TOKEN_REQUEST_URL answered "
                    f"{response.status_code} {response.text[:200]}"
                )
            try:
                value = response.json().get("value")
            except (ValueError, AttributeError):
                value = None
            if not isinstance(value, str) or not value:
                _fail(f'could not get {what}: the answer carries no token (no "value")')
            return value
        _fail(f"could not get {what}: {problem}")


class ApiClient:
    """A thin client of Signoff's API for the commands below; errors end the command."""

    def __init__(self, settings: Settings) -> None:
        self._tokens = TokenSource(settings)
        self._tokens.current()  # fail before any call if no token can be had
        self._http = httpx.Client(base_url=settings.api_url, timeout=httpx.Timeout(10.0, read=70.0))
        self.url = settings.api_url

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, self._tokens.current(), **kwargs)
        if response.status_code == 401 and self._tokens.refreshable:
            # An OIDC token may have expired between two calls of a long --wait: fetch anew.
            response = self._send(method, path, self._tokens.refresh(), **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:200]}
        if response.status_code >= 400:
            code = body.get("error_code", "ERROR")
            _fail(f"{body.get('message', 'request failed')} ({response.status_code} {code})")
        return body

    def _send(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
        except httpx.HTTPError as err:
            _fail(f"cannot reach the Signoff API at {self.url} ({err}); is it running?")


def _client() -> ApiClient:
    return ApiClient(Settings())


def _describe(request: dict[str, Any]) -> str:
    approvals = ", ".join(a["user_id"] for a in request.get("approvals", [])) or "none"
    return (
        f"{request['name']} v{request['version']} → {request['to_stage']}: {request['state']} "
        f"(approvals {len(request.get('approvals', []))}/{request.get('quorum', 0)}: {approvals})"
    )


def _progress_lines(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """What changed between two views of a request, as lines for a CI log."""
    lines = []
    seen = {a["user_id"] for a in (before or {}).get("approvals", [])}
    for approval in after.get("approvals", []):
        if approval["user_id"] not in seen:
            lines.append(f"  approved by {approval['user_id']}")
    old = {c["name"]: c["status"] for c in (before or {}).get("checks", [])}
    for check in after.get("checks", []):
        if check["status"] != old.get(check["name"]) and check["status"] != "RUNNING":
            lines.append(f"  check {check['name']}: {check['status']} {check.get('summary', '')}")
    return lines


def _wait(client: ApiClient, request: dict[str, Any], timeout: float) -> NoReturn:
    deadline = time.monotonic() + timeout
    previous: dict[str, Any] | None = None
    current = request
    typer.echo(f"waiting for {current['id']} (Ctrl-C stops waiting, not the request)")
    while True:
        for line in _progress_lines(previous, current):
            typer.echo(line)
        previous = current
        if current["state"] not in ("PENDING", "APPLYING"):
            break
        left = deadline - time.monotonic()
        if left <= 0:
            _fail(f"still {current['state']} after {timeout:.0f}s; {_describe(current)}")
        current = client.call(
            "GET",
            "/api/2.0/signoff/transition-requests/wait",
            params={"id": current["id"], "timeout_s": min(5.0, left)},
        )["request"]
    typer.echo(_describe(current))
    code = EXIT_CODES.get(current["state"], 1)
    if code:
        typer.secho(f"not applied: {current.get('reason') or current['state']}", err=True)
    raise typer.Exit(code)


Model = Annotated[str, typer.Argument(help="Registered model name.")]
Version = Annotated[str, typer.Argument(help="Model version.")]
Target = Annotated[str, typer.Argument(help="A stage (Staging, Production, ...) or @alias.")]
CommentOption = Annotated[str | None, typer.Option(help="A comment for the record.")]


@app.command()
def request(
    model: Model,
    version: Version,
    target: Target,
    comment: CommentOption = None,
    wait: Annotated[
        bool, typer.Option(help="Block until decided; exit 0 only if applied.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits at most.")] = 3600.0,
) -> None:
    """Request a transition of a model version to a stage or alias."""
    client = _client()
    created = client.call(
        "POST",
        "/api/2.0/mlflow/transition-requests/create",
        json={"name": model, "version": version, "stage": target, "comment": comment},
    )["request"]
    typer.echo(f"requested {created['id']}: {_describe(created)}")
    if wait:
        _wait(client, created, timeout)


def _decide(action: str, model: str, version: str, target: str, comment: str | None) -> None:
    body = {"name": model, "version": version, "stage": target, "comment": comment}
    if action == "approve":
        body["archive_existing_versions"] = False  # the policy decides; sent for compatibility
    activity = _client().call("POST", f"/api/2.0/mlflow/transition-requests/{action}", json=body)
    entry = activity["activity"]
    typer.echo(f"{entry['activity_type']} by {entry['user_id']} on {model} v{version} → {target}")


@app.command()
def approve(model: Model, version: Version, target: Target, comment: CommentOption = None) -> None:
    """Approve the open request for that target."""
    _decide("approve", model, version, target, comment)


@app.command()
def reject(model: Model, version: Version, target: Target, comment: CommentOption = None) -> None:
    """Reject the open request for that target."""
    _decide("reject", model, version, target, comment)


@app.command()
def cancel(model: Model, version: Version, target: Target, comment: CommentOption = None) -> None:
    """Cancel the open request for that target (yours, or any if you manage the model)."""
    client = _client()
    open_requests = client.call(
        "GET",
        "/api/2.0/mlflow/transition-requests/list",
        params={"name": model, "version": version},
    )["requests"]
    matching = [r for r in open_requests if r["to_stage"].lower() == target.lower()]
    if not matching:
        _fail(f"there is no open request to move {model} v{version} to {target}")
    params = {"name": model, "version": version, "stage": target, "creator": matching[0]["user_id"]}
    if comment:
        params["comment"] = comment
    entry = client.call("DELETE", "/api/2.0/mlflow/transition-requests/delete", params=params)
    typer.echo(f"{entry['activity']['activity_type']} by {entry['activity']['user_id']}")


@app.command()
def requests(
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    all_states: Annotated[bool, typer.Option("--all", help="Closed requests too.")] = False,
) -> None:
    """List transition requests (open ones unless --all)."""
    params: dict[str, Any] = {"open_only": not all_states}
    if model:
        params["name"] = model
    found = _client().call("GET", "/api/2.0/signoff/transition-requests/search", params=params)
    if not found["requests"]:
        typer.echo("no requests")
    for item in found["requests"]:
        typer.echo(f"{item['id']}  {_describe(item)}")


@app.command()
def activities(model: Model, version: Version) -> None:
    """Show the audit trail of a model version, oldest first."""
    found = _client().call(
        "GET", "/api/2.0/signoff/activities/list", params={"name": model, "version": version}
    )
    for entry in found["activities"]:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry["creation_timestamp"] / 1000))
        note = entry.get("comment") or entry.get("system_comment") or ""
        typer.echo(
            f"{stamp}Z  {entry['activity_type']:<22} {entry['user_id']:<20} "
            f"{entry.get('from_stage', '')} → {entry.get('to_stage', '')}  {note}"
        )


if __name__ == "__main__":  # `python -m api.cli`, as the test fixtures start it
    app()
