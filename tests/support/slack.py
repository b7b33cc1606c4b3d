"""A loopback Slack: the Web API methods Signoff calls and the `response_url`s of interactions,
speaking Slack's wire format, plus the interactivity requests Slack sends, signed as Slack signs
them.

Web API (https://docs.slack.dev/apis/web-api/): `POST /api/<method>` with a JSON
(`application/json`) or form (`application/x-www-form-urlencoded`) body and the token in
`Authorization: Bearer xoxb-...`; every answer is JSON with `ok`: `{"ok": true, ...}`, or
`{"ok": false, "error": "channel_not_found"}` (HTTP 200; a missing or wrong token is
`not_authed` / `invalid_auth`), HTTP 429 with `Retry-After` and `{"ok": false, "error":
"ratelimited"}` when rate limited. `chat.postMessage` answers the channel's id and the
message's `ts`; `chat.update` needs that id and `ts`; `views.open` needs a `trigger_id` Slack
issued (with an interaction payload). A test scripts failures per method (`fail`).

Interactivity (https://docs.slack.dev/interactivity/handling-user-interaction): Slack POSTs
`payload=<JSON>` form-encoded, signed with `X-Slack-Request-Timestamp` and `X-Slack-Signature:
v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">` under the app's signing secret
(https://docs.slack.dev/authentication/verifying-requests-from-slack). `click` builds the
`block_actions` payload of a button of a message the fake holds, `submit` the
`view_submission` of a modal it opened; `signed` signs either.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode

TEAM = {"id": "T0SIGNOFF", "domain": "acme"}
APP_ID = "A0SIGNOFF"


@dataclass
class ApiCall:
    """One Web API request the fake received, and the status it answered."""

    method: str
    authorization: str | None
    content_type: str
    body: dict[str, Any]
    status: int
    answer: dict[str, Any]


@dataclass
class SlackFake:
    token: str = "xoxb-0000000000-0000000000000-signofftestbottoken00"
    channels: dict[str, str] = field(default_factory=lambda: {"#model-approvals": "C0SIGNOFF01"})
    script: dict[str, list[Any]] = field(default_factory=dict)
    """Per method, what to answer next instead of success: an error name (`ok: false`), an
    HTTP status, or `(status, headers)`."""
    calls: list[ApiCall] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    """By `ts`: the message as it stands (`channel`, `text`, `blocks`)."""
    views: list[dict[str, Any]] = field(default_factory=list)
    replies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """By response_url: what was posted to it."""
    url: str = ""
    _triggers: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _clock: Iterator[int] = field(default_factory=itertools.count)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def fail(self, method: str, *answers: Any) -> None:
        with self._lock:
            self.script.setdefault(method, []).extend(answers)

    # -- what tests read ---------------------------------------------------------------------

    def of(self, method: str) -> list[ApiCall]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def message_for(self, request_id: str) -> tuple[str, dict[str, Any]] | None:
        """The (ts, message) that shows this request (its page link is in the text)."""
        with self._lock:
            for ts, message in self.messages.items():
                if f"/ui/requests/{request_id}" in json.dumps(message["blocks"]):
                    return ts, message
        return None

    def posts_for(self, request_id: str) -> list[ApiCall]:
        """Every chat.postMessage attempt for the request, successful or not."""
        return [
            call
            for call in self.of("chat.postMessage")
            if f"/ui/requests/{request_id}" in json.dumps(call.body.get("blocks"))
        ]

    def replies_to(self, response_url: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.replies.get(response_url, []))

    # -- what Slack sends ----------------------------------------------------------------------

    def _interaction_ids(self) -> tuple[str, str]:
        trigger = f"{int(time.time())}.{next(self._clock)}.{uuid.uuid4().hex[:32]}"
        response_url = f"{self.url}/actions/{APP_ID}/{uuid.uuid4().hex}"
        with self._lock:
            self._triggers.add(trigger)
        return trigger, response_url

    def click(self, ts: str, action_id: str, user_id: str) -> dict[str, Any]:
        """The `block_actions` payload of `user_id` pressing that button of the message."""
        with self._lock:
            message = json.loads(json.dumps(self.messages[ts]))
        button = next(
            element
            for block in message["blocks"]
            if block["type"] == "actions"
            for element in block["elements"]
            if element["action_id"] == action_id
        )
        trigger, response_url = self._interaction_ids()
        return {
            "type": "block_actions",
            "user": _user(user_id),
            "api_app_id": APP_ID,
            "token": "verification-token-unused",
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": message["channel"],
                "is_ephemeral": False,
            },
            "trigger_id": trigger,
            "team": TEAM,
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": message["channel"], "name": "model-approvals"},
            "message": {"type": "message", "ts": ts, "text": message["text"], "blocks": []},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [
                {key: button[key] for key in ("action_id", "text", "value", "style", "type")}
                | {"block_id": "signoff_decide", "action_ts": f"{time.time():.6f}"}
            ],
        }

    def submit(self, view: dict[str, Any], user_id: str, values: dict[str, str]) -> dict[str, Any]:
        """The `view_submission` payload of a modal the fake opened, with `values` (block id
        → text) typed into its plain-text inputs."""
        state = {
            block["block_id"]: {
                block["element"]["action_id"]: {
                    "type": "plain_text_input",
                    "value": values.get(block["block_id"]),
                }
            }
            for block in view["blocks"]
            if block["type"] == "input"
        }
        trigger, _ = self._interaction_ids()
        return {
            "type": "view_submission",
            "team": TEAM,
            "user": _user(user_id),
            "api_app_id": APP_ID,
            "token": "verification-token-unused",
            "trigger_id": trigger,
            "view": view | {"state": {"values": state}, "hash": f"{time.time():.0f}.abc"},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    # -- the Web API ---------------------------------------------------------------------------

    def answer(
        self, method: str, authorization: str | None, body: dict[str, Any]
    ) -> tuple[int, dict[str, str], dict[str, Any] | str]:
        with self._lock:
            scripted = self.script.get(method, [])
            action = scripted.pop(0) if scripted else None
        if action is not None:
            status, headers = action if isinstance(action, tuple) else (action, {})
            if isinstance(status, str):
                return 200, {}, {"ok": False, "error": status}
            if status == 429:
                return 429, headers, {"ok": False, "error": "ratelimited"}
            return status, headers, "<html><body>Internal Server Error</body></html>"
        if not authorization:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if authorization != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        handler = {
            "chat.postMessage": self._post,
            "chat.update": self._update,
            "views.open": self._open,
        }.get(method)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        with self._lock:
            return 200, {}, handler(body)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(body.get("channel", ""), body.get("channel"))
        if channel not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("text") and not body.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = f"{int(time.time())}.{next(self._clock):06d}"
        self.messages[ts] = {"channel": channel, "text": body.get("text"), "blocks": _blocks(body)}
        return {"ok": True, "channel": channel, "ts": ts, "message": self._shown(ts)}

    def _update(self, body: dict[str, Any]) -> dict[str, Any]:
        ts, channel = body.get("ts"), body.get("channel")
        if channel not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}  # an id, never a #name
        if ts not in self.messages or self.messages[ts]["channel"] != channel:
            return {"ok": False, "error": "message_not_found"}
        self.messages[ts] |= {"text": body.get("text"), "blocks": _blocks(body)}
        return {"ok": True, "channel": channel, "ts": ts, "text": body.get("text"),
                "message": self._shown(ts)}  # fmt: skip

    def _open(self, body: dict[str, Any]) -> dict[str, Any]:
        trigger = body.get("trigger_id")
        if trigger not in self._triggers:
            return {"ok": False, "error": "invalid_trigger_id"}
        self._triggers.discard(trigger)
        view = body.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        if not isinstance(view, dict) or view.get("type") != "modal" or not view.get("title"):
            return {"ok": False, "error": "invalid_arguments"}
        opened = view | {"id": f"V{uuid.uuid4().hex[:10].upper()}", "team_id": TEAM["id"]}
        self.views.append(opened)
        return {"ok": True, "view": opened}

    def _shown(self, ts: str) -> dict[str, Any]:
        message = self.messages[ts]
        return {"type": "message", "bot_id": "B0SIGNOFF", "ts": ts,
                "text": message["text"], "blocks": message["blocks"]}  # fmt: skip


def _user(user_id: str) -> dict[str, str]:
    name = user_id.lower().removeprefix("u_")
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM["id"]}


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = body.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def _parse(content_type: str, raw: bytes) -> dict[str, Any]:
    if content_type.startswith("application/json"):
        return json.loads(raw or b"{}")
    return {key: values[-1] for key, values in parse_qs(raw.decode()).items()}


@contextlib.contextmanager
def running_slack(fake: SlackFake) -> Iterator[SlackFake]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            content_type = self.headers.get("content-type", "")
            if self.path.startswith("/actions/"):
                with fake._lock:
                    fake.replies.setdefault(f"{fake.url}{self.path}", []).append(json.loads(raw))
                self._send(200, {}, {"ok": True})
                return
            method = self.path.removeprefix("/api/")
            body = _parse(content_type, raw)
            status, headers, answer = fake.answer(method, self.headers.get("authorization"), body)
            with fake._lock:
                fake.calls.append(
                    ApiCall(
                        method,
                        self.headers.get("authorization"),
                        content_type,
                        body,
                        status,
                        answer if isinstance(answer, dict) else {},
                    )  # fmt: skip
                )
            self._send(status, headers, answer)

        def _send(self, status: int, headers: dict[str, str], answer: Any) -> None:
            is_json = isinstance(answer, dict)
            payload = json.dumps(answer).encode() if is_json else str(answer).encode()
            self.send_response(status)
            kind = "application/json; charset=utf-8" if is_json else "text/html"
            self.send_header("Content-Type", kind)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def signed(
    payload: dict[str, Any] | bytes, secret: str, *, at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """The form body Slack sends for an interaction (or `payload` itself, when it is bytes)
    and the headers signing it."""
    body = payload if isinstance(payload, bytes) else urlencode({"payload": json.dumps(payload)})
    body = body if isinstance(body, bytes) else body.encode()
    timestamp = str(int(time.time() if at is None else at))
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest.hexdigest()}",
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
