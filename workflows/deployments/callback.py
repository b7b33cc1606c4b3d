"""Answering a GitHub deployment protection rule, and where that answer may go.

The answer is `POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule`
("Review custom deployment protection rules for a workflow run", REST API 2022-11-28) with
`{"environment_name", "state": "approved" | "rejected", "comment"}`, authenticated with an
installation token of the App; GitHub answers `204 No Content`.

SSRF: the event names the URL to answer (`deployment_callback_url`), but Signoff never follows
a URL from a payload. `callback_target` accepts the event only when that URL is exactly the
review endpoint of the event's repository on the configured `SIGNOFF_GITHUB_API_URL` (same
scheme, host, port and path prefix; no credentials, query or fragment), and the answer is
then sent to the path Signoff builds itself from the repository and the run id, on that host.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.ci.github import _message as github_message
from workflows.deployments.app_auth import GithubAppAuth
from workflows.errors import GITHUB_REFUSED, GITHUB_UNAVAILABLE
from workflows.messages import DeploymentEvent, GateAnswer, GateAnswered

MAX_COMMENT = 1000
"""GitHub shows the comment on the run's page; Signoff's answers are kept shorter than this."""
_REVIEW_PATH = re.compile(
    r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/actions/runs/(?P<run>[0-9]{1,20})"
    r"/deployment_protection_rule"
)


def review_path(repository: str, run_id: str) -> str:
    owner, repo = repository.split("/", 1)
    return (
        f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}/actions/runs/"
        f"{quote(run_id, safe='')}/deployment_protection_rule"
    )


def callback_target(callback_url: str, api_url: str, repository: str) -> str:
    """The run id of the event's callback URL, once it is the review endpoint of `repository`
    on the configured API; ValueError saying why otherwise."""
    api, url = urlsplit(api_url.rstrip("/")), urlsplit(callback_url)
    same_origin = (
        url.scheme == api.scheme
        and (url.hostname or "").lower() == (api.hostname or "").lower()
        and url.port == api.port
    )
    if not same_origin or url.username or url.password or url.query or url.fragment:
        raise ValueError(
            f"deployment_callback_url is not on the GitHub API Signoff is configured for "
            f"({api.scheme}://{api.netloc}, SIGNOFF_GITHUB_API_URL); Signoff answers only there"
        )
    prefix = api.path.rstrip("/")
    match = _REVIEW_PATH.fullmatch(url.path[len(prefix) :]) if url.path.startswith(prefix) else None
    if match is None:
        raise ValueError(
            "deployment_callback_url is not a deployment protection rule review URL "
            f"({prefix}/repos/OWNER/REPO/actions/runs/RUN_ID/deployment_protection_rule)"
        )
    named = f"{unquote(match['owner'])}/{unquote(match['repo'])}"
    if named.lower() != repository.lower():
        raise ValueError(
            f"deployment_callback_url names the repository {named!r}, but the event is about "
            f"{repository!r}"
        )
    return match["run"]


def _body(event: DeploymentEvent, answer: GateAnswer) -> dict[str, str]:
    comment = answer.comment
    if len(comment) > MAX_COMMENT:
        comment = comment[: MAX_COMMENT - 1] + "…"
    return {"environment_name": event.environment, "state": answer.state, "comment": comment}


async def send_answer(auth: GithubAppAuth, answer: GateAnswer) -> GateAnswered:
    """POST the answer as the App; an expired token is dropped and the attempt retried. A 422
    on a retry means an earlier attempt's answer reached GitHub (its reply was lost): the
    rule is answered already, so this one counts as delivered."""
    event = answer.event
    attempt = activity.info().attempt if activity.in_activity() else 1
    token = await auth.installation_token(event.installation_id)
    response = await auth.send(
        "POST",
        review_path(event.repository, event.run_id),
        token=token,
        json=_body(event, answer),
    )
    status = response.status_code
    if 200 <= status < 300 or (status == 422 and attempt > 1):
        return GateAnswered(status_code=status, attempts=attempt)
    message = github_message(response)
    if status == 401:
        auth.forget(event.installation_id)
    if status in (401, 429) or status >= 500 or _rate_limited(status, response.headers):
        raise ApplicationError(
            f"GitHub could not take the answer (HTTP {status}): {message}; retrying",
            type=GITHUB_UNAVAILABLE,
        )
    raise ApplicationError(
        f"GitHub refused the answer (HTTP {status}): {message}",
        {"status": status},
        type=GITHUB_REFUSED,
        non_retryable=True,
    )


def _rate_limited(status: int, headers: object) -> bool:
    remaining = getattr(headers, "get", lambda _name: None)("x-ratelimit-remaining")
    return status == 403 and remaining == "0"
