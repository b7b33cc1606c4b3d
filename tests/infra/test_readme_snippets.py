"""The README's webhook snippets run as printed: the receiver verifies what Signoff really
sends (and drops a retry), and the chat tool's sender produces a message that verifies."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from workflows.webhooks.signing import signed_headers

README = Path(__file__).resolve().parents[2] / "README.md"


def snippet(after_heading: str, nth: int = 0) -> str:
    """The `nth` python block of the README section under `after_heading`."""
    text = README.read_text()
    section = text[text.index(after_heading) :]
    section = section[: section.find("\n#", len(after_heading))]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) > nth, f"no python block {nth} under {after_heading!r}"
    return blocks[nth]


def test_the_receiver_snippet_verifies_real_deliveries_and_drops_retries() -> None:
    scope: dict[str, Any] = {}
    exec(snippet("### Verify on the receiving side"), scope)  # noqa: S102 - our own README
    receive = scope["receive"]
    body = json.dumps({"event": "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"}).encode()
    # Exactly the headers a delivery carries, signed with the README's secret.
    headers = signed_headers("a-long-shared-secret", "msg_1", body)

    assert receive(body, headers) == {"event": "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"}
    assert receive(body, headers) is None  # a retry of the same delivery
    with pytest.raises(Exception):  # noqa: B017, PT011 - the package's own error type
        receive(
            body.replace(b"PRODUCTION", b"STAGING"),
            signed_headers("a-long-shared-secret", "msg_2", body),
        )
    with pytest.raises(Exception):  # noqa: B017, PT011
        receive(body, signed_headers("another-secret", "msg_3", body))


@pytest.fixture
def decision_endpoint() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    received: list[tuple[str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_the_decision_sender_snippet_sends_a_message_signoff_can_verify(
    decision_endpoint: tuple[str, list[tuple[str, dict[str, str], bytes]]],
) -> None:
    url, received = decision_endpoint
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    scope: dict[str, Any] = {"REQUEST_ID": "abc123", "SECRET": secret, "SIGNOFF_URL": url}
    exec(snippet("### Approve or reject from a chat or ticket tool"), scope)  # noqa: S102

    [(path, headers, body)] = received
    assert path == "/api/2.0/signoff/hooks/decisions/slack"
    assert Webhook(secret).verify(body, headers) == {
        "request_id": "abc123",
        "decision": "approve",
        "user": "U024BE7LH",
        "comment": "LGTM",
    }


def test_the_local_receiver_snippet_prints_verified_deliveries_and_refuses_forged_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    scope: dict[str, Any] = {"__name__": "readme"}
    exec(snippet("### Subscribe a receiver"), scope)  # noqa: S102 - our own README
    server = ThreadingHTTPServer(("127.0.0.1", 0), scope["Receiver"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    body = json.dumps(
        {
            "event": "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
            "model_name": "fraud-detector",
            "to_stage": "Production",
        }
    ).encode()
    try:
        good = httpx.post(
            url, content=body, headers=signed_headers("a-long-shared-secret", "m1", body)
        )
        forged = httpx.post(url, content=body, headers=signed_headers("another", "m2", body))
    finally:
        server.shutdown()
        server.server_close()
    assert good.status_code == 200
    assert forged.status_code == 400
    assert capsys.readouterr().out == (
        "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION fraud-detector Production\n"
    )


def test_the_readme_says_how_to_allow_a_loopback_receiver() -> None:
    text = README.read_text()
    section = text[text.index("**Trying it on your machine.**") :]
    assert "SIGNOFF_WEBHOOK_ALLOW_HOSTS=127.0.0.1" in section[:2000]
    assert '"url": "http://127.0.0.1:9000/"' in section[:2000]
    assert 'HTTPServer(("127.0.0.1", 9000), Receiver)' in section[:2000]
