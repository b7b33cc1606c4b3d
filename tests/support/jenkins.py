"""A loopback HTTP server playing Jenkins' remote access API (Jenkins 2.4xx), for tests.

It speaks the paths, JSON shapes and headers of a real Jenkins with security on, and records
every request it receives:

- HTTP basic auth with a user's API token: no credentials -> 403 as `anonymous`
  (`X-You-Are-Authenticated-As`), wrong ones -> 401 "Invalid password/token for user";
- CSRF: `GET /crumbIssuer/api/json` -> `{"_class", "crumb", "crumbRequestField":
  "Jenkins-Crumb"}` and a `JSESSIONID.<hash>` session cookie; the crumb is valid only with that
  session (as since Jenkins 2.176). A POST without a valid crumb -> 403 "No valid crumb was
  included in the request". With `csrf=False` the crumb issuer answers 404 and POSTs need none;
- `POST /job/<a>/job/<b>/buildWithParameters`: parameters from the query string and the form
  body, of which only those the job defines are kept (as Jenkins does) -> `201` with
  `Location: <root>/queue/item/<id>/`. A trigger whose parameters equal those of an item still
  waiting in the queue gets that item (Jenkins merges them). 404 for an unknown job, 409 for a
  disabled one, 500 "This build is not parameterized!" for a job without parameters;
- `GET /queue/item/<id>/api/json`: a `Queue$WaitingItem` (with `why`) until the item has been
  read `queue_reads` times and `queue_delay` seconds passed, then a `Queue$LeftItem` with
  `executable: {number, url}`, or `cancelled: true`. `GET /queue/api/json` lists the waiting
  items with their parameters;
- `GET /job/<...>/<number>/api/json`: the build, `building` until it has been read
  `build_reads` times (None: never finishes) and `build_duration` seconds passed, then `result`;
  `GET /job/<...>/api/json`: the job with its `builds` (number, url, queueId, timestamp, and the
  parameters under `actions`).

URLs in answers use `root_url` (Jenkins' configured root URL), which may differ from the URL
the server is reached at. Test knobs: `outcome` (the result of builds triggered from now on),
`go_down("refuse" | "503")` / `come_back()`, `fail_next(n)` (the next n requests get a 5xx),
`lose_next_trigger_answers(n)` (queue the build, then answer 502, as when the answer is lost),
`forget_next_sessions(n)` (a crumb goes stale before its POST), `add_job(...)` with
`disabled` / `build_permission` / `parameterized` set as needed,
`cancel_queue_item`, `forget_queue_item` (what Jenkins does ~5 minutes after an item left the
queue), and `callback` (when a build finishes, POST the Signoff callback the way
infra/ci/jenkins/Jenkinsfile does).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx

JENKINS_VERSION = "2.479.3"
CRUMB_FIELD = "Jenkins-Crumb"
FAKE_USER = "signoff-bot"
FAKE_TOKEN = "11d1f0c9a5e5c6a1b2c3d4e5f6a7b8c9d0"
SIGNOFF_PARAMETERS: dict[str, str] = {
    "model": "string",
    "version": "string",
    "target": "string",
    "request_id": "string",
    "check": "string",
    "callback_url": "string",
    "callback_token": "password",
}
"""The parameters infra/ci/jenkins/Jenkinsfile defines for Signoff (name -> string/password)."""

Outcome = Literal["SUCCESS", "FAILURE", "UNSTABLE", "ABORTED", "NOT_BUILT"]
DownMode = Literal["refuse", "503"]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Header names in lower case."""
    form: dict[str, str]


@dataclass
class FakeJob:
    full_name: str
    parameters: dict[str, str]
    parameterized: bool = True
    disabled: bool = False
    build_permission: bool = True
    """False: the user lacks Job/Build on it (403, a full Jenkins page)."""
    next_number: int = 1
    builds: list[FakeBuild] = field(default_factory=list)
    """Newest first, as Jenkins lists them."""


@dataclass
class FakeBuild:
    job: FakeJob
    number: int
    queue_id: int
    started: float
    started_ms: int
    duration: float
    reads_left: int | None
    result: Outcome
    parameters: dict[str, str]
    called_back: bool = False

    def finished(self, now: float) -> bool:
        return (
            self.reads_left is not None
            and self.reads_left <= 0
            and (now >= self.started + self.duration)
        )


@dataclass
class FakeQueueItem:
    id: int
    job: FakeJob
    parameters: dict[str, str]
    queued: float
    delay: float
    reads_left: int
    duration: float
    build_reads: int | None
    result: Outcome
    cancelled: bool = False
    build: FakeBuild | None = None


class FakeJenkins:
    """Start with `with FakeJenkins() as jenkins:`; `jenkins.url` is where it listens."""

    def __init__(
        self,
        *,
        user: str = FAKE_USER,
        token: str = FAKE_TOKEN,
        csrf: bool = True,
        outcome: Outcome = "SUCCESS",
        queue_delay: float = 0.0,
        build_duration: float = 0.0,
        queue_reads: int = 0,
        build_reads: int | None = 0,
        jobs: dict[str, dict[str, str] | None] | None = None,
        root_url: str | None = None,
        callback: bool = False,
    ) -> None:
        self.user = user
        self.token = token
        self.csrf = csrf
        self.outcome: Outcome = outcome
        self.queue_delay = queue_delay
        self.build_duration = build_duration
        self.queue_reads = queue_reads
        self.build_reads = build_reads
        self.callback = callback
        self.requests: list[Recorded] = []
        self.callbacks: list[dict[str, Any]] = []
        """Callback bodies this Jenkins posted, each with `answered`: Signoff's status."""
        self.down: DownMode | None = None
        self._root_url = root_url
        self._lock = threading.RLock()
        self._jobs: dict[str, FakeJob] = {}
        self._queue: dict[int, FakeQueueItem] = {}
        self._next_queue_id = 1
        self._sessions: dict[str, str] = {}  # session id -> crumb
        self._cookie_name = f"JSESSIONID.{secrets.token_hex(4)}"
        self._instance = secrets.token_hex(16)
        self._fail_next: list[int] = []
        self._lose_answers = 0
        self._forget_sessions = 0
        self._server: ThreadingHTTPServer | None = None
        self._port = 0
        self._timers: list[threading.Timer] = []
        for name, parameters in (jobs or {"validate-model": SIGNOFF_PARAMETERS}).items():
            self.add_job(name, parameters)

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> FakeJenkins:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler_for(self))
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def root_url(self) -> str:
        """What Jenkins puts in the URLs it reports (its configured root URL)."""
        return (self._root_url or self.url).rstrip("/")

    def go_down(self, mode: DownMode = "refuse") -> None:
        """`refuse`: nothing listens on the port (connection refused); `503`: Jenkins answers
        503 "Jenkins is getting ready to work", as it does while starting."""
        self.down = mode
        if mode == "refuse":
            self.stop()

    def come_back(self) -> None:
        if self.down == "refuse":
            self.start()  # on the same port
        self.down = None

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._fail_next += [status] * count

    def forget_next_sessions(self, count: int = 1) -> None:
        """The next `count` crumbs are forgotten as soon as they are issued, as if Jenkins
        restarted between the crumb request and the POST: that POST gets "No valid crumb"."""
        with self._lock:
            self._forget_sessions += count

    def lose_next_trigger_answers(self, count: int = 1) -> None:
        with self._lock:
            self._lose_answers += count

    # -- state ----------------------------------------------------------------------------------

    def add_job(self, full_name: str, parameters: dict[str, str] | None = None) -> FakeJob:
        """A job (`folder/name` in folders) defining `parameters` (None: not parameterized)."""
        job = FakeJob(
            full_name=full_name,
            parameters=dict(parameters or {}),
            parameterized=parameters is not None,
        )
        with self._lock:
            self._jobs[full_name] = job
        return job

    def job(self, full_name: str) -> FakeJob:
        return self._jobs[full_name]

    def cancel_queue_item(self, queue_id: int) -> None:
        with self._lock:
            self._queue[queue_id].cancelled = True

    def forget_queue_item(self, queue_id: int) -> None:
        """Start the item's build now if it has none yet, then forget the item."""
        with self._lock:
            self._advance(self._queue[queue_id], time.monotonic(), force=True)
            del self._queue[queue_id]

    def requests_to(self, suffix: str, method: str | None = None) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if r.path.endswith(suffix) and (method is None or r.method == method)
        ]

    def builds(self, full_name: str) -> list[FakeBuild]:
        return list(self._jobs[full_name].builds)

    def queued_for(self, request_id: str) -> list[FakeQueueItem]:
        with self._lock:
            return [i for i in self._queue.values() if i.parameters.get("request_id") == request_id]

    def wait_for_trigger(self, request_id: str, timeout: float = 30.0) -> FakeQueueItem:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.queued_for(request_id)
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no build of request {request_id} was triggered")

    def job_url(self, job: FakeJob) -> str:
        path = "".join(f"/job/{quote(name, safe='')}" for name in job.full_name.split("/"))
        return self.root_url + path

    # -- behaviour (under the lock) -------------------------------------------------------------

    def _advance(self, item: FakeQueueItem, now: float, force: bool = False) -> None:
        if item.build is not None or item.cancelled:
            return
        if force or (item.reads_left <= 0 and now >= item.queued + item.delay):
            job = item.job
            build = FakeBuild(
                job=job,
                number=job.next_number,
                queue_id=item.id,
                started=now,
                started_ms=int(time.time() * 1000),
                duration=item.duration,
                reads_left=item.build_reads,
                result=item.result,
                parameters=item.parameters,
            )
            job.next_number += 1
            job.builds.insert(0, build)
            item.build = build

    def _trigger(self, job: FakeJob, parameters: dict[str, str]) -> FakeQueueItem:
        for waiting in self._queue.values():
            if (
                waiting.job is job
                and waiting.build is None
                and not waiting.cancelled
                and waiting.parameters == parameters
            ):
                return waiting  # Jenkins merges a trigger identical to a waiting item
        item = FakeQueueItem(
            id=self._next_queue_id,
            job=job,
            parameters=parameters,
            queued=time.monotonic(),
            delay=self.queue_delay,
            reads_left=self.queue_reads,
            duration=self.build_duration,
            build_reads=self.build_reads,
            result=self.outcome,
        )
        self._next_queue_id += 1
        self._queue[item.id] = item
        if self.callback:
            timer = threading.Timer(item.delay + item.duration + 0.05, self._call_back, [item])
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        return item

    def _call_back(self, item: FakeQueueItem) -> None:
        """What the Jenkinsfile's `post { always { ... } }` does when the build ends."""
        with self._lock:
            self._advance(item, time.monotonic(), force=True)
            build = item.build
            if build is None or build.called_back or self.down:
                return
            build.called_back = True
            build.reads_left = 0
        params = build.parameters
        body: dict[str, Any] = {
            "request_id": params.get("request_id", ""),
            "check": params.get("check") or f"jenkins:{build.job.full_name}",
            "passed": build.result == "SUCCESS",
            "details_url": f"{self.job_url(build.job)}/{build.number}/",
            "summary": f"validate-model: {build.result}",
        }
        if params.get("callback_token"):
            body["callback_token"] = params["callback_token"]
        try:
            status: int | str = httpx.post(
                params["callback_url"], json=body, timeout=10
            ).status_code
        except (httpx.HTTPError, KeyError) as err:
            status = repr(err)
        self.callbacks.append(body | {"answered": status})

    def _parameters_action(self, item_parameters: dict[str, str], job: FakeJob) -> dict[str, Any]:
        return {
            "_class": "hudson.model.ParametersAction",
            "parameters": [
                _parameter_json(name, value, job.parameters.get(name, "string"))
                for name, value in item_parameters.items()
            ],
        }

    def _queue_json(self, item: FakeQueueItem) -> dict[str, Any]:
        job = item.job
        base: dict[str, Any] = {
            "actions": [
                self._parameters_action(item.parameters, job),
                {
                    "_class": "hudson.model.CauseAction",
                    "causes": [
                        {
                            "_class": "hudson.model.Cause$UserIdCause",
                            "shortDescription": f"Started by user {self.user}",
                            "userId": self.user,
                            "userName": self.user,
                        }
                    ],
                },
            ],
            "blocked": False,
            "buildable": False,
            "id": item.id,
            "inQueueSince": int(time.time() * 1000),
            "params": "".join(
                f"\n{name}={'****' if job.parameters.get(name) == 'password' else value}"
                for name, value in item.parameters.items()
            ),
            "stuck": False,
            "task": {
                "_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob",
                "name": job.full_name.rsplit("/", 1)[-1],
                "url": self.job_url(job) + "/",
                "color": "blue",
            },
            "url": f"queue/item/{item.id}/",
        }
        if item.cancelled:
            return base | {
                "_class": "hudson.model.Queue$LeftItem",
                "why": None,
                "cancelled": True,
                "executable": None,
            }
        if item.build is None:
            left = max(0.0, item.queued + item.delay - time.monotonic())
            return base | {
                "_class": "hudson.model.Queue$WaitingItem",
                "why": f"In the quiet period. Expires in {left:.1f} sec",
                "timestamp": int((time.time() + left) * 1000),
            }
        build = item.build
        return base | {
            "_class": "hudson.model.Queue$LeftItem",
            "why": None,
            "cancelled": False,
            "executable": {
                "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
                "number": build.number,
                "url": f"{self.job_url(job)}/{build.number}/",
            },
        }

    def _build_json(self, build: FakeBuild, now: float) -> dict[str, Any]:
        done = build.finished(now)
        return {
            "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
            "actions": [self._parameters_action(build.parameters, build.job)],
            "building": not done,
            "description": None,
            "displayName": f"#{build.number}",
            "duration": int(build.duration * 1000) if done else 0,
            "estimatedDuration": int(build.duration * 1000),
            "fullDisplayName": f"{build.job.full_name.replace('/', ' » ')} #{build.number}",
            "id": str(build.number),
            "inProgress": not done,
            "keepLog": False,
            "number": build.number,
            "queueId": build.queue_id,
            "result": build.result if done else None,
            "timestamp": build.started_ms,
            "url": f"{self.job_url(build.job)}/{build.number}/",
        }

    def _job_json(self, job: FakeJob) -> dict[str, Any]:
        return {
            "_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob",
            "builds": [
                {
                    "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
                    "actions": [self._parameters_action(b.parameters, job)],
                    "number": b.number,
                    "queueId": b.queue_id,
                    "timestamp": b.started_ms,
                    "url": f"{self.job_url(job)}/{b.number}/",
                }
                for b in job.builds
            ],
            "fullName": job.full_name,
            "name": job.full_name.rsplit("/", 1)[-1],
            "url": self.job_url(job) + "/",
            "buildable": not job.disabled,
            "nextBuildNumber": job.next_number,
        }


def _parameter_json(name: str, value: str, kind: str) -> dict[str, Any]:
    if kind == "password":  # Jenkins never shows a password parameter's value
        return {"_class": "hudson.model.PasswordParameterValue", "name": name}
    return {"_class": "hudson.model.StringParameterValue", "name": name, "value": value}


def _split_job_path(path: str) -> tuple[str, list[str]] | None:
    """`/job/a/job/b/rest...` -> ("a/b", [rest...]); None if the path names no job."""
    parts = [unquote(p) for p in path.strip("/").split("/")]
    names: list[str] = []
    while len(parts) >= 2 and parts[0] == "job":
        names.append(parts[1])
        parts = parts[2:]
    if not names:
        return None
    return "/".join(names), parts


def _handler_for(jenkins: FakeJenkins) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        # -- plumbing ---------------------------------------------------------------------------

        def _reply(
            self,
            status: int,
            body: Any = None,
            *,
            headers: dict[str, str] | None = None,
            html: str | None = None,
        ) -> None:
            if body is None:
                payload = (html or "").encode()
                content_type = "text/html;charset=utf-8"
            else:
                payload = json.dumps(body).encode()
                content_type = "application/json;charset=utf-8"
            self.send_response(status)
            self.send_header("X-Jenkins", JENKINS_VERSION)
            self.send_header("X-Hudson", "1.395")
            self.send_header("X-Jenkins-Session", jenkins._instance[:8])
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def _error(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
            page = (
                f"<html><head><title>Error {status} {reason}</title></head><body>"
                f"<h2>HTTP ERROR {status} {reason}</h2></body></html>"
            )
            self._reply(status, headers=headers, html=page)

        def _session(self) -> str | None:
            for chunk in (self.headers.get("Cookie") or "").split(";"):
                name, _, value = chunk.strip().partition("=")
                if name == jenkins._cookie_name:
                    return value
            return None

        def _authenticated(self) -> bool:
            header = self.headers.get("Authorization") or ""
            if not header.startswith("Basic "):
                self._error(
                    403,
                    "Forbidden",
                    {
                        "X-You-Are-Authenticated-As": "anonymous",
                        "X-Required-Permission": "hudson.model.Hudson.Read",
                    },
                )
                return False
            try:
                user, _, token = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                user, token = "", ""
            if user != jenkins.user or token != jenkins.token:
                self._error(401, f"Invalid password/token for user: {user}")
                return False
            return True

        def _begin(self, form: dict[str, str]) -> tuple[str, dict[str, str]] | None:
            """Record the request; None if it was answered already (down, failing, auth)."""
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
            with jenkins._lock:
                jenkins.requests.append(
                    Recorded(
                        method=self.command,
                        path=split.path,
                        query=query,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        form=form,
                    )
                )
                failing = jenkins._fail_next.pop(0) if jenkins._fail_next else None
            if jenkins.down == "503" or failing == 503:
                self._error(503, "Service Unavailable: Jenkins is getting ready to work")
                return None
            if failing is not None:
                self._error(failing, "Server Error")
                return None
            if not self._authenticated():
                return None
            return split.path, query

        def _read_form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}

        # -- GET --------------------------------------------------------------------------------

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            begun = self._begin({})
            if begun is None:
                return
            path, _query = begun
            if path == "/crumbIssuer/api/json":
                self._crumb()
                return
            now = time.monotonic()
            with jenkins._lock:
                answer = self._get(path, now)
            if answer is None:
                self._error(404, "Not Found")
            else:
                self._reply(200, answer)

        def _get(self, path: str, now: float) -> dict[str, Any] | None:
            for item in jenkins._queue.values():
                jenkins._advance(item, now)  # items due start their build, read or not
            if path == "/queue/api/json":
                waiting = [i for i in jenkins._queue.values() if i.build is None]
                return {
                    "_class": "hudson.model.Queue",
                    "discoverableItems": [],
                    "items": [jenkins._queue_json(i) for i in waiting if not i.cancelled],
                }
            if path.startswith("/queue/item/") and path.endswith("/api/json"):
                item_id = path.split("/")[3]
                item = jenkins._queue.get(int(item_id)) if item_id.isdigit() else None
                if item is None:
                    return None
                answer = jenkins._queue_json(item)  # waiting to its first `queue_reads` reads
                item.reads_left -= 1
                return answer
            split = _split_job_path(path)
            job = jenkins._jobs.get(split[0]) if split else None
            if split is None or job is None:
                return None
            rest = split[1]
            if rest == ["api", "json"]:
                return jenkins._job_json(job)
            if len(rest) == 3 and rest[1:] == ["api", "json"] and rest[0].isdigit():
                build = next((b for b in job.builds if b.number == int(rest[0])), None)
                if build is None:
                    return None
                answer = jenkins._build_json(build, now)  # building to its first `build_reads`
                if build.reads_left is not None:
                    build.reads_left -= 1
                return answer
            return None

        def _crumb(self) -> None:
            if not jenkins.csrf:
                self._error(404, "Not Found")
                return
            session = self._session()
            headers = {}
            with jenkins._lock:
                if session is None or session not in jenkins._sessions:
                    session = secrets.token_urlsafe(16)
                    headers["Set-Cookie"] = f"{jenkins._cookie_name}={session}; Path=/; HttpOnly"
                crumb = jenkins._sessions.setdefault(
                    session, hashlib.sha256((session + jenkins._instance).encode()).hexdigest()
                )
                if jenkins._forget_sessions > 0:
                    jenkins._forget_sessions -= 1
                    del jenkins._sessions[session]
            body = {
                "_class": "hudson.security.csrf.DefaultCrumbIssuer",
                "crumb": crumb,
                "crumbRequestField": CRUMB_FIELD,
            }
            self._reply(200, body, headers=headers)

        # -- POST -------------------------------------------------------------------------------

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            form = self._read_form()
            begun = self._begin(form)
            if begun is None:
                return
            path, query = begun
            if jenkins.csrf:
                expected = jenkins._sessions.get(self._session() or "")
                if expected is None or self.headers.get(CRUMB_FIELD) != expected:
                    self._error(403, "No valid crumb was included in the request")
                    return
            split = _split_job_path(path)
            if split is None or split[1] != ["buildWithParameters"]:
                self._error(404, "Not Found")
                return
            with jenkins._lock:
                job = jenkins._jobs.get(split[0])
                if job is None:
                    self._error(404, "Not Found")
                    return
                if not job.build_permission:
                    # A full Jenkins page, which, like every page, carries the crumb header name.
                    self._reply(
                        403,
                        html=(
                            f'<html><head data-crumb-header="{CRUMB_FIELD}" data-crumb-value="x">'
                            "<title>Access Denied</title></head><body>"
                            f"{jenkins.user} is missing the Job/Build permission</body></html>"
                        ),
                    )
                    return
                if job.disabled:
                    self._error(409, f"{job.full_name} is not buildable!")
                    return
                if not job.parameterized:
                    self._error(
                        500, "java.lang.IllegalStateException: This build is not parameterized!"
                    )
                    return
                submitted = query | form  # Stapler reads both
                # Jenkins keeps the parameters the job defines and drops the others.
                values = {name: submitted.get(name, "") for name in job.parameters}
                item = jenkins._trigger(job, values)
                lose = jenkins._lose_answers > 0
                if lose:
                    jenkins._lose_answers -= 1
            if lose:
                self._error(502, "Bad Gateway")
                return
            self._reply(201, headers={"Location": f"{jenkins.url}/queue/item/{item.id}/"})

    return Handler
