"""The README's identity-provider notes, through the real sign-in in a real browser: a loopback
provider issues ID tokens shaped like Keycloak's, Okta's and Entra ID's (issuer, endpoints and
claims as each documents them), and an API configured as the README says for that provider
maps each person to the right subject and roles.

- Keycloak: `SIGNOFF_WEB_OIDC_ROLES_CLAIM=realm_access.roles`; the subject is Keycloak's user
  id (`sub`), not the renamable `preferred_username`. Sign-out goes through Keycloak's
  end-session endpoint.
- Okta: `SIGNOFF_WEB_OIDC_ROLES_CLAIM=groups`.
- Entra ID: the README's `identities:` example: people named by tenant (`tid`) and object id
  (`oid`); the issuer's `roles` claim then grants nothing.

One API process per provider (no worker: signing in runs no workflow), started together."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.api import test_web_page as web
from tests.api.test_web_page import Tab
from tests.support.mlflow import MlflowServer
from tests.support.oidc_provider import ENTRA_TENANT, LoopbackOidcProvider
from tests.support.processes import free_port
from tests.support.stack import SignoffStack, launch_api
from tests.support.temporal import TemporalServer

pw, browser = web.pw, web.browser

CLIENT_ID = "0f3c8a57-6d7e-4c1a-9b59-3f0d2b7d9e11"  # Entra's client ids are application ids
ROLES = """\
roles:
  ml-lead: {"*": CAN_MANAGE_STAGING_VERSIONS}
  risk-officer: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
  platform-admin: {"*": CAN_MANAGE}
transitions:
  - models: ["*"]
    to: Staging
    approvals: {quorum: 1, roles: [ml-lead]}
"""
ENTRA_IDENTITIES = """\
identities:
  - issuer: {issuer}
    claims:
      tid: "{tenant}"
      oid: "{oid}"
    roles: [risk-officer]
"""
PROVIDERS: dict[str, dict[str, Any]] = {
    "keycloak": {
        "users": {"carol": ["ml-lead"]},
        "env": {"SIGNOFF_WEB_OIDC_ROLES_CLAIM": "realm_access.roles"},
    },
    "okta": {
        "users": {"dana": ["risk-officer", "Everyone"]},
        "env": {"SIGNOFF_WEB_OIDC_ROLES_CLAIM": "groups"},
    },
    # Erin holds an app role in her token, but no identity rule names her.
    "entra": {"users": {"carol": [], "erin": ["platform-admin"]}, "env": {}},
}


class Signed:
    """One provider and the API configured for it."""

    def __init__(self, provider: LoopbackOidcProvider, stack: SignoffStack) -> None:
        self.provider = provider
        self.stack = stack


@pytest.fixture(scope="module")
def providers(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
) -> Iterator[dict[str, Signed]]:
    started: dict[str, LoopbackOidcProvider] = {}
    for flavor, setup in PROVIDERS.items():
        started[flavor] = LoopbackOidcProvider(
            client_id=CLIENT_ID, users=dict(setup["users"]), flavor=flavor
        ).start()

    def launch(flavor: str) -> SignoffStack:
        provider, root = started[flavor], tmp_path_factory.mktemp(f"signoff-{flavor}")
        policy = ROLES
        if flavor == "entra":
            oid = provider.claims_of("carol")["oid"]
            policy += ENTRA_IDENTITIES.format(issuer=provider.issuer, tenant=ENTRA_TENANT, oid=oid)
        (root / "policy.yaml").write_text(policy)
        port = free_port()
        public_url = f"http://127.0.0.1:{port}"
        provider.redirect_uris.add(f"{public_url}/ui/auth/callback")
        provider.post_logout_redirect_uris.add(f"{public_url}/ui/signed-out")
        return launch_api(
            root,
            temporal_server.address,
            mlflow_server.url,
            port=port,
            SIGNOFF_POLICY_FILE=str(root / "policy.yaml"),
            SIGNOFF_PUBLIC_URL=public_url,
            SIGNOFF_WEB_OIDC_ISSUER=provider.issuer,
            SIGNOFF_WEB_OIDC_CLIENT_ID=CLIENT_ID,
            **PROVIDERS[flavor]["env"],
        )

    with ThreadPoolExecutor(len(started)) as pool:
        stacks = dict(zip(started, pool.map(launch, started), strict=True))
    try:
        yield {flavor: Signed(started[flavor], stacks[flavor]) for flavor in started}
    finally:
        for flavor in started:
            stacks[flavor].stop()
            started[flavor].close()


@pytest.fixture
def sign_in(browser: Browser) -> Iterator[Callable[[Signed, str], tuple[Tab, dict[str, Any]]]]:
    tabs: list[Tab] = []

    def go(signed: Signed, user: str) -> tuple[Tab, dict[str, Any]]:
        """Sign `user` in at the provider; (the tab, what `/ui/api/session` says)."""
        tab = Tab(browser, signed.stack.api_url)
        tabs.append(tab)
        tab.start_sign_in("/ui/")
        provider = signed.provider
        assert tab.page.url.startswith(provider.base_url + provider.paths["authorize"])
        tab.page.fill("#username", user)
        tab.page.click("#provider-sign-in")
        tab.page.wait_for_url(f"{signed.stack.api_url}/ui/")
        expect(tab.page.locator("#login")).to_be_hidden()
        session = tab.page.evaluate("fetch('/ui/api/session').then((r) => r.json())")
        assert session["signed_in"] is True
        return tab, session

    yield go
    for tab in tabs:
        tab.context.close()


def test_keycloak_realm_roles_and_the_user_id_as_subject_then_sign_out_at_keycloak(
    providers: dict[str, Signed], sign_in: Callable[..., tuple[Tab, dict[str, Any]]]
) -> None:
    keycloak = providers["keycloak"]
    assert keycloak.provider.issuer.endswith("/realms/acme")
    tab, session = sign_in(keycloak, "carol")
    subject = keycloak.provider.subject_of("carol")
    assert session["subject"] == subject != "carol"  # Keycloak's user id, a UUID
    # Realm roles, Keycloak's defaults among them (the policy simply has no such role).
    assert session["roles"] == ["ml-lead", "default-roles-acme", "offline_access"]
    expect(tab.page.locator("#whoami")).to_contain_text(subject)

    tab.page.click("#signout")
    expect(tab.page.locator("#login-reason")).to_have_text("Signed out.")
    assert keycloak.provider.logouts[-1] == {
        "sub": subject,
        "post_logout_redirect_uri": f"{keycloak.stack.api_url}/ui/signed-out",
        "client_id": CLIENT_ID,
    }


def test_okta_groups_are_the_roles(
    providers: dict[str, Signed], sign_in: Callable[..., tuple[Tab, dict[str, Any]]]
) -> None:
    okta = providers["okta"]
    assert okta.provider.issuer.endswith("/oauth2/default")
    _, session = sign_in(okta, "dana")
    assert session["subject"] == okta.provider.subject_of("dana")
    assert session["subject"].startswith("00u")
    assert session["roles"] == ["risk-officer", "Everyone"]


def test_entra_people_named_by_tenant_and_object_id_in_identities(
    providers: dict[str, Signed], sign_in: Callable[..., tuple[Tab, dict[str, Any]]]
) -> None:
    entra = providers["entra"]
    assert entra.provider.issuer.endswith(f"/{ENTRA_TENANT}/v2.0")
    _, carol = sign_in(entra, "carol")
    assert carol["subject"] == entra.provider.subject_of("carol")  # Entra's pairwise sub
    assert carol["roles"] == ["risk-officer"]
    # The issuer has identity rules: they alone grant roles, whatever `roles` the token has.
    _, erin = sign_in(entra, "erin")
    assert erin["roles"] == []
    with httpx.Client(base_url=entra.stack.api_url, timeout=10) as http:
        assert http.get("/ui/api/session").json()["signed_in"] is False
