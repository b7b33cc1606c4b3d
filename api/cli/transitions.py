"""Client commands on transition requests: request (and wait), approve, reject, cancel, list,
and the audit trail of a version."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any, NoReturn

import typer

from api.cli.client import ApiClient, api_client, fail

EXIT_CODES = {
    "APPLIED": 0,
    "REJECTED": 2,
    "FAILED_VALIDATION": 3,
    "EXPIRED": 4,
    "CANCELLED": 5,
    "FAILED": 6,
    "SCHEDULED": 7,
}
"""Exit codes of `signoff request --wait`, so a CI step can tell outcomes apart (1: error).
SCHEDULED (7): approved, and waiting for a change window that opens after `--timeout`."""
OPEN_STATES = ("PENDING", "SCHEDULED", "APPLYING")


def local_time(ms: int) -> str:
    """An instant on this machine's clock: "Thu 2026-04-02 09:00 JST"."""
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%a %Y-%m-%d %H:%M %Z")


def time_until(ms: int) -> str:
    """ "in 11 days", "in 3 hours", "in 4 minutes", "now"."""
    left = ms / 1000 - time.time()
    for unit, seconds in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if left >= 1.5 * seconds or (unit == "minute" and left >= 60):
            count = round(left / seconds)
            return f"in {count} {unit}{'s' if count != 1 else ''}"
    return "now" if left <= 0 else "in under a minute"


def applies_at(request: dict[str, Any]) -> str:
    """ "applies at Thu 2026-04-02 09:00 JST (in 11 days)" for a SCHEDULED request."""
    at = request.get("apply_at")
    if not isinstance(at, int):
        return "applies when its change window opens"
    return f"applies at {local_time(at)} ({time_until(at)})"


def _describe(request: dict[str, Any]) -> str:
    approvals = ", ".join(a["user_id"] for a in request.get("approvals", [])) or "none"
    scheduled = f"; {applies_at(request)}" if request["state"] == "SCHEDULED" else ""
    return (
        f"{request['name']} v{request['version']} → {request['to_stage']}: {request['state']} "
        f"(approvals {len(request.get('approvals', []))}/{request.get('quorum', 0)}: {approvals})"
        f"{scheduled}"
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
        scheduled = current["state"] == "SCHEDULED"
        if scheduled and (previous is None or previous["state"] != "SCHEDULED"):
            typer.echo(f"  approved; waiting for its change window: {applies_at(current)}")
        previous = current
        if current["state"] not in OPEN_STATES or (scheduled and _after(current, deadline)):
            break
        left = deadline - time.monotonic()
        if left <= 0:
            fail(f"still {current['state']} after {timeout:.0f}s; {_describe(current)}")
        current = client.call(
            "GET",
            "/api/2.0/signoff/transition-requests/wait",
            params={
                "id": current["id"],
                "timeout_s": min(5.0, left),
                "seen_state": current["state"],
            },
        )["request"]
    typer.echo(_describe(current))
    decided = _decision_line(client, current)
    if decided:
        typer.echo(decided)
    code = EXIT_CODES.get(current["state"], 1)
    if current["state"] == "SCHEDULED":
        typer.secho(
            f"not applied yet: approved, {applies_at(current)}, after --timeout; the request "
            "stays open (`signoff cancel` withdraws it)",
            err=True,
        )
    elif code:
        typer.secho(f"not applied: {current.get('reason') or current['state']}", err=True)
    raise typer.Exit(code)


def _after(request: dict[str, Any], deadline: float) -> bool:
    """The request applies after the monotonic `deadline` (or no one knows when)."""
    at = request.get("apply_at")
    if not isinstance(at, int):
        return True
    return at / 1000 - time.time() > deadline - time.monotonic()


_CLOSING = {"REJECTED": "REJECTED_REQUEST", "CANCELLED": "CANCELLED_REQUEST"}


def _decision_line(client: ApiClient, request: dict[str, Any]) -> str | None:
    """Who rejected or cancelled the request, with their comment, from the version's record:
    `  rejected by mia: "the holdout is from last year"`. None for other ends, or when the
    record cannot be read (the exit code still tells the outcome)."""
    kind = _CLOSING.get(request["state"])
    if kind is None:
        return None
    found = client.answer(
        "GET",
        "/api/2.0/signoff/activities/list",
        params={"name": request["name"], "version": request["version"]},
    )
    if isinstance(found, str):
        return None
    closing = [
        entry
        for entry in found.get("activities", [])
        if entry.get("activity_type") == kind
        and entry.get("to_stage") == request["to_stage"]
        and entry.get("creation_timestamp", 0) >= request.get("creation_timestamp", 0)
        and entry.get("user_id") != "system"
    ]
    if not closing:
        return None
    entry = closing[-1]
    done = request["state"].lower()
    comment = entry.get("comment")
    said = f": {comment!r}" if comment else " (no comment)"
    return f"  {done} by {entry['user_id']}{said}"


Model = Annotated[str, typer.Argument(help="Registered model name.", metavar="MODEL")]
Version = Annotated[str, typer.Argument(help="Model version.", metavar="VERSION")]
Target = Annotated[
    str, typer.Argument(help="A stage (Staging, Production, ...) or @alias.", metavar="TARGET")
]
CommentOption = Annotated[
    str | None, typer.Option(help="A comment for the record.", metavar="TEXT")
]


def request(
    model: Model,
    version: Version,
    target: Target,
    comment: CommentOption = None,
    wait: Annotated[
        bool,
        typer.Option(
            help="Block until decided; exit 0 only if applied (7: approved, but its change "
            "window opens after --timeout)."
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds --wait waits at most.", metavar="SECONDS")
    ] = 3600.0,
) -> None:
    """Request a transition of a model version to a stage or alias."""
    client = api_client()
    created = client.call(
        "POST",
        "/api/2.0/mlflow/transition-requests/create",
        json={"name": model, "version": version, "stage": target, "comment": comment},
    )["request"]
    typer.echo(f"requested {created['id']}: {_describe(created)}")
    if wait:
        _wait(client, created, timeout)


def rollback(
    model: Model,
    target: Target,
    version: Annotated[
        str | None,
        typer.Option(help="Roll back to this version (default: the one before).", metavar="V"),
    ] = None,
    comment: CommentOption = None,
) -> None:
    """Request moving a target back to the version that held it before, under the policy's
    rollback rule."""
    created = api_client().call(
        "POST",
        "/api/2.0/signoff/rollback",
        json={"name": model, "target": target, "version": version, "comment": comment},
    )["request"]
    replaced = (created.get("rollback") or {}).get("replaces_version")
    instead = f" (replacing v{replaced})" if replaced else ""
    typer.echo(f"requested rollback {created['id']}{instead}: {_describe(created)}")


def _decide(action: str, model: str, version: str, target: str, comment: str | None) -> None:
    body = {"name": model, "version": version, "stage": target, "comment": comment}
    if action == "approve":
        body["archive_existing_versions"] = False  # the policy decides; sent for compatibility
    answer = api_client().call("POST", f"/api/2.0/mlflow/transition-requests/{action}", json=body)
    typer.echo(outcome_line(_PAST[action], model, version, target, answer))


_PAST = {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}
_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def outcome_line(done: str, model: str, version: str, target: str, answer: dict[str, Any]) -> str:
    """What a decision did, in words: "approved (1 of 2; waiting for one more)", "approved;
    applied: fraud-detector v1 is now in Production", "approved; MLflow is unreachable, Signoff
    keeps retrying (request APPLYING)", "approved; waiting for its change window: applies at
    Mon 2026-03-16 09:00 CET (in 3 days) (request SCHEDULED: …)", "rejected: fraud-detector v1
    will not move to Production"."""
    request = answer.get("request") or {}
    state, reason = request.get("state"), request.get("reason")
    where = f"at {target}" if target.startswith("@") else f"in {target}"
    if state == "APPLIED":
        return f"{done}; applied: {model} v{version} is now {where}"
    if state == "APPLYING":
        return f"{done}; {reason or 'the transition is being applied'} (request APPLYING)"
    if state == "SCHEDULED":
        why = f": {reason}" if reason else ""
        return (
            f"{done}; waiting for its change window: {applies_at(request)} (request SCHEDULED{why})"
        )
    if state == "PENDING":
        approvals, quorum = request.get("approvals", 0), request.get("quorum", 0)
        missing = quorum - approvals
        if missing > 0:
            more = _WORDS.get(missing, str(missing))
            return f"{done} ({approvals} of {quorum}; waiting for {more} more)"
        return f"{done} ({approvals} of {quorum}; waiting for the checks to pass)"
    if state in ("REJECTED", "CANCELLED"):
        return f"{done}: {model} v{version} will not move to {target}"
    return f"{done}; the request is {state}: {reason or 'see signoff requests --all'}"


def approve(model: Model, version: Version, target: Target, comment: CommentOption = None) -> None:
    """Approve the open request for that target."""
    _decide("approve", model, version, target, comment)


def reject(model: Model, version: Version, target: Target, comment: CommentOption = None) -> None:
    """Reject the open request for that target."""
    _decide("reject", model, version, target, comment)


def cancel(model: Model, version: Version, target: Target, comment: CommentOption = None) -> None:
    """Cancel the open request for that target (yours, or any if you manage the model)."""
    client = api_client()
    open_requests = client.call(
        "GET",
        "/api/2.0/mlflow/transition-requests/list",
        params={"name": model, "version": version},
    )["requests"]
    matching = [r for r in open_requests if r["to_stage"].lower() == target.lower()]
    if not matching:
        fail(f"there is no open request to move {model} v{version} to {target}")
    params = {"name": model, "version": version, "stage": target, "creator": matching[0]["user_id"]}
    if comment:
        params["comment"] = comment
    answer = client.call("DELETE", "/api/2.0/mlflow/transition-requests/delete", params=params)
    typer.echo(outcome_line("cancelled", model, version, target, answer))


def requests(
    model: Annotated[str | None, typer.Argument(help="Only this model.", metavar="MODEL")] = None,
    all_states: Annotated[bool, typer.Option("--all", help="Closed requests too.")] = False,
) -> None:
    """List transition requests (open ones unless --all)."""
    params: dict[str, Any] = {"open_only": not all_states}
    if model:
        params["name"] = model
    found = api_client().call("GET", "/api/2.0/signoff/transition-requests/search", params=params)
    if not found["requests"]:
        typer.echo("no requests")
    for item in found["requests"]:
        typer.echo(f"{item['id']}  {_describe(item)}")


def activities(model: Model, version: Version) -> None:
    """Show the audit trail of a model version, oldest first."""
    found = api_client().call(
        "GET", "/api/2.0/signoff/activities/list", params={"name": model, "version": version}
    )
    for entry in found["activities"]:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry["creation_timestamp"] / 1000))
        note = entry.get("comment") or entry.get("system_comment") or ""
        typer.echo(
            f"{stamp}Z  {entry['activity_type']:<22} {entry['user_id']:<20} "
            f"{entry.get('from_stage', '')} → {entry.get('to_stage', '')}  {note}"
        )
