"""The worker's configuration: the one place `workflows/` reads its settings from.

Every process builds one settings model from `SIGNOFF_*` environment variables (or a `.env`
file), so one export configures the whole stack: the worker builds `WorkerSettings`; the API,
the CLI and `signoff dev` build `api.settings.ApiSettings`, which adds what only they need.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url


class WorkerSettings(BaseSettings):
    """What the worker (workflows, activities, reconciler, CI clients, webhooks) reads."""

    model_config = SettingsConfigDict(env_prefix="SIGNOFF_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".signoff"), description="Where the embedded stack keeps state.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the ledger; default a SQLite file in the data dir."
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
    reconcile_interval_s: float = Field(
        300.0,
        ge=1.0,
        description="SIGNOFF_RECONCILE_INTERVAL_S: how often (seconds) the reconciler compares "
        "MLflow's stages and aliases with the ledger.",
    )

    startup_timeout_s: float = Field(
        300.0,
        gt=0,
        description="SIGNOFF_STARTUP_TIMEOUT_S: how long a starting process waits (with backoff) "
        "for the ledger's database, Temporal and MLflow before it gives up, naming which.",
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
