"""The audit export an auditor runs, on the real stack: `signoff audit export` streams the
record with its hashes and verifies what it wrote, `signoff audit verify` names the entry a
tampered file breaks at and checks an anchor; who may export what; bad input in MLflow's shape;
and a decided request stays readable, trail and comments included, after Temporal has dropped
its workflow's history."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from typer.testing import CliRunner, Result

from api.cli import app
from tests.support.audit import records_of, verify_text
from tests.support.http import SIGNOFF, TRANSITIONS, assert_error, create, target, wait
from tests.support.mlflow import SeededVersion
from tests.support.stack import SignoffStack
from workflows.client import workflow_id_for

EXPORT = f"{SIGNOFF}/audit/export"
ANCHORS = f"{SIGNOFF}/audit/anchors"
DANA = ("dana", "data-scientist")
LEE = ("lee", "ml-lead")
RITA = ("rita", "risk-officer")
ADMIN = ("pat", "platform-admin")


def signoff(stack: SignoffStack, *args: str, token: str | None = None) -> Result:
    """`signoff ARGS` in this process (the real command, over HTTP to the stack's API)."""
    env = {"SIGNOFF_API_URL": stack.api_url, "SIGNOFF_TOKEN": token or ""}
    return CliRunner().invoke(app, list(args), env=env)


def applied_with_comment(
    as_user: Callable[..., httpx.Client], seeded: SeededVersion, note: str
) -> dict[str, Any]:
    """Dana asks for @audit, Rita approves, Dana comments: an APPLIED request and its trail."""
    request = create(as_user(*DANA), seeded, "@audit", comment="for the auditors")
    approved = as_user(*RITA).post(f"{TRANSITIONS}/approve", json=target(seeded, "@audit"))
    assert approved.status_code == 200, approved.text
    assert wait(as_user(*DANA), request["id"])["state"] == "APPLIED"
    version = {"name": seeded.name, "version": seeded.version}
    posted = as_user(*DANA).post(
        "/api/2.0/mlflow/comments/create", json=version | {"comment": note}
    )
    assert posted.status_code == 200, posted.text
    return request


def test_export_and_verify_through_the_cli(
    signoff_stack: SignoffStack,
    as_user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
    tmp_path: Path,
) -> None:
    seeded = make_version()
    note = 'checked, "really"\nsigned: dana'
    request = applied_with_comment(as_user, seeded, note)
    anchored = as_user(*ADMIN).post(f"{ANCHORS}/create")
    assert anchored.status_code == 200, anchored.text
    anchor = anchored.json()["anchor"]
    listed = as_user(*DANA).get(f"{ANCHORS}/list").json()["anchors"]
    assert listed[0] == anchor

    token = signoff_stack.token(*ADMIN)
    everything = tmp_path / "all.jsonl"
    done = signoff(signoff_stack, "audit", "export", "-o", str(everything), token=token)
    assert done.exit_code == 0, done.stderr
    assert "complete and unaltered" in done.stderr
    verdict = verify_text(everything.read_text(), anchor["anchor"])
    assert verdict.anchored_at == [anchor["length"]] and verdict.links == 0
    entries = {r["id"]: r for r in records_of(everything.read_text()) if r["record"] == "entry"}
    mine = [e for e in entries.values() if e["request_id"] == request["id"]]
    assert [e["activity_type"] for e in mine] == [
        "REQUESTED_TRANSITION",
        "APPROVED_REQUEST",
        "APPLIED_TRANSITION",
    ]
    assert [e["comment"] for e in entries.values() if e["model"] == seeded.name][-1] == note

    # One model's slice, as CSV: other models' entries are links, and it verifies.
    one = tmp_path / "one.csv"
    done = signoff(
        signoff_stack, "audit", "export", "--model", seeded.name, "-o", str(one), token=token
    )
    assert done.exit_code == 0, done.stderr
    sliced = verify_text(one.open(newline="").read())
    assert sliced.entries == 4 and sliced.last_seq >= anchor["length"]

    # An entry edited in the file: verify names it.
    lines = everything.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if f'"id":"{mine[1]["id"]}"' in line)
    edited = json.loads(lines[at]) | {"user_id": "mallory"}
    lines[at] = json.dumps(edited, separators=(",", ":")) + "\n"
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("".join(lines))
    done = signoff(signoff_stack, "audit", "verify", str(tampered), "--anchor", anchor["anchor"])
    assert done.exit_code == 1
    assert f"({mine[1]['id']}) at line {at + 1}" in done.stderr and "edited" in done.stderr


def test_who_may_export_and_bad_input(
    signoff_stack: SignoffStack, as_user: Callable[..., httpx.Client], make_version: Any
) -> None:
    seeded = make_version()
    one = {"models": [seeded.name]}
    assert_error(signoff_stack.client().get(EXPORT, params=one), 401, "UNAUTHENTICATED")
    for who in (DANA, LEE):  # CAN_EDIT and CAN_MANAGE_PRODUCTION_VERSIONS: not CAN_MANAGE
        assert "CAN_MANAGE" in assert_error(
            as_user(*who).get(EXPORT, params=one), 403, "PERMISSION_DENIED"
        )
    everything = assert_error(as_user(*LEE).get(EXPORT), 403, "PERMISSION_DENIED")
    assert "every model" in everything
    admin = as_user(*ADMIN)
    for params in (one, {}):
        response = admin.get(EXPORT, params=params | {"format": "csv"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert verify_text(response.text).last_seq > 0
    for bad in (
        {"format": "xml"},
        {"since": 5, "until": 5},
        {"since": -1},
        {"until": "yesterday"},
        {"models": "a/b"},
        {"models": [f"m{i}" for i in range(101)]},
    ):
        assert_error(admin.get(EXPORT, params=bad), 400, "INVALID_PARAMETER_VALUE")


async def forget(signoff_stack: SignoffStack, workflow_id: str) -> None:
    """Delete a workflow's (latest) execution and its history, as Temporal's retention does,
    and wait until Temporal no longer knows it."""
    address = signoff_stack.env["SIGNOFF_TEMPORAL_ADDRESS"]
    client = await Client.connect(address)
    handle = client.get_workflow_handle(workflow_id)
    run_id = (await handle.describe()).run_id
    execution = WorkflowExecution(workflow_id=workflow_id, run_id=run_id)
    await client.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(namespace="default", workflow_execution=execution)
    )

    async def gone() -> bool:
        try:
            await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
        except RPCError as err:
            return err.status == RPCStatusCode.NOT_FOUND
        return False

    async with asyncio.timeout(30):
        while not await gone():
            await asyncio.sleep(0.2)


async def test_a_decided_request_outlives_its_workflow_history(
    signoff_stack: SignoffStack,
    as_user: Callable[..., httpx.Client],
    make_version: Callable[..., SeededVersion],
) -> None:
    seeded = make_version()
    request = await asyncio.to_thread(applied_with_comment, as_user, seeded, "kept for 7 years")
    reader = as_user(*DANA)
    version = {"name": seeded.name, "version": seeded.version}
    reads = {
        "request": (f"{SIGNOFF}/transition-requests/get", {"id": request["id"]}),
        "wait": (f"{SIGNOFF}/transition-requests/wait", {"id": request["id"], "timeout_s": 5}),
        "trail": (f"{SIGNOFF}/activities/list", version),
        "comments": (f"{SIGNOFF}/comments/list", version),
        "search": (f"{SIGNOFF}/transition-requests/search", {"name": seeded.name, "open_only": 0}),
        "page": (f"/ui/api/requests/{request['id']}", {}),
    }

    def read_all() -> dict[str, Any]:
        answers = {name: reader.get(path, params=params) for name, (path, params) in reads.items()}
        assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(reads, 200)
        return {name: r.json() for name, r in answers.items()}

    before = await asyncio.to_thread(read_all)
    stored = before["request"]["request"]
    assert stored["state"] == "APPLIED"
    await forget(signoff_stack, workflow_id_for(seeded.name, seeded.version, "@audit"))

    after = await asyncio.to_thread(read_all)
    assert after == before
    assert [a["activity_type"] for a in after["trail"]["activities"]][-2:] == [
        "APPLIED_TRANSITION",
        "NEW_COMMENT",
    ]
    assert after["comments"]["comments"][0]["comment"] == "kept for 7 years"
