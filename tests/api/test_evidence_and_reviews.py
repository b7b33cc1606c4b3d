"""For regulated teams, end to end on a real stack (Temporal dev server, MLflow, worker, API):

- the evidence packet of an applied request, in JSON (validated against the published schema,
  holding every item) and as a PDF from `signoff evidence` (rendered by pdftoppm, its text
  read by pdftotext);
- a break-glass move opens a review: listed, self-review refused, overdue after its short
  deadline and announced to a verifying loopback receiver, acknowledged by model risk, and in
  the move's evidence packet;
- `GET /api/2.0/signoff/policy/explain` for the caller and for another principal.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from api.models.evidence import evidence_json_schema
from tests.support.http import TRANSITIONS
from tests.support.mlflow import MlflowServer, SeededVersion
from tests.support.polling import wait_until
from tests.support.receiver import Receiver, running_receiver
from tests.support.stack import SignoffStack, running_stack
from tests.support.temporal import TemporalServer
from tests.support.webhooks import SECRET, subscribe, webhook_env

SIGNOFF = "/api/2.0/signoff"
EVIDENCE = f"{SIGNOFF}/transition-requests/evidence"
REVIEWS = "/api/2.0/signoff/break-glass/reviews"
BREAK_GLASS = "/api/2.0/mlflow/databricks/model-versions/transition-stage"
SCHEMA = json.loads((Path(__file__).parents[2] / "docs/schemas/evidence.schema.json").read_text())

POLICY = """
roles:
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  risk-officer: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  model-risk: {"*": CAN_READ}
  platform-admin: {"*": CAN_MANAGE}
transitions:
  - models: ["*"]
    to: Production
    checks: [{type: metric, name: auc, min: 0.8}]
    approvals: {quorum: 2, roles: [ml-lead, risk-officer]}
    break_glass: {review: {quorum: 1, roles: [model-risk], within: 2s}}
  - models: ["*"]
    to: Staging
    approvals: {quorum: 1, roles: [ml-lead]}
"""


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[SignoffStack]:
    with running_stack(
        tmp_path_factory,
        "regulated-evidence",
        temporal_server.address,
        mlflow_server.url,
        policy=POLICY,
        **webhook_env(),
    ) as stack:
        yield stack


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def valid(packet: dict[str, Any]) -> dict[str, Any]:
    errors = [e.message for e in Draft202012Validator(SCHEMA).iter_errors(packet)]
    assert errors == [], errors
    return packet


def test_the_published_schema_is_the_one_the_api_serves() -> None:
    assert evidence_json_schema() == SCHEMA, (
        "regenerate: python -m api.models.evidence > docs/schemas/evidence.schema.json"
    )


def _applied_request(user: Callable[..., httpx.Client], seeded: SeededVersion) -> str:
    lee, mia, rita = user("lee", "ml-lead"), user("mia", "ml-lead"), user("rita", "risk-officer")
    body = {"name": seeded.name, "version": seeded.version, "stage": "Production"}
    request = ok(lee.post(f"{TRANSITIONS}/create", json=body | {"comment": "AUC 0.91 on holdout"}))
    ok(
        rita.post(
            "/api/2.0/mlflow/comments/create",
            json={
                "name": seeded.name,
                "version": seeded.version,
                "comment": "holdout from Q3 only?",
            },
        )
    )
    approve = body | {"archive_existing_versions": True}
    ok(mia.post(f"{TRANSITIONS}/approve", json=approve | {"comment": "looks good"}))
    ok(rita.post(f"{TRANSITIONS}/approve", json=approve | {"comment": "risk reviewed"}))
    return request["request"]["id"]


def test_the_evidence_packet_of_an_applied_request(
    stack: SignoffStack, user: Callable[..., httpx.Client], make_version, tmp_path: Path
) -> None:
    seeded = make_version(metrics={"auc": 0.91})
    request_id = _applied_request(user, seeded)
    auditor = user("mo", "model-risk")

    def packet() -> dict[str, Any] | None:
        got = ok(auditor.get(EVIDENCE, params={"id": request_id}))
        kinds = [e["activity_type"] for e in got["trail"]]
        return got if "APPLIED_TRANSITION" in kinds else None

    got = valid(wait_until(packet, "the applied transition in the packet's trail"))
    assert got["subject"] | {"created_timestamp": 0, "updated_timestamp": 0} == {
        "kind": "transition_request",
        "id": request_id,
        "model": seeded.name,
        "version": seeded.version,
        "target": "Production",
        "from_stage": "None",
        "state": "APPLIED",
        "reason": None,
        "requester": "lee",
        "comment": "AUC 0.91 on holdout",
        "created_timestamp": 0,
        "updated_timestamp": 0,
    }
    version = got["model_version"]
    assert version["run_id"] == seeded.run_id and seeded.run_id in version["source"]
    assert version["current_stage"] == "Production"
    assert got["rule"]["words"].startswith("2 approvals from ml-lead or risk-officer")
    assert got["rule"]["checks"] == ["auc ≥ 0.80"]
    assert got["policy"]["hash_verified"] is True and "to: Production" in got["policy"]["text"]
    [check] = got["checks"]
    assert (check["check_id"], check["status"], check["requirement"]) == (
        "metric:auc",
        "PASSED",
        "auc ≥ 0.80",
    )
    assert check["evidence"]["value"] == 0.91 and check["evidence"]["min"] == 0.8
    assert [(d["kind"], d["user_id"], d["roles"], d["comment"]) for d in got["decisions"]] == [
        ("approval", "mia", ["ml-lead"], "looks good"),
        ("approval", "rita", ["risk-officer"], "risk reviewed"),
    ]
    assert [(c["user_id"], c["comment"]) for c in got["comments"]] == [
        ("rita", "holdout from Q3 only?")
    ]
    kinds = [e["activity_type"] for e in got["trail"]]
    assert kinds == [
        "REQUESTED_TRANSITION",
        "APPROVED_REQUEST",
        "APPROVED_REQUEST",
        "APPLIED_TRANSITION",
    ]
    # What was approved, as pinned when the request opened, and where the packet's last
    # entry stands in the audit chain (what `signoff audit verify` finds in an export).
    pinned = ok(auditor.get(f"{SIGNOFF}/transition-requests/get", params={"id": request_id}))
    assert got["artifact_digest"] == pinned["request"]["digest"]
    assert got["artifact_digest"]["run_id"] == got["model_version"]["run_id"]
    head = got["audit_chain_head"]
    assert head["entry_id"] == got["trail"][-1]["id"] and head["chain_seq"] > 0
    assert re.fullmatch(r"[0-9a-f]{64}", head["entry_hash"])
    assert "artifact_digest" not in got["notes"] and "audit_chain_head" not in got["notes"]
    assert got["break_glass_review"] is None

    pdf = tmp_path / "evidence.pdf"
    env = stack.env | {
        "SIGNOFF_API_URL": stack.api_url,
        "SIGNOFF_TOKEN": stack.token("mo", "model-risk"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "evidence", request_id, "-o", str(pdf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    assert sorted(tmp_path.glob("page*.png")), "pdftoppm rendered no page"
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for expected in (
        f"Evidence packet: {seeded.name} version {seeded.version}",
        "mia",
        "rita",
        "risk-officer",
        "metric:auc",
        "PASSED",
        "looks good",
        "Applied by Signoff after 2",
        got["policy"]["hash"],
    ):
        assert expected in text, expected


def test_a_break_glass_move_opens_a_review_that_goes_overdue_and_is_acknowledged(
    stack: SignoffStack, user: Callable[..., httpx.Client], make_version
) -> None:
    seeded = make_version(metrics={"auc": 0.5})
    ada = user("ada", "platform-admin", "model-risk")
    mo, lee = user("mo", "model-risk"), user("lee", "ml-lead")
    with running_receiver(Receiver(secret=SECRET)) as receiver:
        subscribe(
            ada,
            receiver.url,
            seeded.name,
            events=["BREAK_GLASS_REVIEW_OPENED", "BREAK_GLASS_REVIEW_OVERDUE"],
        )
        ok(
            ada.post(
                BREAK_GLASS,
                json={
                    "name": seeded.name,
                    "version": seeded.version,
                    "stage": "Production",
                    "comment": "INC-9: hotfix now",
                },
            )
        )
        [review] = ok(mo.get(f"{REVIEWS}/list", params={"name": seeded.name, "state": "all"}))[
            "reviews"
        ]
        assert (review["mover"], review["roles"], review["quorum"]) == ("ada", ["model-risk"], 1)
        assert review["may_acknowledge"] is True
        assert [
            r["id"]
            for r in ok(lee.get(f"{REVIEWS}/list", params={"mine": True}))["reviews"]
            if r["name"] == seeded.name
        ] == []

        refused = ada.post(f"{REVIEWS}/acknowledge", json={"id": review["id"]})
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"] == (
            "ada may not review their own break-glass move; someone else in model-risk must"
        )

        def overdue() -> bool:
            listed = ok(mo.get(f"{REVIEWS}/list", params={"state": "overdue", "mine": True}))
            return review["id"] in [r["id"] for r in listed["reviews"]]

        wait_until(overdue, "the review to be overdue")
        events = wait_until(
            lambda: [
                r.json
                for r in receiver.delivered
                if r.verified and r.json["event"] == "BREAK_GLASS_REVIEW_OVERDUE"
            ],
            "the overdue event",
        )
        assert events[0]["review_id"] == review["id"] and events[0]["model_name"] == seeded.name

    acked = ok(mo.post(f"{REVIEWS}/acknowledge", json={"id": review["id"], "comment": "justified"}))
    assert acked["review"]["state"] == "ACKNOWLEDGED" and acked["review"]["overdue"] is True
    again = mo.post(f"{REVIEWS}/acknowledge", json={"id": review["id"]})
    assert again.status_code == 400, again.text

    got = valid(ok(mo.get(EVIDENCE, params={"id": review["id"]})))
    assert got["subject"]["kind"] == "break_glass" and got["subject"]["requester"] == "ada"
    assert got["subject"]["comment"] == "INC-9: hotfix now"
    assert got["break_glass_review"]["state"] == "ACKNOWLEDGED"
    assert got["break_glass_review"]["overdue_timestamp"] is not None
    assert [
        (a["user_id"], a["comment"]) for a in got["break_glass_review"]["acknowledgements"]
    ] == [("mo", "justified")]
    assert got["trail"][0]["system_comment"].startswith("Break-glass transition by ada")


def test_policy_explain_over_the_api(user: Callable[..., httpx.Client], make_version) -> None:
    seeded = make_version()
    lee = user("lee", "ml-lead")
    params = {"name": seeded.name, "version": seeded.version, "target": "production"}
    mine = ok(lee.get("/api/2.0/signoff/policy/explain", params=params))["explanation"]
    assert (mine["rule_index"], mine["quorum"], mine["checks"]) == (0, 2, ["auc ≥ 0.80"])
    assert mine["principal"]["approve"]["allowed"] is True
    assert mine["principal"]["break_glass"]["allowed"] is False
    ada = ok(
        lee.get(
            "/api/2.0/signoff/policy/explain",
            params=params | {"as": "ada", "role": ["platform-admin"]},
        )
    )["explanation"]
    assert ada["principal"]["break_glass"]["allowed"] is True
    assert "1 acknowledgement from model-risk" in ada["break_glass"]
    stranger = user("sam", "contractor").get("/api/2.0/signoff/policy/explain", params=params)
    assert stranger.status_code == 403
