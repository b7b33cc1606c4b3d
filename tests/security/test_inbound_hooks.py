"""Inbound hooks (MLflow's webhook, Standard Webhooks decisions) over HTTP: forged, stale,
future, non-integer (NaN, inf, negative, huge, float, padded) timestamps, replayed and
oversized deliveries are refused with the right status; a correct one is accepted. One
timestamp rule for every hook: plain decimal seconds within 5 minutes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.security.conftest import CHAT_SECRET, MLFLOW_SECRET
from tests.support.http import assert_error
from tests.support.mlflow import SeededVersion
from tests.support.stack import SignoffStack

MLFLOW_HOOK = "/api/2.0/signoff/hooks/mlflow"
DECISION_HOOK = "/api/2.0/signoff/hooks/decisions/chat"

BAD_TIMESTAMPS: dict[str, Callable[[int], str]] = {
    "nan": lambda now: "nan",
    "NaN": lambda now: "NaN",
    "inf": lambda now: "inf",
    "-inf": lambda now: "-inf",
    "Infinity": lambda now: "Infinity",
    "negative": lambda now: "-1",
    "negative now": lambda now: f"-{now}",
    "huge": lambda now: "9" * 40,
    "float": lambda now: f"{now}.0",
    "exponent": lambda now: f"{now / 1e9}e9",
    "plus sign": lambda now: f"+{now}",
    "trailing dot": lambda now: f"{now}.",
    "inner space": lambda now: f"{str(now)[:5]} {str(now)[5:]}",
    "hex": lambda now: hex(now),
    "underscored": lambda now: f"{now:_}",
    "non-ASCII digits": lambda now: str(now).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
    # 30 s past the 5-minute window either way, so a slow test run cannot land inside it.
    "stale": lambda now: str(now - 330),
    "future": lambda now: str(now + 330),
    "zero": lambda now: "0",
}


def mlflow_body(seeded: SeededVersion) -> bytes:
    data = {"name": seeded.name, "version": seeded.version, "key": "k", "value": "v"}
    return json.dumps(
        {"entity": "model_version_tag", "action": "set", "timestamp": 0, "data": data}
    ).encode()


def mlflow_headers(
    body: bytes, delivery_id: str, timestamp: str, secret: str = MLFLOW_SECRET
) -> dict[str, str]:
    signed = f"{delivery_id}.{timestamp}.{body.decode()}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return {
        "X-MLflow-Signature": "v1," + base64.b64encode(digest).decode(),
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Delivery-Id": delivery_id,
        "Content-Type": "application/json",
    }


def standard_headers(
    body: bytes, msg_id: str, timestamp: str, secret: str = CHAT_SECRET
) -> dict[str, str]:
    """Standard Webhooks' v1 signature, computed by hand so any timestamp text can be signed."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body.decode()}".encode(), hashlib.sha256)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
        "Content-Type": "application/json",
    }


def decision_body() -> bytes:
    return json.dumps({"decision": "approve", "user": "U-LEE", "request_id": "ab" * 16}).encode()


def post(stack: SignoffStack, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST with the headers as UTF-8 on the wire (so non-ASCII digits arrive as sent)."""
    raw = {name: value.encode() for name, value in headers.items()}
    return httpx.post(f"{stack.api_url}{path}", content=body, headers=raw, timeout=60)


def new_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


# -- MLflow's webhook ------------------------------------------------------------------------


def test_a_correct_mlflow_delivery_is_accepted_and_its_replay_is_409(
    security_stack: SignoffStack, seeded: SeededVersion
) -> None:
    body, delivery = mlflow_body(seeded), new_id()
    headers = mlflow_headers(body, delivery, str(int(time.time())))
    first = post(security_stack, MLFLOW_HOOK, body, headers)
    assert first.status_code == 200, first.text
    assert_error(post(security_stack, MLFLOW_HOOK, body, headers), 409, "RESOURCE_ALREADY_EXISTS")


@pytest.mark.parametrize("case", list(BAD_TIMESTAMPS))
def test_an_mlflow_delivery_with_a_bad_timestamp_is_401(
    security_stack: SignoffStack, seeded: SeededVersion, case: str
) -> None:
    body = mlflow_body(seeded)
    stamp = BAD_TIMESTAMPS[case](int(time.time()))
    response = post(security_stack, MLFLOW_HOOK, body, mlflow_headers(body, new_id(), stamp))
    assert_error(response, 401, "UNAUTHENTICATED")


def test_a_forged_mlflow_delivery_is_401(
    security_stack: SignoffStack, seeded: SeededVersion
) -> None:
    body = mlflow_body(seeded)
    headers = mlflow_headers(body, new_id(), str(int(time.time())), secret="not-the-secret")
    message = assert_error(post(security_stack, MLFLOW_HOOK, body, headers), 401, "UNAUTHENTICATED")
    assert "signature" in message


def test_an_oversized_mlflow_delivery_is_400(security_stack: SignoffStack) -> None:
    body = json.dumps({"entity": "x", "action": "y", "data": {"pad": "p" * 70_000}}).encode()
    headers = mlflow_headers(body, new_id(), str(int(time.time())))
    assert_error(post(security_stack, MLFLOW_HOOK, body, headers), 400, "INVALID_PARAMETER_VALUE")


# -- Standard Webhooks decisions --------------------------------------------------------------


def test_a_correct_decision_is_processed_and_its_replay_is_409(
    security_stack: SignoffStack,
) -> None:
    body, msg_id = decision_body(), new_id()
    headers = standard_headers(body, msg_id, str(int(time.time())))
    first = post(security_stack, DECISION_HOOK, body, headers)
    assert_error(first, 404, "RESOURCE_DOES_NOT_EXIST")  # verified, claimed: no such request
    again = post(security_stack, DECISION_HOOK, body, headers)
    assert_error(again, 409, "RESOURCE_ALREADY_EXISTS")


@pytest.mark.parametrize("case", list(BAD_TIMESTAMPS))
def test_a_decision_with_a_bad_timestamp_is_401(security_stack: SignoffStack, case: str) -> None:
    body = decision_body()
    stamp = BAD_TIMESTAMPS[case](int(time.time()))
    response = post(security_stack, DECISION_HOOK, body, standard_headers(body, new_id(), stamp))
    assert_error(response, 401, "UNAUTHENTICATED")


def test_a_forged_decision_is_401(security_stack: SignoffStack) -> None:
    body = decision_body()
    other = "whsec_" + base64.b64encode(b"someone-else-s-secret-0123456789").decode()
    headers = standard_headers(body, new_id(), str(int(time.time())), secret=other)
    assert_error(post(security_stack, DECISION_HOOK, body, headers), 401, "UNAUTHENTICATED")


def test_an_oversized_decision_is_400(security_stack: SignoffStack) -> None:
    body = json.dumps({"decision": "approve", "user": "U-LEE", "pad": "p" * 70_000}).encode()
    headers = standard_headers(body, new_id(), str(int(time.time())))
    assert_error(post(security_stack, DECISION_HOOK, body, headers), 400, "INVALID_PARAMETER_VALUE")
