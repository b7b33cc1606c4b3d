"""MLflow's GraphQL endpoint (`/graphql`) as its UI uses it (the run page's `GetRun` query),
classified for the front door's gate like a REST route.

MLflow's schema (`mlflow/server/graphql/`) reads tracking data only; each top-level field
names what it touches in its `input`. A query is accepted when it is one `query` operation
whose top-level fields are in `_FIELDS`, without aliases or fragments (so the answer's keys
are the schema's own names, which `filter_answer` relies on); it needs READ on each run or
experiment its inputs name. Anything else (mutations, other fields, several operations) is
open only to registry admins, as an unclassified REST route is.

A run's `modelVersions` lists the versions registered from it, of any model: the answer keeps
only those of models the caller may read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)
from graphql.utilities import value_from_ast_untyped

from api.front_door.routes import BadRequest, Classified, Need
from policies.front_door import TrackingLevel

MAX_QUERY_BYTES = 64 * 1024
_READ = TrackingLevel.READ


def _run(key: str) -> Callable[[dict[str, Any]], list[Need]]:
    return lambda data: [Need("run", _text(data, key), _READ)]


def _each(kind: str, key: str) -> Callable[[dict[str, Any]], list[Need]]:
    def needs(data: dict[str, Any]) -> list[Need]:
        values = data.get(key)
        if not isinstance(values, list) or not values:
            raise BadRequest(f"GraphQL input needs a non-empty list '{key}'")
        return [Need(kind, _checked(value, key), _READ) for value in values]  # type: ignore[arg-type]

    return needs


_FIELDS: dict[str, Callable[[dict[str, Any]], list[Need]]] = {
    "mlflowGetRun": _run("runId"),
    "mlflowListArtifacts": lambda data: [
        Need("run", _text(data, "runId") if data.get("runId") else _text(data, "runUuid"), _READ)
    ],
    "mlflowGetExperiment": lambda data: [Need("experiment", _text(data, "experimentId"), _READ)],
    "mlflowGetMetricHistoryBulkInterval": _each("run", "runIds"),
    "mlflowSearchRuns": _each("experiment", "experimentIds"),
}


def classify(body: bytes) -> Classified:
    """What a GraphQL request touches; BadRequest when it cannot be read."""
    if len(body) > MAX_QUERY_BYTES:
        raise BadRequest(f"a GraphQL request is at most {MAX_QUERY_BYTES // 1024} KiB")
    try:
        request = json.loads(body)
    except ValueError as err:
        raise BadRequest("a GraphQL request is a JSON object with a 'query'") from err
    if not isinstance(request, dict) or not isinstance(request.get("query"), str):
        raise BadRequest("a GraphQL request is a JSON object with a 'query'")
    variables = request.get("variables") or {}
    if not isinstance(variables, dict):
        raise BadRequest("GraphQL 'variables' is an object")
    try:
        document = parse(request["query"], no_location=True)
    except GraphQLError as err:
        raise BadRequest(f"GraphQL syntax error: {err.message}") from err
    admin = Classified("graphql", (Need("admin"),))
    operations = document.definitions
    if len(operations) != 1 or not isinstance(operations[0], OperationDefinitionNode):
        return admin
    operation = operations[0]
    if operation.operation is not OperationType.QUERY or not _plain(operation.selection_set):
        return admin
    needs: list[Need] = []
    for field in operation.selection_set.selections:
        assert isinstance(field, FieldNode)
        if field.name.value == "__typename":
            continue
        build = _FIELDS.get(field.name.value)
        if build is None:
            return admin
        needs.extend(build(_input(field, variables)))
    return Classified("graphql", tuple(needs))


def _plain(selections: SelectionSetNode | None) -> bool:
    """Fields only, all the way down: no aliases, no fragments."""
    if selections is None:
        return True
    return all(
        isinstance(node, FieldNode) and node.alias is None and _plain(node.selection_set)
        for node in selections.selections
    )


def _input(field: FieldNode, variables: dict[str, Any]) -> dict[str, Any]:
    arguments = {argument.name.value: argument.value for argument in field.arguments or ()}
    if set(arguments) != {"input"}:
        raise BadRequest(f"GraphQL field {field.name.value} takes one argument, 'input'")
    value = value_from_ast_untyped(arguments["input"], variables)
    if not isinstance(value, dict):
        raise BadRequest(f"GraphQL field {field.name.value}: 'input' is an object")
    return value


def _text(data: dict[str, Any], key: str) -> str:
    return _checked(data.get(key), key)


def _checked(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Missing value for required parameter '{key}'.")
    return value


def filter_answer(answer: Any, readable: Callable[[list[Any]], list[Any]]) -> Any:
    """The answer with every `modelVersions` list cut to what `readable` keeps."""
    if isinstance(answer, dict):
        return {
            key: readable(value)
            if key == "modelVersions" and isinstance(value, list)
            else filter_answer(value, readable)
            for key, value in answer.items()
        }
    if isinstance(answer, list):
        return [filter_answer(item, readable) for item in answer]
    return answer
