"""Inbound decisions (`POST /api/2.0/signoff/hooks/decisions/{source}`) over real HTTP against
one real stack (Temporal, MLflow, worker, API) with a policy directory and two sources' secrets.

A signed approval from a chat tool must count exactly like an API approval; everything else
(forged, replayed, stale, from the future, unmapped, too weak, self-approval) must be refused
with its own status and reason, change nothing (same approvals, still open, MLflow untouched),
and be listed by `GET /api/2.0/signoff/hooks/inbound`."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from api.settings import ApiSettings
from tests.support.http import SIGNOFF, assert_error, create, wait
from tests.support.mlflow import MlflowServer, SeededVersion, stage_in_mlflow
from tests.support.stack import SignoffStack, api_without_temporal, running_stack
from tests.support.temporal import TemporalServer

HOOKS = f"{SIGNOFF}/hooks"
SLACK_SECRET = "whsec_" + base64.b64encode(b"slack-signing-secret-for-tests!!").decode()
JIRA_SECRET = "whsec_" + base64.b64encode(b"jira-signing-secret-for-tests!!!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"not-the-secret-anyone-configured").decode()

POLICY = """roles:
  data-scientist: {"*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  risk-officer: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  platform-admin: {"*": CAN_MANAGE}
transitions:
  - to: Production
    approvals: {quorum: 2, roles: [ml-lead, risk-officer], self_approval: false}
  - to: Staging
    approvals: {quorum: 1, roles: [ml-lead]}
directory:
  slack:
    U_CAROL: {user: carol, roles: [risk-officer]}
    lee: [ml-lead]
    U_DANA: {user: dana, roles: [ml-lead]}
    U_VIC: {user: vic, roles: [data-scientist]}
  jira:
    mallory: [ml-lead]
"""

DANA = ("dana", "data-scientist")  # the requester of every request here
LEE = ("lee", "ml-lead")
ADMIN = ("ada", "platform-admin")


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[SignoffStack]:
    with running_stack(
        tmp_path_factory,
        "decision-hooks",
        temporal_server.address,
        mlflow_server.url,
        policy=POLICY,
        SIGNOFF_HOOK_SECRETS=json.dumps({"slack": SLACK_SECRET, "jira": JIRA_SECRET}),
    ) as stack:
        yield stack


# -- signing and sending, as a chat tool does -------------------------------------------------


def signed(
    body: dict[str, Any] | bytes,
    *,
    secret: str = SLACK_SECRET,
    msg_id: str | None = None,
    at: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The raw body and the three Standard Webhooks headers signing it."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(tz=UTC)
    signature = Webhook(secret).sign(msg_id, at, raw.decode())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    return raw, headers


def post(
    stack: SignoffStack, raw: bytes, headers: dict[str, str], source: str = "slack"
) -> httpx.Response:
    return httpx.post(
        f"{stack.api_url}{HOOKS}/decisions/{source}", content=raw, headers=headers, timeout=60
    )


def send(
    stack: SignoffStack, body: dict[str, Any] | bytes, source: str = "slack", **sign: Any
) -> httpx.Response:
    raw, headers = signed(body, **sign)
    return post(stack, raw, headers, source)


def approval(request: dict[str, Any], user: str, **extra: Any) -> dict[str, Any]:
    return {"request_id": request["id"], "decision": "approve", "user": user} | extra


# -- reading what happened --------------------------------------------------------------------


def current(client: httpx.Client, request_id: str) -> dict[str, Any]:
    response = client.get(f"{SIGNOFF}/transition-requests/get", params={"id": request_id})
    assert response.status_code == 200, response.text
    return response.json()["request"]


def inbound(stack: SignoffStack, **params: Any) -> list[dict[str, Any]]:
    with stack.client(*ADMIN) as admin:
        response = admin.get(f"{HOOKS}/inbound", params=params)
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def records(stack: SignoffStack, message_id: str) -> list[dict[str, Any]]:
    """Every record of a message id, newest first."""
    return [row for row in inbound(stack, max_results=1000) if row["message_id"] == message_id]


def outcomes(stack: SignoffStack, message_id: str) -> list[str]:
    return [row["outcome"] for row in records(stack, message_id)]


def listed(stack: SignoffStack, message_id: str) -> dict[str, Any]:
    """The one record of a message id (a replay or a retry adds another; see their tests)."""
    rows = records(stack, message_id)
    assert len(rows) == 1, rows
    return rows[0]


def approvers(request: dict[str, Any]) -> list[str]:
    return [item["user_id"] for item in request["approvals"]]


@pytest.fixture
def production(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> tuple[SeededVersion, dict[str, Any]]:
    """A fresh version and dana's open request to move it to Production (quorum 2)."""
    seeded = make_version()
    return seeded, create(user(*DANA), seeded, "Production")


def assert_refused_and_unchanged(
    stack: SignoffStack,
    response: httpx.Response,
    status: int,
    error_code: str,
    reason: str,
    request: dict[str, Any],
    seeded: SeededVersion,
    approved_by: list[str],
) -> dict[str, Any]:
    """The refusal has this status, code and reason; the request still stands exactly as it did
    (same approvals, still open, MLflow stage unchanged); the listing shows the refusal."""
    message = assert_error(response, status, error_code)
    assert reason in message, message
    with stack.client(*LEE) as lee:
        now = current(lee, request["id"])
    assert now["state"] == "PENDING"
    assert approvers(now) == approved_by
    assert stage_in_mlflow(stack.mlflow_url, seeded) == "None"
    row = listed(stack, response.request.headers["webhook-id"])
    assert row["outcome"] == "REFUSED"
    assert reason in row["reason"]
    return row


# -- accepted decisions -----------------------------------------------------------------------


def test_a_signed_approval_counts_toward_the_quorum_and_the_version_moves(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    production: tuple[SeededVersion, dict[str, Any]],
) -> None:
    seeded, request = production
    lee = user(*LEE)
    by_api = lee.post(
        "/api/2.0/mlflow/transition-requests/approve",
        json={"name": seeded.name, "version": seeded.version, "stage": "Production"},
    )
    assert by_api.status_code == 200, by_api.text
    assert stage_in_mlflow(stack.mlflow_url, seeded) == "None"  # one of two

    response = send(stack, approval(request, "U_CAROL", comment="risk ok, from Slack"))
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"activity", "request"}
    assert response.json()["request"]["state"] == "APPLIED"
    activity = response.json()["activity"]
    assert activity["activity_type"] == "APPROVED_REQUEST"
    assert activity["user_id"] == "carol"  # the directory's subject, not the Slack id
    assert activity["comment"] == "risk ok, from Slack"
    assert activity["to_stage"] == "Production"

    assert wait(lee, request["id"])["state"] == "APPLIED"
    assert stage_in_mlflow(stack.mlflow_url, seeded) == "Production"
    assert approvers(current(lee, request["id"])) == ["lee", "carol"]
    row = listed(stack, response.request.headers["webhook-id"])
    assert row | {"id": None, "received_timestamp": None} == {
        "id": None,
        "source": "slack",
        "message_id": response.request.headers["webhook-id"],
        "outcome": "ACCEPTED",
        "reason": None,
        "event": "approve",
        "user_id": "U_CAROL",
        "request_id": request["id"],
        "received_timestamp": None,
    }


def test_a_signed_reject_by_name_version_stage_closes_the_request(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> None:
    seeded = make_version()
    request = create(user(*DANA), seeded, "Staging")
    body = {
        "name": seeded.name,
        "version": seeded.version,
        "stage": "staging",  # any casing, as in the API
        "decision": "REJECT",
        "user": "lee",
        "comment": "not yet",
        "channel": "C123",  # tools add fields of their own; they are ignored
    }
    response = send(stack, body)
    assert response.status_code == 200, response.text
    assert response.json()["activity"]["activity_type"] == "REJECTED_REQUEST"
    assert response.json()["activity"]["user_id"] == "lee"

    lee = user(*LEE)
    assert wait(lee, request["id"])["state"] == "REJECTED"
    assert stage_in_mlflow(stack.mlflow_url, seeded) == "None"
    row = listed(stack, response.request.headers["webhook-id"])
    assert (row["outcome"], row["event"], row["request_id"]) == (
        "ACCEPTED",
        "reject",
        request["id"],
    )

    # The request is closed now: approving it by id is refused, and recorded.
    again = send(stack, approval(request, "U_CAROL"))
    assert "no longer open" in assert_error(again, 400, "INVALID_PARAMETER_VALUE")
    assert listed(stack, again.request.headers["webhook-id"])["outcome"] == "REFUSED"


# -- refusals: each changes nothing and is listed ---------------------------------------------


def test_a_forged_signature_is_refused(
    stack: SignoffStack, production: tuple[SeededVersion, dict[str, Any]]
) -> None:
    seeded, request = production
    forged = send(stack, approval(request, "U_CAROL"), secret=OTHER_SECRET)
    row = assert_refused_and_unchanged(
        stack, forged, 401, "UNAUTHENTICATED", "signature does not match", request, seeded, []
    )
    assert row["user_id"] is None  # an unverified body is never read

    # A genuine signature over another body does not cover a tampered one either.
    raw, headers = signed(approval(request, "lee"))
    tampered = post(stack, raw.replace(b'"lee"', b'"U_CAROL"'), headers)
    assert_refused_and_unchanged(
        stack, tampered, 401, "UNAUTHENTICATED", "signature does not match", request, seeded, []
    )
    # The jira secret does not sign for slack.
    crossed = send(stack, approval(request, "lee"), secret=JIRA_SECRET)
    assert_refused_and_unchanged(
        stack, crossed, 401, "UNAUTHENTICATED", "signature does not match", request, seeded, []
    )


def test_a_replayed_webhook_id_does_nothing(
    stack: SignoffStack, production: tuple[SeededVersion, dict[str, Any]]
) -> None:
    seeded, request = production
    raw, headers = signed(approval(request, "lee"))
    first = post(stack, raw, headers)
    assert first.status_code == 200, first.text

    replay = post(stack, raw, headers)
    message = assert_error(replay, 409, "RESOURCE_ALREADY_EXISTS")
    assert "was already processed" in message and headers["webhook-id"] in message
    # Also with a new body and a fresh signature: the id is what counts.
    fresh, fresh_headers = signed(approval(request, "U_CAROL"), msg_id=headers["webhook-id"])
    assert_error(post(stack, fresh, fresh_headers), 409, "RESOURCE_ALREADY_EXISTS")

    with stack.client(*LEE) as lee:
        now = current(lee, request["id"])
    assert (now["state"], approvers(now)) == ("PENDING", ["lee"])
    assert stage_in_mlflow(stack.mlflow_url, seeded) == "None"
    assert outcomes(stack, headers["webhook-id"]) == ["REFUSED", "REFUSED", "ACCEPTED"]
    replays = [row for row in records(stack, headers["webhook-id"]) if row["outcome"] == "REFUSED"]
    assert all("was already processed" in row["reason"] for row in replays)


@pytest.mark.parametrize(
    ("shift", "says"), [(-timedelta(minutes=6), "s old"), (timedelta(minutes=6), "in the future")]
)
def test_a_timestamp_outside_the_window_is_refused(
    stack: SignoffStack,
    production: tuple[SeededVersion, dict[str, Any]],
    shift: timedelta,
    says: str,
) -> None:
    seeded, request = production
    response = send(stack, approval(request, "lee"), at=datetime.now(tz=UTC) + shift)
    row = assert_refused_and_unchanged(
        stack, response, 401, "UNAUTHENTICATED", "outside the 5-minute window", request, seeded, []
    )
    assert says in row["reason"]


def test_an_unmapped_user_is_refused(
    stack: SignoffStack, production: tuple[SeededVersion, dict[str, Any]]
) -> None:
    seeded, request = production
    for who in ("U_NOBODY", "mallory", "carol"):  # unknown; jira's only; a subject, not an id
        response = send(stack, approval(request, who))
        row = assert_refused_and_unchanged(
            stack,
            response,
            403,
            "PERMISSION_DENIED",
            "is not in the policy's directory",
            request,
            seeded,
            [],
        )
        assert (row["user_id"], row["event"], row["request_id"]) == (who, "approve", request["id"])


def test_a_mapped_user_whose_role_is_too_weak_is_refused(
    stack: SignoffStack, production: tuple[SeededVersion, dict[str, Any]]
) -> None:
    seeded, request = production
    response = send(stack, approval(request, "U_VIC"))  # vic: data-scientist, CAN_EDIT
    reason = "vic has CAN_EDIT"
    row = assert_refused_and_unchanged(
        stack, response, 403, "PERMISSION_DENIED", reason, request, seeded, []
    )
    assert "CAN_MANAGE_PRODUCTION_VERSIONS is needed" in row["reason"]


def test_self_approval_through_the_directory_is_refused_as_by_the_api(
    stack: SignoffStack,
    user: Callable[..., httpx.Client],
    production: tuple[SeededVersion, dict[str, Any]],
) -> None:
    seeded, request = production
    response = send(stack, approval(request, "U_DANA"))  # dana, an ml-lead in Slack, asked
    row = assert_refused_and_unchanged(
        stack,
        response,
        403,
        "PERMISSION_DENIED",
        "may not approve their own request",
        request,
        seeded,
        [],
    )
    # The very rule and words an API approval by dana with the same roles meets.
    by_api = user("dana", "ml-lead").post(
        "/api/2.0/mlflow/transition-requests/approve",
        json={"name": seeded.name, "version": seeded.version, "stage": "Production"},
    )
    assert assert_error(by_api, 403, "PERMISSION_DENIED") == row["reason"]


# -- malformed, unknown, unauthenticated ------------------------------------------------------


def test_an_unknown_source_is_404_and_says_how_to_configure_it(stack: SignoffStack) -> None:
    response = send(stack, {"request_id": "x", "decision": "approve", "user": "lee"}, "teams")
    assert "SIGNOFF_HOOK_SECRETS" in assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    row = listed(stack, response.request.headers["webhook-id"])
    assert (row["source"], row["outcome"]) == ("teams", "REFUSED")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"request_id": "abc", "decision": ', "not valid JSON"),
        (b'["approve"]', "Input should be"),
        ({"request_id": "abc", "decision": "maybe", "user": "lee"}, "decision"),
        ({"request_id": "abc", "decision": "approve"}, "user"),
        ({"decision": "approve", "user": "lee"}, "request_id, or name, version and stage"),
        (
            {"decision": "approve", "user": "lee", "request_id": "a", "name": "m"},
            "not both",
        ),
        (
            {"decision": "approve", "user": "lee", "name": "m", "version": "x", "stage": "Staging"},
            "positive integer",
        ),
        (
            {"decision": "approve", "user": "lee", "request_id": "a", "comment": "x" * 10_001},
            "comment",
        ),
    ],
)
def test_a_malformed_signed_body_is_400(
    stack: SignoffStack, body: dict[str, Any] | bytes, says: str
) -> None:
    response = send(stack, body)
    assert says in assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert listed(stack, response.request.headers["webhook-id"])["outcome"] == "REFUSED"


def test_an_unknown_request_id_is_404(stack: SignoffStack) -> None:
    response = send(stack, {"request_id": "f" * 32, "decision": "approve", "user": "lee"})
    assert "no transition request" in assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_missing_headers_are_401_naming_them(stack: SignoffStack) -> None:
    raw, headers = signed({"request_id": "x", "decision": "approve", "user": "lee"})
    del headers["webhook-signature"]
    response = post(stack, raw, headers)
    assert "webhook-signature" in assert_error(response, 401, "UNAUTHENTICATED")
    assert listed(stack, headers["webhook-id"])["outcome"] == "REFUSED"


def test_the_inbound_listing_is_for_registry_admins_only(
    stack: SignoffStack, user: Callable[..., httpx.Client]
) -> None:
    assert_error(user(*LEE).get(f"{HOOKS}/inbound"), 403, "PERMISSION_DENIED")
    with httpx.Client(base_url=stack.api_url, timeout=60) as anonymous:
        assert_error(anonymous.get(f"{HOOKS}/inbound"), 401, "UNAUTHENTICATED")
    first = send(stack, {"request_id": "f" * 32, "decision": "approve", "user": "lee"})
    body = {"decision": "approve", "user": "mallory", "request_id": "a"}
    second = send(stack, body, "jira", secret=JIRA_SECRET)
    assert_error(second, 404, "RESOURCE_DOES_NOT_EXIST")  # mapped in jira; no such request
    jira = inbound(stack, source="jira")
    assert [(row["source"], row["user_id"]) for row in jira] == [("jira", "mallory")]
    newest = inbound(stack, max_results=2)
    assert [row["message_id"] for row in newest] == [
        second.request.headers["webhook-id"],
        first.request.headers["webhook-id"],
    ]
    assert_error(
        user(*ADMIN).get(f"{HOOKS}/inbound", params={"max_results": 0}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


# -- Temporal unreachable: answered 503, recorded as ERROR, the retry goes through -------------


def test_when_temporal_is_down_the_message_is_an_error_and_its_retry_is_processed(
    stack: SignoffStack,
    tmp_path: Path,
    production: tuple[SeededVersion, dict[str, Any]],
) -> None:
    seeded, request = production
    raw, headers = signed(approval(request, "lee"))
    with api_without_temporal(stack, tmp_path / "api-without-temporal.log") as lonely:
        down = httpx.post(
            f"{lonely}{HOOKS}/decisions/slack", content=raw, headers=headers, timeout=60
        )
        assert_error(down, 503, "TEMPORARILY_UNAVAILABLE")
    log = (tmp_path / "api-without-temporal.log").read_text(errors="replace")
    assert SLACK_SECRET not in log and headers["webhook-signature"] not in log

    assert outcomes(stack, headers["webhook-id"]) == ["ERROR"]
    # The tool retries the very same message (same id, same signature) once Signoff is back.
    retry = post(stack, raw, headers)
    assert retry.status_code == 200, retry.text
    with stack.client(*LEE) as lee:
        assert approvers(current(lee, request["id"])) == ["lee"]
    assert outcomes(stack, headers["webhook-id"]) == ["ACCEPTED", "ERROR"]
    assert stage_in_mlflow(stack.mlflow_url, seeded) == "None"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{", "SIGNOFF_HOOK_SECRETS is not valid JSON"),
        ('["whsec_x"]', "must be a JSON object of source -> secret such as"),
        ('{"slack": 1}', "must be a JSON object of source -> secret"),
        ('{"slack": ""}', "must be a JSON object of source -> secret"),
    ],
)
def test_hook_secrets_setting_says_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("SIGNOFF_HOOK_SECRETS", value)
    with pytest.raises(ValueError, match=re.escape(expected)):
        ApiSettings(_env_file=None)  # type: ignore[call-arg]


def test_hook_secrets_setting_parses_and_hides_the_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_HOOK_SECRETS", json.dumps({"slack": SLACK_SECRET}))
    settings = ApiSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.hook_secrets["slack"].get_secret_value() == SLACK_SECRET
    assert SLACK_SECRET not in repr(settings)
    monkeypatch.setenv("SIGNOFF_HOOK_SECRETS", "")
    assert ApiSettings(_env_file=None).hook_secrets == {}  # type: ignore[call-arg]
