"""The development sign-in and the cookie's `Secure` flag follow where the API runs: offered,
and cookies over loopback http, under `signoff dev` only (or where the operator says so).
The real application, in process, over its own SQLite ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from tests.support.tokens import TEST_JWT_SECRET


def _app(tmp_path: Path, *, dev_stack: bool, **values: object) -> Iterator[TestClient]:
    settings = ApiSettings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        jwt_secret=TEST_JWT_SECRET,
        **values,
    )
    if dev_stack:
        settings.mark_dev_stack()
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as http:
        yield http


@pytest.fixture
def production(tmp_path: Path) -> Iterator[TestClient]:
    yield from _app(tmp_path, dev_stack=False)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[TestClient]:
    yield from _app(tmp_path, dev_stack=True)


@pytest.fixture
def explicit(tmp_path: Path) -> Iterator[TestClient]:
    yield from _app(tmp_path, dev_stack=False, web_dev_login=True)


def test_outside_signoff_dev_there_is_no_development_sign_in(production: TestClient) -> None:
    info = production.get("/ui/api/session").json()
    assert info["signed_in"] is False and info["dev_sign_in"] is False and info["dev_roles"] == []
    answer = production.post("/ui/auth/dev-login", json={"subject": "eve", "roles": ["ml-lead"]})
    assert answer.status_code == 404
    assert "set-cookie" not in answer.headers


def test_under_signoff_dev_it_is_offered_and_the_cookie_may_travel_over_http(
    dev: TestClient,
) -> None:
    info = dev.get("/ui/api/session").json()
    assert info["dev_sign_in"] is True and "ml-lead" in info["dev_roles"]
    answer = dev.post("/ui/auth/dev-login", json={"subject": "dana", "roles": ["ml-lead"]})
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("signoff_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    assert answer.json()["subject"] == "dana" and answer.json()["roles"] == ["ml-lead"]
    assert dev.get("/ui/api/session").json()["signed_in"] is True
    # Roles the policy does not have are refused.
    refused = dev.post("/ui/auth/dev-login", json={"subject": "dana", "roles": ["root"]})
    assert refused.status_code == 400 and "no role 'root'" in refused.json()["message"]


def test_offered_explicitly_elsewhere_the_cookie_stays_secure(explicit: TestClient) -> None:
    answer = explicit.post("/ui/auth/dev-login", json={"subject": "dana", "roles": []})
    assert answer.status_code == 200, answer.text
    assert "Secure" in answer.headers["set-cookie"]


def test_without_a_provider_the_sign_in_says_what_to_configure(production: TestClient) -> None:
    page = production.get("/ui/auth/login", follow_redirects=False)
    assert page.status_code == 400
    assert "SIGNOFF_WEB_OIDC_ISSUER" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_the_provider_needs_both_an_issuer_and_a_client_id() -> None:
    with pytest.raises(ValueError, match="both SIGNOFF_WEB_OIDC_ISSUER and"):
        ApiSettings(web_oidc_issuer="https://idp.example")
    with pytest.raises(ValueError, match="must use https"):
        ApiSettings(web_oidc_issuer="http://idp.example", web_oidc_client_id="signoff")
    settings = ApiSettings(
        web_oidc_issuer="https://idp.example",
        web_oidc_client_id="signoff",
        public_url="https://s.example/",
    )
    assert settings.web_oidc_enabled
    assert settings.web_redirect_uri == "https://s.example/ui/auth/callback"
    assert settings.web_oidc_scopes == "openid profile email"
    assert ApiSettings(web_oidc_scopes="email,profile").web_oidc_scopes == "openid email profile"
