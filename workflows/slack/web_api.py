"""Calling Slack: its Web API through `slack_sdk.WebClient` (`chat.postMessage`,
`chat.update`, `views.open`) and a reply to an interaction's `response_url`.

One call, one attempt: the client's own retry handlers are off, because the caller retries
durably (`workflows.slack.message`) or answers the person. Every answer is classified as
delivered, worth retrying (no answer, HTTP 429 with its `Retry-After`, 5xx, or Slack's
transient errors such as `ratelimited`), or failed (any other `ok: false`: a wrong channel, a
revoked token). Both URLs pass the SSRF guard first (`workflows.webhooks.ssrf`): Slack's own
hosts are public; anything private must be in `SIGNOFF_WEBHOOK_ALLOW_HOSTS`. The bot token is
only ever in the `Authorization` header.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from workflows.tls import verifying_context
from workflows.webhooks.delivery import DELIVERED, FAILED, RETRY, retry_after_seconds
from workflows.webhooks.ssrf import UnsafeUrlError, check_url

if TYPE_CHECKING:  # slack-sdk is imported on the first call to Slack (in its worker thread)
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web import SlackResponse

REQUEST_TIMEOUT_S = 10
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
"""Slack's `error` values that say "try again later" rather than "this will never work"."""


@dataclass
class SlackCall:
    """How one call went: `outcome` DELIVERED, RETRY or FAILED, with what Slack answered."""

    outcome: str
    status_code: int | None = None
    error: str | None = None
    retry_after_s: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    latency_ms: int = 0


def _classify_error(err: SlackApiError) -> SlackCall:
    response = err.response
    data = response.data if isinstance(response.data, dict) else {}
    status = response.status_code
    error = str(data.get("error") or f"HTTP {status}")
    retry = status == 429 or status >= 500 or error in TRANSIENT_ERRORS
    retry_after = None
    if retry:
        headers = {str(k).lower(): str(v) for k, v in (response.headers or {}).items()}
        retry_after = retry_after_seconds(headers.get("retry-after"))
    return SlackCall(
        RETRY if retry else FAILED,
        status_code=status,
        error=f"HTTP {status}: {error}" if status != 200 else error,
        retry_after_s=retry_after,
        data=data,
    )


class SlackWebApi:
    """Slack's Web API as the bot (`SIGNOFF_SLACK_BOT_TOKEN`) at `SIGNOFF_SLACK_API_URL`.
    Blocking (slack_sdk's `WebClient`): run the calls in a worker thread."""

    def __init__(self, token: SecretStr, base_url: str, allow_hosts: list[str]) -> None:
        self._token = token
        self.base_url = base_url.rstrip("/") + "/"
        self.allow_hosts = list(allow_hosts)

    def __repr__(self) -> str:
        return f"SlackWebApi(base_url={self.base_url!r})"

    def post_message(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> SlackCall:
        return self._call(
            "chat.postMessage",
            lambda client: client.chat_postMessage(channel=channel, text=text, blocks=blocks),
        )

    def update_message(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]
    ) -> SlackCall:
        return self._call(
            "chat.update",
            lambda client: client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks),
        )

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> SlackCall:
        return self._call(
            "views.open", lambda client: client.views_open(trigger_id=trigger_id, view=view)
        )

    def _call(self, method: str, send: Callable[[WebClient], SlackResponse]) -> SlackCall:
        started = time.monotonic()
        call = self._attempt(method, send)
        call.latency_ms = int((time.monotonic() - started) * 1000)
        return call

    def _attempt(self, method: str, send: Callable[[WebClient], SlackResponse]) -> SlackCall:
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            check_url(self.base_url + method, self.allow_hosts)
        except UnsafeUrlError as err:
            return SlackCall(RETRY if "does not resolve" in str(err) else FAILED, error=str(err))
        client = WebClient(
            token=self._token.get_secret_value(),
            base_url=self.base_url,
            timeout=REQUEST_TIMEOUT_S,
            retry_handlers=[],
        )
        try:
            response = send(client)
        except SlackApiError as err:
            return _classify_error(err)
        except (SlackClientError, OSError, ValueError) as err:  # no answer: URLError, timeouts
            return SlackCall(RETRY, error=f"{type(err).__name__}: {err}")
        data = response.data if isinstance(response.data, dict) else {}
        return SlackCall(DELIVERED, status_code=response.status_code, data=data)


async def reply(response_url: str, text: str, allow_hosts: list[str]) -> SlackCall:
    """Tell the person who clicked, and only them (`response_type: ephemeral`), through the
    interaction's `response_url`; connects to the address the SSRF guard checked."""
    try:
        destination = await asyncio.to_thread(check_url, response_url, allow_hosts)
    except UnsafeUrlError as err:
        return SlackCall(FAILED, error=str(err))
    body = {"response_type": "ephemeral", "replace_original": False, "text": text}
    try:
        async with httpx.AsyncClient(
            follow_redirects=False,
            timeout=REQUEST_TIMEOUT_S,
            trust_env=False,
            verify=verifying_context(trust_env=False),
        ) as client:
            response = await client.post(
                destination.url,
                json=body,
                headers=destination.headers,
                extensions=destination.extensions,
            )
    except httpx.HTTPError as err:
        return SlackCall(RETRY, error=f"{type(err).__name__}: {err}")
    if response.is_success:
        return SlackCall(DELIVERED, status_code=response.status_code)
    return SlackCall(FAILED, status_code=response.status_code, error=response.text[:200])
