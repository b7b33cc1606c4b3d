"""The Slack message that follows a request: one durable updater per request.

Whenever the ledger records a new state of a request whose rule says `notify: {slack: ...}`,
the ledger outbox (`record_ledger`) signals-with-start `SlackMessageWorkflow`
(`slack-message/<request id>`) with the revision it wrote. The updater calls
`send_slack_message` until Slack shows the latest revision: the activity reads the request's
newest snapshot from the ledger and posts it (`chat.postMessage`, the first time; the channel
and `ts` are kept in the ledger) or updates the same message (`chat.update`). Changes that
arrive meanwhile collapse into one update; a revision Slack already shows is not sent again.
Once caught up the updater ends; the next change starts it anew.

Retries follow the webhook delivery's rules (`workflows.webhooks.delivery`), faster because a
message shows live state: no answer, 429 and 5xx (and Slack's transient errors) are retried
after `Retry-After` when Slack gives one, else 2 s doubling up to 5 min with jitter, for 24
hours; every attempt is recorded (`ledger.slack_messages`). A request never waits for Slack:
the outbox only starts or signals the updater.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from temporalio.client import Client
    from temporalio.common import WorkflowIDReusePolicy

    from workflows.domain import RequestSnapshot, now_ms
    from workflows.ledger import Ledger, SlackAttempt, SlackMessage
    from workflows.settings import WorkerSettings
    from workflows.slack.blocks import request_message
    from workflows.slack.web_api import SlackCall, SlackWebApi
    from workflows.webhooks.delivery import DELIVERED, FAILED, RETRY, SKIPPED, backoff
    from workflows.webhooks.events import request_page_url

SLACK_WINDOW = timedelta(hours=24)
FIRST_DELAY = timedelta(seconds=2)
MAX_DELAY = timedelta(minutes=5)
STATE_FOR = {DELIVERED: "POSTED", RETRY: "RETRYING", FAILED: "FAILED"}
POST, UPDATE = "chat.postMessage", "chat.update"
MESSAGE_GONE = "message_not_found"
"""What `chat.update` answers for a message deleted in Slack (or never posted there)."""


def slack_workflow_id(request_id: str) -> str:
    return f"slack-message/{request_id}"


class SlackMessageInput(BaseModel):
    request_id: str
    channel: str
    """As the rule names it: `#name` or a channel id."""


class SlackSendInput(BaseModel):
    request_id: str
    channel: str
    key: str
    """The updater's run and step: what makes recording the attempt idempotent."""


class SlackSendResult(BaseModel):
    outcome: str
    revision: int | None = None
    retry_after_s: float | None = None


async def follow_request(
    client: Client, task_queue: str, *, request_id: str, channel: str, revision: int
) -> None:
    """Tell the request's updater that `revision` is in the ledger, starting it if it is not
    running. Never waits for Slack."""
    await client.start_workflow(
        SlackMessageWorkflow.run,
        SlackMessageInput(request_id=request_id, channel=channel),
        id=slack_workflow_id(request_id),
        task_queue=task_queue,
        start_signal="changed",
        start_signal_args=[revision],
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )


class SlackActivities:
    def __init__(self, ledger: Ledger, settings: WorkerSettings) -> None:
        self.ledger = ledger
        self.public_url = settings.callback_base_url
        token = settings.slack_bot_token
        self.api = (
            SlackWebApi(token, settings.slack_api_url, settings.webhook_allow_hosts)
            if token and token.get_secret_value()
            else None
        )

    @activity.defn
    async def send_slack_message(self, inp: SlackSendInput) -> SlackSendResult:
        """Show the request's newest snapshot in Slack: one attempt, recorded. A message
        someone deleted in Slack (`message_not_found` to the update) is posted anew, so the
        approvers see the request again; both calls are recorded."""
        request = await self.ledger.requests.get(inp.request_id)
        if request is None:
            return SlackSendResult(outcome=SKIPPED)
        message = await self.ledger.slack_messages.get(inp.request_id)
        shown = message.sent_revision if message is not None else None
        if shown is not None and shown >= request.revision:
            return SlackSendResult(outcome=DELIVERED, revision=shown)
        method = UPDATE if message is not None and message.ts else POST
        at = now_ms()
        sent = await self._send(method, inp.channel, message, request)
        if method == UPDATE and sent.error == MESSAGE_GONE:
            await self._record(inp.key, inp, request, method, at, sent, gone=True)
            method, at = POST, now_ms()
            sent = await self._send(POST, inp.channel, None, request)
            return await self._record(f"{inp.key}/repost", inp, request, method, at, sent)
        return await self._record(inp.key, inp, request, method, at, sent)

    async def _record(
        self,
        key: str,
        inp: SlackSendInput,
        request: RequestSnapshot,
        method: str,
        at: int,
        sent: SlackCall,
        *,
        gone: bool = False,
    ) -> SlackSendResult:
        posted = None
        if sent.outcome == DELIVERED and method == POST:
            posted = (str(sent.data.get("channel") or ""), str(sent.data.get("ts") or ""))
            if not all(posted):
                sent = SlackCall(FAILED, sent.status_code, "Slack answered without channel/ts")
                posted = None
        await self.ledger.slack_messages.record_attempt(
            request_id=inp.request_id,
            channel=inp.channel,
            attempt=SlackAttempt(
                key=key,
                method=method,
                revision=request.revision,
                time_ms=at,
                status_code=sent.status_code,
                latency_ms=sent.latency_ms,
                error=sent.error,
            ),
            state="RETRYING" if gone else STATE_FOR[sent.outcome],
            now_ms=now_ms(),
            posted=posted,
            sent_revision=request.revision if sent.outcome == DELIVERED else None,
        )
        return SlackSendResult(
            outcome=sent.outcome, revision=request.revision, retry_after_s=sent.retry_after_s
        )

    async def _send(
        self, method: str, channel: str, message: SlackMessage | None, request: RequestSnapshot
    ) -> SlackCall:
        if self.api is None:
            return SlackCall(FAILED, error="SIGNOFF_SLACK_BOT_TOKEN is not set")
        text, blocks = request_message(request, request_page_url(self.public_url, request.id))
        if method == UPDATE and message is not None and message.channel_id and message.ts:
            return await asyncio.to_thread(
                self.api.update_message, message.channel_id, message.ts, text, blocks
            )
        return await asyncio.to_thread(self.api.post_message, channel, text, blocks)

    @activity.defn
    async def give_up_slack_message(self, inp: SlackMessageInput) -> None:
        """Slack did not take the message within the window: it is marked FAILED."""
        await self.ledger.slack_messages.set_state(
            request_id=inp.request_id, state="FAILED", now_ms=now_ms()
        )


@workflow.defn
class SlackMessageWorkflow:
    def __init__(self) -> None:
        self._wanted = 0

    @workflow.signal
    def changed(self, revision: int) -> None:
        """The ledger holds this revision of the request (or a newer one)."""
        self._wanted = max(self._wanted, revision)

    @workflow.run
    async def run(self, inp: SlackMessageInput) -> str:
        deadline = workflow.now() + SLACK_WINDOW
        step = failures = 0
        shown = -1
        while True:
            step += 1
            result = await self._attempt(inp, step, deadline)
            if result.outcome != RETRY:
                revision = result.revision or 0
                if result.outcome == DELIVERED and shown < revision < self._wanted:
                    shown, failures = revision, 0
                    continue  # a newer revision arrived while this one was sent
                return result.outcome
            failures += 1
            delay = backoff(failures, workflow.random().random(), first=FIRST_DELAY, cap=MAX_DELAY)
            if result.retry_after_s is not None:
                delay = max(timedelta(seconds=result.retry_after_s), timedelta(seconds=1))
            if workflow.now() + delay > deadline:
                await workflow.execute_activity_method(
                    SlackActivities.give_up_slack_message,
                    inp,
                    start_to_close_timeout=timedelta(seconds=60),
                )
                return FAILED
            await workflow.sleep(delay)

    async def _attempt(
        self, inp: SlackMessageInput, step: int, deadline: datetime
    ) -> SlackSendResult:
        now = workflow.now()
        return await workflow.execute_activity_method(
            SlackActivities.send_slack_message,
            SlackSendInput(
                request_id=inp.request_id,
                channel=inp.channel,
                key=f"{workflow.info().run_id}/{step}",
            ),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
            ),
            schedule_to_close_timeout=max(deadline - now, timedelta(minutes=5)),
        )
