"""One Signoff stack for the security suite, configured for every surface it probes: the
development secret, two OIDC issuers of a loopback provider (one whose JWKS stalls), MLflow's
inbound webhook, a Standard Webhooks decision source, outbound webhooks, and a policy with a
role bound to other models only (for the by-id lookups)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_oidc import Keys, OidcProvider
from tests.support.mlflow import MlflowServer, SeededVersion, seed_version
from tests.support.stack import SignoffStack, running_stack
from tests.support.temporal import TemporalServer
from tests.support.webhooks import webhook_env

IDP_AUDIENCE = "signoff-security"
MLFLOW_SECRET = "security-mlflow-webhook-secret"
CHAT_SECRET = "whsec_" + base64.b64encode(b"security-chat-signing-secret!!!!").decode()
POLICY = """roles:
  data-scientist: {"*": CAN_EDIT}
  viewer: {"*": CAN_READ}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  platform-admin: {"*": CAN_MANAGE}
  outsider: {"elsewhere-*": CAN_MANAGE}
transitions:
  - to: Staging
    approvals: {quorum: 1, roles: [ml-lead]}
  - to: Production
    approvals: {quorum: 1, roles: [ml-lead]}
  - to: "@*"
    approvals: {quorum: 1, roles: [ml-lead]}
directory:
  chat:
    U-LEE: {user: lee, roles: [ml-lead]}
"""


@pytest.fixture(scope="package")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="package")
def provider(keys: Keys) -> Iterator[OidcProvider]:
    """`idp`: an issuer found by discovery; `stall`: an issuer whose JWKS never answers until
    the test releases it (`provider.holds`)."""
    server = OidcProvider()
    server.publish("idp", keys.rsa, keys.ec)
    server.publish("stall", keys.fresh)
    server.hold("stall")
    try:
        yield server
    finally:
        for _, release in server.holds.values():
            release.set()
        server.close()


@pytest.fixture(scope="package")
def security_stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
    provider: OidcProvider,
) -> Iterator[SignoffStack]:
    issuers = [
        {"issuer": provider.issuer("idp"), "audience": IDP_AUDIENCE},
        {
            "issuer": provider.issuer("stall"),
            "audience": IDP_AUDIENCE,
            "jwks_url": f"{provider.issuer('stall')}/jwks",
        },
    ]
    with running_stack(
        tmp_path_factory,
        "security",
        temporal_server.address,
        mlflow_server.url,
        policy=POLICY,
        SIGNOFF_OIDC_ISSUERS=json.dumps(issuers),
        SIGNOFF_MLFLOW_WEBHOOK_SECRET=MLFLOW_SECRET,
        SIGNOFF_HOOK_SECRETS=json.dumps({"chat": CHAT_SECRET}),
        **webhook_env(),
    ) as stack:
        yield stack
        log = (stack.root / "api.log").read_text(errors="replace")
        assert "eyJ" not in log, "a token (or part of one) was logged"


@pytest.fixture(scope="package")
def seeded(security_stack: SignoffStack) -> SeededVersion:
    """A registered version, so a 401 or 404 is never a missing model's."""
    with httpx.Client(base_url=security_stack.mlflow_url, timeout=30) as mlflow:
        return seed_version(mlflow)
