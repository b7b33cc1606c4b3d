"""The one place Signoff reads its configuration from.

Every process (API, worker, CLI, `signoff dev`) builds its `Settings` from `SIGNOFF_*`
environment variables (or a `.env` file), so one export configures the whole stack.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET_PLACEHOLDER = "change-me-signoff-dev-secret"  # noqa: S105 - a known placeholder
"""The development secret shipped as default. Accepted only by `signoff dev`."""


class InsecureSettingsError(ValueError):
    """Raised when a process outside `signoff dev` would run with the placeholder secret."""


class Settings(BaseSettings):
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

    policy_file: Path | None = Field(None, description="Default: the packaged default.yaml.")

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET_PLACEHOLDER)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    roles_claim: str = "roles"

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
    token: SecretStr | None = Field(None, description="Bearer token used by CLI client commands.")

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'signoff.db').resolve()}"
        return self

    @cached_property
    def resolved_policy_file(self) -> Path:
        if self.policy_file is not None:
            return self.policy_file
        return Path(__file__).parent / "policies" / "default.yaml"

    @property
    def callback_base_url(self) -> str:
        return (self.public_url or self.api_url).rstrip("/")

    @property
    def uses_placeholder_secret(self) -> bool:
        return self.jwt_secret.get_secret_value() == DEV_JWT_SECRET_PLACEHOLDER

    def require_production_secret(self) -> None:
        """Refuse to serve real traffic with the secret everyone can read in the source."""
        if self.uses_placeholder_secret:
            raise InsecureSettingsError(
                "SIGNOFF_JWT_SECRET is still the development placeholder. Set it to a long random "
                "value (for example `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
                " or run the embedded stack with `signoff dev`."
            )

    @property
    def temporal_port(self) -> int:
        return int(self.temporal_address.rsplit(":", 1)[1])

    @property
    def mlflow_port(self) -> int:
        parts = urlsplit(self.mlflow_tracking_uri)
        return parts.port or (443 if parts.scheme == "https" else 80)


def get_settings() -> Settings:
    return Settings()
