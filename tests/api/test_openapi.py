"""The OpenAPI document, read from the running API: every operation documents its success
response and the errors it really answers (in MLflow's shape), and never FastAPI's 422, which
the API does not answer. Real answers are checked against the documented schemas."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from api.models.common import NAME_PATTERN
from tests.support.http import SIGNOFF, TRANSITIONS, assert_error, create, target
from tests.support.mlflow import SeededVersion
from tests.support.stack import SignoffStack

METHODS = ("get", "put", "post", "delete", "patch")
ERROR_REF = "#/components/schemas/ErrorResponse"


@pytest.fixture(scope="module")
def document(signoff_stack: SignoffStack) -> dict[str, Any]:
    response = httpx.get(f"{signoff_stack.api_url}/openapi.json", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def dana(signoff_stack: SignoffStack) -> Iterator[httpx.Client]:
    with signoff_stack.client("dana", "data-scientist") as client:
        yield client


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def json_schema(response: dict[str, Any]) -> dict[str, Any] | None:
    return response.get("content", {}).get("application/json", {}).get("schema")


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def mismatches(document: dict[str, Any], value: Any, schema: dict[str, Any], at: str) -> list[str]:
    """Where `value` does not fit the documented `schema` (a small JSON Schema subset: what
    pydantic emits for our models)."""
    schema = resolve(document, schema)
    if "anyOf" in schema:
        options = [mismatches(document, value, option, at) for option in schema["anyOf"]]
        return [] if any(not found for found in options) else min(options, key=len)
    if "const" in schema and value != schema["const"]:
        return [f"{at}: {value!r} is not {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{at}: {value!r} is not one of {schema['enum']}"]
    kinds = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": int | float,
        "boolean": bool,
        "null": type(None),
    }
    kind = schema.get("type")
    wrong_type = kind is not None and not isinstance(value, kinds[kind])
    if wrong_type or (kind == "integer" and isinstance(value, bool)):
        return [f"{at}: {value!r} is not of type {kind}"]
    found: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [
            f"{at}: {key} is required" for key in schema.get("required", ()) if key not in value
        ]
        for key, item in value.items():
            if key in properties:
                found += mismatches(document, item, properties[key], f"{at}.{key}")
            elif schema.get("additionalProperties") is False or (
                properties and "additionalProperties" not in schema
            ):
                found.append(f"{at}: {key} is not documented")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += mismatches(document, item, schema["items"], f"{at}[{index}]")
    return found


def success_schema(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation = document["paths"][path][method.lower()]
    schema = json_schema(operation["responses"]["200"])
    assert schema is not None
    return schema


def assert_documented(
    document: dict[str, Any], method: str, path: str, response: httpx.Response
) -> dict[str, Any]:
    """The real answer fits the schema the document gives for its status."""
    documented = document["paths"][path][method.lower()]["responses"]
    assert str(response.status_code) in documented, (method, path, response.status_code)
    schema = json_schema(documented[str(response.status_code)])
    assert schema is not None
    body = response.json()
    assert mismatches(document, body, schema, "body") == [], body
    return body


# -- the document ----------------------------------------------------------------------------


def test_every_operation_documents_a_json_success_schema(document: dict[str, Any]) -> None:
    found = list(operations(document))
    assert len(found) >= 25  # every API route, none of the web page's
    missing = []
    for method, path, operation in found:
        successes = [
            json_schema(response) or {}
            for status, response in operation["responses"].items()
            if status.startswith("2")
        ]
        # A named model (a component), an object: not FastAPI's schema-less default.
        named = [schema for schema in successes if "$ref" in schema]
        if not named or any(resolve(document, schema).get("type") != "object" for schema in named):
            missing.append(f"{method} {path}")
    assert missing == []


def test_no_operation_lists_422(document: dict[str, Any]) -> None:
    listing = [
        f"{method} {path}"
        for method, path, operation in operations(document)
        if "422" in operation["responses"]
    ]
    assert listing == []
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas


def test_errors_are_documented_in_mlflows_shape(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["ErrorResponse"]
    assert set(error["required"]) == {"error_code", "message"}
    undocumented = []
    for method, path, operation in operations(document):
        responses = operation["responses"]
        takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
        wanted = {"400"} if takes_input else set()
        if operation.get("security"):
            wanted |= {"401", "403"}
        if path.startswith("/api/") and "/hooks/" in path:
            wanted |= {"401"}  # signed, not bearer: a bad signature is 401
        undocumented += [f"{method} {path} {status}" for status in wanted - set(responses)]
        for status, response in responses.items():
            if status.startswith(("4", "5")) and path != "/readyz":
                schema = resolve(document, json_schema(response) or {})
                assert {"error_code", "message"} <= set(schema.get("required", ())), (
                    method,
                    path,
                    status,
                )
    assert undocumented == []


def test_the_statuses_each_route_answers_are_documented(document: dict[str, Any]) -> None:
    def statuses(method: str, path: str) -> set[str]:
        return set(document["paths"][path][method.lower()]["responses"])

    assert {"200", "400", "401", "403", "404", "409", "503"} <= statuses(
        "POST", f"{TRANSITIONS}/create"
    )
    assert {"400", "401", "403", "404", "409", "503"} <= statuses(
        "POST", "/api/2.0/mlflow/databricks/model-versions/transition-stage"
    )
    assert {"404", "503"} <= statuses("POST", f"{TRANSITIONS}/approve")
    assert {"200", "503"} <= statuses("GET", "/readyz")
    conflict = json_schema(document["paths"][f"{TRANSITIONS}/create"]["post"]["responses"]["409"])
    assert conflict is not None and "request" in resolve(document, conflict)["properties"]


def test_request_models_carry_the_servers_constraints(document: dict[str, Any]) -> None:
    body = document["components"]["schemas"]["CreateTransitionRequest"]["properties"]
    assert body["name"]["maxLength"] == 256 and body["name"]["minLength"] == 1
    assert body["version"]["pattern"] == "^[1-9][0-9]{0,18}$"
    assert body["stage"]["pattern"].startswith("^(None|Staging|Production|Archived|@")
    stage = document["components"]["schemas"]["TransitionModelVersionStageDatabricks"]
    assert stage["properties"]["stage"]["pattern"] == "^(None|Staging|Production|Archived)$"
    # MLflow's name rules, checked up front; break-glass needs a comment; no job webhooks.
    assert body["name"]["pattern"] == NAME_PATTERN
    assert "comment" in stage["required"] and stage["properties"]["comment"]["pattern"] == r"\S"
    hook = document["components"]["schemas"]["CreateWebhook"]
    assert "http_url_spec" in hook["required"]
    assert hook["properties"]["job_spec"]["type"] == "null"
    url = document["components"]["schemas"]["HttpUrlSpec"]["properties"]["url"]
    assert url["pattern"] == r"^https?://\S+$"
    cancel = document["paths"][f"{TRANSITIONS}/delete"]["delete"]["parameters"]
    comment = next(p for p in cancel if p["name"] == "comment")
    assert comment["schema"]["anyOf"][0]["maxLength"] == 500


@pytest.mark.parametrize("name", ["a/b", "a:b", "..up", ".", "   "])
def test_a_name_mlflow_refuses_is_400_for_everyone(signoff_stack: SignoffStack, name: str) -> None:
    """The same 400 whether or not the caller has a binding: the name's form tells nothing
    about which models exist."""
    for roles in (("data-scientist",), ()):
        with signoff_stack.client("dana", *roles) as client:
            response = client.get(f"{TRANSITIONS}/list", params={"name": name, "version": "1"})
        assert "name" in assert_error(response, 400, "INVALID_PARAMETER_VALUE")


# -- real answers fit the document -----------------------------------------------------------


def test_validation_errors_answer_400_in_mlflows_shape(
    document: dict[str, Any], dana: httpx.Client
) -> None:
    response = dana.post(f"{TRANSITIONS}/create", json={"name": "m", "version": "x"})
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert_documented(document, "POST", f"{TRANSITIONS}/create", response)
    response = dana.get(f"{SIGNOFF}/transition-requests/get", params={"id": "not-hex"})
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_real_answers_fit_their_documented_schemas(
    document: dict[str, Any],
    make_version: Callable[..., SeededVersion],
    dana: httpx.Client,
) -> None:
    seeded = make_version()
    request = create(dana, seeded, "Production", comment="documented")
    version = {"name": seeded.name, "version": seeded.version}
    answers = [
        ("GET", f"{TRANSITIONS}/list", dana.get(f"{TRANSITIONS}/list", params=version)),
        (
            "GET",
            f"{SIGNOFF}/transition-requests/get",
            dana.get(f"{SIGNOFF}/transition-requests/get", params={"id": request["id"]}),
        ),
        (
            "GET",
            f"{SIGNOFF}/transition-requests/search",
            dana.get(f"{SIGNOFF}/transition-requests/search", params={"name": seeded.name}),
        ),
        (
            "POST",
            f"{TRANSITIONS}/create",
            dana.post(f"{TRANSITIONS}/create", json=target(seeded, "Production")),
        ),
        (
            "DELETE",
            f"{TRANSITIONS}/delete",
            dana.delete(
                f"{TRANSITIONS}/delete", params=target(seeded, "Production") | {"creator": "dana"}
            ),
        ),
        (
            "GET",
            f"{SIGNOFF}/activities/list",
            dana.get(f"{SIGNOFF}/activities/list", params=version),
        ),
        (
            "POST",
            "/api/2.0/mlflow/databricks/model-versions/transition-stage",
            dana.post(
                "/api/2.0/mlflow/databricks/model-versions/transition-stage",
                json=target(seeded, "Staging") | {"comment": "no"},
            ),
        ),
    ]
    statuses = [response.status_code for _, _, response in answers]
    assert statuses == [200, 200, 200, 409, 200, 200, 403]
    for method, path, response in answers:
        assert_documented(document, method, path, response)
    # The 409 carries the open request, documented too.
    assert answers[3][2].json()["request"]["id"] == request["id"]


# -- methods a path does not serve -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", f"{TRANSITIONS}/create", "POST"),
        ("PUT", "/api/2.0/mlflow/comments/update", "PATCH"),
        ("POST", f"{SIGNOFF}/transition-requests/get", "GET"),
        ("DELETE", "/healthz", "GET"),
        ("TRACE", f"{TRANSITIONS}/delete", "DELETE"),
    ],
)
def test_a_method_the_path_does_not_serve_is_405_with_allow(
    signoff_stack: SignoffStack, method: str, path: str, allowed: str
) -> None:
    """405 in MLflow's shape (ENDPOINT_NOT_FOUND, MLflow's code for a call no endpoint serves)
    with the `Allow` header RFC 9110 requires, listing what the path does serve; anonymous
    or not, since no route is reached."""
    for client in (signoff_stack.client(), signoff_stack.client("dana", "data-scientist")):
        with client:
            response = client.request(method, path)
        message = assert_error(response, 405, "ENDPOINT_NOT_FOUND")
        assert response.headers["allow"] == allowed
        assert method in message and allowed in message
