"""Approving from Slack, end to end: a real stack (Temporal, MLflow, worker, API) whose policy
announces Production requests in `#model-approvals`, and a loopback Slack speaking Slack's Web
API and interactivity formats (`tests/support/slack.py`).

A request opens → one `chat.postMessage` with the buttons; signed clicks of mapped people
decide it exactly as API calls would; the same message follows every change and loses its
buttons at the end; refused clicks change nothing and tell the person why; Slack failing
(429 with Retry-After, then 500) delays the message, never duplicates it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.http import SIGNOFF, assert_error, create, version_activities
from tests.support.mlflow import MlflowServer, SeededVersion, stage_in_mlflow
from tests.support.polling import wait_until
from tests.support.slack import SlackFake, running_slack, signed
from tests.support.stack import SignoffStack, running_stack
from tests.support.temporal import TemporalServer

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
PUBLIC_URL = "https://signoff.example.com"
POLICY = """roles:
  data-scientist: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  risk-officer: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  platform-admin: {"*": CAN_MANAGE}
transitions:
  - to: Production
    approvals: {quorum: 2, roles: [ml-lead, risk-officer]}
    notify: {slack: "#model-approvals"}
directory:
  slack:
    U_LEE: {user: lee, roles: [ml-lead]}
    U_RITA: {user: rita, roles: [risk-officer]}
    U_DANA: {user: dana, roles: [ml-lead]}
    U_VIC: {user: vic, roles: [data-scientist]}
"""
FROZEN_RULE = """\
  - to: "@release"
    approvals: {{quorum: 1, roles: [ml-lead]}}
    notify: {{slack: "#model-approvals"}}
    freezes: [{{from: {start}, to: {end}, reason: "release freeze"}}]
"""
"""`@release` is frozen from yesterday to ten days on (UTC): an approved request waits."""
DANA = ("dana", "data-scientist")  # the requester of every request here
ADMIN = ("ada", "platform-admin")
APPROVE, REJECT = "signoff_approve", "signoff_reject"


def frozen_rule() -> str:
    today = datetime.now(UTC).date()
    return FROZEN_RULE.format(start=today - timedelta(days=1), end=today + timedelta(days=10))


@pytest.fixture(scope="module")
def slack(stack_ledger: str) -> Iterator[SlackFake]:
    """One per ledger's stack (`stack_ledger`): what it records is that stack's alone."""
    with running_slack(SlackFake()) as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
    slack: SlackFake,
) -> Iterator[SignoffStack]:
    with running_stack(
        tmp_path_factory,
        "slack",
        temporal_server.address,
        mlflow_server.url,
        policy=POLICY.replace("directory:\n", frozen_rule() + "directory:\n"),
        SIGNOFF_SLACK_BOT_TOKEN=slack.token,
        SIGNOFF_SLACK_API_URL=slack.api_url,
        SIGNOFF_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SIGNOFF_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
        SIGNOFF_PUBLIC_URL=PUBLIC_URL,
    ) as stack:
        yield stack


@pytest.fixture
def opened(
    stack: SignoffStack,
    slack: SlackFake,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> tuple[SeededVersion, dict[str, Any], str]:
    """A fresh version, dana's request to move it to Production, and its message's ts."""
    seeded = make_version()
    request = create(user(*DANA), seeded, "Production", comment="AUC 0.91 on <holdout> & more")
    ts, _ = wait_until(lambda: slack.message_for(request["id"]), "the request's Slack message")
    return seeded, request, ts


# -- Slack's side ------------------------------------------------------------------------------


def send(stack: SignoffStack, payload: dict[str, Any], **sign: Any) -> httpx.Response:
    body, headers = signed(payload, sign.pop("secret", SIGNING_SECRET), **sign)
    return post(stack, body, headers)


def post(stack: SignoffStack, body: bytes, headers: dict[str, str]) -> httpx.Response:
    started = time.monotonic()
    response = httpx.post(
        f"{stack.api_url}{SIGNOFF}/hooks/slack", content=body, headers=headers, timeout=30
    )
    assert time.monotonic() - started < 3, "Slack gives up on an answer after 3 seconds"
    return response


def reply(slack: SlackFake, payload: dict[str, Any]) -> str:
    """The one ephemeral message the person was sent for this interaction."""
    url = payload["response_url"]
    replies = wait_until(lambda: slack.replies_to(url), "the reply to the person")
    assert len(replies) == 1, replies
    assert replies[0]["response_type"] == "ephemeral"
    assert replies[0]["replace_original"] is False
    return replies[0]["text"]


def shown(slack: SlackFake, ts: str) -> str:
    """Everything the message shows, as one text."""
    return json.dumps(slack.messages[ts]["blocks"], ensure_ascii=False)


def buttons(slack: SlackFake, ts: str) -> list[dict[str, Any]]:
    blocks = slack.messages[ts]["blocks"]
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def current(stack: SignoffStack, request_id: str) -> dict[str, Any]:
    with stack.client(*ADMIN) as admin:
        response = admin.get(f"{SIGNOFF}/transition-requests/get", params={"id": request_id})
    assert response.status_code == 200, response.text
    return response.json()["request"]


def slack_record(stack: SignoffStack, request_id: str) -> dict[str, Any]:
    with stack.client(*DANA) as dana:
        response = dana.get(f"{SIGNOFF}/slack/messages/get", params={"request_id": request_id})
    assert response.status_code == 200, response.text
    return response.json()["message"]


# -- the tests ---------------------------------------------------------------------------------


def test_a_request_is_posted_once_and_two_clicks_apply_it(
    stack: SignoffStack, slack: SlackFake, opened: tuple[SeededVersion, dict[str, Any], str]
) -> None:
    seeded, request, ts = opened
    [post_call] = slack.posts_for(request["id"])
    assert post_call.authorization == f"Bearer {slack.token}"
    assert post_call.body["channel"] == "#model-approvals"
    text = shown(slack, ts)
    page = f"{PUBLIC_URL}/ui/requests/{request['id']}"
    comment = "AUC 0.91 on &lt;holdout&gt; &amp; more"  # escaped: no link, no mention
    for expected in (page, seeded.name, f"v{seeded.version}", "None → Production", "dana"):
        assert expected in text, (expected, text)
    for expected in (comment, "0 of 2", "2 more approval(s) needed"):
        assert expected in text, (expected, text)
    assert [(b["action_id"], b["value"]) for b in buttons(slack, ts)] == [
        (APPROVE, request["id"]),
        (REJECT, request["id"]),
    ]

    lee = slack.click(ts, APPROVE, "U_LEE")
    response = send(stack, lee)
    assert response.status_code == 200 and response.content == b""
    assert reply(slack, lee) == "You approved the request (1 of 2; 1 more needed)."
    wait_until(lambda: "1 of 2: lee" in shown(slack, ts), "the message to show lee's approval")
    assert stage_in_mlflow(stack.mlflow_url, seeded) == "None"

    rita = slack.click(ts, APPROVE, "U_RITA")
    assert send(stack, rita).status_code == 200
    assert reply(slack, rita) == "You approved the request (2 of 2): applied."
    assert stage_in_mlflow(stack.mlflow_url, seeded) == "Production"
    wait_until(lambda: "APPLIED" in shown(slack, ts), "the message to show the request applied")
    assert buttons(slack, ts) == []
    assert "2 of 2: lee, rita" in shown(slack, ts)
    assert len(slack.posts_for(request["id"])) == 1  # one message, updated in place
    record = slack_record(stack, request["id"])
    assert (record["channel_id"], record["ts"], record["state"]) == ("C0SIGNOFF01", ts, "POSTED")
    assert record["attempts"][0]["method"] == "chat.postMessage"
    assert {a["method"] for a in record["attempts"][1:]} == {"chat.update"}


def test_an_approval_into_a_freeze_says_when_the_move_applies_on_the_readers_clock(
    stack: SignoffStack,
    slack: SlackFake,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> None:
    seeded = make_version()
    request = create(user(*DANA), seeded, "@release")
    ts, _ = wait_until(lambda: slack.message_for(request["id"]), "the request's Slack message")
    lee = slack.click(ts, APPROVE, "U_LEE")
    assert send(stack, lee).status_code == 200
    said = reply(slack, lee)  # once decided: Slack's click is acknowledged before the decision
    apply_at = current(stack, request["id"])["apply_at"]
    at = datetime.fromtimestamp(apply_at / 1000, UTC)
    assert said == (
        "You approved the request (1 of 1): it waits for its change window and applies "
        f"<!date^{apply_at // 1000}^{{date_short_pretty}} at {{time}}|{at:%Y-%m-%d %H:%M} UTC>."
    )
    wait_until(lambda: "SCHEDULED" in shown(slack, ts), "the message to show it SCHEDULED")
    assert "release freeze" in shown(slack, ts) and buttons(slack, ts) == []
    with stack.client(*DANA) as dana:
        cancelled = dana.delete(
            "/api/2.0/mlflow/transition-requests/delete",
            params={"name": seeded.name, "version": seeded.version, "stage": "@release",
                    "creator": "dana"},
        )  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text


def test_refused_clicks_change_nothing_and_tell_the_person_why(
    stack: SignoffStack, slack: SlackFake, opened: tuple[SeededVersion, dict[str, Any], str]
) -> None:
    seeded, request, ts = opened
    forged = slack.click(ts, APPROVE, "U_LEE")
    response = send(stack, forged, secret="not-the-app-signing-secret-at-all")
    assert "X-Slack-Signature does not match" in assert_error(response, 401, "UNAUTHENTICATED")
    stale = slack.click(ts, APPROVE, "U_LEE")
    response = send(stack, stale, at=time.time() - 301)
    assert "outside the 5-minute window" in assert_error(response, 401, "UNAUTHENTICATED")

    refusals = {
        "U_NOBODY": "user 'U_NOBODY' of source 'slack' is not in the policy's directory",
        "U_DANA": "dana may not approve their own request",
        "U_VIC": "vic has CAN_EDIT on",
    }
    for user_id, reason in refusals.items():
        click = slack.click(ts, APPROVE, user_id)
        body, headers = signed(click, SIGNING_SECRET)
        assert post(stack, body, headers).status_code == 200
        said = reply(slack, click)
        assert said.startswith("Signoff did not record your approval: ") and reason in said
    replayed = post(stack, body, headers)  # vic's click, exactly as Slack sent it
    assert "already processed" in assert_error(replayed, 409, "RESOURCE_ALREADY_EXISTS")

    assert slack.replies_to(forged["response_url"]) == []
    assert slack.replies_to(stale["response_url"]) == []
    assert len(slack.replies_to(click["response_url"])) == 1  # the replay told no one
    now = current(stack, request["id"])
    assert (now["state"], now["approvals"]) == ("PENDING", [])
    assert stage_in_mlflow(stack.mlflow_url, seeded) == "None"
    assert "0 of 2" in shown(slack, ts) and len(buttons(slack, ts)) == 2
    with stack.client(*ADMIN) as admin:
        messages = admin.get(f"{SIGNOFF}/hooks/inbound", params={"source": "slack"}).json()
    mine = [m for m in messages["messages"] if m["request_id"] == request["id"]]
    assert sorted(m["user_id"] for m in mine) == ["U_DANA", "U_NOBODY", "U_VIC"]
    assert {m["outcome"] for m in mine} == {"REFUSED"}


def test_reject_asks_why_in_a_modal_and_records_the_reason(
    stack: SignoffStack,
    slack: SlackFake,
    opened: tuple[SeededVersion, dict[str, Any], str],
    user: Callable[..., httpx.Client],
) -> None:
    seeded, request, ts = opened
    click = slack.click(ts, REJECT, "U_RITA")
    assert send(stack, click).status_code == 200
    view = wait_until(
        lambda: next((v for v in slack.views if request["id"] in v["private_metadata"]), None),
        "the reason modal",
    )
    assert view["callback_id"] == "signoff_reject"
    assert current(stack, request["id"])["state"] == "PENDING"  # nothing until it is submitted

    empty = send(stack, slack.submit(view, "U_RITA", {"reason": "  "}))
    assert empty.status_code == 200
    assert empty.json() == {"response_action": "errors", "errors": {"reason": ANY_TEXT}}
    assert send(stack, slack.submit(view, "U_RITA", {"reason": "drift on EU data"})).content == b""
    assert reply(slack, click) == "You rejected the request; it is closed."
    assert current(stack, request["id"])["state"] == "REJECTED"
    rejected = [a for a in version_activities(user(*DANA), seeded)
                if a["activity_type"] == "REJECTED_REQUEST"]  # fmt: skip
    assert [(a["user_id"], a["comment"]) for a in rejected] == [("rita", "drift on EU data")]
    wait_until(lambda: "REJECTED" in shown(slack, ts), "the message to show the rejection")
    assert buttons(slack, ts) == []


def test_slack_failing_delays_the_message_and_never_doubles_it(
    stack: SignoffStack,
    slack: SlackFake,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> None:
    slack.fail("chat.postMessage", (429, {"Retry-After": "1"}), 500)
    request = create(user(*DANA), make_version(), "Production")
    ts, _ = wait_until(lambda: slack.message_for(request["id"]), "the message, after retries")
    attempts = [call.status for call in slack.posts_for(request["id"])]
    assert attempts == [429, 500, 200]
    record = slack_record(stack, request["id"])
    assert [(a["status_code"], a["error"]) for a in record["attempts"]][:3] == [
        (429, "HTTP 429: ratelimited"),
        (500, ANY_TEXT),
        (200, None),
    ]
    assert (record["ts"], record["state"]) == (ts, "POSTED")
    assert len([m for m in slack.messages.values() if request["id"] in json.dumps(m)]) == 1


def test_a_message_deleted_in_slack_is_posted_again_with_the_next_change(
    stack: SignoffStack,
    slack: SlackFake,
    user: Callable[..., httpx.Client],
    opened: tuple[SeededVersion, dict[str, Any], str],
) -> None:
    seeded, request, ts = opened
    with slack._lock:
        del slack.messages[ts]  # someone deleted it in Slack
    approve = {"name": seeded.name, "version": seeded.version, "stage": "Production"}
    answer = user("lee", "ml-lead").post(
        "/api/2.0/mlflow/transition-requests/approve", json=approve
    )
    assert answer.status_code == 200, answer.text

    def reposted() -> str | None:
        found = slack.message_for(request["id"])  # the deleted one is gone: a new one
        return found[0] if found and "1 of 2: lee" in shown(slack, found[0]) else None

    new_ts = wait_until(reposted, "the message, posted again with lee's approval")
    assert new_ts != ts
    assert [(b["action_id"], b["value"]) for b in buttons(slack, new_ts)][0] == (
        APPROVE,
        request["id"],
    )
    record = wait_until(
        lambda: (r := slack_record(stack, request["id"]))["ts"] == new_ts and r, "the new ts"
    )
    assert record["state"] == "POSTED"
    methods = [(a["method"], a["error"]) for a in record["attempts"]]
    gone = methods.index(("chat.update", "message_not_found"))
    assert methods[gone + 1] == ("chat.postMessage", None)  # posted anew at once
    assert len(slack.posts_for(request["id"])) == 2


class _AnyText:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


ANY_TEXT: Any = _AnyText()


def test_unsigned_oversized_or_foreign_requests_are_refused_or_ignored(
    stack: SignoffStack,
) -> None:
    url = f"{stack.api_url}{SIGNOFF}/hooks/slack"
    unsigned = httpx.post(url, content=b"payload=%7B%7D", timeout=30)
    assert "X-Slack-Request-Timestamp" in assert_error(unsigned, 401, "UNAUTHENTICATED")
    huge = send(stack, {"type": "block_actions", "pad": "x" * 70_000})
    assert "larger than" in assert_error(huge, 400, "INVALID_PARAMETER_VALUE")
    not_a_form = post(stack, *signed(b'{"type": "block_actions"}', SIGNING_SECRET))
    assert "not a form" in assert_error(not_a_form, 400, "INVALID_PARAMETER_VALUE")
    shortcut = send(stack, {"type": "shortcut", "callback_id": "other", "trigger_id": "1.2.3"})
    assert shortcut.status_code == 200 and shortcut.content == b""
    with stack.client(*ADMIN) as admin:
        messages = admin.get(f"{SIGNOFF}/hooks/inbound", params={"source": "slack"}).json()
    outcomes = [(m["event"], m["outcome"]) for m in messages["messages"]]
    assert ("shortcut", "IGNORED") in outcomes
