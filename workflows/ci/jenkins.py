"""Jenkins as a validation check: trigger a parameterized job, follow its queue item to the
build, and read the build's result.

The wire format is Jenkins' remote access API:

- auth: HTTP basic with a user and one of their API tokens (not the password);
- CSRF: `GET /crumbIssuer/api/json` -> `{"crumb": ..., "crumbRequestField": "Jenkins-Crumb"}`,
  sent back as a header on the POST. Since Jenkins 2.176 a crumb is bound to the web session
  that fetched it, so the crumb request and the POST share one cookie jar. A 404 from the crumb
  issuer means CSRF protection is off: the POST goes without a crumb;
- `POST /job/<name>/buildWithParameters` (folders: `/job/a/job/b/...`) with form parameters
  answers `201 Created` and `Location: <root>/queue/item/<id>/`. Jenkins keeps only the
  parameters the job defines and silently drops the others;
- `GET <queue item>api/json`: no `executable` while waiting (`why` says why), `cancelled: true`
  if someone cancelled it, then `executable: {"number", "url"}` once a build started. Jenkins
  forgets a queue item about five minutes after it left the queue; the build is then found in
  the job's `builds` by its `queueId`;
- `GET /job/<name>/<number>/api/json`: `building` true until done, then `result` one of
  SUCCESS, UNSTABLE, FAILURE, NOT_BUILT, ABORTED. Only SUCCESS passes.

A retried dispatch whose first answer was lost: Jenkins itself merges a trigger identical to an
item still waiting in the queue (the retry carries the same callback token, so the same
parameters); once the build started, `find_existing` finds it by its `request_id` parameter in
`GET /queue/api/json` and the job's `builds`, so no second build starts.

Evidence, in the conventions of `workflows.activities.ci`: `system`, `job`, `run_url`,
`run_id` (the build number), `status` (queued, building, completed), `conclusion` (Jenkins'
result), and `queue_url` while queued.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
from temporalio.exceptions import ApplicationError

from policies import CiCheck, JenkinsCheck
from workflows.ci.base import CiContext, CiOutcome, CiRunRef
from workflows.domain import now_ms
from workflows.errors import ci_refused, ci_unavailable
from workflows.tls import verifying_context

if TYPE_CHECKING:
    from workflows.settings import WorkerSettings

PASSED_RESULTS = frozenset({"SUCCESS"})

_BUILD_TREE = "number,url,building,result,duration,timestamp,displayName,queueId"
_PARAMETERS_TREE = "actions[parameters[name,value]]"
_BUILDS_TREE = f"builds[number,url,queueId,timestamp,{_PARAMETERS_TREE}]{{0,100}}"
_QUEUE_TREE = f"items[id,url,task[name,url],{_PARAMETERS_TREE}]"
CREATED_SKEW_MS = 5 * 60 * 1000
"""How far before the dispatch (by the worker's clock) a build may be stamped by Jenkins'."""


def job_path(job: str) -> str:
    """`folder/sub/job` -> `/job/folder/job/sub/job/job`, each name percent-encoded."""
    names = [name for name in job.strip("/").split("/") if name]
    if not names:
        raise ApplicationError(f"'{job}' is not a Jenkins job name", non_retryable=True)
    return "".join(f"/job/{quote(name, safe='')}" for name in names)


def _snippet(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:200]


def _parameters(entry: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a queue item or build, from its `ParametersAction` (a password
    parameter's value is never shown)."""
    found: dict[str, Any] = {}
    for action in entry.get("actions") or []:
        if isinstance(action, dict):
            for parameter in action.get("parameters") or []:
                if isinstance(parameter, dict) and "name" in parameter:
                    found[parameter["name"]] = parameter.get("value")
    return found


def _evidence(
    job: JenkinsCheck, ref: CiRunRef, status: str, conclusion: str | None
) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "system": "jenkins",
        "job": job.job,
        "run_url": ref.url,
        "run_id": ref.run_id,
        "status": status,
    }
    if conclusion is not None:
        evidence["conclusion"] = conclusion
    if ref.run_id is None:
        evidence["queue_url"] = ref.queue_url
    return evidence


class JenkinsClient:
    """`CiClient` for `JenkinsCheck`. One short-lived HTTP client per call, so a crumb and the
    session cookie it is bound to travel together."""

    system = "jenkins"

    def __init__(
        self,
        url: str,
        user: str | None,
        token: str | None,
        *,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._auth = httpx.BasicAuth(user, token) if user and token else None
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> JenkinsClient:
        if not settings.jenkins_url:
            raise ci_refused(
                "the policy names a jenkins check but SIGNOFF_JENKINS_URL is not set; set it "
                "(and SIGNOFF_JENKINS_USER, SIGNOFF_JENKINS_TOKEN) on the worker"
            )
        token = settings.jenkins_token.get_secret_value() if settings.jenkins_token else None
        return cls(settings.jenkins_url, settings.jenkins_user, token)

    # -- the CiClient contract ------------------------------------------------------------------

    async def dispatch(self, check: CiCheck, ctx: CiContext) -> CiRunRef:
        job = self._job(check)
        path = job_path(job.job)
        # The policy's extra parameters first: they may not override what Signoff sends.
        form = {
            **job.parameters,
            "model": ctx.model,
            "version": ctx.version,
            "target": ctx.target,
            "request_id": ctx.request_id,
            "check": ctx.check_id,
            "callback_url": ctx.callback_url,
            "callback_token": ctx.callback_token,
        }
        dispatched_at_ms = now_ms()
        async with self._http() as http:
            headers = await self._crumb(http)
            response = await self._send(
                http, "POST", f"{self.url}{path}/buildWithParameters", data=form, headers=headers
            )
            if response.status_code == 403 and "no valid crumb" in response.text.lower():
                # The crumb went stale between the two calls (session expired, a restart):
                # a retry fetches a fresh one.
                raise ci_unavailable(f"Jenkins refused the crumb for job '{job.job}'; will retry")
            self._raise_for_dispatch(response, job.job)
        location = response.headers.get("Location")
        if response.status_code != 201 or not location or "/queue/item/" not in location:
            raise ci_unavailable(
                f"Jenkins answered {response.status_code} without a queue item to job "
                f"'{job.job}' (Location: {location or 'none'}); will retry"
            )
        queue_url = urljoin(self.url + "/", location)
        if not queue_url.endswith("/"):
            queue_url += "/"
        return CiRunRef(
            system="jenkins",
            dispatched_at_ms=dispatched_at_ms,
            queue_url=queue_url,
            request_id=ctx.request_id,
        )

    async def poll(self, check: CiCheck, ref: CiRunRef) -> CiOutcome:
        job = self._job(check)
        async with self._http() as http:
            if ref.run_id is None:
                found = await self._follow_queue(http, job, ref)
                if isinstance(found, CiOutcome):
                    return found
                ref = found
            return await self._read_build(http, job, ref)

    async def find_existing(self, check: CiCheck, ctx: CiContext, since_ms: int) -> CiRunRef | None:
        """The queue item or build an earlier attempt of the dispatch started, found by its
        `request_id` parameter: lets a retried dispatch reuse it instead of starting another."""
        job = self._job(check)
        path = job_path(job.job)
        async with self._http() as http:
            response = await self._send(
                http, "GET", f"{self.url}/queue/api/json", params={"tree": _QUEUE_TREE}
            )
            self._raise_for_credentials(response, "reading the queue")
            if response.status_code == 200:
                for item in response.json().get("items") or []:
                    task_path = urlsplit(str((item.get("task") or {}).get("url") or "")).path
                    # From the first /job/ on: Jenkins may run under a context path (/jenkins).
                    item_job = task_path[task_path.find("/job/") :].rstrip("/")
                    if item_job == path and _parameters(item).get("request_id") == ctx.request_id:
                        return CiRunRef(
                            system="jenkins",
                            dispatched_at_ms=since_ms,
                            queue_url=f"{self.url}/queue/item/{item['id']}/",
                            request_id=ctx.request_id,
                        )
            response = await self._send(
                http, "GET", f"{self.url}{path}/api/json", params={"tree": _BUILDS_TREE}
            )
            self._raise_for_credentials(response, f"reading job '{job.job}'")
            if response.status_code != 200:
                return None
            for build in reversed(response.json().get("builds") or []):  # oldest first
                if (
                    _parameters(build).get("request_id") == ctx.request_id
                    and int(build.get("timestamp") or 0) >= since_ms - CREATED_SKEW_MS
                ):
                    return CiRunRef(
                        system="jenkins",
                        dispatched_at_ms=since_ms,
                        run_id=str(build["number"]),
                        url=build.get("url"),
                        request_id=ctx.request_id,
                    )
        return None

    # -- steps ------------------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            auth=self._auth,
            timeout=self._timeout,
            headers={"Accept": "application/json"},
            follow_redirects=False,
            verify=verifying_context(),
        )

    @staticmethod
    def _job(check: CiCheck) -> JenkinsCheck:
        if not isinstance(check, JenkinsCheck):
            raise ci_refused(f"the Jenkins client cannot run a {check.type} check")
        return check

    async def _send(
        self, http: httpx.AsyncClient, method: str, url: str, **kw: Any
    ) -> httpx.Response:
        try:
            response = await http.request(method, url, **kw)
        except httpx.HTTPError as err:
            raise ci_unavailable(
                f"cannot reach Jenkins at {self.url} ({type(err).__name__}: {err}); will retry"
            ) from err
        if response.status_code >= 500 and "is not parameterized" not in response.text:
            raise ci_unavailable(
                f"Jenkins answered {response.status_code} to {method} {urlsplit(url).path}: "
                f"{_snippet(response)}; will retry"
            )
        return response

    def _raise_for_credentials(self, response: httpx.Response, doing: str) -> None:
        if response.status_code == 401:
            raise ci_refused(
                f"Jenkins at {self.url} refused the credentials while {doing} (401): check "
                "SIGNOFF_JENKINS_USER and SIGNOFF_JENKINS_TOKEN (an API token of that user, "
                "from the user's Security page)"
            )
        if response.status_code == 403:
            who = response.headers.get("X-You-Are-Authenticated-As") or "the configured user"
            raise ci_refused(
                f"Jenkins at {self.url} denied {who} while {doing} (403): grant Overall/Read, "
                "Job/Read and Job/Build to SIGNOFF_JENKINS_USER, and check "
                "SIGNOFF_JENKINS_TOKEN"
            )

    async def _crumb(self, http: httpx.AsyncClient) -> dict[str, str]:
        response = await self._send(http, "GET", f"{self.url}/crumbIssuer/api/json")
        if response.status_code == 404:
            return {}  # CSRF protection is off
        self._raise_for_credentials(response, "fetching a crumb")
        if response.status_code != 200:
            raise ci_unavailable(
                f"Jenkins' crumb issuer answered {response.status_code}: {_snippet(response)}"
            )
        try:
            body = response.json()
            return {str(body["crumbRequestField"]): str(body["crumb"])}
        except (ValueError, KeyError, TypeError) as err:
            raise ci_refused(
                f"{self.url}/crumbIssuer/api/json did not answer like Jenkins "
                f"({_snippet(response)}); check SIGNOFF_JENKINS_URL"
            ) from err

    def _raise_for_dispatch(self, response: httpx.Response, job: str) -> None:
        self._raise_for_credentials(response, f"triggering job '{job}'")
        status = response.status_code
        if status == 404:
            raise ci_refused(
                f"Jenkins at {self.url} has no job '{job}' (404): check the job name in the "
                "policy (folders as 'folder/job') and that SIGNOFF_JENKINS_USER can see it"
            )
        if status == 409:
            raise ci_refused(f"Jenkins job '{job}' is not buildable (409): is it disabled?")
        if status >= 500:  # only "is not parameterized" gets here, see _send
            raise ci_refused(
                f"Jenkins job '{job}' is not parameterized: define the parameters model, "
                "version, target, request_id, check, callback_url and callback_token "
                "(a Password parameter) in the job"
            )
        if status >= 400:
            raise ci_refused(
                f"Jenkins refused to trigger job '{job}' ({status}): {_snippet(response)}"
            )

    async def _follow_queue(
        self, http: httpx.AsyncClient, job: JenkinsCheck, ref: CiRunRef
    ) -> CiRunRef | CiOutcome:
        """The ref completed with the build, or the outcome while there is no build yet."""
        assert ref.queue_url is not None, "a Jenkins ref carries its queue item"
        response = await self._send(http, "GET", f"{ref.queue_url}api/json")
        self._raise_for_credentials(response, "reading the queue item")
        if response.status_code == 404:
            return await self._build_from_job(http, job, ref)
        if response.status_code != 200:
            raise ci_unavailable(
                f"Jenkins answered {response.status_code} for the queue item {ref.queue_url}"
            )
        item = response.json()
        if item.get("cancelled"):
            return CiOutcome(
                status="failed",
                summary=f"Jenkins job '{job.job}' was cancelled in the queue",
                evidence=_evidence(job, ref, "completed", "CANCELLED"),
                ref=ref,
            )
        executable = item.get("executable")
        if not executable:
            why = item.get("why") or "waiting in the queue"
            return CiOutcome(
                status="running",
                summary=f"Jenkins job '{job.job}' is queued: {why}",
                evidence=_evidence(job, ref, "queued", None),
                ref=ref,
            )
        return ref.model_copy(
            update={"run_id": str(executable["number"]), "url": executable.get("url")}
        )

    async def _build_from_job(
        self, http: httpx.AsyncClient, job: JenkinsCheck, ref: CiRunRef
    ) -> CiRunRef | CiOutcome:
        """Jenkins forgot the queue item (it does five minutes after the item left the queue):
        find the build that came from it by its queueId."""
        assert ref.queue_url is not None
        queue_id = ref.queue_url.rstrip("/").rsplit("/", 1)[-1]
        response = await self._send(
            http, "GET", f"{self.url}{job_path(job.job)}/api/json", params={"tree": _BUILDS_TREE}
        )
        self._raise_for_credentials(response, f"reading job '{job.job}'")
        if response.status_code == 200:
            for build in response.json().get("builds") or []:
                if str(build.get("queueId")) == queue_id:
                    return ref.model_copy(
                        update={"run_id": str(build["number"]), "url": build.get("url")}
                    )
        return CiOutcome(
            status="failed",
            summary=(
                f"Jenkins no longer knows the queue item {ref.queue_url} and no build of "
                f"'{job.job}' came from it (cancelled, or Jenkins restarted)"
            ),
            evidence=_evidence(job, ref, "completed", "LOST"),
            ref=ref,
        )

    async def _read_build(
        self, http: httpx.AsyncClient, job: JenkinsCheck, ref: CiRunRef
    ) -> CiOutcome:
        # Read the build under SIGNOFF_JENKINS_URL rather than the URL Jenkins reported, which
        # uses Jenkins' configured root URL and may not be reachable from the worker.
        api = f"{self.url}{job_path(job.job)}/{ref.run_id}/api/json"
        response = await self._send(http, "GET", api, params={"tree": _BUILD_TREE})
        self._raise_for_credentials(response, f"reading build #{ref.run_id} of '{job.job}'")
        if response.status_code == 404:
            return CiOutcome(
                status="failed",
                summary=f"build #{ref.run_id} of Jenkins job '{job.job}' no longer exists",
                evidence=_evidence(job, ref, "completed", "LOST"),
                ref=ref,
            )
        if response.status_code != 200:
            raise ci_unavailable(f"Jenkins answered {response.status_code} for {api}")
        build = response.json()
        url = build.get("url") or ref.url
        if url != ref.url:
            ref = ref.model_copy(update={"url": url})
        result = build.get("result")
        if build.get("building") or result is None:
            return CiOutcome(
                status="running",
                summary=f"Jenkins build #{ref.run_id} of '{job.job}' is running",
                evidence=_evidence(job, ref, "building", None),
                ref=ref,
            )
        evidence = _evidence(job, ref, "completed", result)
        if isinstance(build.get("duration"), int):
            evidence["duration_ms"] = build["duration"]
        return CiOutcome(
            status="passed" if result in PASSED_RESULTS else "failed",
            summary=f"Jenkins build #{ref.run_id} of '{job.job}': {result}",
            evidence=evidence,
            ref=ref,
        )


def from_settings(settings: WorkerSettings) -> JenkinsClient:
    """The factory `workflows.activities.ci` looks up in each CI client module."""
    return JenkinsClient.from_settings(settings)
