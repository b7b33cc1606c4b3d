"""Comments on a model version over real HTTP against the real stack (Temporal, MLflow, API):
Databricks' `/api/2.0/mlflow/comments/*` shapes, Signoff's list, the NEW_COMMENT activity,
who may edit and delete, limits and errors in MLflow's shape; and the Databricks SDK's
comment calls, unchanged, against Signoff."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk import errors as sdk_errors
from databricks.sdk.service.ml import CommentActivityAction

from api.models.comments import comment_actions
from api.models.common import MAX_COMMENT
from policies import PermissionLevel, Principal
from tests.support.databricks import workspace_factory
from tests.support.http import SIGNOFF, assert_error, version_activities
from tests.support.mlflow import SeededVersion
from tests.support.stack import SignoffStack

COMMENTS = "/api/2.0/mlflow/comments"
COMMENT_FIELDS = {
    "id",
    "user_id",
    "comment",
    "creation_timestamp",
    "last_updated_timestamp",
    "available_actions",
}
EDIT, DELETE = "EDIT_COMMENT", "DELETE_COMMENT"

# Default policy: data-scientist CAN_EDIT, ml-lead CAN_MANAGE_PRODUCTION_VERSIONS,
# platform-admin CAN_MANAGE; a role the policy does not know binds nothing.
DANA = ("dana", "data-scientist")
ERIN = ("erin", "data-scientist")
LEAD = ("lee", "ml-lead")
ADMIN = ("ada", "platform-admin")
STRANGER = ("sam", "contractor")

Client = Callable[..., httpx.Client]


# -- helpers -----------------------------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def post_comment(client: httpx.Client, seeded: SeededVersion, text: str) -> dict[str, Any]:
    response = client.post(
        f"{COMMENTS}/create",
        json={"name": seeded.name, "version": seeded.version, "comment": text},
    )
    assert response.status_code == 200, response.text
    return response.json()["comment"]


def list_comments(client: httpx.Client, seeded: SeededVersion) -> list[dict[str, Any]]:
    response = client.get(
        f"{SIGNOFF}/comments/list", params={"name": seeded.name, "version": seeded.version}
    )
    assert response.status_code == 200, response.text
    return response.json()["comments"]


def update(client: httpx.Client, comment_id: str, text: str) -> httpx.Response:
    return client.patch(f"{COMMENTS}/update", json={"id": comment_id, "comment": text})


def delete(client: httpx.Client, comment_id: str) -> httpx.Response:
    return client.delete(f"{COMMENTS}/delete", params={"id": comment_id})


# -- create, list, update, delete: shapes ---------------------------------------------------------


def test_create_list_update_delete_shapes(
    make_version: Callable[..., SeededVersion], as_user: Client
) -> None:
    seeded = make_version()
    dana = as_user(*DANA)
    before = now_ms()

    created = post_comment(dana, seeded, "AUC is fine, latency needs a look")

    assert set(created) == COMMENT_FIELDS
    assert created["user_id"] == "dana"
    assert created["comment"] == "AUC is fine, latency needs a look"
    assert created["available_actions"] == [EDIT, DELETE]
    assert isinstance(created["id"], str) and created["id"]
    assert before - 5_000 <= created["creation_timestamp"] <= now_ms() + 5_000
    assert created["last_updated_timestamp"] == created["creation_timestamp"]
    second = post_comment(dana, seeded, "second thought")
    assert list_comments(dana, seeded) == [created, second]  # oldest first

    response = update(dana, created["id"], "latency checked: fine")
    assert response.status_code == 200, response.text
    edited = response.json()["comment"]
    assert set(edited) == COMMENT_FIELDS
    assert edited["id"] == created["id"]
    assert edited["comment"] == "latency checked: fine"
    assert edited["creation_timestamp"] == created["creation_timestamp"]
    assert edited["last_updated_timestamp"] > created["last_updated_timestamp"]
    assert list_comments(dana, seeded) == [edited, second]

    response = delete(dana, created["id"])
    assert response.status_code == 200, response.text
    assert response.json() == {}
    assert list_comments(dana, seeded) == [second]
    assert_error(delete(dana, created["id"]), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(update(dana, created["id"], "x"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_new_comment_activity_keeps_the_original_text(
    make_version: Callable[..., SeededVersion], as_user: Client
) -> None:
    seeded = make_version()
    dana, lee = as_user(*DANA), as_user(*LEAD)

    first = post_comment(dana, seeded, "needs a fairness review")
    post_comment(lee, seeded, "agreed")

    entries = [e for e in version_activities(dana, seeded) if e["activity_type"] == "NEW_COMMENT"]
    assert [(e["user_id"], e["comment"]) for e in entries] == [
        ("dana", "needs a fairness review"),
        ("lee", "agreed"),
    ]
    assert entries[0]["creation_timestamp"] == first["creation_timestamp"]
    assert first["id"] in entries[0]["id"]

    # The log is append-only: an edit or a deletion changes the comment, not its entry.
    assert update(dana, first["id"], "fairness review done").status_code == 200
    assert delete(dana, first["id"]).status_code == 200
    assert version_activities(dana, seeded)[: len(entries)] == entries
    assert len(version_activities(dana, seeded)) == 2


# -- who may edit and delete -------------------------------------------------------------------


def test_only_the_author_edits(make_version: Callable[..., SeededVersion], as_user: Client) -> None:
    seeded = make_version()
    dana = as_user(*DANA)
    mine = post_comment(dana, seeded, "mine")

    for other in (ERIN, LEAD, ADMIN):
        message = assert_error(
            update(as_user(*other), mine["id"], "hijacked"), 403, "PERMISSION_DENIED"
        )
        assert "author" in message
    assert list_comments(dana, seeded)[0]["comment"] == "mine"


def test_author_and_platform_admin_delete_others_refused(
    make_version: Callable[..., SeededVersion], as_user: Client
) -> None:
    seeded = make_version()
    dana = as_user(*DANA)
    by_author = post_comment(dana, seeded, "withdrawn by me")
    by_admin = post_comment(dana, seeded, "removed by an admin")

    for other in (ERIN, LEAD):
        assert_error(delete(as_user(*other), by_author["id"]), 403, "PERMISSION_DENIED")
    assert len(list_comments(dana, seeded)) == 2

    assert delete(dana, by_author["id"]).status_code == 200
    assert delete(as_user(*ADMIN), by_admin["id"]).status_code == 200
    assert list_comments(dana, seeded) == []


def test_available_actions_per_viewer(
    make_version: Callable[..., SeededVersion], as_user: Client
) -> None:
    seeded = make_version()
    post_comment(as_user(*DANA), seeded, "hello")

    expected = {DANA: [EDIT, DELETE], ERIN: [], LEAD: [], ADMIN: [DELETE]}
    for viewer, actions in expected.items():
        [seen] = list_comments(as_user(*viewer), seeded)
        assert seen["available_actions"] == actions, viewer
    # An admin's own comment: edit and delete.
    own = post_comment(as_user(*ADMIN), seeded, "admin note")
    assert own["available_actions"] == [EDIT, DELETE]


def test_comment_actions_by_level() -> None:
    author, other = Principal(sub="dana"), Principal(sub="erin")
    assert comment_actions(PermissionLevel.CAN_READ, "dana", author) == []
    assert comment_actions(PermissionLevel.CAN_EDIT, "dana", author) == [EDIT, DELETE]
    assert comment_actions(PermissionLevel.CAN_EDIT, "dana", other) == []
    assert comment_actions(PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS, "dana", other) == []
    assert comment_actions(PermissionLevel.CAN_MANAGE, "dana", other) == [DELETE]
    assert comment_actions(PermissionLevel.CAN_MANAGE, "dana", author) == [EDIT, DELETE]


# -- limits and errors -------------------------------------------------------------------------


def test_length_limit_and_empty_comments(
    make_version: Callable[..., SeededVersion], as_user: Client
) -> None:
    seeded = make_version()
    dana = as_user(*DANA)
    target = {"name": seeded.name, "version": seeded.version}

    at_limit = post_comment(dana, seeded, "x" * MAX_COMMENT)
    assert len(at_limit["comment"]) == MAX_COMMENT
    too_long = "x" * (MAX_COMMENT + 1)
    message = assert_error(
        dana.post(f"{COMMENTS}/create", json=target | {"comment": too_long}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert str(MAX_COMMENT) in message and "comment" in message
    message = assert_error(update(dana, at_limit["id"], too_long), 400, "INVALID_PARAMETER_VALUE")
    assert str(MAX_COMMENT) in message

    for blank in ("", "   ", "\n\t"):
        assert_error(
            dana.post(f"{COMMENTS}/create", json=target | {"comment": blank}),
            400,
            "INVALID_PARAMETER_VALUE",
        )
        assert_error(update(dana, at_limit["id"], blank), 400, "INVALID_PARAMETER_VALUE")
    assert_error(dana.post(f"{COMMENTS}/create", json=target), 400, "INVALID_PARAMETER_VALUE")
    assert_error(
        dana.post(f"{COMMENTS}/create", json=target | {"comment": 42}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert [c["id"] for c in list_comments(dana, seeded)] == [at_limit["id"]]
    assert list_comments(dana, seeded)[0]["comment"] == "x" * MAX_COMMENT


def test_unknown_version_model_and_comment_are_404(
    make_version: Callable[..., SeededVersion], as_user: Client
) -> None:
    seeded = make_version()
    dana = as_user(*DANA)

    missing_version = {"name": seeded.name, "version": "999", "comment": "hi"}
    assert_error(
        dana.post(f"{COMMENTS}/create", json=missing_version), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    missing_model = {"name": f"{seeded.name}-nope", "version": "1", "comment": "hi"}
    assert_error(
        dana.post(f"{COMMENTS}/create", json=missing_model), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert_error(
        dana.get(f"{SIGNOFF}/comments/list", params={"name": seeded.name, "version": "999"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert_error(update(dana, "0" * 32, "hi"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(delete(dana, "0" * 32), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(
        dana.post(f"{COMMENTS}/create", json={"name": seeded.name, "version": "x", "comment": "a"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_no_binding_is_403_and_anonymous_401(
    make_version: Callable[..., SeededVersion], as_user: Client, signoff_stack: SignoffStack
) -> None:
    seeded = make_version()
    comment = post_comment(as_user(*DANA), seeded, "visible to bound roles only")
    sam = as_user(*STRANGER)
    body = {"name": seeded.name, "version": seeded.version, "comment": "hi"}

    assert_error(sam.post(f"{COMMENTS}/create", json=body), 403, "PERMISSION_DENIED")
    # Same answer for a model that does not exist: no probing.
    missing = body | {"name": f"{seeded.name}-nope"}
    assert_error(sam.post(f"{COMMENTS}/create", json=missing), 403, "PERMISSION_DENIED")
    assert_error(
        sam.get(
            f"{SIGNOFF}/comments/list", params={"name": seeded.name, "version": seeded.version}
        ),
        403,
        "PERMISSION_DENIED",
    )
    # Looked up by id, an existing comment is as missing as a missing one (404).
    assert_error(update(sam, comment["id"], "x"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(delete(sam, comment["id"]), 404, "RESOURCE_DOES_NOT_EXIST")
    with signoff_stack.client() as anonymous:
        assert_error(anonymous.post(f"{COMMENTS}/create", json=body), 401, "UNAUTHENTICATED")
    assert len(list_comments(as_user(*DANA), seeded)) == 1


XSS = [
    '<script>alert("x")</script>',
    "<img src=x onerror=alert(1)>",
    "Robert'); DROP TABLE comments;--",
    "{{7*7}} ${7*7} %s %(x)s",
    "modèle 🚀 模型\nline two\ttab & &amp; \\back\\slash",
]


def test_awkward_text_round_trips_unchanged(
    make_version: Callable[..., SeededVersion], as_user: Client
) -> None:
    seeded = make_version()
    dana = as_user(*DANA)

    created = [post_comment(dana, seeded, text) for text in XSS]
    assert [c["comment"] for c in created] == XSS
    assert [c["comment"] for c in list_comments(dana, seeded)] == XSS
    new_comments = [
        e for e in version_activities(dana, seeded) if e["activity_type"] == "NEW_COMMENT"
    ]
    assert [e["comment"] for e in new_comments] == XSS
    response = update(dana, created[0]["id"], XSS[1])
    assert response.json()["comment"]["comment"] == XSS[1]
    assert list_comments(dana, seeded)[0]["comment"] == XSS[1]


# -- the Databricks SDK --------------------------------------------------------------------------


@pytest.fixture
def workspace(
    signoff_stack: SignoffStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., WorkspaceClient]:
    """The Databricks SDK pointed at this suite's stack."""
    return workspace_factory(signoff_stack, tmp_path, monkeypatch)


def test_databricks_sdk_create_update_delete_comment(
    make_version: Callable[..., SeededVersion],
    workspace: Callable[..., WorkspaceClient],
    as_user: Client,
) -> None:
    seeded = make_version()
    dana = workspace(*DANA)

    created = dana.model_registry.create_comment(
        name=seeded.name, version=seeded.version, comment="from the SDK"
    ).comment
    assert created is not None and created.id
    assert (created.user_id, created.comment) == ("dana", "from the SDK")
    assert created.available_actions == [
        CommentActivityAction.EDIT_COMMENT,
        CommentActivityAction.DELETE_COMMENT,
    ]
    assert created.creation_timestamp and created.last_updated_timestamp

    edited = dana.model_registry.update_comment(id=created.id, comment="edited via SDK").comment
    assert edited is not None
    assert (edited.id, edited.comment) == (created.id, "edited via SDK")

    with pytest.raises(sdk_errors.PermissionDenied):
        workspace(*ERIN).model_registry.update_comment(id=created.id, comment="not yours")
    with pytest.raises(sdk_errors.PermissionDenied):
        workspace(*ERIN).model_registry.delete_comment(id=created.id)

    dana.model_registry.delete_comment(id=created.id)
    assert list_comments(as_user(*DANA), seeded) == []
    with pytest.raises(sdk_errors.NotFound):
        dana.model_registry.delete_comment(id=created.id)
    with pytest.raises(sdk_errors.NotFound):
        dana.model_registry.create_comment(name=seeded.name, version="999", comment="x")
