"""The worker's configuration: the one place `workflows/` reads its settings from.

Every process builds one settings model from `SIGNOFF_*` environment variables (or a `.env`
file), so one export configures the whole stack: the worker builds `WorkerSettings`; the API,
the CLI and `signoff dev` build `api.settings.ApiSettings`, which adds what only they need.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class WorkerSettings(BaseSettings):
    """What the worker (workflows, activities, reconciler, CI clients, webhooks) reads."""

    model_config = SettingsConfigDict(env_prefix="SIGNOFF_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".signoff"), description="Where the embedded stack keeps state.")
    database_url: str | None = Field(
        None,
        description="URL of the ledger: `postgresql://user:pass@host:5432/db` (psycopg 3) or "
        "`sqlite:///path`; default a SQLite file in the data dir.",
    )

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "signoff"

    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    mlflow_token: SecretStr | None = None
    mlflow_username: str | None = None
    mlflow_password: SecretStr | None = None

    api_url: str = Field(
        "http://127.0.0.1:8000", description="Where CLI client commands find the API."
    )
    public_url: str | None = Field(
        None, description="Where CI jobs reach the API for callbacks; default: api_url."
    )

    github_api_url: str = "https://api.github.com"
    github_token: SecretStr | None = None
    github_app_id: str | None = Field(
        None,
        description="SIGNOFF_GITHUB_APP_ID: the GitHub App that answers deployment protection "
        "rules (the `iss` of its JWTs).",
    )
    github_app_private_key: SecretStr | None = Field(
        None,
        description="SIGNOFF_GITHUB_APP_PRIVATE_KEY: the App's private key, the PEM text GitHub "
        "generated (`$(cat app.private-key.pem)`; `\\n` escapes are read as newlines).",
    )
    github_gate_poll_s: float = Field(
        10.0,
        ge=0.1,
        description="SIGNOFF_GITHUB_GATE_POLL_S: how often (seconds) a waiting GitHub deployment "
        "looks at the ledger for its run's request and its decision.",
    )
    jenkins_url: str | None = None
    jenkins_user: str | None = None
    jenkins_token: SecretStr | None = None

    encryption_key: SecretStr | None = Field(
        None,
        description="Fernet key (urlsafe base64 of 32 bytes) encrypting webhook secrets at rest; "
        "make one with `python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'`.",
    )
    callback_key: SecretStr | None = Field(
        None,
        description="SIGNOFF_CALLBACK_KEY: the key the callback tokens of CI jobs are derived "
        "with (HMAC-SHA256 of the request and check); the same value on worker and API, at "
        "least 32 characters. CI checks fail without it; `signoff dev` keeps one in the data "
        "dir.",
    )
    webhook_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="SIGNOFF_WEBHOOK_ALLOW_HOSTS: comma-separated hosts and CIDR ranges that "
        "webhooks may reach although they are private, loopback or link-local.",
    )
    slack_bot_token: SecretStr | None = Field(
        None,
        description="SIGNOFF_SLACK_BOT_TOKEN: the Slack app's bot token (xoxb-...), with the "
        "chat:write scope, that posts and updates the messages of rules with notify.slack.",
    )
    slack_api_url: str = Field(
        "https://slack.com/api/",
        description="SIGNOFF_SLACK_API_URL: Slack's Web API base URL (methods are appended).",
    )
    reconcile_interval_s: float = Field(
        300.0,
        ge=1.0,
        description="SIGNOFF_RECONCILE_INTERVAL_S: how often (seconds) the reconciler compares "
        "MLflow's stages and aliases with the ledger.",
    )
    # -- observability (workflows.logs, workflows.metrics, workflows.tracing) ----------------
    log_format: Literal["json", "text"] | None = Field(
        None,
        description="SIGNOFF_LOG_FORMAT: `json` (one event per line; the default of `signoff "
        "api` and `signoff worker`) or `text` (human-readable; the default of `signoff dev`).",
    )
    worker_metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="SIGNOFF_WORKER_METRICS_PORT: the worker serves its Prometheus metrics at "
        "http://<SIGNOFF_WORKER_METRICS_HOST>:<port>/metrics; unset, it serves none (`signoff "
        "dev` shows them on the API's /metrics).",
    )
    worker_metrics_host: str = Field(
        "127.0.0.1",
        description="SIGNOFF_WORKER_METRICS_HOST: the interface of the worker's metrics port "
        "(0.0.0.0 in a container).",
    )
    otlp_endpoint: str | None = Field(
        None,
        validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description="OTEL_EXPORTER_OTLP_ENDPOINT (OpenTelemetry's own variable): when set, API "
        "and worker export traces over OTLP/HTTP to <endpoint>/v1/traces.",
    )
    otlp_traces_endpoint: str | None = Field(
        None,
        validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        description="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the full URL for traces, which wins "
        "over OTEL_EXPORTER_OTLP_ENDPOINT (as OpenTelemetry specifies).",
    )
    otel_service_name: str | None = Field(
        None,
        validation_alias="OTEL_SERVICE_NAME",
        description="OTEL_SERVICE_NAME: the traces' service name; default signoff-api, "
        "signoff-worker, or signoff (`signoff dev`).",
    )
    prometheus_multiproc_dir: Path | None = Field(
        None,
        validation_alias="PROMETHEUS_MULTIPROC_DIR",
        description="PROMETHEUS_MULTIPROC_DIR (prometheus-client's variable; an environment "
        "variable, read when the process starts): processes of one host write their series "
        "there and each metrics endpoint serves the sum of all of them. Empty it before they "
        "start.",
    )
    audit_anchor_interval_s: float = Field(
        3600.0,
        ge=1.0,
        description="SIGNOFF_AUDIT_ANCHOR_INTERVAL_S: how often (seconds) the audit chain's head "
        "is recorded as an anchor and announced (the AUDIT_ANCHOR webhook event).",
    )

    digest_max_file_mb: float = Field(
        256.0,
        gt=0,
        description="SIGNOFF_DIGEST_MAX_FILE_MB: artifact files up to this size (MB) are hashed "
        "into a request's digest; larger ones are pinned by path and size only.",
    )

    startup_timeout_s: float = Field(
        300.0,
        gt=0,
        description="SIGNOFF_STARTUP_TIMEOUT_S: how long a starting process waits (with backoff) "
        "for the ledger's database, Temporal and MLflow before it gives up, naming which.",
    )
    worker_max_cached_workflows: int = Field(
        1000,
        ge=0,
        description="SIGNOFF_WORKER_MAX_CACHED_WORKFLOWS: workflow runs the worker keeps in "
        "memory between their tasks (the SDK's sticky cache). An open request out of the "
        "cache costs a replay of its short history on its next decision, a few ms; each one "
        "in it holds some tens of KB.",
    )
    worker_shutdown_grace_s: float = Field(
        60.0,
        ge=0,
        description="SIGNOFF_WORKER_SHUTDOWN_GRACE_S: on SIGTERM the worker stops polling and "
        "lets its running activities finish for up to this long before cancelling them (a "
        "cancelled activity is retried by another worker).",
    )

    @field_validator("callback_key")
    @classmethod
    def _check_callback_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("SIGNOFF_CALLBACK_KEY must be at least 32 characters")
        return value

    @field_validator("github_app_private_key")
    @classmethod
    def _check_app_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        from workflows.deployments.app_auth import read_private_key

        return SecretStr(read_private_key(value.get_secret_value()))

    @field_validator("encryption_key")
    @classmethod
    def _check_encryption_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        from cryptography.fernet import Fernet

        try:
            Fernet(value.get_secret_value().encode())
        except (ValueError, TypeError):
            raise ValueError(
                "SIGNOFF_ENCRYPTION_KEY is not a Fernet key (urlsafe base64 of 32 bytes); make "
                "one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            ) from None
        return value

    @field_validator("webhook_allow_hosts", mode="before")
    @classmethod
    def _parse_allow_hosts(cls, value: Any) -> Any:
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("webhook_allow_hosts")
    @classmethod
    def _check_allow_hosts(cls, value: list[str]) -> list[str]:
        for item in value:
            if "/" in item:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(
                        f"SIGNOFF_WEBHOOK_ALLOW_HOSTS: {item!r} is not a CIDR range"
                    ) from None
        return value

    @field_validator("temporal_address")
    @classmethod
    def _check_temporal_address(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"SIGNOFF_TEMPORAL_ADDRESS must be host:port (e.g. temporal:7233), got {value!r}"
            )
        return value

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _check_mlflow_uri(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "SIGNOFF_MLFLOW_TRACKING_URI must be the http(s) URL of an MLflow tracking "
                "server (e.g. http://mlflow:5000)"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        from sqlalchemy.engine import make_url  # SQLAlchemy only when a URL is set

        try:
            make_url(value)
        except Exception:  # ArgumentError and friends; the URL itself may hold a password
            raise ValueError(
                "SIGNOFF_DATABASE_URL is not a database URL (e.g. "
                "postgresql+psycopg://signoff@db:5432/signoff or sqlite:////data/signoff.db)"
            ) from None
        return value

    @model_validator(mode="after")
    def _default_database(self) -> WorkerSettings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'signoff.db').resolve()}"
        return self

    @property
    def callback_base_url(self) -> str:
        return (self.public_url or self.api_url).rstrip("/")
