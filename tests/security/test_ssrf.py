"""The SSRF guard of outbound webhooks: every form that leads to a non-public address is
refused (by the guard, and through the API with 400 INVALID_PARAMETER_VALUE); hosts allowed by
SIGNOFF_WEBHOOK_ALLOW_HOSTS still are; and a delivery connects to exactly the address that was
checked, so a DNS answer changing after the check (rebinding) leads nowhere."""

from __future__ import annotations

import ipaddress
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import httpx
import pytest

from tests.support.http import assert_error
from tests.support.mlflow import SeededVersion
from tests.support.stack import SignoffStack
from workflows.ledger import Webhook
from workflows.webhooks.delivery import DELIVERED, send_once
from workflows.webhooks.signing import SecretBox
from workflows.webhooks.ssrf import IpAddress, UnsafeUrlError, check_url

REFUSED: dict[str, str] = {
    # IPv4-embedding IPv6 forms, each wrapping a loopback or private address
    "6to4 around 127.0.0.1": "http://[2002:7f00:1::]/",
    "6to4 around 10.0.0.1": "http://[2002:a00:1::1]/",
    "Teredo, client 127.0.0.1 (XOR-ed)": "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
    "Teredo, server 10.0.0.1": "http://[2001:0:a00:1:8000:63bf:3fff:fdd2]/",
    "NAT64 around 127.0.0.1": "http://[64:ff9b::7f00:1]/",
    "NAT64 around 169.254.169.254": "http://[64:ff9b::a9fe:a9fe]/",
    "local-use NAT64": "http://[64:ff9b:1::808:808]/",
    "IPv4-mapped 127.0.0.1": "http://[::ffff:127.0.0.1]/",
    "IPv4-mapped, hex": "http://[::ffff:7f00:1]/",
    "IPv4-translated 127.0.0.1": "http://[::ffff:0:7f00:1]/",
    "IPv4-compatible 127.0.0.1": "http://[::127.0.0.1]/",
    "IPv6 loopback": "http://[::1]/",
    "IPv6 unspecified": "http://[::]/",
    "IPv6 link-local": "http://[fe80::1]/",
    "IPv6 unique local": "http://[fd00::1]/",
    # non-standard literals
    "IPvFuture": "http://[v1.fe]/",
    "zone id": "http://[fe80::1%25eth0]/",
    "unclosed bracket": "http://[::1/",
    "lone bracket": "http://[/",
    "bracketed IPv4": "http://[127.0.0.1]/",
    # IPv4 in other notations (inet_aton would read them all as 127.0.0.1)
    "decimal": "http://2130706433/",
    "hex dotted": "http://0x7f.1/",
    "hex whole": "http://0x7f000001/",
    "octal": "http://017700000001/",
    "octal dotted": "http://0177.0.0.1/",
    "shortened": "http://127.1/",
    "leading zeros": "http://127.000.000.001/",
    "trailing dot numeric": "http://2130706433./",
    "numeric last label": "http://foo.0x10/",
    # plain private and special IPv4
    "loopback": "http://127.0.0.1/",
    "private": "http://10.1.2.3/",
    "metadata": "http://169.254.169.254/latest/meta-data",
    "CGNAT": "http://100.64.0.1/",
    "unspecified": "http://0.0.0.0/",
    "multicast": "http://224.0.0.1/",
    "broadcast": "http://255.255.255.255/",
    # names that resolve to loopback
    "localhost": "http://localhost/",
    "localhost, trailing dot": "http://localhost./",
    # userinfo and parser tricks
    "credentials": "http://user:pw@8.8.8.8/",
    "empty userinfo": "http://@127.0.0.1/",
    "userinfo hiding the host": "http://8.8.8.8@127.0.0.1/",
    "backslash": "http://8.8.8.8\\@127.0.0.1/",
    "whitespace": "http://8.8.8.8 @127.0.0.1/",
    "tab in host": "http://127.0.0.1\t/",
    "percent-encoded host": "http://%31%32%37.0.0.1/",
    "non-ASCII host": "http://ｌｏｃａｌｈｏｓｔ/",
    "invalid port": "http://8.8.8.8:99999/",
    "port zero": "http://8.8.8.8:0/",
    "not http": "ftp://8.8.8.8/",
    "file": "file:///etc/passwd",
    "no host": "http:///x",
}

ALLOWED_PUBLIC = [
    "http://8.8.8.8/",
    "https://93.184.216.34:8443/x?y=1",
    "http://[2001:4860:4860::8888]/",
    "http://[2002:808:808::]/",  # 6to4 around a public address
    "http://[64:ff9b::808:808]/",  # NAT64 around a public address
]


@pytest.mark.parametrize("url", list(REFUSED.values()), ids=list(REFUSED))
def test_every_ssrf_form_is_refused(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        check_url(url, [])


@pytest.mark.parametrize("url", ALLOWED_PUBLIC)
def test_public_addresses_are_allowed(url: str) -> None:
    assert check_url(url, []).url == url


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://127.0.0.1:9/x", ["127.0.0.1"]),
        ("http://127.0.0.1:9/x", ["127.0.0.0/8"]),
        ("http://[::1]:9/x", ["::1"]),
        ("http://localhost:9/x", ["localhost"]),
        ("http://localhost:9/x", ["127.0.0.1/32"]),
        ("http://[::ffff:127.0.0.1]:9/x", ["127.0.0.1/32"]),  # judged by the embedded address
        ("http://10.1.2.3/", ["10.0.0.0/8"]),
    ],
)
def test_allowed_hosts_and_ranges_still_are_allowed(url: str, allow: list[str]) -> None:
    check_url(url, allow)


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://localhost:9/x", ["127.0.0.1"]),  # a listed address does not allow a name
        ("http://[2002:7f00:1::]/", ["127.0.0.2/32"]),
        ("http://2130706433/", ["127.0.0.0/8"]),  # non-standard forms are refused regardless
        ("http://[v1.fe]/", ["127.0.0.0/8"]),
    ],
)
def test_allowing_one_thing_allows_nothing_else(url: str, allow: list[str]) -> None:
    with pytest.raises(UnsafeUrlError):
        check_url(url, allow)


def test_the_name_is_resolved_once_and_the_checked_address_is_what_is_connected_to() -> None:
    """DNS rebinding: a resolver answering a public address, then loopback. The check resolves
    once and pins the destination to the address it checked."""
    answers: list[list[IpAddress]] = [
        [ipaddress.ip_address("93.184.216.34")],
        [ipaddress.ip_address("127.0.0.1")],
    ]
    asked: list[tuple[str, int]] = []

    def rebinding(host: str, port: int) -> list[IpAddress]:
        asked.append((host, port))
        return answers.pop(0)

    destination = check_url("https://hooks.example.com/in?x=1", [], resolver=rebinding)
    assert asked == [("hooks.example.com", 443)]
    assert destination.url == "https://93.184.216.34:443/in?x=1"
    assert destination.headers == {"Host": "hooks.example.com"}
    assert destination.extensions == {"sni_hostname": "hooks.example.com"}


def test_a_resolved_name_that_leads_anywhere_private_is_refused() -> None:
    def mixed(host: str, port: int) -> list[IpAddress]:
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("2002:a00:1::")]

    with pytest.raises(UnsafeUrlError, match="6to4"):
        check_url("http://hooks.example.com/", [], resolver=mixed)


async def test_a_delivery_connects_to_the_checked_address_and_keeps_the_name() -> None:
    """A real delivery to a loopback receiver named `localhost` (allowed by range): it reaches
    127.0.0.1, the address the check resolved, with `Host: localhost:<port>`."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers.get("content-length", "0")))
            seen.append({"host": self.headers.get("host"), "peer": self.client_address[0]})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        row = Webhook(
            id=uuid.uuid4().hex,
            model_name="m",
            events=["MODEL_VERSION_CREATED"],
            status="ACTIVE",
            url=f"http://localhost:{port}/hook",
            enable_ssl_verification=True,
            created_by="ada",
            created_ms=0,
            updated_ms=0,
        )
        sent = await send_once(
            row, "d1", {"event": "MODEL_VERSION_CREATED"}, box=SecretBox(None), allow_hosts=[]
        )
        assert sent.outcome != DELIVERED and "loopback" in (sent.error or "")
        assert seen == []
        sent = await send_once(
            row,
            "d2",
            {"event": "MODEL_VERSION_CREATED"},
            box=SecretBox(None),
            allow_hosts=["127.0.0.0/8"],
        )
        assert sent.outcome == DELIVERED, sent
        assert seen == [{"host": f"localhost:{port}", "peer": "127.0.0.1"}]
    finally:
        server.shutdown()
        server.server_close()


# -- through the API -------------------------------------------------------------------------

THROUGH_THE_API = [
    "http://[2002:7f00:1::]/",
    "http://[v1.fe]/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://017700000001/",
    "http://[::ffff:127.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://@127.0.0.1/",
    "http://localhost/",
]


@pytest.mark.parametrize("url", THROUGH_THE_API)
def test_the_api_refuses_every_form_with_400(
    security_stack: SignoffStack, seeded: SeededVersion, url: str
) -> None:
    with security_stack.client("ada", "platform-admin") as admin:
        response = admin.post(
            "/api/2.0/mlflow/registry-webhooks/create",
            json={
                "model_name": seeded.name,
                "events": ["MODEL_VERSION_CREATED"],
                "status": "DISABLED",
                "http_url_spec": {"url": url},
            },
        )
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_the_api_still_allows_the_allowed_host(
    security_stack: SignoffStack, seeded: SeededVersion
) -> None:
    """The stack allows 127.0.0.1 (SIGNOFF_WEBHOOK_ALLOW_HOSTS)."""
    with security_stack.client("ada", "platform-admin") as admin:
        response = admin.post(
            "/api/2.0/mlflow/registry-webhooks/create",
            json={
                "model_name": seeded.name,
                "events": ["MODEL_VERSION_CREATED"],
                "status": "DISABLED",
                "http_url_spec": {"url": "http://127.0.0.1:9/hook"},
            },
        )
    assert response.status_code == 200, response.text
    assert httpx.URL(response.json()["webhook"]["http_url_spec"]["url"]).host == "127.0.0.1"
