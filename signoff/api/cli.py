"""The `signoff` command: run the stack's processes, and act on requests through the API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
import uvicorn

from signoff.policies import check_policy_file
from signoff.settings import InsecureSettingsError, Settings

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
    from signoff.api.devstack import DevStackError, run_dev

    try:
        run_dev(Settings(), host, port, say=typer.echo)
    except DevStackError as err:
        _fail(str(err))


@app.command()
def worker() -> None:
    """Run a worker: executes transition workflows and their activities."""
    from signoff.workflows.worker import run_worker

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
    from signoff.api.app import create_app

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
    from signoff.api.auth import issue_dev_token

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


class ApiClient:
    """A thin client of Signoff's API for the commands below; errors end the command."""

    def __init__(self, settings: Settings) -> None:
        if settings.token is None:
            _fail(
                "no token: export SIGNOFF_TOKEN (for development: "
                "`export SIGNOFF_TOKEN=$(signoff token --sub me --role data-scientist)`)"
            )
        self._http = httpx.Client(
            base_url=settings.api_url,
            headers={"Authorization": f"Bearer {settings.token.get_secret_value()}"},
            timeout=httpx.Timeout(10.0, read=70.0),
        )
        self.url = settings.api_url

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            _fail(f"cannot reach the Signoff API at {self.url} ({err}); is it running?")
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:200]}
        if response.status_code >= 400:
            code = body.get("error_code", "ERROR")
            _fail(f"{body.get('message', 'request failed')} ({response.status_code} {code})")
        return body


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


if __name__ == "__main__":  # `python -m signoff.api.cli`, as the test fixtures start it
    app()
