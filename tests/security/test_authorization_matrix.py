"""Who may call what, generated from the app's routes.

`ACCESS` says, for every route of `create_app()` (every APIRoute's method and path), who may
call it and what each kind of principal meets. `test_every_route_has_an_entry` enumerates the
app's routes and FAILS when one has no entry (or an entry names a route that no longer exists):
adding a route means deciding, here, who may call it.

Then every route is called on a running stack of this module's own, as each principal:
no token, a principal with no binding, CAN_READ on the model, CAN_MANAGE on the model, and a
registry admin (CAN_MANAGE on "*"). Requests name a real registered version and real objects
(a transition request, a comment, a webhook) so the permission check, not a missing object,
decides. Answer classes: `UNAUTHENTICATED` 401, `DENIED` 403 or 404 (the by-id lookups answer
404 when the caller has no binding, like a missing object), `ALLOWED` neither 401 nor 403 (the
request reached what the route does; it may still be 400/404/409 for what it asked).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.app import create_app
from api.settings import ApiSettings
from tests.security.conftest import CHAT_SECRET, MLFLOW_SECRET
from tests.support.mlflow import MlflowServer, SeededVersion, seed_version
from tests.support.stack import SignoffStack, running_stack
from tests.support.temporal import TemporalServer
from tests.support.webhooks import webhook_env

UNAUTHENTICATED, DENIED, ALLOWED = "401", "403 or 404", "not 401/403"
PRINCIPALS = ("anonymous", "unbound", "reader", "manager", "admin")
ROLES = {"unbound": (), "reader": ("reader",), "manager": ("manager",), "admin": ("admin",)}
POLICY = """roles:
  reader: {"matrix-*": CAN_READ}
  manager: {"matrix-*": CAN_MANAGE}
  admin: {"*": CAN_MANAGE}
transitions:
  - {to: Staging, approvals: {quorum: 1, roles: [manager]}, break_glass: true}
  - {to: Production, approvals: {quorum: 1, roles: [manager]}, break_glass: true}
  - {to: "@*", approvals: {quorum: 1, roles: [manager]}}
"""
RECEIVER = "http://127.0.0.1:9/matrix"
"""A loopback URL the stack may send to (`webhook_env`); nothing listens there."""


@dataclass(frozen=True)
class Access:
    """Who may call a route, and the answer class each principal meets."""

    who: str
    anonymous: str = UNAUTHENTICATED
    unbound: str = DENIED
    reader: str = ALLOWED
    manager: str = ALLOWED
    admin: str = ALLOWED


PUBLIC = Access("anyone, no token", ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED)
READ = Access("CAN_READ on the model")
EDIT = Access("CAN_EDIT on the model (webhooks: TEST_MODE)", reader=DENIED)
MANAGE = Access("CAN_MANAGE on the model", reader=DENIED)
DECIDE = Access(
    "CAN_READ on the model, and one of the rule's approver roles (not CAN_MANAGE alone)",
    reader=DENIED,
    admin=DENIED,
)
CANCEL = Access("the requester, or CAN_MANAGE on the model", reader=DENIED)
EDIT_OWN = Access("only the comment's author, with CAN_EDIT", reader=DENIED, admin=DENIED)
DELETE_OWN = Access("the comment's author with CAN_EDIT, or CAN_MANAGE", reader=DENIED)
SEARCH = Access("any principal (only the models it may read); with `name`, CAN_READ on it")
REGISTRY_ADMIN = Access(
    "a registry admin (CAN_MANAGE on every model)", reader=DENIED, manager=DENIED
)
SIGNED = Access(
    "a signed message (Standard Webhooks / MLflow's or GitHub's HMAC); a bearer token is no "
    "substitute",
    *[UNAUTHENTICATED] * 5,
)
CI = Access("the check's callback token, or a bearer token with CAN_READ on the model")
SIGNED_IN = Access(
    "any principal (the web page's inbox shows only what it may read)", unbound=ALLOWED
)
REVIEWS_LIST = Access("any principal (only the reviews of models it may read)", unbound=ALLOWED)
REVIEW = Access(
    "one of the review's roles (the rule's approvers here), not the person who broke the glass",
    reader=DENIED,
    admin=DENIED,
)
SIGN_IN_FLOW = Access(
    "anyone: the web page's sign-in flow itself (it checks its own state, nonce, PKCE and CSRF; "
    "the development sign-in only where enabled)",
    ALLOWED,
    ALLOWED,
    ALLOWED,
    ALLOWED,
    ALLOWED,
)

TRACKING = Access(
    "any role of the policy (it has no tracking: section, so every role may log everywhere)"
)

T, S = "/api/2.0/mlflow/transition-requests", "/api/2.0/signoff"
FRONT_DOOR = "/{mlflow_path:path}"
"""The MLflow front door: one route, every MLflow call Signoff forwards. Each method is called
on a route whose level the front door's route table sets (tests/api/test_front_door.py covers
the rest)."""
MLFLOW_UI = "/mlflow/{route:path}"
"""MLflow's UI through the door: its calls are the front door's routes under `/mlflow/`
(tests/api/test_mlflow_ui.py covers the session cookie, the built files and GraphQL)."""
FRONT_DOOR_CALLS: dict[str, tuple[str, str]] = {
    "GET": ("api/2.0/mlflow/registered-models/get", "query"),
    "POST": ("api/2.0/mlflow/registered-models/set-tag", "body"),
    "PATCH": ("api/2.0/mlflow/model-versions/update", "body"),
    "DELETE": ("api/2.0/mlflow/model-versions/delete-tag", "body"),
    "PUT": ("api/2.0/mlflow-artifacts/artifacts/0/matrix.txt", "raw"),
}
ACCESS: dict[tuple[str, str], Access] = {
    ("POST", "/api/2.0/signoff/rollback"): READ,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/ui"): PUBLIC,
    ("GET", "/ui/"): PUBLIC,
    ("GET", "/ui/requests/{request_id}"): PUBLIC,
    ("GET", "/ui/signed-out"): PUBLIC,
    ("GET", "/ui/assets/{name}"): PUBLIC,
    ("POST", f"{T}/create"): READ,
    ("POST", f"{T}/approve"): DECIDE,
    ("POST", f"{T}/reject"): DECIDE,
    ("DELETE", f"{T}/delete"): CANCEL,
    ("GET", f"{T}/list"): READ,
    ("POST", "/api/2.0/mlflow/databricks/model-versions/transition-stage"): MANAGE,
    ("GET", f"{S}/transition-requests/get"): READ,
    ("GET", f"{S}/transition-requests/wait"): READ,
    ("GET", f"{S}/transition-requests/search"): SEARCH,
    ("GET", f"{S}/activities/list"): READ,
    ("GET", f"{S}/transition-requests/evidence"): READ,
    ("GET", f"{S}/policy/explain"): READ,
    ("GET", f"{S}/break-glass/reviews/list"): REVIEWS_LIST,
    ("GET", f"{S}/break-glass/reviews/get"): READ,
    ("POST", f"{S}/break-glass/reviews/acknowledge"): REVIEW,
    ("POST", f"{S}/ci/callback"): CI,
    ("POST", "/api/2.0/mlflow/comments/create"): READ,
    ("PATCH", "/api/2.0/mlflow/comments/update"): EDIT_OWN,
    ("DELETE", "/api/2.0/mlflow/comments/delete"): DELETE_OWN,
    ("GET", f"{S}/comments/list"): READ,
    ("POST", "/api/2.0/mlflow/registry-webhooks/create"): EDIT,
    ("GET", "/api/2.0/mlflow/registry-webhooks/list"): EDIT,
    ("PATCH", "/api/2.0/mlflow/registry-webhooks/update"): EDIT,
    ("DELETE", "/api/2.0/mlflow/registry-webhooks/delete"): EDIT,
    ("POST", "/api/2.0/mlflow/registry-webhooks/test"): EDIT,
    ("GET", f"{S}/registry-webhooks/deliveries"): EDIT,
    ("POST", f"{S}/registry-webhooks/redeliver"): EDIT,
    ("POST", f"{S}/hooks/decisions/{{source}}"): SIGNED,
    ("POST", f"{S}/hooks/mlflow"): SIGNED,
    ("POST", f"{S}/hooks/slack"): SIGNED,
    ("GET", f"{S}/slack/messages/get"): READ,
    ("POST", f"{S}/hooks/github"): SIGNED,
    ("GET", f"{S}/hooks/inbound"): REGISTRY_ADMIN,
    ("POST", f"{S}/reconciler/run"): REGISTRY_ADMIN,
    ("GET", f"{S}/reconciler/runs"): REGISTRY_ADMIN,
    ("GET", f"{S}/audit/export"): MANAGE,
    ("POST", f"{S}/audit/anchors/create"): REGISTRY_ADMIN,
    ("GET", f"{S}/audit/anchors/list"): SIGNED_IN,
    ("GET", "/ui/models/{name}"): PUBLIC,
    ("GET", "/ui/api/inbox"): SIGNED_IN,
    ("GET", "/ui/api/requests/{request_id}"): READ,
    ("GET", "/ui/api/models/{name}"): READ,
    ("GET", "/ui/api/session"): SIGN_IN_FLOW,
    ("GET", "/ui/auth/login"): SIGN_IN_FLOW,
    ("GET", "/ui/auth/callback"): SIGN_IN_FLOW,
    ("POST", "/ui/auth/dev-login"): SIGN_IN_FLOW,
    ("POST", "/ui/auth/logout"): SIGN_IN_FLOW,
    ("GET", FRONT_DOOR): READ,
    ("POST", FRONT_DOOR): EDIT,
    ("PATCH", FRONT_DOOR): EDIT,
    ("DELETE", FRONT_DOOR): EDIT,
    ("PUT", FRONT_DOOR): TRACKING,
    # Without a session, the page is a redirect to the sign-in (a bearer token opens nothing).
    ("GET", "/mlflow"): PUBLIC,
    ("GET", "/mlflow/"): PUBLIC,
    ("GET", MLFLOW_UI): READ,
    ("POST", MLFLOW_UI): EDIT,
    ("PATCH", MLFLOW_UI): EDIT,
    ("DELETE", MLFLOW_UI): EDIT,
    ("PUT", MLFLOW_UI): TRACKING,
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every APIRoute of the app (FastAPI's own /docs and /openapi.json are
    Starlette routes, not APIRoutes). FastAPI 0.165 keeps an included router as one entry that
    resolves its routes on demand: walk into those."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        pairs = (
            [(context.original_route, context.path) for context in contexts()]
            if contexts is not None
            else [(route, getattr(route, "path", ""))]
        )
        for original, path in pairs:
            if isinstance(original, APIRoute):
                found |= {(method, path) for method in original.methods}
    return found


def test_every_route_has_an_entry() -> None:
    routes = app_routes(create_app(ApiSettings()))
    assert len(routes) >= 30
    assert sorted(routes - ACCESS.keys()) == [], "routes without an ACCESS entry: decide who"
    assert sorted(ACCESS.keys() - routes) == [], "ACCESS entries for routes that do not exist"


# -- against the running stack -----------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix_stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[SignoffStack]:
    with running_stack(
        tmp_path_factory,
        "matrix",
        temporal_server.address,
        mlflow_server.url,
        policy=POLICY,
        SIGNOFF_MLFLOW_WEBHOOK_SECRET=MLFLOW_SECRET,
        SIGNOFF_HOOK_SECRETS=json.dumps({"chat": CHAT_SECRET}),
        SIGNOFF_SLACK_SIGNING_SECRET="matrix-slack-signing-secret",
        SIGNOFF_GITHUB_WEBHOOK_SECRET="matrix-github-app-webhook-secret",
        **webhook_env(),
    ) as stack:
        yield stack


@dataclass
class World:
    """Real objects the requests name, created by the manager (or the requester) for one test."""

    seeded: SeededVersion
    request_id: str
    comment_id: str
    webhook_id: str
    review_id: str = ""


def make_world(matrix_stack: SignoffStack) -> World:
    with httpx.Client(base_url=matrix_stack.mlflow_url, timeout=30) as mlflow:
        seeded = seed_version(mlflow, f"matrix-{uuid.uuid4().hex[:8]}")
    target = {"name": seeded.name, "version": seeded.version}
    with (
        matrix_stack.client("requester", "reader") as requester,
        matrix_stack.client("matrix-manager", "manager") as manager,
    ):
        created = requester.post(f"{T}/create", json=target | {"stage": "Production"})
        assert created.status_code == 200, created.text
        comment = manager.post(
            "/api/2.0/mlflow/comments/create", json=target | {"comment": "matrix"}
        )
        assert comment.status_code == 200, comment.text
        hook = manager.post(
            "/api/2.0/mlflow/registry-webhooks/create",
            json={
                "events": ["COMMENT_CREATED"],
                "model_name": seeded.name,
                "status": "TEST_MODE",
                "http_url_spec": {"url": RECEIVER},
            },
        )
        assert hook.status_code == 200, hook.text
    return World(
        seeded,
        created.json()["request"]["id"],
        comment.json()["comment"]["id"],
        hook.json()["webhook"]["id"],
    )


REVIEWED = {f"{S}/break-glass/reviews/get", f"{S}/break-glass/reviews/acknowledge"}
"""Routes that name a break-glass review: their world has a break-glass move (by someone
other than the principals, so self-review does not decide)."""


def with_review(matrix_stack: SignoffStack, world: World) -> World:
    version = {"name": world.seeded.name, "version": world.seeded.version}
    with matrix_stack.client("matrix-glass", "admin") as admin:
        moved = admin.post(
            "/api/2.0/mlflow/databricks/model-versions/transition-stage",
            json=version | {"stage": "Staging", "comment": "matrix: review"},
        )
        assert moved.status_code == 200, moved.text
        reviews = admin.get(f"{S}/break-glass/reviews/list", params={"name": world.seeded.name})
    [review] = reviews.json()["reviews"]
    return World(world.seeded, world.request_id, world.comment_id, world.webhook_id, review["id"])


CONSUMING = {
    f"{S}/break-glass/reviews/acknowledge",
    f"{T}/approve",
    f"{T}/reject",
    f"{T}/delete",
    "/api/2.0/mlflow/comments/delete",
    "/api/2.0/mlflow/registry-webhooks/delete",
}
"""Routes whose success uses up the object (a decided request, a deleted comment): each
principal calls them on objects of its own."""


def request_for(method: str, path: str, world: World) -> dict[str, Any]:
    """httpx keyword arguments for a call that names `world`'s objects."""
    version = {"name": world.seeded.name, "version": world.seeded.version}
    staging = version | {"stage": "Production"}
    bodies: dict[str, dict[str, Any]] = {
        f"{T}/create": version | {"stage": "Staging"},
        f"{T}/approve": staging | {"comment": "ok"},
        f"{T}/reject": staging | {"comment": "no"},
        "/api/2.0/mlflow/databricks/model-versions/transition-stage": version
        | {"stage": "Staging", "comment": "matrix: break-glass"},
        f"{S}/ci/callback": {"request_id": world.request_id, "check": "none", "passed": True},
        "/api/2.0/mlflow/comments/create": version | {"comment": "hello"},
        "/api/2.0/mlflow/comments/update": {"id": world.comment_id, "comment": "edited"},
        "/api/2.0/mlflow/registry-webhooks/create": {
            "events": ["COMMENT_CREATED"],
            "model_name": world.seeded.name,
            "status": "TEST_MODE",
            "http_url_spec": {"url": RECEIVER},
        },
        "/api/2.0/mlflow/registry-webhooks/update": {"id": world.webhook_id, "description": "d"},
        "/api/2.0/mlflow/registry-webhooks/test": {"id": world.webhook_id},
        f"{S}/registry-webhooks/redeliver": {"delivery_id": uuid.uuid4().hex},
        f"{S}/hooks/decisions/{{source}}": {"decision": "approve", "user": "x"},
        f"{S}/hooks/mlflow": {"entity": "model_version", "action": "created", "data": {}},
        f"{S}/rollback": {"name": world.seeded.name, "target": "Production"},
        f"{S}/hooks/github": {"action": "requested", "environment": "production"},
        f"{S}/break-glass/reviews/acknowledge": {"id": world.review_id},
    }
    queries: dict[str, dict[str, Any]] = {
        f"{T}/delete": staging | {"creator": "requester"},
        f"{T}/list": version,
        f"{S}/transition-requests/get": {"id": world.request_id},
        f"{S}/transition-requests/wait": {"id": world.request_id, "timeout_s": 0.1},
        f"{S}/transition-requests/search": {"name": world.seeded.name},
        f"{S}/activities/list": version,
        "/api/2.0/mlflow/comments/delete": {"id": world.comment_id},
        f"{S}/comments/list": version,
        "/api/2.0/mlflow/registry-webhooks/list": {"model_name": world.seeded.name},
        "/api/2.0/mlflow/registry-webhooks/delete": {"id": world.webhook_id},
        f"{S}/registry-webhooks/deliveries": {"id": world.webhook_id},
        f"{S}/slack/messages/get": {"request_id": world.request_id},
        f"{S}/audit/export": {"models": [world.seeded.name]},
        f"{S}/transition-requests/evidence": {"id": world.request_id},
        f"{S}/policy/explain": version | {"target": "Production"},
        f"{S}/break-glass/reviews/list": {"name": world.seeded.name},
        f"{S}/break-glass/reviews/get": {"id": world.review_id},
    }
    model = world.seeded.name if path.startswith(("/ui/models/", "/ui/api/models/")) else None
    url = path.replace("{request_id}", world.request_id).replace("{name}", model or "app.js")
    url = url.replace("{source}", "chat")
    kwargs: dict[str, Any] = {"url": url, "follow_redirects": False}
    if path in (FRONT_DOOR, MLFLOW_UI):
        where, how = FRONT_DOOR_CALLS[method]
        names = version | {"key": "matrix", "value": "v", "description": "d"}
        kwargs["url"] = f"{'/mlflow' if path == MLFLOW_UI else ''}/{where}"
        kwargs |= {"query": {"params": version}, "body": {"json": names}}.get(how, {})
        if how == "raw":
            kwargs["content"] = b"matrix"
    if path in bodies:
        kwargs["json"] = bodies[path]
    if path in queries:
        kwargs["params"] = queries[path]
    return kwargs


def answer_class(status: int) -> str:
    if status == 401:
        return UNAUTHENTICATED
    return DENIED if status in (403, 404) else ALLOWED


def fits(expected: str, status: int) -> bool:
    if expected == ALLOWED:
        return status not in (401, 403)
    return answer_class(status) == expected


@pytest.mark.parametrize(("method", "path"), sorted(ACCESS), ids=lambda v: str(v))
def test_each_principal_meets_its_answer(
    matrix_stack: SignoffStack, method: str, path: str
) -> None:
    access = ACCESS[(method, path)]
    clients: dict[str, Callable[[], httpx.Client]] = {
        "anonymous": lambda: matrix_stack.client(),
        **{
            name: (lambda name=name: matrix_stack.client(f"matrix-{name}", *ROLES[name]))
            for name in ROLES
        },
    }
    wrong = []

    def world_for() -> World:
        world = make_world(matrix_stack)
        return with_review(matrix_stack, world) if path in REVIEWED else world

    world = world_for()
    for principal in PRINCIPALS:
        if path in CONSUMING and principal != PRINCIPALS[0]:
            world = world_for()
        with clients[principal]() as client:
            response = client.request(method, **request_for(method, path, world))
        assert response.status_code < 500, (principal, response.text)
        expected = getattr(access, principal)
        if not fits(expected, response.status_code):
            wrong.append(
                f"{principal}: expected {expected}, got {response.status_code} "
                f"{response.text[:200]}"
            )
    assert wrong == [], f"{method} {path} ({access.who})"


def test_an_export_of_every_model_needs_a_registry_admin(matrix_stack: SignoffStack) -> None:
    """CAN_MANAGE on some models (`matrix-*`) exports those, not every model: an export of all
    holds models deleted since and created later."""
    export = f"{S}/audit/export"
    with (
        matrix_stack.client("matrix-manager", "manager") as manager,
        matrix_stack.client("matrix-admin", "admin") as admin,
    ):
        assert manager.get(export, params={"models": ["matrix-a"]}).status_code == 200
        for params in ({}, {"models": ["matrix-a", "elsewhere"]}):
            assert manager.get(export, params=params).status_code == 403
        assert admin.get(export).status_code == 200
