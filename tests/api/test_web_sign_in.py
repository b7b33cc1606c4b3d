"""Signing in to the web page through the identity provider, in a real browser against the real
stack (the fixtures of `test_web_page`): the session cookie's flags, what the ledger keeps, the
refusals (a forged `state`, a replayed code, a wrong `nonce`, an ID token for another
audience), CSRF, sign-out, and the sign-in without a page load."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from playwright.sync_api import Route, expect

from tests.api import test_web_page as web
from tests.api.test_web_page import Tab, request_path
from tests.support.http import create
from tests.support.ledger import ledger_rows
from tests.support.mlflow import SeededVersion
from tests.support.oidc_provider import LoopbackOidcProvider
from tests.support.stack import SignoffStack

# The browser, the stack and the identity provider of the web page's tests.
pw, browser, gate, provider = web.pw, web.browser, web.gate, web.provider
web_stack, open_tab, client = web.web_stack, web.open_tab, web.client


def _refused(tab: Tab, *words: str) -> None:
    reason = tab.page.locator("#refusal-reason")
    expect(reason).to_be_visible()
    for word in words:
        expect(reason).to_contain_text(word)
    assert tab.session_cookie() is None
    expect(tab.page.locator("#sign-in-again")).to_be_visible()


def test_sign_in_through_the_provider_opens_a_hardened_server_side_session(
    web_stack: SignoffStack, open_tab: Callable[[], Tab], provider: LoopbackOidcProvider
) -> None:
    tab = open_tab()
    tab.sign_in("/ui/", "lee")
    expect(tab.page.locator("#whoami")).to_have_text("lee (ml-lead)")
    expect(tab.page.locator("#list-view")).to_be_visible()

    cookie = tab.session_cookie()
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True  # outside `signoff dev`
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["expires"] > 0  # bounded by the absolute lifetime
    # The script cannot read it; the login cookie is gone once the sign-in is done.
    assert "signoff_session" not in tab.page.evaluate("document.cookie")
    assert not [c for c in tab.context.cookies() if c["name"] == "signoff_login"]

    # The ledger keeps only the hash of the session id, with who signed in.
    rows = ledger_rows(web_stack.database_url, "SELECT id_hash, subject, roles FROM web_sessions")
    id_hash = hashlib.sha256(cookie["value"].encode()).hexdigest()
    mine = [row for row in rows if row["id_hash"] == id_hash]
    assert len(mine) == 1 and mine[0]["subject"] == "lee" and "ml-lead" in mine[0]["roles"]
    assert not any(cookie["value"] in str(row) for row in rows)

    # PKCE: the code exchange carried the verifier; a public client sends no secret.
    exchange = provider.token_requests[-1]
    assert exchange["code_verifier"] and "client_secret" not in exchange
    assert exchange["redirect_uri"] == f"{web_stack.api_url}/ui/auth/callback"


def test_a_forged_state_is_refused(
    web_stack: SignoffStack, open_tab: Callable[[], Tab], provider: LoopbackOidcProvider
) -> None:
    tab = open_tab()

    def forge(route: Route) -> None:
        # The provider's answer (a redirect back to Signoff) with the state swapped, as an
        # attacker's link carrying their own code and a state of their choosing would be.
        if route.request.method != "POST":
            route.continue_()
            return
        answer = route.fetch(max_redirects=0)
        location = urlsplit(answer.headers["location"])
        query = {k: v[0] for k, v in parse_qs(location.query).items()}
        query["state"] = "forged-" + query["state"][:8]
        forged = f"{web_stack.api_url}{location.path}?{urlencode(query)}"
        route.fulfill(status=302, headers={"Location": forged})

    tab.page.route(f"{provider.issuer}/authorize", forge)
    tab.start_sign_in("/ui/")
    tab.page.fill("#username", "lee")
    tab.page.click("#provider-sign-in")
    _refused(tab, "state")


def test_a_replayed_code_is_refused(
    web_stack: SignoffStack, open_tab: Callable[[], Tab], provider: LoopbackOidcProvider
) -> None:
    first = open_tab()
    callbacks: list[str] = []
    first.page.on(
        "request", lambda r: callbacks.append(r.url) if "/ui/auth/callback" in r.url else None
    )
    first.sign_in("/ui/", "lee")
    code = parse_qs(urlsplit(callbacks[-1]).query)["code"][0]

    # The same answer again, in the same browser: that sign-in is spent.
    first.page.goto(callbacks[-1])
    expect(first.page.locator("#refusal-reason")).to_contain_text("no sign-in under way")

    # Another browser begins its own sign-in and slips in the used code with its own state:
    # the provider refuses the code a second time, and so does Signoff.
    second = open_tab()
    second.start_sign_in("/ui/")
    state = parse_qs(urlsplit(second.page.url).query)["state"][0]
    second.page.goto(f"/ui/auth/callback?{urlencode({'code': code, 'state': state})}")
    _refused(second, "refused the authorization code", "invalid_grant")


def test_an_id_token_with_the_wrong_nonce_is_refused(
    web_stack: SignoffStack, open_tab: Callable[[], Tab], provider: LoopbackOidcProvider
) -> None:
    tab = open_tab()
    tab.start_sign_in("/ui/")
    provider.tamper_next(nonce="a-nonce-from-another-sign-in")
    tab.page.fill("#username", "lee")
    tab.page.click("#provider-sign-in")
    _refused(tab, "nonce")


def test_an_id_token_for_another_audience_is_refused(
    web_stack: SignoffStack, open_tab: Callable[[], Tab], provider: LoopbackOidcProvider
) -> None:
    tab = open_tab()
    tab.start_sign_in("/ui/")
    provider.tamper_next(aud="another-client")
    tab.page.fill("#username", "lee")
    tab.page.click("#provider-sign-in")
    _refused(tab, "ID token was refused", "audience")


def test_an_expired_id_token_is_refused(
    web_stack: SignoffStack, open_tab: Callable[[], Tab], provider: LoopbackOidcProvider
) -> None:
    tab = open_tab()
    tab.start_sign_in("/ui/")
    provider.tamper_next(exp=int(time.time()) - 3600)
    tab.page.fill("#username", "lee")
    tab.page.click("#provider-sign-in")
    _refused(tab, "expired")


def test_an_id_token_not_signed_by_the_providers_key_is_refused(
    web_stack: SignoffStack, open_tab: Callable[[], Tab], provider: LoopbackOidcProvider
) -> None:
    tab = open_tab()
    tab.start_sign_in("/ui/")
    provider.forge_next_signature()
    tab.page.fill("#username", "lee")
    tab.page.click("#provider-sign-in")
    _refused(tab, "ID token was refused", "not valid")


def test_a_page_call_without_the_csrf_token_is_refused(
    web_stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
    open_tab: Callable[[], Tab],
) -> None:
    seeded = make_version()
    request = create(client("dana", "data-scientist"), seeded, "Staging")
    tab = open_tab()
    tab.sign_in(request_path(request["id"]), "lee")
    target = {"name": seeded.name, "version": seeded.version, "stage": "Staging"}
    # The browser sends the session cookie by itself (as a cross-site form would try to)...
    without = tab.context.request.post(
        "/api/2.0/mlflow/transition-requests/approve", data=target, fail_on_status_code=False
    )
    assert without.status == 403, without.text()
    assert "X-CSRF-Token" in without.json()["message"]
    wrong = tab.context.request.post(
        "/api/2.0/mlflow/transition-requests/approve",
        data=target,
        headers={"X-CSRF-Token": "not-the-token"},
        fail_on_status_code=False,
    )
    assert wrong.status == 403
    # ...and nothing was decided. Reads need no token.
    read = tab.context.request.get(
        "/api/2.0/signoff/transition-requests/get", params={"id": request["id"]}
    )
    assert read.ok and read.json()["request"]["approvals"] == []
    # With the session's token the same call goes through.
    right = tab.context.request.post(
        "/api/2.0/mlflow/transition-requests/approve",
        data=target,
        headers={"X-CSRF-Token": tab.csrf_token()},
        fail_on_status_code=False,
    )
    assert right.status == 200, right.text()


def test_after_sign_out_the_old_cookie_is_refused(
    web_stack: SignoffStack, open_tab: Callable[[], Tab], provider: LoopbackOidcProvider
) -> None:
    """Sign-out ends the session here and at the provider (RP-initiated logout with the ID
    token as `id_token_hint`), which the ledger kept sealed, never in plain text."""
    tab = open_tab()
    tab.sign_in("/ui/", "mia")
    cookie = tab.session_cookie()
    assert cookie is not None
    id_token = provider.id_tokens[-1]
    stored = ledger_rows(web_stack.database_url, "SELECT * FROM web_sessions")
    assert stored and not any(id_token.split(".")[1] in str(row) for row in stored)
    old = {"Cookie": f"signoff_session={cookie['value']}"}
    logouts = len(provider.logouts)
    with httpx.Client(base_url=web_stack.api_url, timeout=10) as http:
        assert (
            http.get("/api/2.0/signoff/transition-requests/search", headers=old).status_code == 200
        )
        tab.page.click("#signout")
        expect(tab.page.locator("#login-reason")).to_have_text("Signed out.")
        assert tab.page.url == f"{web_stack.api_url}/ui/"  # back from the provider
        assert provider.logouts[logouts:] == [
            {
                "sub": "mia",
                "post_logout_redirect_uri": f"{web_stack.api_url}/ui/signed-out",
                "client_id": web.CLIENT_ID,
            }
        ]
        assert any(url.startswith(provider.issuer) and "id_token_hint=" in url for url in tab.urls)
        expect(tab.page.locator("#login")).to_be_visible()
        expect(tab.page.locator("#login-reason")).to_have_text("Signed out.")
        expect(tab.page.locator("#list-view")).to_be_hidden()
        assert tab.session_cookie() is None
        refused = http.get("/api/2.0/signoff/transition-requests/search", headers=old)
        assert refused.status_code == 401
        assert "sign in again" in refused.json()["message"]
        assert http.get("/ui/api/session", headers=old).json()["signed_in"] is False


def test_a_refused_sign_in_then_a_good_one_shows_the_page_without_a_reload(
    web_stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
    open_tab: Callable[[], Tab],
) -> None:
    """The blank-page bug: after a refused sign-in (or a session that ended), a good sign-in
    in the same page load must show the view again."""
    request = create(client("dana", "data-scientist"), make_version(), "Staging")
    tab = open_tab()
    page = tab.page
    page.goto("/ui/")
    expect(page.locator("#dev-login-form")).to_be_visible()
    loads: list[str] = []
    page.on("load", lambda loaded: loads.append(loaded.url))

    # A role the policy does not have: refused, and the sign-in is offered again.
    page.evaluate(
        """() => {
            const box = document.createElement("input");
            box.type = "checkbox"; box.name = "dev-role"; box.value = "root"; box.checked = true;
            document.getElementById("dev-roles").append(box);
        }"""
    )
    page.fill("#dev-user", "lee")
    page.click("#dev-login-form button[type=submit]")
    expect(page.locator("#login-reason")).to_contain_text("no role 'root'")
    expect(page.locator("#list-view")).to_be_hidden()

    # A good one: the list shows, without a page load in between.
    page.fill("#dev-user", "lee")
    assert page.locator("#dev-roles input[value=root]").count() == 0  # the policy's roles only
    page.check("#dev-roles input[value=ml-lead]")
    page.click("#dev-login-form button[type=submit]")
    expect(page.locator("#list-view")).to_be_visible()
    expect(page.locator(f"#list-body tr[data-request-id='{request['id']}']")).to_be_visible()
    expect(page.locator("#whoami")).to_have_text("lee (ml-lead)")

    # The session ends behind the page's back (signed out elsewhere): the next call asks for
    # a sign-in, and signing in again shows the list again.
    with httpx.Client(base_url=web_stack.api_url, timeout=10) as http:
        cookie = tab.session_cookie()
        assert cookie is not None
        http.post(
            "/ui/auth/logout",
            headers={
                "Cookie": f"signoff_session={cookie['value']}",
                "X-CSRF-Token": tab.csrf_token(),
            },
        ).raise_for_status()
    page.click("#tab-mine")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#login-reason")).to_contain_text("sign in again")
    expect(page.locator("#list-view")).to_be_hidden()
    page.fill("#dev-user", "mia")
    page.check("#dev-roles input[value=ml-lead]")
    page.click("#dev-login-form button[type=submit]")
    expect(page.locator("#list-view")).to_be_visible()
    expect(page.locator("#whoami")).to_have_text("mia (ml-lead)")
    expect(page.locator("#tab-mine")).to_have_attribute("aria-selected", "true")  # as left
    page.click("#tab-waiting")
    expect(page.locator(f"#list-body tr[data-request-id='{request['id']}']")).to_be_visible()
    assert loads == []
