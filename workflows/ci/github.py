"""GitHub Actions as a validation check, over GitHub's REST API (version 2022-11-28).

Dispatch: `POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches` with
`{"ref": ..., "inputs": {...}, "return_run_details": true}`. GitHub answers `200` with
`{"workflow_run_id", "run_url", "html_url"}` where it supports `return_run_details` (github.com
since February 2026), `204 No Content` where it ignores it, and `422` naming the parameter on
GitHub Enterprise Server versions that refuse it, on which the dispatch is sent again without it.

Inputs sent: `model`, `version`, `target`, `request_id`, `callback_url`, `callback_token`, then
the policy's `inputs` (which cannot override those six). GitHub refuses (422) inputs that the
workflow does not declare, so the validation workflow declares all six, and sets
`run-name: ... ${{ inputs.request_id }}` so its run can be found without a run id.

Finding the run without a run id: `GET /repos/{owner}/{repo}/actions/workflows/{workflow}/runs
?event=workflow_dispatch&created=>=<dispatch time - 5 min>`, the run whose `display_title`
contains the request id (the earliest, if a retried dispatch made two). Then
`GET /repos/{owner}/{repo}/actions/runs/{run_id}`: `status` other than `completed` is running;
once completed, only `conclusion: success` passes. Every other conclusion fails the check,
including `neutral` and `skipped`: a gate passes on positive evidence, and a run whose jobs were
all skipped or that chose to be neutral validated nothing.

The callback token travels as a workflow input, which is not a secret store: any step of the
job can read it and a step that echoes it puts it in the log. It is single-use, valid only while
this one check of this one request waits, and Signoff keeps only its SHA-256. A job that must not
handle it can instead call back with its GitHub OIDC token (`permissions: id-token: write`, the
audience Signoff is configured with) as a bearer token, and ignore the input.

Errors: 401, 403, 404 and 422 at dispatch are refusals that retrying cannot fix (bad token,
missing workflow or ref, undeclared input) and fail the check at once with GitHub's message;
connection errors, timeouts, 5xx, 429 and rate-limit 403s are retried by Temporal with backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from temporalio.exceptions import ApplicationError

from policies import CiCheck, GithubActionsCheck
from workflows.ci.base import CiContext, CiOutcome, CiRunRef
from workflows.domain import now_ms
from workflows.errors import CI_REFUSED, CI_UNAVAILABLE
from workflows.tls import verifying_context

if TYPE_CHECKING:
    from workflows.settings import WorkerSettings

API_VERSION = "2022-11-28"

PASSING_CONCLUSIONS = frozenset({"success"})
"""Only these pass. failure, cancelled, timed_out, action_required, startup_failure, stale,
neutral and skipped all fail the check."""
STANDARD_INPUTS = ("model", "version", "target", "request_id", "callback_url", "callback_token")
CREATED_SKEW_MS = 5 * 60 * 1000
"""How far before the dispatch (by the worker's clock) a run may be stamped by GitHub's."""
MAX_LIST_PAGES = 3
_PER_PAGE = 100


class GithubActionsClient:
    """A `CiClient` for GitHub Actions. Holds configuration only; each call opens its own
    connection, so one instance serves any number of activities on any event loop."""

    def __init__(
        self,
        api_url: str = "https://api.github.com",
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._transport = transport

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> GithubActionsClient:
        token = settings.github_token.get_secret_value() if settings.github_token else None
        return cls(settings.github_api_url, token or None)

    def __repr__(self) -> str:  # never the token
        return f"GithubActionsClient({self.api_url!r})"

    # -- CiClient ---------------------------------------------------------------------------

    async def dispatch(self, check: CiCheck, ctx: CiContext) -> CiRunRef:
        check = _github(check)
        if not self._token:
            raise ApplicationError(
                "SIGNOFF_GITHUB_TOKEN is not set on the worker; GitHub needs a token with the "
                "actions:write permission on "
                f"{check.repo} to dispatch {check.workflow}",
                type=CI_REFUSED,
                non_retryable=True,
            )
        inputs = {**check.inputs, **_standard_inputs(ctx)}
        body: dict[str, Any] = {"ref": check.ref, "inputs": inputs, "return_run_details": True}
        dispatched_at_ms = now_ms()
        response = await self._send("POST", _workflow_path(check, "dispatches"), json=body)
        if response.status_code == 422 and "return_run_details" in _message(response):
            # A GitHub Enterprise Server that predates the parameter: dispatch without it.
            body.pop("return_run_details")
            response = await self._send("POST", _workflow_path(check, "dispatches"), json=body)
        _raise_for(response, f"dispatch {check.workflow} on {check.repo}@{check.ref}")
        ref = CiRunRef(
            system="github_actions", dispatched_at_ms=dispatched_at_ms, request_id=ctx.request_id
        )
        if response.status_code == 200 and response.content:
            details = response.json()
            run_id = details.get("workflow_run_id") if isinstance(details, dict) else None
            if run_id is not None:
                ref.run_id = str(run_id)
                ref.url = details.get("html_url") or None
        return ref

    async def poll(self, check: CiCheck, ref: CiRunRef) -> CiOutcome:
        check = _github(check)
        if ref.run_id is None:
            run = await self._find_run(check, ref)
            if run is None:
                return CiOutcome(
                    status="running",
                    summary="dispatched; GitHub has not listed the run yet",
                    evidence=_base_evidence(check),
                )
        else:
            path = f"/repos/{_repo_path(check)}/actions/runs/{quote(ref.run_id, safe='')}"
            response = await self._send("GET", path)
            _raise_for(response, f"read run {ref.run_id} of {check.repo}")
            run = response.json()
        return outcome_of(check, run, ref)

    # -- beyond the protocol ----------------------------------------------------------------

    async def find_existing(self, check: CiCheck, ctx: CiContext, since_ms: int) -> CiRunRef | None:
        """The run an earlier attempt of the dispatch activity started, if GitHub lists it:
        lets a retried dispatch reuse it instead of starting a second one."""
        check = _github(check)
        probe = CiRunRef(
            system="github_actions", dispatched_at_ms=since_ms, request_id=ctx.request_id
        )
        run = await self._find_run(check, probe)
        if run is None:
            return None
        return probe.model_copy(update={"run_id": str(run["id"]), "url": run.get("html_url")})

    async def _find_run(self, check: GithubActionsCheck, ref: CiRunRef) -> dict[str, Any] | None:
        request_id = _request_id_of(ref)
        since = datetime.fromtimestamp((ref.dispatched_at_ms - CREATED_SKEW_MS) / 1000, UTC)
        params: dict[str, str | int] = {
            "event": "workflow_dispatch",
            "created": ">=" + since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "per_page": _PER_PAGE,
        }
        matches: list[dict[str, Any]] = []
        for page in range(1, MAX_LIST_PAGES + 1):
            response = await self._send(
                "GET", _workflow_path(check, "runs"), params={**params, "page": page}
            )
            _raise_for(response, f"list the runs of {check.workflow} on {check.repo}")
            body = response.json()
            runs = body.get("workflow_runs") or []
            matches += [
                run
                for run in runs
                if isinstance(run, dict) and request_id in str(run.get("display_title") or "")
            ]
            if len(runs) < _PER_PAGE or page * _PER_PAGE >= int(body.get("total_count") or 0):
                break
        return min(matches, key=lambda run: int(run["id"])) if matches else None

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "signoff",
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            async with httpx.AsyncClient(
                base_url=self.api_url,
                headers=headers,
                timeout=self._timeout,
                transport=self._transport,
                verify=verifying_context(),
            ) as client:
                return await client.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise ApplicationError(
                f"GitHub at {self.api_url} is not reachable ({type(err).__name__}: {err}); "
                "check SIGNOFF_GITHUB_API_URL and the network",
                type=CI_UNAVAILABLE,
            ) from None


# --------------------------------------------------------------------------------------------
# Reading GitHub's answers
# --------------------------------------------------------------------------------------------


def outcome_of(check: GithubActionsCheck, run: Mapping[str, Any], ref: CiRunRef) -> CiOutcome:
    """A workflow run object (`GET .../actions/runs/{id}` or an item of the runs list) as an
    outcome of the check."""
    status = str(run.get("status") or "queued")
    conclusion = run.get("conclusion")
    number = run.get("run_number")
    label = f"run #{number}" if number is not None else f"run {run.get('id')}"
    evidence = {
        **_base_evidence(check),
        "run_id": run.get("id"),
        "run_url": run.get("html_url"),
        "status": status,
        "conclusion": conclusion,
    }
    completed_ref = ref.model_copy(
        update={"run_id": str(run.get("id")), "url": run.get("html_url") or ref.url}
    )
    if status != "completed" or conclusion is None:
        return CiOutcome(
            status="running", summary=f"{label} is {status}", evidence=evidence, ref=completed_ref
        )
    passed = conclusion in PASSING_CONCLUSIONS
    return CiOutcome(
        status="passed" if passed else "failed",
        summary=f"GitHub Actions {label} of {check.workflow} concluded {conclusion}",
        evidence=evidence,
        ref=completed_ref,
    )


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if not isinstance(body, dict):
        return response.text[:300]
    message = str(body.get("message") or "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        details = "; ".join(
            str(e.get("message") or e) if isinstance(e, dict) else str(e) for e in errors
        )
        message = f"{message} ({details})" if message else details
    return message or response.text[:300]


_HINTS = {
    401: "check SIGNOFF_GITHUB_TOKEN",
    403: "the token needs the actions:write permission on the repository",
    404: "check the repository and workflow names, and that the token can see the repository",
}


def _rate_limited(response: httpx.Response) -> bool:
    return response.status_code == 429 or (
        response.status_code == 403
        and (
            response.headers.get("x-ratelimit-remaining") == "0"
            or "rate limit" in _message(response).lower()
        )
    )


def _raise_for(response: httpx.Response, action: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    message = _message(response)
    if status >= 500 or _rate_limited(response):
        raise ApplicationError(
            f"GitHub could not {action} (HTTP {status}): {message}; retrying",
            type=CI_UNAVAILABLE,
        )
    hint = _HINTS.get(status)
    raise ApplicationError(
        f"GitHub refused to {action} (HTTP {status}): {message}" + (f"; {hint}" if hint else ""),
        {"status": status, "message": message},
        type=CI_REFUSED,
        non_retryable=True,
    )


# --------------------------------------------------------------------------------------------
# Paths and inputs
# --------------------------------------------------------------------------------------------


def _github(check: CiCheck) -> GithubActionsCheck:
    if not isinstance(check, GithubActionsCheck):
        raise ApplicationError(
            f"the GitHub Actions client cannot run a {check.type} check", non_retryable=True
        )
    return check


def _repo_path(check: GithubActionsCheck) -> str:
    owner, repo = check.repo.split("/", 1)
    return f"{quote(owner, safe='')}/{quote(repo, safe='')}"


def _workflow_path(check: GithubActionsCheck, leaf: str) -> str:
    return f"/repos/{_repo_path(check)}/actions/workflows/{quote(check.workflow, safe='')}/{leaf}"


def _standard_inputs(ctx: CiContext) -> dict[str, str]:
    return {
        "model": ctx.model,
        "version": ctx.version,
        "target": ctx.target,
        "request_id": ctx.request_id,
        "callback_url": ctx.callback_url,
        "callback_token": ctx.callback_token,
    }


def _base_evidence(check: GithubActionsCheck) -> dict[str, Any]:
    return {"system": "github_actions", "repo": check.repo, "workflow": check.workflow}


def _request_id_of(ref: CiRunRef) -> str:
    if not ref.request_id:
        raise ApplicationError(
            "the run reference carries no request id to find the run by", non_retryable=True
        )
    return ref.request_id


def from_settings(settings: WorkerSettings) -> GithubActionsClient:
    """The factory `workflows.activities.ci` looks up in each CI client module."""
    return GithubActionsClient.from_settings(settings)
