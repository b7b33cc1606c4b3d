"""Size caps and malformed input over HTTP: an Authorization header over 8 KB is 401 and a
request head over 16 KB is 431, both in MLflow's error shape and before anything is parsed;
malformed webhook URLs are 400 on create and update; MLflow hook payloads with bad names,
versions, aliases or tag keys are 400."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.api.test_auth import assert_unauthenticated
from tests.security.test_inbound_hooks import MLFLOW_HOOK, mlflow_headers, post
from tests.support.http import TRANSITIONS, assert_error
from tests.support.mlflow import SeededVersion
from tests.support.stack import SignoffStack

PROTECTED = f"{TRANSITIONS}/list"
WEBHOOKS = "/api/2.0/mlflow/registry-webhooks"


def get(stack: SignoffStack, path: str, headers: dict[str, str], **params: str) -> httpx.Response:
    return httpx.get(f"{stack.api_url}{path}", headers=headers, params=params, timeout=60)


# -- header caps ------------------------------------------------------------------------------


def test_a_token_over_8_kb_is_401_before_it_is_decoded(
    security_stack: SignoffStack, seeded: SeededVersion
) -> None:
    token = security_stack.token("dana", "data-scientist", pad="p" * 9000)  # validly signed
    response = get(
        security_stack,
        PROTECTED,
        {"Authorization": f"Bearer {token}"},
        name=seeded.name,
        version=seeded.version,
    )
    assert "8192 bytes" in assert_unauthenticated(response, token)


def test_a_token_under_the_cap_still_works(
    security_stack: SignoffStack, seeded: SeededVersion
) -> None:
    token = security_stack.token("dana", "data-scientist", pad="p" * 5000)
    assert len(token) < 8192
    response = get(
        security_stack,
        PROTECTED,
        {"Authorization": f"Bearer {token}"},
        name=seeded.name,
        version=seeded.version,
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("what", "headers", "query"),
    [
        ("a 20 KB token", {"Authorization": "Bearer " + "a" * 20_000}, ""),
        ("a 20 KB other header", {"X-Pad": "p" * 20_000}, ""),
        ("many headers", {f"X-Pad-{i}": "p" * 100 for i in range(200)}, ""),
        ("a 20 KB query string", {}, "x=" + "q" * 20_000),
    ],
)
def test_a_request_head_over_16_kb_is_431(
    security_stack: SignoffStack, what: str, headers: dict[str, str], query: str
) -> None:
    response = httpx.get(f"{security_stack.api_url}/healthz?{query}", headers=headers, timeout=60)
    assert response.status_code == 431, (what, response.text)
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "16384 bytes" in body["message"]


def test_a_1_mb_header_is_cut_off_by_the_server_itself(security_stack: SignoffStack) -> None:
    """Past `api.server.SERVER_LIMITS` (64 KB) the HTTP parser stops reading: the answer is
    uvicorn's own 400 or a closed connection, never a head read into memory and parsed."""
    try:
        response = httpx.get(
            f"{security_stack.api_url}/healthz", headers={"X-Pad": "p" * 1_000_000}, timeout=60
        )
    except httpx.TransportError:
        return  # the server closed the connection
    assert response.status_code in (400, 431), response.text


def test_a_head_under_the_cap_is_served(security_stack: SignoffStack) -> None:
    response = httpx.get(
        f"{security_stack.api_url}/healthz", headers={"X-Pad": "p" * 12_000}, timeout=60
    )
    assert response.status_code == 200, response.text


# -- malformed webhook URLs ------------------------------------------------------------------

MALFORMED_URLS = [
    "http://[::1",
    "http://[/",
    "http://[",
    "http://]/",
    "http://[::1]x/",
    "http://[::1]:99999/",
    "http://[::1]:port/",
    "http://[v1.fe]/",
    "http://[fe80::1%25eth0]/",
    "http://[[::1]]/",
    "http://[:::]/",
    "https://[2001:db8::1::2]/",
]


@pytest.fixture(scope="module")
def webhook_id(security_stack: SignoffStack, seeded: SeededVersion) -> str:
    with security_stack.client("ada", "platform-admin") as admin:
        response = admin.post(
            f"{WEBHOOKS}/create",
            json={
                "model_name": seeded.name,
                "events": ["MODEL_VERSION_CREATED"],
                "status": "DISABLED",
                "http_url_spec": {"url": "http://127.0.0.1:9/hook"},
            },
        )
    assert response.status_code == 200, response.text
    return response.json()["webhook"]["id"]


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_a_malformed_url_is_400_on_create(
    security_stack: SignoffStack, seeded: SeededVersion, url: str
) -> None:
    with security_stack.client("ada", "platform-admin") as admin:
        response = admin.post(
            f"{WEBHOOKS}/create",
            json={
                "model_name": seeded.name,
                "events": ["MODEL_VERSION_CREATED"],
                "status": "DISABLED",
                "http_url_spec": {"url": url},
            },
        )
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_a_malformed_url_is_400_on_update(
    security_stack: SignoffStack, webhook_id: str, url: str
) -> None:
    with security_stack.client("ada", "platform-admin") as admin:
        response = admin.patch(
            f"{WEBHOOKS}/update", json={"id": webhook_id, "http_url_spec": {"url": url}}
        )
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


# -- MLflow hook payloads -------------------------------------------------------------------

BAD_PAYLOADS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "version abc": ("model_version", "created", {"version": "abc"}),
    "version 0": ("model_version", "created", {"version": "0"}),
    "version negative": ("model_version", "created", {"version": "-1"}),
    "version 1.5": ("model_version", "created", {"version": "1.5"}),
    "version over 64 bits": ("model_version", "created", {"version": str(2**64)}),
    "version a list": ("model_version", "created", {"version": ["1"]}),
    "version true": ("model_version", "created", {"version": True}),
    "name 10,000 characters": ("model_version", "created", {"name": "n" * 10_000}),
    "name empty": ("registered_model", "created", {"name": ""}),
    "name blank": ("registered_model", "created", {"name": "   "}),
    "name a number": ("registered_model", "created", {"name": 7}),
    "name an object": ("registered_model", "created", {"name": {"a": 1}}),
    "alias latest": ("model_version_alias", "created", {"alias": "latest"}),
    "alias v1": ("model_version_alias", "created", {"alias": "v1"}),
    "alias with a space": ("model_version_alias", "created", {"alias": "bad alias"}),
    "alias 300 characters": ("model_version_alias", "created", {"alias": "a" * 300}),
    "alias a number": ("model_version_alias", "deleted", {"alias": 5}),
    "tag key 10,000 characters": ("model_version_tag", "set", {"key": "k" * 10_000}),
    "tag key with NUL": ("model_version_tag", "set", {"key": "k\x00"}),
    "tag key a list": ("model_version_tag", "deleted", {"key": ["k"]}),
    "tag value an object": ("model_version_tag", "set", {"value": {"a": 1}}),
    "tag value 10,000 characters": ("model_version_tag", "set", {"value": "v" * 10_000}),
}


@pytest.mark.parametrize("case", list(BAD_PAYLOADS))
def test_a_bad_field_in_a_signed_mlflow_payload_is_400(
    security_stack: SignoffStack, seeded: SeededVersion, case: str
) -> None:
    entity, action, override = BAD_PAYLOADS[case]
    data = {"name": seeded.name, "version": seeded.version, "alias": "champ", "key": "k"}
    data |= {"value": "v"} if action == "set" else {}
    body = json.dumps(
        {"entity": entity, "action": action, "timestamp": 0, "data": data | override}
    ).encode()
    headers = mlflow_headers(body, f"msg_{uuid.uuid4().hex}", str(int(time.time())))
    message = assert_error(
        post(security_stack, MLFLOW_HOOK, body, headers), 400, "INVALID_PARAMETER_VALUE"
    )
    assert message.startswith("data.")
