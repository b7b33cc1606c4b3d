"""A loopback HTTP server playing the part of GitHub's REST API for Actions (2022-11-28).

It speaks GitHub's real paths, JSON and status codes for the three calls a validation check
makes, and records every request it receives:

- `POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches` — 401 without the right
  token, 404 for an unknown workflow, 422 for a missing ref, an unknown ref, undeclared inputs
  or missing required ones; else a run is created and the answer is `200 {workflow_run_id,
  run_url, html_url}` when `return_run_details` is true, `204` otherwise. `run_details` plays
  older servers: `"ignored"` answers 204 regardless, `"refused"` answers 422 naming the
  parameter (as GitHub Enterprise Server versions that predate it do);
- `GET /repos/{owner}/{repo}/actions/workflows/{workflow}/runs` with `event`, `status`,
  `created` (`>=`, `>`, `<=`, `<` or `a..b` on ISO 8601 times), `per_page`, `page` — newest
  first, `{"total_count", "workflow_runs"}`;
- `GET /repos/{owner}/{repo}/actions/runs/{run_id}` — the workflow run object.

As a GitHub App's host (custom deployment protection rules) it also plays:

- `POST /app/installations/{installation_id}/access_tokens` — the App JWT is verified (RS256
  with the App's public key, `iss` the App id, `iat` not in the future, `exp` at most 10
  minutes ahead): 401 otherwise, 404 for an installation the App does not have; else `201
  {token, expires_at, permissions, repository_selection}` (a new `ghs_` token, for an hour);
- `POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule` — only with
  one of those installation tokens for that repository (401/403 otherwise); `{environment_name,
  state: approved|rejected, comment}` answers the pending rule the test opened with
  `request_deployment` (`204`), a comment alone is accepted as a status (`204`), and a run and
  environment with no pending rule answer 422. Answers are in `reviews`.

`deployment_event` and `deliver_webhook` make and send the App's webhook deliveries
(`X-GitHub-Event`, `X-GitHub-Delivery`, `X-Hub-Signature-256`).

The workflow is declared by the test (`add_workflow`): its inputs, refs and `run-name`
template (`${{ inputs.x }}` substituted, as GitHub does for `display_title`), and how its runs
behave on their own: they are `queued`, become `in_progress` on the first read, and
`completed` with `conclusion` after `reads_until_done` reads (None: they never finish unless the
test calls `complete`). `fail_next` answers the next requests with a 5xx; `down`/`up` stop and
restart listening on the same port (connection refused in between); `lose_next_dispatch_answers`
creates the run and then answers 502, as when GitHub's answer is lost.

Mirror it for other CI systems: a `ThreadingHTTPServer` on 127.0.0.1, state under one lock,
`requests` recorded with lower-cased headers and the parsed JSON body.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
from jose import JWTError
from jose import jwt as jose_jwt

DOCS = "https://docs.github.com/rest/actions/workflows"
FAKE_TOKEN = "ghs_fake-installation-token"
STANDARD_INPUTS = ("model", "version", "target", "request_id", "callback_url", "callback_token")
RUN_NAME = (
    "Signoff validation of ${{ inputs.model }} v${{ inputs.version }} (${{ inputs.request_id }})"  # noqa: E501
)
_TEMPLATE = re.compile(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeWorkflow:
    id: int
    repo: str
    file: str
    inputs: dict[str, bool]
    """Declared inputs: name -> required."""
    refs: set[str]
    run_name: str
    conclusion: str
    reads_until_done: int | None


@dataclass
class FakeRun:
    id: int
    number: int
    workflow: FakeWorkflow
    ref: str
    inputs: dict[str, str]
    display_title: str
    created: float
    status: str = "queued"
    conclusion: str | None = None
    reads: int = 0
    updated: float = field(default_factory=time.time)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _created_filter(expr: str) -> Callable[[float], bool]:
    """GitHub's search syntax for dates, as the `created` parameter takes it."""
    if ".." in expr:
        low, high = expr.split("..", 1)
        return lambda t: (
            (low == "*" or t >= _parse_iso(low)) and (high == "*" or t <= _parse_iso(high))
        )
    for op, test in (
        (">=", lambda t, b: t >= b),
        ("<=", lambda t, b: t <= b),
        (">", lambda t, b: t > b),
        ("<", lambda t, b: t < b),
    ):
        if expr.startswith(op):
            bound = _parse_iso(expr[len(op) :])
            return lambda t, bound=bound, test=test: test(t, bound)
    day = expr[:10]
    return lambda t: _iso(t)[:10] == day


@dataclass
class FakeApp:
    """A GitHub App as GitHub knows it: its id, public key and installations (id -> repos)."""

    app_id: str
    public_pem: str
    installations: dict[int, set[str]]
    tokens: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Issued installation tokens -> (installation id, expiry)."""
    jwt_claims: list[dict[str, Any]] = field(default_factory=list)
    """The claims of every App JWT GitHub accepted."""
    pending: set[tuple[str, int, str]] = field(default_factory=set)
    """(repository, run id, environment) waiting for this App's protection rule."""
    token_ttl_s: float = 3600
    """How long installation tokens live (GitHub's: an hour)."""

    def exchange(self, auth: str, installation: str) -> tuple[int, Any]:
        doc = (
            "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"
        )
        token = auth.removeprefix("Bearer ")
        try:
            claims = jose_jwt.decode(
                token, self.public_pem, algorithms=["RS256"], options={"verify_aud": False}
            )
        except JWTError:
            return 401, {
                "message": "A JSON web token could not be decoded",
                "documentation_url": doc,
            }
        now = time.time()
        if str(claims.get("iss")) != self.app_id:
            return 401, {"message": "Integration not found", "documentation_url": doc}
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or iat > now + 1:
            return 401, {"message": "'Issued at' claim ('iat') must be an Integer representing "
                         "a time in the past", "documentation_url": doc}  # fmt: skip
        if exp > now + 600 or exp <= now:
            return 401, {"message": "'Expiration time' claim ('exp') is too far in the future",
                         "documentation_url": doc}  # fmt: skip
        if not installation.isdigit() or int(installation) not in self.installations:
            return 404, {"message": "Not Found", "documentation_url": doc, "status": "404"}
        self.jwt_claims.append(claims)
        value = "ghs_" + "".join(f"{b:02x}" for b in os.urandom(18))
        expires = now + self.token_ttl_s
        self.tokens[value] = (int(installation), expires)
        return 201, {
            "token": value,
            "expires_at": _iso(expires),
            "permissions": {"actions": "read", "deployments": "write", "metadata": "read"},
            "repository_selection": "selected",
        }

    def review(self, auth: str, repo: str, run_id: str, body: Any) -> tuple[int, Any]:
        doc = "https://docs.github.com/rest/actions/workflow-runs#review-custom-deployment-protection-rules-for-a-workflow-run"
        token = auth.removeprefix("Bearer ").removeprefix("token ")
        held = self.tokens.get(token)
        if held is None or held[1] <= time.time():
            return 401, {"message": "Bad credentials", "documentation_url": doc, "status": "401"}
        if repo not in self.installations[held[0]]:
            return 403, {"message": "Resource not accessible by integration",
                         "documentation_url": doc, "status": "403"}  # fmt: skip
        if not isinstance(body, dict) or not isinstance(body.get("environment_name"), str):
            return 422, {"message": "Invalid request.\n\n\"environment_name\" wasn't supplied.",
                         "documentation_url": doc, "status": "422"}  # fmt: skip
        state = body.get("state")
        if state is None and isinstance(body.get("comment"), str):
            return 204, None  # a status comment; the rule keeps waiting
        key = (repo, int(run_id), body["environment_name"])
        if state not in ("approved", "rejected") or key not in self.pending:
            return 422, {"message": "No pending deployment protection rule for this run and "
                         "environment", "documentation_url": doc, "status": "422"}  # fmt: skip
        self.pending.discard(key)
        return 204, None


def deployment_event(
    fake: FakeGithub,
    *,
    repo: str,
    repository_id: int,
    run_id: int,
    environment: str,
    installation_id: int,
    deployment_id: int = 1_000_001,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """A `deployment_protection_rule` (`requested`) payload as GitHub sends it to the App."""
    owner, name = repo.split("/", 1)
    api = f"{fake.url}/repos/{repo}"
    return {
        "action": "requested",
        "environment": environment,
        "event": "workflow_dispatch",
        "deployment_callback_url": callback_url
        or f"{api}/actions/runs/{run_id}/deployment_protection_rule",
        "deployment": {
            "url": f"{api}/deployments/{deployment_id}",
            "id": deployment_id,
            "node_id": f"DE_fake{deployment_id}",
            "sha": "0" * 40,
            "ref": "main",
            "task": "deploy",
            "payload": {},
            "original_environment": environment,
            "environment": environment,
            "description": None,
            "creator": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
            "created_at": _iso(time.time()),
            "updated_at": _iso(time.time()),
            "statuses_url": f"{api}/deployments/{deployment_id}/statuses",
            "repository_url": api,
        },
        "repository": {
            "id": repository_id,
            "node_id": f"R_fake{repository_id}",
            "name": name,
            "full_name": repo,
            "private": True,
            "owner": {"login": owner, "id": 4242, "type": "Organization"},
            "html_url": f"https://github.com/{repo}",
            "url": api,
        },
        "organization": {"login": owner, "id": 4242},
        "sender": {"login": "octocat", "id": 1, "type": "User"},
        "installation": {"id": installation_id, "node_id": f"MDIz{installation_id}"},
    }


def deliver_webhook(
    url: str,
    secret: str,
    event: str,
    payload: Any,
    *,
    delivery: str | None = None,
    signature: str | None = None,
) -> httpx.Response:
    """POST a webhook delivery as GitHub does: `X-Hub-Signature-256` over the exact body."""
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/fake",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "123456",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": "98765",
        "X-Hub-Signature-256": signature or f"sha256={digest}",
    }
    return httpx.post(url, content=body, headers=headers, timeout=30)


class FakeGithub:
    def __init__(
        self,
        token: str = FAKE_TOKEN,
        *,
        run_details: Literal["supported", "ignored", "refused"] = "supported",
    ) -> None:
        self.token = token
        self.run_details = run_details
        self.requests: list[Recorded] = []
        self.runs: dict[int, FakeRun] = {}
        self._workflows: dict[tuple[str, str], FakeWorkflow] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count(9_000_000_001)
        self._numbers: dict[int, Iterator[int]] = {}
        self._fail: list[int] = []
        self._lose_dispatch_answers = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.app: FakeApp | None = None
        self.reviews: list[Recorded] = []
        """Every deployment protection rule review GitHub accepted (204), in order."""

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeGithub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def down(self) -> None:
        """Stop listening: connections are refused until `up`."""
        self.stop()

    def up(self) -> None:
        """Listen again, on the same port."""
        self.start()

    def __enter__(self) -> FakeGithub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the test controls -------------------------------------------------------------

    def add_workflow(
        self,
        repo: str,
        file: str = "validate.yml",
        *,
        inputs: dict[str, bool] | None = None,
        refs: tuple[str, ...] = ("main",),
        run_name: str = RUN_NAME,
        conclusion: str = "success",
        reads_until_done: int | None = 2,
    ) -> FakeWorkflow:
        declared = {name: True for name in STANDARD_INPUTS} if inputs is None else dict(inputs)
        with self._lock:
            workflow = FakeWorkflow(
                id=100_000 + len(self._workflows),
                repo=repo,
                file=file,
                inputs=declared,
                refs=set(refs),
                run_name=run_name,
                conclusion=conclusion,
                reads_until_done=reads_until_done,
            )
            self._workflows[(repo, file)] = workflow
            self._numbers[workflow.id] = itertools.count(1)
        return workflow

    def install_app(self, app_id: str, public_pem: str, installations: dict[int, set[str]]) -> None:
        """Register a GitHub App (its public key) installed on these repositories."""
        with self._lock:
            self.app = FakeApp(app_id, public_pem, installations)

    def request_deployment(self, repo: str, run_id: int, environment: str) -> None:
        """A job of the run reached `environment`: the App's protection rule is pending."""
        with self._lock:
            assert self.app is not None, "install_app first"
            self.app.pending.add((repo, run_id, environment))

    def reviews_of(self, repo: str, run_id: int) -> list[Recorded]:
        with self._lock:
            prefix = f"/repos/{repo}/actions/runs/{run_id}/"
            return [r for r in self.reviews if r.path.startswith(prefix)]

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` requests with `status` (a GitHub outage)."""
        with self._lock:
            self._fail += [status] * count

    def lose_next_dispatch_answers(self, count: int = 1) -> None:
        """The next `count` dispatches create their run, then answer 502."""
        with self._lock:
            self._lose_dispatch_answers += count

    def complete(self, run_id: int, conclusion: str) -> None:
        with self._lock:
            run = self.runs[run_id]
            run.status, run.conclusion, run.updated = "completed", conclusion, time.time()

    def dispatches(self) -> list[Recorded]:
        with self._lock:
            return [
                r for r in self.requests if r.method == "POST" and r.path.endswith("/dispatches")
            ]

    def runs_for(self, request_id: str) -> list[FakeRun]:
        with self._lock:
            return [run for run in self.runs.values() if run.inputs.get("request_id") == request_id]

    def wait_for_run(self, request_id: str, timeout: float = 30.0) -> FakeRun:
        """The run dispatched for a request, once it exists (real time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs_for(request_id)
            if runs:
                return runs[0]
            time.sleep(0.02)
        raise AssertionError(f"no run was dispatched for request {request_id} in {timeout:g} s")

    # -- the server -------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        recorded = Recorded(
            method=handler.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
            headers={key.lower(): value for key, value in handler.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(recorded)
            failure = self._fail.pop(0) if self._fail else None
            if failure is not None:
                status, payload = failure, {"message": "Server Error"}
            else:
                status, payload = self._route(recorded)
        self._respond(handler, status, payload)

    @staticmethod
    def _respond(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
        handler.send_header("X-RateLimit-Limit", "5000")
        handler.send_header("X-RateLimit-Remaining", "4999")
        if payload is not None:
            handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if data:
            handler.wfile.write(data)

    def _route(self, req: Recorded) -> tuple[int, Any]:
        auth = req.headers.get("authorization", "")
        path = [unquote(part) for part in req.path.strip("/").split("/")]
        if self.app is not None and req.method == "POST":
            match path:
                case ["app", "installations", installation, "access_tokens"]:
                    return self.app.exchange(auth, installation)
                case [
                    "repos",
                    owner,
                    repo,
                    "actions",
                    "runs",
                    run_id,
                    "deployment_protection_rule",
                ]:
                    status, payload = self.app.review(auth, f"{owner}/{repo}", run_id, req.body)
                    if status == 204 and isinstance(req.body, dict) and "state" in req.body:
                        self.reviews.append(req)
                    return status, payload
        if not auth:
            return 401, {
                "message": "Requires authentication",
                "documentation_url": DOCS,
                "status": "401",
            }
        if auth not in (f"Bearer {self.token}", f"token {self.token}"):
            return 401, {
                "message": "Bad credentials",
                "documentation_url": "https://docs.github.com/rest",
                "status": "401",
            }
        match path:
            case ["repos", owner, repo, "actions", "workflows", workflow_id, "dispatches"]:
                if req.method == "POST":
                    return self._dispatch(f"{owner}/{repo}", workflow_id, req.body)
            case ["repos", owner, repo, "actions", "workflows", workflow_id, "runs"]:
                if req.method == "GET":
                    return self._list_runs(f"{owner}/{repo}", workflow_id, req.query)
            case ["repos", owner, repo, "actions", "runs", run_id]:
                if req.method == "GET":
                    return self._get_run(f"{owner}/{repo}", run_id)
        return 404, {
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest",
            "status": "404",
        }

    def _workflow(self, repo: str, workflow_id: str) -> FakeWorkflow | None:
        for workflow in self._workflows.values():
            if workflow.repo == repo and workflow_id in (workflow.file, str(workflow.id)):
                return workflow
        return None

    def _dispatch(self, repo: str, workflow_id: str, body: Any) -> tuple[int, Any]:
        doc = f"{DOCS}#create-a-workflow-dispatch-event"
        workflow = self._workflow(repo, workflow_id)
        if workflow is None:
            return 404, {"message": "Not Found", "documentation_url": doc, "status": "404"}
        if not isinstance(body, dict) or "ref" not in body:
            return 422, {
                "message": 'Invalid request.\n\n"ref" wasn\'t supplied.',
                "documentation_url": doc,
                "status": "422",
            }
        if "return_run_details" in body and self.run_details == "refused":
            return 422, {
                "message": 'Invalid request.\n\n"return_run_details" is not a permitted key.',
                "documentation_url": doc,
                "status": "422",
            }
        ref = str(body["ref"]).removeprefix("refs/heads/")
        if ref not in workflow.refs:
            return 422, {
                "message": f"No ref found for: {body['ref']}",
                "documentation_url": doc,
                "status": "422",
            }
        inputs = body.get("inputs") or {}
        unexpected = sorted(set(inputs) - set(workflow.inputs))
        if unexpected:
            return 422, {
                "message": f"Unexpected inputs provided: {json.dumps(unexpected)}",
                "documentation_url": doc,
                "status": "422",
            }
        for name, required in workflow.inputs.items():
            if required and name not in inputs:
                return 422, {
                    "message": f"Required input '{name}' not provided",
                    "documentation_url": doc,
                    "status": "422",
                }
        run = FakeRun(
            id=next(self._ids),
            number=next(self._numbers[workflow.id]),
            workflow=workflow,
            ref=ref,
            inputs={key: str(value) for key, value in inputs.items()},
            display_title=_TEMPLATE.sub(
                lambda m: str(inputs.get(m.group(1), "")), workflow.run_name
            ),
            created=time.time(),
        )
        self.runs[run.id] = run
        if self._lose_dispatch_answers:
            self._lose_dispatch_answers -= 1
            return 502, {"message": "Server Error"}
        if body.get("return_run_details") is True and self.run_details == "supported":
            return 200, {
                "workflow_run_id": run.id,
                "run_url": f"{self.url}/repos/{repo}/actions/runs/{run.id}",
                "html_url": f"https://github.com/{repo}/actions/runs/{run.id}",
            }
        return 204, None

    def _read(self, run: FakeRun) -> dict[str, Any]:
        """A run as GitHub shows it; reading it moves it along (see the module docstring)."""
        run.reads += 1
        if run.status == "queued":
            run.status, run.updated = "in_progress", time.time()
        done = run.workflow.reads_until_done
        if run.status == "in_progress" and done is not None and run.reads >= done:
            run.status, run.conclusion, run.updated = (
                "completed",
                run.workflow.conclusion,
                time.time(),
            )
        repo = run.workflow.repo
        api = f"{self.url}/repos/{repo}"
        return {
            "id": run.id,
            "name": "Signoff validation",
            "node_id": f"WFR_fake{run.id}",
            "head_branch": run.ref,
            "head_sha": "0" * 40,
            "path": f".github/workflows/{run.workflow.file}",
            "display_title": run.display_title,
            "run_number": run.number,
            "event": "workflow_dispatch",
            "status": run.status,
            "conclusion": run.conclusion,
            "workflow_id": run.workflow.id,
            "url": f"{api}/actions/runs/{run.id}",
            "html_url": f"https://github.com/{repo}/actions/runs/{run.id}",
            "jobs_url": f"{api}/actions/runs/{run.id}/jobs",
            "logs_url": f"{api}/actions/runs/{run.id}/logs",
            "cancel_url": f"{api}/actions/runs/{run.id}/cancel",
            "workflow_url": f"{api}/actions/workflows/{run.workflow.id}",
            "created_at": _iso(run.created),
            "updated_at": _iso(run.updated),
            "run_started_at": _iso(run.created),
            "run_attempt": 1,
        }

    def _list_runs(self, repo: str, workflow_id: str, query: dict[str, str]) -> tuple[int, Any]:
        workflow = self._workflow(repo, workflow_id)
        if workflow is None:
            return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        runs = sorted(
            (run for run in self.runs.values() if run.workflow is workflow),
            key=lambda run: run.id,
            reverse=True,
        )
        if query.get("event") not in (None, "workflow_dispatch"):
            runs = []
        if "created" in query:
            keep = _created_filter(query["created"])
            runs = [run for run in runs if keep(run.created)]
        if "status" in query:
            runs = [r for r in runs if query["status"] in (r.status, r.conclusion)]
        per_page = min(int(query.get("per_page", 30)), 100)
        page = int(query.get("page", 1))
        shown = runs[(page - 1) * per_page : page * per_page]
        return 200, {"total_count": len(runs), "workflow_runs": [self._read(run) for run in shown]}

    def _get_run(self, repo: str, run_id: str) -> tuple[int, Any]:
        run = self.runs.get(int(run_id)) if run_id.isdigit() else None
        if run is None or run.workflow.repo != repo:
            return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        return 200, self._read(run)
