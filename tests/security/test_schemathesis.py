"""schemathesis against the running API: the OpenAPI document is the contract, and a fuzzer must
not fault it.

The schema is loaded from the real stack's `/openapi.json` over HTTP, and every operation is
called with generated requests (schemathesis' examples, coverage and fuzzing phases) under every
check schemathesis has (`--checks all`: no 5xx, status codes, content types, response schemas
and headers, valid data accepted, invalid data refused, missing auth refused, 405 with `Allow`
for undeclared methods, ...), once as a registry admin (platform-admin: CAN_MANAGE on every
model) and once as a principal with no binding at all.

Bounded and deterministic: `MAX_EXAMPLES` fuzzed cases per operation, derandomized generation
under a fixed seed, no example database. The stack is this module's own (its own ledger, task
queue and policy), so nothing is excluded: the reconciler, break-glass and webhooks run here
without touching another suite's state (generated model names never name a registered model).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.security.conftest import CHAT_SECRET, MLFLOW_SECRET
from tests.support.mlflow import MlflowServer
from tests.support.stack import SignoffStack, running_stack
from tests.support.temporal import TemporalServer
from tests.support.webhooks import webhook_env

MAX_EXAMPLES = 10
SEED = 20_240_601
WEBHOOK_CREATE = "POST /api/2.0/mlflow/registry-webhooks/create"

POLICY = """roles:
  platform-admin: {"*": CAN_MANAGE}
transitions:
  - {to: "None", approvals: {quorum: 1, roles: [platform-admin]}, break_glass: true}
  - {to: Staging, approvals: {quorum: 1, roles: [platform-admin]}, break_glass: true}
  - {to: Production, approvals: {quorum: 1, roles: [platform-admin]}, break_glass: true}
  - {to: Archived, approvals: {quorum: 1, roles: [platform-admin]}, break_glass: true}
  - {to: "@*", approvals: {quorum: 1, roles: [platform-admin]}}
"""
"""A rule for every target, so a schema-valid request is never refused for want of one."""

CASES: Counter[str] = Counter()
"""Cases sent, by principal and operation (reported at the end of the module)."""


@pytest.fixture(scope="module")
def fuzz_stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[SignoffStack]:
    with running_stack(
        tmp_path_factory,
        "schemathesis",
        temporal_server.address,
        mlflow_server.url,
        policy=POLICY,
        SIGNOFF_MLFLOW_WEBHOOK_SECRET=MLFLOW_SECRET,
        SIGNOFF_HOOK_SECRETS=json.dumps({"chat": CHAT_SECRET}),
        **webhook_env(),
    ) as stack:
        yield stack
        print(f"\nschemathesis: {len(CASES)} (principal, operation) pairs, {CASES.total()} cases")
        for key, count in sorted(CASES.items()):
            print(f"  {count:4d}  {key}")
        log = (stack.root / "api.log").read_text(errors="replace")
        assert "Traceback" not in log, "the API logged an exception"


@pytest.fixture(autouse=True)
def _nodeid_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy loader reads and rewrites `node._nodeid` (to name each operation
    in reports), which pytest 9.2 no longer has: give it the attribute it expects."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def _schema(stack: SignoffStack, sub: str, *roles: str) -> OpenApiSchema:
    config = schemathesis.Config(seed=SEED)
    project = config.projects.default
    project.update(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {stack.token(sub, *roles)}"},
        request_timeout=60,
    )
    project.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
    return schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json", config=config)


@pytest.fixture(scope="module")
def admin_schema(fuzz_stack: SignoffStack) -> OpenApiSchema:
    return _schema(fuzz_stack, "fuzz-admin", "platform-admin")


@pytest.fixture(scope="module")
def outsider_schema(fuzz_stack: SignoffStack) -> OpenApiSchema:
    return _schema(fuzz_stack, "fuzz-outsider")


SEMANTIC_REFUSALS: dict[str, tuple[str, ...]] = {
    # Whether a receiver URL may be reached is decided when it is given (DNS, private ranges:
    # `workflows.webhooks.ssrf`), and REGISTERED_MODEL_CREATED with a model_name is refused
    # (documented in `events`, not expressed in the schema).
    WEBHOOK_CREATE: ("the webhook URL", "the webhook host", "registry-wide"),
    # A time range whose end is not after its start: the schema types each bound alone.
    "GET /api/2.0/signoff/audit/export": ("since (",),
    # Page tokens are opaque: only one the API handed out is a page.
    "GET /ui/api/inbox": ("page_token is not a page",),
    # Whether the ledger holds an earlier version at the target is the ledger's to say.
    "POST /api/2.0/signoff/rollback": ("Signoff has no record of another version",),
}
"""Operations where a schema-valid request can still be refused with a 400 for what no schema
can express, and the sentence that refusal starts with."""


def call_and_validate(case: schemathesis.Case, principal: str) -> None:
    CASES[f"{principal} {case.operation.label}"] += 1
    refusals = SEMANTIC_REFUSALS.get(case.operation.label)
    if refusals is None:
        case.call_and_validate()
        return
    # Every other check applies, and a 400 on valid data must be the refusal named above.
    response = case.call()
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
    meta = case.meta
    if (
        meta is not None
        and meta.generation.mode is GenerationMode.POSITIVE
        and response.status_code == 400
    ):
        body: dict[str, Any] = response.json()
        assert any(phrase in body["message"] for phrase in refusals), body


admin = schemathesis.pytest.from_fixture("admin_schema")
outsider = schemathesis.pytest.from_fixture("outsider_schema")


@admin.parametrize()
def test_registry_admin(case: schemathesis.Case) -> None:
    call_and_validate(case, "admin")


@outsider.parametrize()
def test_principal_without_binding(case: schemathesis.Case) -> None:
    call_and_validate(case, "outsider")
