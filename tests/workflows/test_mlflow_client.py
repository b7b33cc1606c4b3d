"""MlflowRegistry against a real `mlflow server`, and against loopback fakes for the wire
details a real server cannot be made to show (auth headers, 5xx, refused connections)."""

from __future__ import annotations

import base64
import json
import logging
import pickle
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.mlflow import MlflowServer, SeededVersion
from tests.support.processes import free_port
from workflows.mlflow_client import (
    InvalidRequest,
    MlflowAuthError,
    MlflowError,
    MlflowRegistry,
    MlflowUnavailable,
    ModelVersion,
    ResourceNotFound,
)
from workflows.settings import WorkerSettings

MakeVersion = Callable[..., SeededVersion]


@pytest.fixture
async def registry(mlflow_server: MlflowServer) -> AsyncIterator[MlflowRegistry]:
    async with MlflowRegistry(mlflow_server.url, retries=2, backoff=0.05) as client:
        yield client


# --------------------------------------------------------------------------------------------
# Against the real MLflow server
# --------------------------------------------------------------------------------------------


async def test_ping(registry: MlflowRegistry) -> None:
    await registry.ping()


async def test_get_model_version(registry: MlflowRegistry, make_version: MakeVersion) -> None:
    seeded = make_version(tags={"validated_by": "alice", "team": "fraud"})

    mv = await registry.get_model_version(seeded.name, seeded.version)

    assert isinstance(mv, ModelVersion)
    assert (mv.name, mv.version) == (seeded.name, "1")
    assert mv.current_stage == "None"
    assert mv.run_id == seeded.run_id
    assert mv.source == f"runs:/{seeded.run_id}/model"
    assert mv.status == "READY"
    assert mv.tags == {"validated_by": "alice", "team": "fraud"}
    assert mv.aliases == []
    assert isinstance(mv.last_updated_timestamp, int)


async def test_get_registered_model(registry: MlflowRegistry, make_version: MakeVersion) -> None:
    seeded = make_version()
    make_version(seeded.name)

    model = await registry.get_registered_model(seeded.name)

    assert model["name"] == seeded.name
    assert [v["version"] for v in model["latest_versions"]] == ["2"]


async def test_missing_version_and_model_raise_resource_not_found(
    registry: MlflowRegistry, make_version: MakeVersion
) -> None:
    seeded = make_version()

    with pytest.raises(ResourceNotFound) as missing_version:
        await registry.get_model_version(seeded.name, "99")
    assert missing_version.value.status == 404
    assert missing_version.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert missing_version.value.message == (
        f"Model Version (name={seeded.name}, version=99) not found"
    )

    with pytest.raises(ResourceNotFound, match="not found"):
        await registry.get_registered_model("no-such-model-anywhere")

    with pytest.raises(ResourceNotFound, match="not found"):
        await registry.get_run_metrics("0" * 32)


async def test_transition_staging_then_production_archives_previous(
    registry: MlflowRegistry, make_version: MakeVersion
) -> None:
    v1 = make_version()
    v2 = make_version(v1.name)
    await registry.transition_stage(v1.name, "1", "Production", archive_existing_versions=False)

    staged = await registry.transition_stage(
        v2.name, v2.version, "Staging", archive_existing_versions=False
    )
    assert staged.current_stage == "Staging"

    promoted = await registry.transition_stage(
        v2.name, v2.version, "Production", archive_existing_versions=True
    )
    assert promoted.current_stage == "Production"
    assert (await registry.get_model_version(v1.name, "1")).current_stage == "Archived"
    assert (await registry.get_model_version(v2.name, "2")).current_stage == "Production"


async def test_transition_without_archiving_keeps_previous(
    registry: MlflowRegistry, make_version: MakeVersion
) -> None:
    v1 = make_version()
    v2 = make_version(v1.name)
    await registry.transition_stage(v1.name, "1", "Production", archive_existing_versions=False)
    await registry.transition_stage(v2.name, "2", "Production", archive_existing_versions=False)

    assert (await registry.get_model_version(v1.name, "1")).current_stage == "Production"


async def test_invalid_transitions_raise_invalid_request(
    registry: MlflowRegistry, make_version: MakeVersion
) -> None:
    seeded = make_version()

    with pytest.raises(InvalidRequest) as bogus:
        await registry.transition_stage(
            seeded.name, seeded.version, "Bogus", archive_existing_versions=False
        )
    assert bogus.value.status == 400
    assert bogus.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Invalid Model Version stage: Bogus" in bogus.value.message

    # MLflow would answer this with a 500; the client refuses it before sending.
    with pytest.raises(InvalidRequest, match="archive_existing_versions to false"):
        await registry.transition_stage(
            seeded.name, seeded.version, "Archived", archive_existing_versions=True
        )


async def test_set_get_delete_alias(registry: MlflowRegistry, make_version: MakeVersion) -> None:
    v1 = make_version()
    v2 = make_version(v1.name)

    await registry.set_alias(v1.name, "champion", "1")
    mv = await registry.get_model_version_by_alias(v1.name, "champion")
    assert (mv.version, mv.aliases) == ("1", ["champion"])

    await registry.set_alias(v1.name, "champion", v2.version)  # moves the alias
    assert (await registry.get_model_version_by_alias(v1.name, "@champion")).version == "2"
    assert (await registry.get_model_version(v1.name, "1")).aliases == []

    await registry.delete_alias(v1.name, "champion")
    with pytest.raises(ResourceNotFound, match="alias champion not found"):
        await registry.get_model_version_by_alias(v1.name, "champion")
    await registry.delete_alias(v1.name, "champion")  # deleting a missing alias is a no-op


async def test_reserved_alias_is_invalid(
    registry: MlflowRegistry, make_version: MakeVersion
) -> None:
    seeded = make_version()
    with pytest.raises(InvalidRequest, match="reserved"):
        await registry.set_alias(seeded.name, "v1", seeded.version)


async def test_run_metrics(registry: MlflowRegistry, make_version: MakeVersion) -> None:
    seeded = make_version(metrics={"auc": 0.91, "f1": 0.5})
    assert await registry.get_run_metrics(seeded.run_id) == {"auc": 0.91, "f1": 0.5}

    bare = make_version()
    assert await registry.get_run_metrics(bare.run_id) == {}


async def test_from_settings(mlflow_server: MlflowServer, make_version: MakeVersion) -> None:
    seeded = make_version()
    settings = WorkerSettings(mlflow_tracking_uri=mlflow_server.url + "/")
    async with MlflowRegistry.from_settings(settings) as client:
        assert (await client.get_model_version(seeded.name, seeded.version)).version == "1"


# --------------------------------------------------------------------------------------------
# Loopback fake: records requests, answers from a script
# --------------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeMlflow:
    url: str
    # Each answer: (status, JSON body); the last one repeats once the script runs out.
    answers: list[tuple[int, dict]] = field(default_factory=list)
    delay: float = 0.0
    requests: list[Recorded] = field(default_factory=list)


VERSION_JSON = {
    "model_version": {
        "name": "fraud",
        "version": "7",
        "current_stage": "Staging",
        "run_id": "abc",
        "source": "runs:/abc/model",
        "status": "READY",
        "last_updated_timestamp": 1700000000000,
        "tags": [{"key": "k", "value": "v"}],
        "aliases": ["champion"],
    }
}


@pytest.fixture
def fake_mlflow() -> Iterator[FakeMlflow]:
    fake = FakeMlflow(url="")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            fake.requests.append(
                Recorded(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
            )
            if fake.delay:
                time.sleep(fake.delay)
            index = min(len(fake.requests), len(fake.answers)) - 1
            status, body = fake.answers[index] if fake.answers else (200, {})
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


async def test_bearer_token_header_is_sent(fake_mlflow: FakeMlflow) -> None:
    fake_mlflow.answers = [(200, VERSION_JSON)]
    async with MlflowRegistry(fake_mlflow.url, token="s3cr3t-token") as client:
        mv = await client.get_model_version("fraud", "7")
        assert "s3cr3t-token" not in repr(client)

    assert mv == ModelVersion(
        name="fraud",
        version="7",
        current_stage="Staging",
        run_id="abc",
        source="runs:/abc/model",
        status="READY",
        tags={"k": "v"},
        aliases=["champion"],
        last_updated_timestamp=1700000000000,
    )
    [request] = fake_mlflow.requests
    assert request.headers["authorization"] == "Bearer s3cr3t-token"
    assert request.path == "/api/2.0/mlflow/model-versions/get?name=fraud&version=7"


async def test_basic_auth_header_is_sent(fake_mlflow: FakeMlflow) -> None:
    fake_mlflow.answers = [(200, {})]
    async with MlflowRegistry(fake_mlflow.url, username="alice", password="pw:1") as client:
        await client.set_alias("fraud", "champion", "7")

    [request] = fake_mlflow.requests
    expected = base64.b64encode(b"alice:pw:1").decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.method == "POST"
    assert request.path == "/api/2.0/mlflow/registered-models/alias"
    assert json.loads(request.body) == {"name": "fraud", "alias": "champion", "version": "7"}


async def test_credentials_in_tracking_uri_become_basic_auth(fake_mlflow: FakeMlflow) -> None:
    fake_mlflow.answers = [(200, {})]
    uri = fake_mlflow.url.replace("http://", "http://bob:hunter2@") + "/prefix/"
    async with MlflowRegistry(uri) as client:
        assert "hunter2" not in repr(client) and "hunter2" not in client.url
        await client.delete_alias("fraud", "@champion")

    [request] = fake_mlflow.requests
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"bob:hunter2").decode()
    assert (request.method, request.path) == (
        "DELETE",
        "/prefix/api/2.0/mlflow/registered-models/alias",
    )
    assert json.loads(request.body) == {"name": "fraud", "alias": "champion"}


async def test_no_credentials_no_authorization_header(fake_mlflow: FakeMlflow) -> None:
    fake_mlflow.answers = [(200, {})]
    async with MlflowRegistry(fake_mlflow.url) as client:
        await client.ping()
    assert "authorization" not in fake_mlflow.requests[0].headers
    assert fake_mlflow.requests[0].path == "/health"


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"token": "t"}, "SIGNOFF_MLFLOW_TOKEN"),
        ({"username": "u", "password": "p"}, "SIGNOFF_MLFLOW_USERNAME and SIGNOFF_MLFLOW_PASSWORD"),
        ({}, "set SIGNOFF_MLFLOW_TOKEN, or SIGNOFF_MLFLOW_USERNAME"),
    ],
)
async def test_401_names_the_credential_setting(
    fake_mlflow: FakeMlflow, kwargs: dict[str, str], setting: str
) -> None:
    fake_mlflow.answers = [(401, {"error_code": "UNAUTHENTICATED", "message": "Bad token"})]
    async with MlflowRegistry(fake_mlflow.url, **kwargs) as client:
        with pytest.raises(MlflowAuthError) as caught:
            await client.get_model_version("fraud", "7")
    assert caught.value.status == 401
    assert setting in caught.value.message
    assert "Bad token" in caught.value.message
    assert len(fake_mlflow.requests) == 1


async def test_403_is_an_auth_error(fake_mlflow: FakeMlflow) -> None:
    fake_mlflow.answers = [(403, {"error_code": "PERMISSION_DENIED", "message": "no"})]
    async with MlflowRegistry(fake_mlflow.url, token="t") as client:
        with pytest.raises(MlflowAuthError, match="SIGNOFF_MLFLOW_TOKEN") as caught:
            await client.transition_stage(
                "fraud", "7", "Production", archive_existing_versions=True
            )
    assert (caught.value.status, caught.value.error_code) == (403, "PERMISSION_DENIED")


async def test_503_twice_then_success(fake_mlflow: FakeMlflow) -> None:
    unavailable = {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}
    fake_mlflow.answers = [(503, unavailable), (503, unavailable), (200, VERSION_JSON)]
    async with MlflowRegistry(fake_mlflow.url, retries=3, backoff=0.01) as client:
        mv = await client.get_model_version("fraud", "7")
    assert mv.version == "7"
    assert len(fake_mlflow.requests) == 3


async def test_5xx_exhausts_retries(fake_mlflow: FakeMlflow) -> None:
    fake_mlflow.answers = [(500, {"error_code": "INTERNAL_ERROR", "message": "db is locked"})]
    async with MlflowRegistry(fake_mlflow.url, retries=3, backoff=0.01) as client:
        with pytest.raises(MlflowUnavailable) as caught:
            await client.set_alias("fraud", "champion", "7")
    assert len(fake_mlflow.requests) == 3
    assert caught.value.status == 500
    assert "db is locked" in caught.value.message
    assert "3 attempts" in caught.value.message
    assert fake_mlflow.url in caught.value.message


async def test_400_is_not_retried(fake_mlflow: FakeMlflow) -> None:
    fake_mlflow.answers = [(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "bad stage"})]
    async with MlflowRegistry(fake_mlflow.url, retries=5, backoff=0.01) as client:
        with pytest.raises(InvalidRequest) as caught:
            await client.transition_stage("fraud", "7", "Nope", archive_existing_versions=False)
    assert len(fake_mlflow.requests) == 1
    assert (caught.value.status, caught.value.error_code, caught.value.message) == (
        400,
        "INVALID_PARAMETER_VALUE",
        "bad stage",
    )


async def test_404_without_mlflow_body_means_wrong_endpoint(fake_mlflow: FakeMlflow) -> None:
    fake_mlflow.answers = [(404, {"detail": "Not Found"})]
    async with MlflowRegistry(fake_mlflow.url, retries=3) as client:
        with pytest.raises(ResourceNotFound, match="SIGNOFF_MLFLOW_TRACKING_URI") as caught:
            await client.get_model_version("fraud", "7")
    assert caught.value.error_code == "ENDPOINT_NOT_FOUND"
    assert len(fake_mlflow.requests) == 1


async def test_timeout_is_retried_then_unavailable(fake_mlflow: FakeMlflow) -> None:
    fake_mlflow.delay = 0.5
    async with MlflowRegistry(fake_mlflow.url, timeout=0.1, retries=2, backoff=0.01) as client:
        with pytest.raises(MlflowUnavailable, match="timed out") as caught:
            await client.get_run_metrics("abc")
    assert caught.value.error_code == "TIMEOUT"
    assert len(fake_mlflow.requests) == 2


async def test_connection_refused_raises_unavailable_after_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    caplog.set_level(logging.WARNING, logger="workflows.mlflow_client")
    async with MlflowRegistry(url, token="s3cr3t", retries=3, backoff=0.01) as client:
        with pytest.raises(MlflowUnavailable) as caught:
            await client.get_model_version("fraud", "7")
        with pytest.raises(MlflowUnavailable, match="health"):
            await client.ping()

    error = caught.value
    assert isinstance(error, MlflowError)
    assert error.status is None and error.error_code == "CONNECTION_ERROR"
    assert url in error.message
    assert "SIGNOFF_MLFLOW_TRACKING_URI" in error.message
    assert "3 attempts" in error.message
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 4  # two per call: attempts 1 and 2 of 3
    assert all("s3cr3t" not in r.getMessage() for r in caplog.records)


def test_bad_configuration_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="SIGNOFF_MLFLOW_TRACKING_URI"):
        MlflowRegistry("databricks")
    with pytest.raises(ValueError, match="SIGNOFF_MLFLOW_USERNAME"):
        MlflowRegistry("http://127.0.0.1:5000", password="pw")


def test_errors_survive_pickling() -> None:
    error = ResourceNotFound("gone", 404, "RESOURCE_DOES_NOT_EXIST")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301
    assert (type(copy), copy.message, copy.status, copy.error_code) == (
        ResourceNotFound,
        "gone",
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


async def test_all_model_versions_pages_through_the_registry_with_aliases(
    registry: MlflowRegistry, make_version: MakeVersion
) -> None:
    first = make_version()
    second = make_version(first.name)
    await registry.set_alias(first.name, "champion", second.version)
    await registry.transition_stage(
        first.name, first.version, "Staging", archive_existing_versions=False
    )

    versions = await registry.all_model_versions(page_size=1)  # one per page: paging is used

    mine = {v.version: v for v in versions if v.name == first.name}
    assert set(mine) == {first.version, second.version}
    assert mine[first.version].current_stage == "Staging" and mine[first.version].aliases == []
    assert mine[second.version].aliases == ["champion"]
    assert len({(v.name, v.version) for v in versions}) == len(versions)


async def test_search_model_versions_pages_through_one_model_quoted_safely(
    registry: MlflowRegistry, make_version: MakeVersion
) -> None:
    """Every version of one model, newest first, over several pages; a name with either kind
    of quote (or both, or SQL wildcards) finds exactly its own versions, never a look-alike."""
    base = make_version().name
    for _ in range(2):
        make_version(base)
    names = {
        "single": f"{base}-it's",
        "double": f'{base}-"quoted"',
        "both": f'{base}-it\'s "both" 100%_\\',
        "lookalike": f"{base}-it_s _both_ 100%__",  # matches the LIKE pattern of "both"
    }
    for name in names.values():
        make_version(name)
    await registry.set_alias(base, "champion", "2")

    versions = await registry.search_model_versions(base, page_size=1)  # paging is used
    assert [(v.name, v.version) for v in versions] == [(base, "3"), (base, "2"), (base, "1")]
    assert versions[1].aliases == []  # the version search leaves aliases out
    assert [v.version for v in await registry.search_model_versions(base, limit=2)] == ["3", "2"]
    for name in names.values():
        found = await registry.search_model_versions(name, page_size=1)
        assert [(v.name, v.version) for v in found] == [(name, "1")], name
    assert await registry.search_model_versions(f"{base}' OR name LIKE '%") == []
