"""The one MLflow client Signoff uses: an async wrapper over MLflow's REST API 2.0.

MLflow stays the registry of record; this module only reads and moves versions, stages and
aliases, and reads run metrics. Every call goes through `MlflowRegistry._request`, which

- authenticates (Bearer token, else HTTP basic, else nothing),
- retries connection errors, timeouts and 5xx answers with exponential backoff (never 4xx),
- turns MLflow's `{"error_code": ..., "message": ...}` bodies into the exceptions below, whose
  messages are sentences an operator can act on.

Credentials never appear in logs, exception messages or `repr()`.

An instance owns one `httpx.AsyncClient`; use it from one event loop and close it with
`await registry.aclose()` or `async with MlflowRegistry(...) as registry:`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

import httpx

from policies import STAGES
from workflows.tls import verifying_context
from workflows.tracing import instrument_http_client

if TYPE_CHECKING:
    from workflows.settings import WorkerSettings

__all__ = [
    "ACTIVE_STAGES",
    "ArtifactEntry",
    "STAGES",
    "InvalidRequest",
    "MlflowAuthError",
    "MlflowError",
    "MlflowRegistry",
    "MlflowUnavailable",
    "ModelVersion",
    "ResourceNotFound",
]

logger = logging.getLogger(__name__)

API = "/api/2.0/mlflow"
_MODEL_VERSION_ARTIFACT = "/model-versions/get-artifact"
ACTIVE_STAGES = ("Staging", "Production")
"""Stages for which MLflow accepts `archive_existing_versions=true`."""

_TRACKING_URI_HINT = "Check that the MLflow server is running and that SIGNOFF_MLFLOW_TRACKING_URI"
_MAX_BACKOFF = 30.0


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class MlflowError(Exception):
    """An MLflow call failed.

    For errors MLflow reported itself (404, other 4xx) `message` and `error_code` are MLflow's
    own; for the rest (auth, unreachable, 5xx, not an MLflow answer) `message` is a sentence
    saying what to check.
    """

    default_error_code = "INTERNAL_ERROR"

    def __init__(
        self, message: str, status: int | None = None, error_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code or self.default_error_code

    def __str__(self) -> str:
        return self.message


class ResourceNotFound(MlflowError):
    """The model, version, alias or run does not exist (MLflow's RESOURCE_DOES_NOT_EXIST)."""

    default_error_code = "RESOURCE_DOES_NOT_EXIST"


class InvalidRequest(MlflowError):
    """MLflow refused the request as invalid (a 4xx other than 401, 403 and 404)."""

    default_error_code = "INVALID_PARAMETER_VALUE"


class MlflowAuthError(MlflowError):
    """MLflow refused Signoff's credentials (401) or their permissions (403)."""

    default_error_code = "UNAUTHENTICATED"


class MlflowUnavailable(MlflowError):
    """MLflow could not be reached, timed out or kept answering 5xx after the retries."""

    default_error_code = "TEMPORARILY_UNAVAILABLE"


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    current_stage: str
    run_id: str | None
    source: str | None
    status: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    last_updated_timestamp: int | None = None
    model_id: str | None = None
    """MLflow 3: the logged model the version was registered from, if any."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelVersion:
        """Build from MLflow's `model_version` JSON object (absent fields are omitted there)."""
        timestamp = data.get("last_updated_timestamp")
        return cls(
            name=data["name"],
            version=str(data["version"]),
            current_stage=data.get("current_stage") or "None",
            run_id=data.get("run_id") or None,
            source=data.get("source") or None,
            status=data.get("status") or None,
            tags={t["key"]: t.get("value", "") for t in data.get("tags") or []},
            aliases=list(data.get("aliases") or []),
            last_updated_timestamp=int(timestamp) if timestamp is not None else None,
            model_id=data.get("model_id") or None,
        )


@dataclass(frozen=True)
class ArtifactEntry:
    """One entry of an artifact listing: a path from the listed root, a directory or a file
    with its size (MLflow's FileInfo)."""

    path: str
    is_dir: bool
    size: int | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArtifactEntry:
        size = data.get("file_size")
        return cls(
            path=str(data["path"]),
            is_dir=bool(data.get("is_dir")),
            size=int(size) if size is not None else None,
        )


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------


def _split_tracking_uri(tracking_uri: str) -> tuple[str, str | None, str | None]:
    """Return (URL without credentials or trailing slash, username, password) from the URI."""
    parts = urlsplit(tracking_uri.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"The MLflow tracking URI {tracking_uri!r} is not an http(s) URL. Set "
            "SIGNOFF_MLFLOW_TRACKING_URI to the address of an MLflow tracking server, "
            "for example http://127.0.0.1:5000."
        )
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    netloc = parts.netloc.rsplit("@", 1)[-1]
    clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return clean, username, password


def mlflow_connection(settings: WorkerSettings) -> tuple[str, dict[str, str], httpx.Auth | None]:
    """How Signoff reaches MLflow: the base URL, the headers carrying a bearer token, and basic
    auth, from `SIGNOFF_MLFLOW_*` (credentials in the URI count as basic auth)."""
    base_url, username, password = _split_tracking_uri(settings.mlflow_tracking_uri)
    if settings.mlflow_username:
        username = settings.mlflow_username
        password = None
    if settings.mlflow_password is not None:
        password = settings.mlflow_password.get_secret_value()
    token = settings.mlflow_token.get_secret_value().strip() if settings.mlflow_token else ""
    if token:
        return base_url, {"Authorization": f"Bearer {token}"}, None
    if username is not None:
        return base_url, {}, httpx.BasicAuth(username, password or "")
    return base_url, {}, None


class MlflowRegistry:
    """Async client for the parts of MLflow's registry and tracking API that Signoff needs.

    `retries` is the total number of attempts made for one call (at least 1); between
    attempts the client sleeps `backoff * 2**n` seconds (n = 0, 1, ...), capped at 30 s.
    """

    def __init__(
        self,
        tracking_uri: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
    ) -> None:
        base_url, uri_username, uri_password = _split_tracking_uri(tracking_uri)
        if username is None and uri_username is not None:
            username = uri_username
            if password is None:
                password = uri_password
        if password is not None and username is None:
            raise ValueError(
                "An MLflow password is set without a username. Set SIGNOFF_MLFLOW_USERNAME "
                "together with SIGNOFF_MLFLOW_PASSWORD, or unset the password."
            )
        self.url = base_url
        self.retries = max(1, int(retries))
        self.backoff = max(0.0, float(backoff))
        self.timeout = float(timeout)

        headers = {"Accept": "application/json", "User-Agent": "signoff"}
        auth: httpx.Auth | None = None
        if token:
            headers["Authorization"] = f"Bearer {token.strip()}"
            self._auth_kind = "token"
        elif username is not None:
            auth = httpx.BasicAuth(username, password or "")
            self._auth_kind = "basic"
        else:
            self._auth_kind = "none"
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            auth=auth,
            timeout=self.timeout,
            follow_redirects=False,
            verify=verifying_context(),
        )
        instrument_http_client(self._client)

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> MlflowRegistry:
        token = settings.mlflow_token.get_secret_value() if settings.mlflow_token else None
        password = settings.mlflow_password.get_secret_value() if settings.mlflow_password else None
        return cls(
            settings.mlflow_tracking_uri,
            token=token or None,
            username=settings.mlflow_username or None,
            password=password,
        )

    def __repr__(self) -> str:
        return f"MlflowRegistry(url={self.url!r}, auth={self._auth_kind!r})"

    # -- lifecycle ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> MlflowRegistry:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- registry ----------------------------------------------------------------------------

    async def get_registered_model(self, name: str) -> dict[str, Any]:
        """MLflow's `registered_model` object (name, tags, aliases, latest_versions, ...)."""
        body = await self._request("GET", "/registered-models/get", params={"name": name})
        return body["registered_model"]

    async def get_model_version(self, name: str, version: str) -> ModelVersion:
        body = await self._request(
            "GET", "/model-versions/get", params={"name": name, "version": str(version)}
        )
        return ModelVersion.from_json(body["model_version"])

    async def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version `alias` (given without '@') points at; ResourceNotFound if none."""
        alias = alias.removeprefix("@")
        try:
            body = await self._request(
                "GET", "/registered-models/alias", params={"name": name, "alias": alias}
            )
        except InvalidRequest as exc:
            # MLflow answers a missing alias with 400 INVALID_PARAMETER_VALUE, not 404.
            if "not found" in exc.message.lower():
                raise ResourceNotFound(exc.message, exc.status, "RESOURCE_DOES_NOT_EXIST") from exc
            raise
        return ModelVersion.from_json(body["model_version"])

    async def transition_stage(
        self, name: str, version: str, stage: str, *, archive_existing_versions: bool
    ) -> ModelVersion:
        """Move a version to `stage`; with `archive_existing_versions`, archive the versions
        currently in that stage. MLflow 3 deprecates stages but still serves this endpoint."""
        if archive_existing_versions and stage.lower() not in ("staging", "production"):
            # MLflow answers this with a 500 INTERNAL_ERROR, which would be retried; refuse here.
            raise InvalidRequest(
                f"Cannot archive existing versions when moving {name!r} version {version} to "
                f"{stage!r}: MLflow only archives existing versions for the stages "
                f"{' and '.join(ACTIVE_STAGES)}. Set archive_existing_versions to false.",
            )
        body = await self._request(
            "POST",
            "/model-versions/transition-stage",
            json={
                "name": name,
                "version": str(version),
                "stage": stage,
                "archive_existing_versions": archive_existing_versions,
            },
        )
        return ModelVersion.from_json(body["model_version"])

    async def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point `alias` (without '@') at `version`, moving it if it points elsewhere."""
        await self._request(
            "POST",
            "/registered-models/alias",
            json={"name": name, "alias": alias.removeprefix("@"), "version": str(version)},
        )

    async def delete_alias(self, name: str, alias: str) -> None:
        """Remove `alias`; MLflow treats deleting an alias that does not exist as success."""
        # MLflow reads DELETE parameters from the JSON body, not the query string.
        await self._request(
            "DELETE",
            "/registered-models/alias",
            json={"name": name, "alias": alias.removeprefix("@")},
        )

    async def get_latest_versions(self, name: str, stages: list[str]) -> list[ModelVersion]:
        """The newest version in each of `stages` (MLflow's `get-latest-versions`; a stage with
        no version is simply absent from the answer). Stage names match case-insensitively."""
        body = await self._request(
            "GET",
            "/registered-models/get-latest-versions",
            params={"name": name, "stages": list(stages)},
        )
        return [ModelVersion.from_json(mv) for mv in body.get("model_versions") or []]

    async def all_model_versions(self, page_size: int = 1000) -> list[ModelVersion]:
        """Every version of every registered model, with its stage and aliases."""
        return [version async for page in self.model_version_pages(page_size) for version in page]

    async def model_version_pages(self, page_size: int = 1000) -> AsyncIterator[list[ModelVersion]]:
        """Every version of every registered model, with its stage and aliases, one page of
        MLflow's version search at a time: what the reconciler compares with the ledger.
        (MLflow's version search leaves aliases out, so they come from the registered models,
        read first.)"""
        aliases: dict[tuple[str, str], list[str]] = {}
        async for models in self._pages(
            "/registered-models/search", "registered_models", page_size
        ):
            for model in models:
                for item in model.get("aliases") or []:
                    key = (model["name"], str(item["version"]))
                    aliases.setdefault(key, []).append(item["alias"])
        async for versions in self._pages("/model-versions/search", "model_versions", page_size):
            yield [
                ModelVersion.from_json(
                    data
                    | {"aliases": sorted(aliases.get((data["name"], str(data["version"])), []))}
                )
                for data in versions
            ]

    async def search_model_versions(
        self, name: str, *, page_size: int = 1000, limit: int | None = None
    ) -> list[ModelVersion]:
        """The versions of one model, newest first (MLflow's `model-versions/search` with a
        filter on the name, page after page), up to `limit`. Their `aliases` are empty:
        MLflow's version search leaves them out."""
        found: list[ModelVersion] = []
        if limit is not None:
            page_size = min(page_size, limit)
        params = {"filter": name_filter(name), "order_by": ["version_number DESC"]}
        pages = self._pages("/model-versions/search", "model_versions", page_size, params)
        async for page in pages:
            found.extend(ModelVersion.from_json(data) for data in page if data.get("name") == name)
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

    async def _pages(
        self, path: str, key: str, page_size: int, extra: dict[str, Any] | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"max_results": page_size} | (extra or {})
            if token:
                params["page_token"] = token
            body = await self._request("GET", path, params=params)
            yield body.get(key) or []
            token = body.get("next_page_token")
            if not token:
                return

    async def get_model_version_download_uri(self, name: str, version: str) -> str:
        """Where MLflow resolves the version's files: its storage location (MLflow 3 logged
        models: the model's artifact directory) or its `source` (e.g. `runs:/<run>/model`)."""
        body = await self._request(
            "GET",
            "/model-versions/get-download-uri",
            params={"name": name, "version": str(version)},
        )
        return str(body.get("artifact_uri") or "")

    def model_version_artifact_url(self, name: str, version: str, path: str) -> str:
        """The URL `get_model_version_artifact` reads (for evidence; carries no credentials)."""
        query = urlencode({"name": name, "version": str(version), "path": path})
        return f"{self.url}{_MODEL_VERSION_ARTIFACT}?{query}"

    async def get_model_version_artifact(self, name: str, version: str, path: str) -> bytes:
        """The bytes of one file of the version's model, e.g. `MLmodel`, read through the
        tracking server's `/model-versions/get-artifact` route (served outside `/api/2.0`; the
        server reads the artifact store itself, whatever it is, proxied or not).

        ResourceNotFound when the version or the file does not exist (MLflow answers both with
        404 RESOURCE_DOES_NOT_EXIST); InvalidRequest for a path MLflow refuses as unsafe."""
        response, where = await self._send(
            "GET",
            _MODEL_VERSION_ARTIFACT,
            params={"name": name, "version": str(version), "path": path},
            api=False,
        )
        if 200 <= response.status_code < 300:
            return response.content
        self._handle(response, where)  # raises the matching MlflowError
        raise InvalidRequest(  # a 1xx/3xx: not an answer MLflow gives
            f"MLflow call {where} answered HTTP {response.status_code}",
            response.status_code,
            f"HTTP_{response.status_code}",
        )

    @contextlib.asynccontextmanager
    async def stream_model_version_artifact(
        self, name: str, version: str, path: str
    ) -> AsyncIterator[httpx.Response]:
        """One file of the version's model as a streamed response (read it with
        `aiter_bytes`), through the same `/model-versions/get-artifact` route. Not retried: a
        caller that fails midway starts the file again. Errors as `get_model_version_artifact`."""
        where = f"GET {self.url}{_MODEL_VERSION_ARTIFACT}"
        params = {"name": name, "version": str(version), "path": path}
        try:
            async with self._client.stream("GET", _MODEL_VERSION_ARTIFACT, params=params) as resp:
                if not 200 <= resp.status_code < 300:
                    await resp.aread()
                    if resp.status_code >= 500:
                        code, message = _error_body(resp)
                        raise MlflowUnavailable(
                            f"MLflow call {where} answered HTTP {resp.status_code} ({code}: "
                            f"{message})",
                            resp.status_code,
                            code,
                        )
                    self._handle(resp, where)
                    raise InvalidRequest(
                        f"MLflow call {where} answered HTTP {resp.status_code}",
                        resp.status_code,
                        f"HTTP_{resp.status_code}",
                    )
                yield resp
        except httpx.TransportError as exc:
            raise MlflowUnavailable(
                f"MLflow call {where} failed: {type(exc).__name__}: {exc}. {_TRACKING_URI_HINT} "
                f"({self.url}) points at it.",
                None,
                "CONNECTION_ERROR",
            ) from exc

    # -- artifacts ---------------------------------------------------------------------------

    async def list_run_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactEntry]:
        """The entries of one directory of a run's artifacts (paths from the run's root),
        every page of MLflow's `artifacts/list`."""
        entries: list[ArtifactEntry] = []
        token: str | None = None
        while True:
            params: dict[str, str] = {"run_id": run_id}
            if path:
                params["path"] = path
            if token:
                params["page_token"] = token
            body = await self._request("GET", "/artifacts/list", params=params)
            entries.extend(ArtifactEntry.from_json(item) for item in body.get("files") or [])
            token = body.get("next_page_token")
            if not token:
                return entries

    async def list_logged_model_artifacts(
        self, model_id: str, path: str | None = None
    ) -> list[ArtifactEntry]:
        """The entries of one directory of an MLflow 3 logged model's artifacts (paths from
        the model's root)."""
        params = {"artifact_directory_path": path} if path else None
        body = await self._request(
            "GET", f"/logged-models/{quote(model_id, safe='')}/artifacts/directories", params=params
        )
        return [ArtifactEntry.from_json(item) for item in body.get("files") or []]

    async def get_run_artifact_uri(self, run_id: str) -> str:
        body = await self._request("GET", "/runs/get", params={"run_id": run_id})
        return str(body.get("run", {}).get("info", {}).get("artifact_uri") or "")

    # -- tracking ----------------------------------------------------------------------------

    async def get_run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of each metric of the run (MLflow's `runs/get` returns only the
        latest per key: highest step, then latest timestamp)."""
        body = await self._request("GET", "/runs/get", params={"run_id": run_id})
        metrics = body.get("run", {}).get("data", {}).get("metrics") or []
        # float() also reads the strings "NaN" / "Infinity" that protobuf JSON uses.
        return {m["key"]: float(m["value"]) for m in metrics if "value" in m}

    # -- health ------------------------------------------------------------------------------

    async def ping(self) -> None:
        """Check that MLflow answers `GET /health`; raises MlflowUnavailable otherwise."""
        try:
            await self._request("GET", "/health", api=False)
        except MlflowUnavailable:
            raise
        except MlflowError as exc:
            raise MlflowUnavailable(
                f"MLflow at {self.url} did not pass its health check: {exc.message}",
                exc.status,
                exc.error_code,
            ) from exc

    # -- plumbing ----------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | list[str]] | None = None,
        json: dict[str, Any] | None = None,
        api: bool = True,
    ) -> dict[str, Any]:
        response, where = await self._send(method, path, params=params, json=json, api=api)
        return self._handle(response, where)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | list[str]] | None = None,
        json: dict[str, Any] | None = None,
        api: bool = True,
    ) -> tuple[httpx.Response, str]:
        """Make the call with retries; return the first answer below 500 and where it went."""
        url_path = f"{API}{path}" if api else path
        where = f"{method} {self.url}{url_path}"
        last_problem = ""
        last_status: int | None = None
        last_code = "TEMPORARILY_UNAVAILABLE"
        for attempt in range(1, self.retries + 1):
            try:
                response = await self._client.request(method, url_path, params=params, json=json)
            except httpx.TimeoutException as exc:
                last_problem = f"timed out after {self.timeout:g} s ({type(exc).__name__})"
                last_status, last_code = None, "TIMEOUT"
            except httpx.TransportError as exc:
                last_problem = f"could not connect ({type(exc).__name__}: {exc})"
                last_status, last_code = None, "CONNECTION_ERROR"
            else:
                if response.status_code < 500:
                    return response, where
                error_code, message = _error_body(response)
                last_problem = f"answered HTTP {response.status_code} ({error_code}: {message})"
                last_status, last_code = response.status_code, error_code
            if attempt < self.retries:
                delay = min(self.backoff * 2 ** (attempt - 1), _MAX_BACKOFF)
                logger.warning(
                    "MLflow call %s %s on attempt %d of %d; retrying in %.2f s.",
                    where,
                    last_problem,
                    attempt,
                    self.retries,
                    delay,
                )
                await asyncio.sleep(delay)
        attempts = "1 attempt" if self.retries == 1 else f"{self.retries} attempts"
        raise MlflowUnavailable(
            f"MLflow call {where} failed after {attempts}: the server {last_problem}. "
            f"{_TRACKING_URI_HINT} ({self.url}) points at it; for 5xx answers, the MLflow "
            "server's log says why.",
            last_status,
            last_code,
        )

    def _handle(self, response: httpx.Response, where: str) -> dict[str, Any]:
        status = response.status_code
        if 200 <= status < 300:
            if not response.content:
                return {}
            try:
                body = response.json()
            except ValueError:
                if response.request.url.path.endswith("/health"):
                    return {}
                raise InvalidRequest(
                    f"MLflow call {where} answered HTTP {status} with a body that is not JSON. "
                    f"{_TRACKING_URI_HINT} ({self.url}) points at an MLflow tracking server.",
                    status,
                    "INVALID_RESPONSE",
                ) from None
            return body if isinstance(body, dict) else {}
        error_code, message = _error_body(response)
        if status in (401, 403):
            raise MlflowAuthError(self._auth_message(status, message, where), status, error_code)
        if status == 404 or error_code == "RESOURCE_DOES_NOT_EXIST":
            if error_code.startswith("HTTP_"):
                # No MLflow error body: the endpoint itself is missing, not the resource.
                message = (
                    f"MLflow call {where} answered HTTP 404 without an MLflow error. "
                    f"{_TRACKING_URI_HINT} ({self.url}) points at an MLflow tracking server "
                    "(version 2.3 or later) and not at a proxy path or another service."
                )
                error_code = "ENDPOINT_NOT_FOUND"
            raise ResourceNotFound(message, status, error_code)
        if error_code.startswith("HTTP_"):
            # Not an MLflow error body (a proxy, a redirect, another service): say where.
            message = f"MLflow call {where} answered HTTP {status}: {message}"
        raise InvalidRequest(message, status, error_code)

    def _auth_message(self, status: int, message: str, where: str) -> str:
        said = f" MLflow said: {message}" if message else ""
        if status == 401:
            if self._auth_kind == "token":
                check = "Check SIGNOFF_MLFLOW_TOKEN: it is missing, expired or not accepted."
            elif self._auth_kind == "basic":
                check = "Check SIGNOFF_MLFLOW_USERNAME and SIGNOFF_MLFLOW_PASSWORD."
            else:
                check = (
                    "The server requires authentication: set SIGNOFF_MLFLOW_TOKEN, or "
                    "SIGNOFF_MLFLOW_USERNAME and SIGNOFF_MLFLOW_PASSWORD."
                )
            return f"MLflow rejected Signoff's credentials for {where} (HTTP 401). {check}{said}"
        setting = {
            "token": "SIGNOFF_MLFLOW_TOKEN",
            "basic": "SIGNOFF_MLFLOW_USERNAME",
            "none": "SIGNOFF_MLFLOW_TOKEN or SIGNOFF_MLFLOW_USERNAME/SIGNOFF_MLFLOW_PASSWORD",
        }[self._auth_kind]
        return (
            f"MLflow denied {where} (HTTP 403): the identity configured in {setting} lacks "
            "permission for this call. Grant it permission on the model in MLflow (MANAGE covers "
            f"every call Signoff makes), or configure credentials that have it.{said}"
        )


def _error_body(response: httpx.Response) -> tuple[str, str]:
    """MLflow's (error_code, message), or (`HTTP_<status>`, a short text) if there is none."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("error_code" in body or "message" in body):
        return str(body.get("error_code") or f"HTTP_{response.status_code}"), str(
            body.get("message") or ""
        )
    text = " ".join(response.text.split())[:200] if response.content else ""
    return f"HTTP_{response.status_code}", text or response.reason_phrase


def name_filter(name: str) -> str:
    """MLflow's search filter for one model name. MLflow takes a quoted value verbatim (it
    strips the quotes and unescapes nothing), so the name is quoted with a quote character it
    does not contain; a name holding both kinds becomes a LIKE pattern with `_` in place of
    each quote, backslash and wildcard, and the caller keeps only exact matches."""
    for mark in ("'", '"'):
        if mark not in name:
            return f"name = {mark}{name}{mark}"
    pattern = "".join("_" if char in "'\"\\%_" else char for char in name)
    return f"name LIKE '{pattern}'"
