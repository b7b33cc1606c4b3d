"""The API's configuration: the worker's settings plus what the API, the CLI and `signoff dev`
need (the policy, token verification, inbound hook secrets, the CLI's own token).

`ApiSettings` is built once per process from `SIGNOFF_*` environment variables (or a `.env`
file), like `workflows.settings.WorkerSettings`, whose fields it inherits.
"""

from __future__ import annotations

import ipaddress
import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode

from workflows.settings import WorkerSettings

DEV_JWT_SECRET_PLACEHOLDER = "change-me-signoff-dev-secret"  # noqa: S105 - a known placeholder
"""The development secret shipped as default. Accepted only by `signoff dev`."""

MIN_JWT_SECRET_CHARS = 32
"""The shortest SIGNOFF_JWT_SECRET a production process accepts."""

OIDC_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
"""Signature algorithms an OIDC issuer may be allowed: asymmetric ones that python-jose
implements. HS* (a shared secret; with a public key as the "secret" it is the classic
algorithm-confusion forgery) and `none` are never accepted from an issuer; PS* would be fine in
principle but python-jose 3.x does not implement it."""

DEFAULT_OIDC_ALGORITHMS = ["RS256", "ES256"]

_JSON_TYPE_NAMES: dict[type, str] = {
    dict: "object",
    list: "list",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


class InsecureSettingsError(ValueError):
    """Raised when a process outside `signoff dev` would run with the placeholder secret."""


def _json_setting(name: str, value: Any, kind: type, kind_name: str, example: str) -> Any:
    """A setting given as JSON text (an environment variable): parsed, or a sentence saying what
    is wrong and what it should look like. Anything but text passes through (set in code)."""
    if not isinstance(value, str | bytes):
        return value
    text = value.strip() if isinstance(value, str) else value.decode().strip()
    if not text:
        return kind()
    try:
        parsed = json.loads(text)
    except ValueError as err:
        raise ValueError(
            f"{name} is not valid JSON ({err}); expected a {kind_name} such as {example}"
        ) from None
    if not isinstance(parsed, kind):
        raise ValueError(
            f"{name} must be a JSON {kind_name} such as {example}, "
            f"got a JSON {_JSON_TYPE_NAMES.get(type(parsed), 'value')}"
        )
    return parsed


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_key_source_url(value: str, what: str) -> str:
    """Signing keys fetched over plain http could be swapped in transit, which is a forged
    token away from any role; only loopback (tests, a sidecar) may use http."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} {value!r} is not an http(s) URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"{what} {value!r} must use https (plain http is allowed only on loopback), "
            "since the signing keys are fetched from it"
        )
    return value


class OidcIssuer(BaseModel):
    """One trusted OIDC token issuer, an item of `SIGNOFF_OIDC_ISSUERS` (a JSON list):

        [{"issuer": "https://keycloak.example/realms/ml", "audience": "signoff",
          "roles_claim": "realm_access.roles"},
         {"issuer": "https://token.actions.githubusercontent.com", "audience": "signoff"}]

    `jwks_url` defaults to the `jwks_uri` of `{issuer}/.well-known/openid-configuration`;
    `algorithms` to RS256 and ES256; `roles_claim` to `SIGNOFF_ROLES_CLAIM`. An explicit
    `"roles_claim": null` says the issuer's tokens carry no roles at all, so only the policy's
    `identities:` rules can grant any (advisable for CI issuers). Whenever the policy has
    `identities:` rules for an issuer, those rules are the only source of its roles and the
    roles claim is ignored.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(description="Exactly the `iss` of the issuer's tokens.")
    audience: str = Field(min_length=1, description="The `aud` its tokens must carry.")
    jwks_url: str | None = Field(None, description="Default: discovered from the issuer.")
    algorithms: list[str] = Field(default_factory=lambda: list(DEFAULT_OIDC_ALGORITHMS))
    roles_claim: str | None = Field(
        None, description="Default: SIGNOFF_ROLES_CLAIM; null: its tokens carry no roles."
    )

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        return check_key_source_url(value, "the issuer")

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        return None if value is None else check_key_source_url(value, "jwks_url")

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"list at least one algorithm ({', '.join(OIDC_ALGORITHMS)})")
        for alg in value:
            if alg in OIDC_ALGORITHMS:
                continue
            if alg.upper().startswith("HS") or alg.lower() == "none":
                raise ValueError(
                    f"{alg!r} is never accepted from an OIDC issuer: tokens from an issuer are "
                    f"verified with its public keys; use {', '.join(OIDC_ALGORITHMS)}"
                )
            if alg.upper().startswith("PS"):
                raise ValueError(f"{alg!r} is not supported by python-jose; use RS* or ES*")
            raise ValueError(f"{alg!r} is not a signature algorithm Signoff accepts from an issuer")
        return list(dict.fromkeys(value))

    @field_validator("roles_claim")
    @classmethod
    def _claim_path(cls, value: str | None) -> str | None:
        if value is not None and not all(value.split(".")):
            raise ValueError(f"roles_claim {value!r} is not a claim name or dotted path")
        return value

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"


class ApiSettings(WorkerSettings):
    """The worker's settings plus the API's and the CLI's."""

    policy_file: Path | None = Field(None, description="Default: the packaged default.yaml.")

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET_PLACEHOLDER)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    roles_claim: str = "roles"
    oidc_issuers: Annotated[list[OidcIssuer], NoDecode] = Field(
        default_factory=list,
        description="SIGNOFF_OIDC_ISSUERS: a JSON list of trusted OIDC issuers (OidcIssuer).",
    )

    token: SecretStr | None = Field(None, description="Bearer token used by CLI client commands.")
    oidc_audience: str = Field(
        "signoff",
        description="SIGNOFF_OIDC_AUDIENCE: the audience CLI client commands ask GitHub Actions "
        "for when they use the job's OIDC token.",
    )
    # GitHub Actions' own variables (not SIGNOFF_*), set in a job granted `id-token: write`:
    # where and with what the CLI requests the job's OIDC token.
    actions_id_token_request_url: str | None = Field(
        None, validation_alias=AliasChoices("ACTIONS_ID_TOKEN_REQUEST_URL")
    )
    actions_id_token_request_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    )

    hook_secrets: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict,
        description="SIGNOFF_HOOK_SECRETS: a JSON object naming each inbound decision source and "
        'its Standard Webhooks secret, e.g. {"slack": "whsec_..."}; the source is the '
        "{source} of POST /api/2.0/signoff/hooks/decisions/{source}.",
    )
    github_webhook_secret: SecretStr | None = Field(
        None,
        description="SIGNOFF_GITHUB_WEBHOOK_SECRET: the GitHub App's webhook secret; without it "
        "POST /api/2.0/signoff/hooks/github refuses everything.",
    )
    mlflow_webhook_secret: SecretStr | None = Field(
        None,
        description="The secret of the MLflow webhook pointed at /api/2.0/signoff/hooks/mlflow; "
        "without it, MLflow's webhooks are refused.",
    )

    slack_signing_secret: SecretStr | None = Field(
        None,
        description="SIGNOFF_SLACK_SIGNING_SECRET: the Slack app's signing secret; without it, "
        "POST /api/2.0/signoff/hooks/slack (the app's interactivity URL) is refused.",
    )

    web_oidc_issuer: str | None = Field(
        None,
        description="SIGNOFF_WEB_OIDC_ISSUER: the identity provider people sign in to the web page "
        "with (OpenID Connect, authorization code flow with PKCE); discovered via "
        "{issuer}/.well-known/openid-configuration. Without it the page offers no sign-in "
        "(except the development one).",
    )
    web_oidc_client_id: str | None = Field(
        None,
        description="SIGNOFF_WEB_OIDC_CLIENT_ID: the page's client at the provider; also the "
        "audience its ID tokens must carry.",
    )
    web_oidc_client_secret: SecretStr | None = Field(
        None,
        description="SIGNOFF_WEB_OIDC_CLIENT_SECRET: for a confidential client (sent with "
        "client_secret_basic); a public client uses PKCE alone.",
    )
    web_oidc_scopes: str = Field(
        "openid profile email", description="SIGNOFF_WEB_OIDC_SCOPES: space-separated scopes."
    )
    web_oidc_roles_claim: str | None = Field(
        None,
        description="SIGNOFF_WEB_OIDC_ROLES_CLAIM: where the ID token carries roles (dotted "
        "path); default: the roles_claim of the issuer in SIGNOFF_OIDC_ISSUERS, else "
        "SIGNOFF_ROLES_CLAIM. The policy's `identities:` rules for the issuer, when it has "
        "any, are the only source of roles.",
    )
    web_dev_login: bool | None = Field(
        None,
        description="SIGNOFF_WEB_DEV_LOGIN: offer the development sign-in (pick a user and "
        "roles from the policy, no password). Default: only under `signoff dev`.",
    )
    web_cookie_secure: bool | None = Field(
        None,
        description="SIGNOFF_WEB_COOKIE_SECURE: mark the session cookie Secure. Default: yes, "
        "except under `signoff dev` (plain http on loopback).",
    )
    web_session_idle_s: int = Field(
        1800, ge=60, description="SIGNOFF_WEB_SESSION_IDLE_S: a session unused this long ends."
    )
    web_session_max_s: int = Field(
        12 * 3600,
        ge=60,
        description="SIGNOFF_WEB_SESSION_MAX_S: a session ends this long after sign-in, however "
        "busy.",
    )
    rate_limit_per_s: float = Field(
        50.0,
        ge=0,
        description="SIGNOFF_RATE_LIMIT_PER_S: calls a second each principal may make, sustained, "
        "to one API process (a token bucket per process; 0: no limit). Past it: 429 "
        "REQUEST_LIMIT_EXCEEDED with Retry-After.",
    )
    rate_limit_burst: int = Field(
        200,
        ge=1,
        description="SIGNOFF_RATE_LIMIT_BURST: calls a principal may make at once before the "
        "sustained rate applies.",
    )
    shutdown_drain_s: float = Field(
        5.0,
        ge=0,
        description="SIGNOFF_SHUTDOWN_DRAIN_S: after SIGTERM the API keeps listening this long, "
        "answering /readyz and new calls 503 (with Retry-After) while the calls in flight "
        "finish, so load balancers move traffic elsewhere; then it stops listening and gives "
        "the calls still open up to 10 s.",
    )
    _dev_stack: bool = PrivateAttr(False)

    @field_validator("oidc_audience", mode="before")
    @classmethod
    def _default_audience(cls, value: Any) -> Any:
        return value or "signoff"  # an empty SIGNOFF_OIDC_AUDIENCE means the default

    @field_validator("hook_secrets", mode="before")
    @classmethod
    def _parse_hook_secrets(cls, value: Any) -> Any:
        example = '{"slack": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}'
        parsed = _json_setting(
            "SIGNOFF_HOOK_SECRETS", value, dict, "object of source -> secret", example
        )
        if isinstance(parsed, dict) and not all(isinstance(v, str) and v for v in parsed.values()):
            raise ValueError(
                f"SIGNOFF_HOOK_SECRETS must be a JSON object of source -> secret, such as {example}"
            )
        return parsed

    @field_validator("oidc_issuers", mode="before")
    @classmethod
    def _parse_oidc_issuers(cls, value: Any) -> Any:
        example = '[{"issuer": "https://idp.example", "audience": "signoff"}]'
        return _json_setting("SIGNOFF_OIDC_ISSUERS", value, list, "list of issuers", example)

    @field_validator("oidc_issuers")
    @classmethod
    def _check_oidc_issuers(cls, value: list[OidcIssuer], info: ValidationInfo) -> list[OidcIssuer]:
        # jwt_issuer and roles_claim are declared above, so they are validated already.
        jwt_issuer = info.data.get("jwt_issuer")
        roles_claim = info.data.get("roles_claim", "roles")
        seen: set[str] = set()
        resolved: list[OidcIssuer] = []
        for item in value:
            if item.issuer in seen:
                raise ValueError(f"SIGNOFF_OIDC_ISSUERS lists the issuer {item.issuer!r} twice")
            seen.add(item.issuer)
            if jwt_issuer is not None and item.issuer == jwt_issuer:
                raise ValueError(
                    f"SIGNOFF_OIDC_ISSUERS lists {item.issuer!r}, which is also "
                    "SIGNOFF_JWT_ISSUER (the development secret's issuer); use different ones"
                )
            if "roles_claim" not in item.model_fields_set:
                item = item.model_copy(update={"roles_claim": roles_claim})
            resolved.append(item)
        return resolved

    @field_validator("web_oidc_issuer")
    @classmethod
    def _web_issuer_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        return check_key_source_url(value, "SIGNOFF_WEB_OIDC_ISSUER")

    @field_validator("web_oidc_scopes")
    @classmethod
    def _openid_scope(cls, value: str) -> str:
        scopes = value.replace(",", " ").split()
        if "openid" not in scopes:
            scopes.insert(0, "openid")  # without it the provider issues no ID token
        return " ".join(dict.fromkeys(scopes))

    @model_validator(mode="after")
    def _web_oidc_complete(self) -> ApiSettings:
        if bool(self.web_oidc_issuer) != bool(self.web_oidc_client_id):
            raise ValueError(
                "the web page's sign-in needs both SIGNOFF_WEB_OIDC_ISSUER and "
                "SIGNOFF_WEB_OIDC_CLIENT_ID (or neither)"
            )
        return self

    def mark_dev_stack(self) -> None:
        """Called by `signoff dev` only: the development sign-in is offered and the session
        cookie may travel over plain http on loopback."""
        self._dev_stack = True

    @property
    def dev_stack(self) -> bool:
        return self._dev_stack

    @property
    def web_oidc_enabled(self) -> bool:
        return bool(self.web_oidc_issuer and self.web_oidc_client_id)

    @property
    def web_dev_login_enabled(self) -> bool:
        return self._dev_stack if self.web_dev_login is None else self.web_dev_login

    @property
    def web_cookie_is_secure(self) -> bool:
        return not self._dev_stack if self.web_cookie_secure is None else self.web_cookie_secure

    @property
    def web_redirect_uri(self) -> str:
        """Where the provider sends the browser back: `<SIGNOFF_PUBLIC_URL>/ui/auth/callback`."""
        return f"{self.callback_base_url}/ui/auth/callback"

    @cached_property
    def resolved_policy_file(self) -> Path:
        if self.policy_file is not None:
            return self.policy_file
        import policies  # the package's import costs a CLI client command, which needs no policy

        return Path(policies.__file__).parent / "default.yaml"

    def require_production_secret(self) -> None:
        """Refuse to serve real traffic with the secret everyone can read in the source, or
        with one short enough to guess (an empty secret file, a default left in a manifest)."""
        if self.jwt_secret.get_secret_value() == DEV_JWT_SECRET_PLACEHOLDER:
            raise InsecureSettingsError(
                "SIGNOFF_JWT_SECRET is still the development placeholder. Set it to a long random "
                "value (for example `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
                " or run the embedded stack with `signoff dev`."
            )
        if len(self.jwt_secret.get_secret_value()) < MIN_JWT_SECRET_CHARS:
            raise InsecureSettingsError(
                f"SIGNOFF_JWT_SECRET is shorter than {MIN_JWT_SECRET_CHARS} characters. Set it "
                "to a long random value (for example `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`)."
            )

    @property
    def temporal_port(self) -> int:
        return int(self.temporal_address.rsplit(":", 1)[1])

    @property
    def mlflow_port(self) -> int:
        parts = urlsplit(self.mlflow_tracking_uri)
        return parts.port or (443 if parts.scheme == "https" else 80)
