"""The approver web page, driven in a real browser (Playwright with Debian's Chromium) against
real worker and API processes, Temporal and MLflow. People sign in through a loopback OpenID
Connect provider (`tests.support.oidc_provider`) speaking the real protocol.

The stack here runs its own policy: a move to Production waits on an `http` check whose URL is
a loopback server this module controls. It answers 503 ("not yet", so Temporal keeps retrying
and the check stays RUNNING) until a test releases that request, then `{"passed": true}`."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, Playwright, expect, sync_playwright

from tests.support.http import SIGNOFF, create
from tests.support.mlflow import MlflowServer, SeededVersion, stage_in_mlflow
from tests.support.oidc_provider import LoopbackOidcProvider
from tests.support.polling import wait_until
from tests.support.processes import free_port
from tests.support.stack import SignoffStack, launch_stack
from tests.support.temporal import TemporalServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
XSS = "<img src=x onerror=alert(1)>"
CLIENT_ID = "signoff-web"
USERS = {
    "dana": ["data-scientist"],
    "lee": ["ml-lead"],
    "mia": ["ml-lead"],
    "olga": ["auditor"],
    "ada": ["platform-admin"],
}

POLICY = """\
roles:
  data-scientist: {{"*": CAN_EDIT}}
  ml-lead: {{"*": CAN_MANAGE_PRODUCTION_VERSIONS}}
  platform-admin: {{"*": CAN_MANAGE}}
transitions:
  - models: ["*"]
    to: Production
    checks:
      - {{type: http, name: release-gate, url: "{gate_url}", timeout: 10m}}
    approvals: {{quorum: 2, roles: [ml-lead], self_approval: false}}
  - models: ["*"]
    to: Staging
    approvals: {{quorum: 1, roles: [ml-lead], self_approval: false}}
"""


# -- the check's URL -----------------------------------------------------------------------------


class ReleaseGate:
    """A loopback HTTP check endpoint: 503 for a request until `release(request_id)`."""

    def __init__(self) -> None:
        self.released: set[str] = set()
        self.calls: list[str] = []
        self._lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                request_id = str(body.get("request_id"))
                with gate._lock:
                    gate.calls.append(request_id)
                    passed = request_id in gate.released
                if passed:
                    self._answer(200, {"passed": True, "details": "released by the test"})
                else:
                    self._answer(503, {"message": "still validating"})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/check"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def release(self, request_id: str) -> None:
        with self._lock:
            self.released.add(request_id)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gate() -> Iterator[ReleaseGate]:
    server = ReleaseGate()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def provider() -> Iterator[LoopbackOidcProvider]:
    server = LoopbackOidcProvider(client_id=CLIENT_ID, users=dict(USERS)).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def web_stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
    gate: ReleaseGate,
    provider: LoopbackOidcProvider,
) -> Iterator[SignoffStack]:
    root = tmp_path_factory.mktemp("signoff-web")
    policy = root / "policy.yaml"
    policy.write_text(POLICY.format(gate_url=gate.url))
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    provider.redirect_uris.add(f"{public_url}/ui/auth/callback")
    stack = launch_stack(
        root,
        temporal_server.address,
        mlflow_server.url,
        port=port,
        SIGNOFF_POLICY_FILE=str(policy),
        SIGNOFF_PUBLIC_URL=public_url,
        SIGNOFF_WEB_OIDC_ISSUER=provider.issuer,
        SIGNOFF_WEB_OIDC_CLIENT_ID=CLIENT_ID,
        # Offered explicitly here (it is on by default only under `signoff dev`), for the
        # sign-in without a page load.
        SIGNOFF_WEB_DEV_LOGIN="true",
    )
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def pw() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `apt-get install chromium` (./scripts/test does it).")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(pw: Playwright) -> Iterator[Browser]:
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


class Tab:
    """A fresh browser context and page, recording dialogs, console output and every URL the
    page asked for."""

    def __init__(self, browser: Browser, base_url: str, *, viewport: dict[str, int] | None = None):
        self.base_url = base_url
        self.context = browser.new_context(base_url=base_url, viewport=viewport)
        self.context.set_default_timeout(10_000)
        self.page: Page = self.context.new_page()
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.urls: list[str] = []
        self.page.on("dialog", self._on_dialog)
        self.page.on("console", lambda message: self.console.append(message.text))
        self.page.on("request", lambda request: self.urls.append(request.url))

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def start_sign_in(self, path: str) -> None:
        """Open `path`, where the page offers the sign-in, and go to the identity provider."""
        self.page.goto(path)
        expect(self.page.locator("#login")).to_be_visible()
        self.page.click("#sign-in-oidc")
        expect(self.page.locator("#username")).to_be_visible()

    def sign_in(self, path: str, user: str) -> None:
        """Sign in as `user` at the identity provider, and land back on `path`."""
        self.start_sign_in(path)
        self.page.fill("#username", user)
        self.page.click("#provider-sign-in")
        self.page.wait_for_url(f"{self.base_url}{path}")
        expect(self.page.locator("#login")).to_be_hidden()
        expect(self.page.locator("#whoami")).to_contain_text(user)

    def session_cookie(self) -> dict[str, Any] | None:
        found = [c for c in self.context.cookies() if c["name"] == "signoff_session"]
        return dict(found[0]) if found else None

    def csrf_token(self) -> str:
        return self.page.evaluate(
            "fetch('/ui/api/session').then((r) => r.json()).then((s) => s.csrf_token)"
        )


@pytest.fixture
def open_tab(browser: Browser, web_stack: SignoffStack) -> Iterator[Callable[[], Tab]]:
    tabs: list[Tab] = []

    def make() -> Tab:
        tab = Tab(browser, web_stack.api_url)
        tabs.append(tab)
        return tab

    yield make
    for tab in tabs:
        tab.context.close()


@pytest.fixture
def client(web_stack: SignoffStack) -> Iterator[Callable[..., httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(sub: str, *roles: str) -> httpx.Client:
        made = web_stack.client(sub, *roles)
        clients.append(made)
        return made

    yield make
    for made in clients:
        made.close()


def request_path(request_id: str) -> str:
    return f"/ui/requests/{request_id}"


# -- tests ---------------------------------------------------------------------------------------


def test_pages_are_served_with_a_strict_content_security_policy(web_stack: SignoffStack) -> None:
    with httpx.Client(base_url=web_stack.api_url, timeout=10) as http:
        root = http.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/ui/"
        for path in ("/ui/", request_path("0123abcd"), "/ui/assets/app.js", "/ui/assets/style.css"):
            response = http.get(path)
            assert response.status_code == 200, path
            csp = response.headers["content-security-policy"]
            assert "default-src 'self'" in csp
            assert "script-src 'self'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert response.headers["x-content-type-options"] == "nosniff"
        page = http.get("/ui/").text
        # Every script is a file of this origin: nothing inline, nothing from elsewhere.
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
        assert scripts and all('src="/ui/' in attrs and not body.strip() for attrs, body in scripts)
        assert "http://" not in page and "https://" not in page
        assert http.get("/ui/assets/..%2Fpolicy.yaml").status_code == 404
        assert http.get("/ui/assets/index.py").status_code == 404


def test_approver_sees_the_running_check_then_approves_and_the_version_moves(
    web_stack: SignoffStack,
    gate: ReleaseGate,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
    open_tab: Callable[[], Tab],
) -> None:
    seeded = make_version()
    dana = client("dana", "data-scientist")
    request = create(dana, seeded, "Production", comment="AUC 0.91 on holdout")
    lee = client("lee", "ml-lead")
    first = lee.post(
        "/api/2.0/mlflow/transition-requests/approve",
        json={"name": seeded.name, "version": seeded.version, "stage": "Production"},
    )
    assert first.status_code == 200, first.text

    tab = open_tab()
    page = tab.page
    tab.sign_in("/ui/", "mia")
    expect(page.locator("#whoami")).to_have_text("mia (ml-lead)")

    # The list: the open request, with its running check and one approval of two.
    row = page.locator(f"#list-body tr[data-request-id='{request['id']}']")
    expect(row).to_contain_text(seeded.name)
    expect(row).to_contain_text("None → Production")
    expect(row).to_contain_text("dana")
    expect(row).to_contain_text("1 running")
    expect(row).to_contain_text("1/2")
    row.locator("a").click()
    page.wait_for_url(f"**{request_path(request['id'])}")

    # The request: details, the check still running, the approval so far, the trail.
    details = page.locator("#request-details")
    expect(details).to_contain_text("AUC 0.91 on holdout")
    expect(details).to_contain_text("PENDING")
    expect(page.locator("#policy-hash")).to_have_text(request["policy_hash"])
    expect(page.locator("#policy-words")).to_have_text(
        "2 approvals from ml-lead, not the requester; expires in 7 days; "
        "checks: HTTP check release-gate"
    )
    check = page.locator("#checks li[data-check='http:release-gate']")
    expect(check).to_have_attribute("data-status", "RUNNING")
    expect(check).to_contain_text("still running")
    expect(page.locator("#approvals-title")).to_have_text("Approvals 1/2")
    expect(page.locator("#approvals")).to_contain_text("lee")
    expect(page.locator("#activities li[data-type=REQUESTED_TRANSITION]")).to_contain_text("dana")
    expect(page.locator("#activities li[data-type=APPROVED_REQUEST]")).to_contain_text("lee")
    expect(page.locator("#approve")).to_be_visible()
    expect(page.locator("#reject")).to_be_visible()
    expect(page.locator("#refresh-note")).to_be_visible()

    # The check's URL says yes; the page refreshes by itself and shows it passed.
    gate.release(request["id"])
    expect(check).to_have_attribute("data-status", "PASSED", timeout=30_000)
    expect(check).to_contain_text("released by the test")
    assert stage_in_mlflow(web_stack.mlflow_url, seeded) == "None"

    # Mia approves from the page: the quorum is met and MLflow moves.
    page.fill("#action-comment", "risk reviewed")
    page.click("#approve")
    # A move to Production is confirmed first, naming the change.
    confirm = page.locator("#confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text(f"{seeded.name} version {seeded.version} to Production")
    expect(page.locator("#confirm-yes")).to_be_focused()
    page.click("#confirm-yes")
    expect(details).to_contain_text("APPLIED", timeout=30_000)
    assert stage_in_mlflow(web_stack.mlflow_url, seeded) == "Production"
    expect(page.locator("#approvals-title")).to_have_text("Approvals 2/2")
    expect(page.locator("#activities li[data-type=APPROVED_REQUEST]").last).to_contain_text(
        "risk reviewed"
    )
    expect(page.locator("#activities li[data-type=APPLIED_TRANSITION]")).to_be_visible()
    expect(page.locator("#actions")).to_be_hidden()
    expect(page.locator("#refresh-note")).to_be_hidden()
    assert tab.dialogs == []


def test_the_requester_gets_no_approve_button_but_may_cancel(
    web_stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
    open_tab: Callable[[], Tab],
) -> None:
    seeded = make_version()
    request = create(client("lee", "ml-lead"), seeded, "Staging", comment="try it")

    tab = open_tab()
    page = tab.page
    tab.sign_in(request_path(request["id"]), "lee")
    expect(page.locator("#request-details")).to_contain_text("PENDING")
    expect(page.locator("#actions")).to_be_visible()
    expect(page.locator("#cancel")).to_be_visible()
    # An ml-lead could approve a Staging move, but not their own (self_approval: false).
    expect(page.locator("#approve")).to_be_hidden()

    page.fill("#action-comment", "not ready after all")
    page.click("#cancel")
    expect(page.locator("#request-details")).to_contain_text("CANCELLED")
    expect(page.locator("#actions")).to_be_hidden()
    expect(page.locator("#activities li[data-type=CANCELLED_REQUEST]")).to_contain_text(
        "not ready after all"
    )
    assert stage_in_mlflow(web_stack.mlflow_url, seeded) == "None"


def test_markup_in_a_model_name_and_a_comment_renders_as_text(
    web_stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
    open_tab: Callable[[], Tab],
) -> None:
    name = f"{XSS}-{uuid.uuid4().hex[:6]}"
    comment = f'{XSS}<script>alert("comment")</script>'
    seeded = make_version(name)
    request = create(client("dana", "data-scientist"), seeded, "Staging", comment=comment)

    tab = open_tab()
    page = tab.page
    tab.sign_in("/ui/", "lee")
    row = page.locator(f"#list-body tr[data-request-id='{request['id']}']")
    expect(row.locator("td.model")).to_have_text(name)
    row.locator("a").click()

    details = page.locator("#request-details")
    expect(details.locator("dd.model")).to_have_text(name)
    expect(details.locator("dd.comment")).to_have_text(comment)
    expect(page.locator("#request-title")).to_contain_text(name)
    expect(page.locator("#activities li[data-type=REQUESTED_TRANSITION]")).to_contain_text(comment)
    # Nothing was parsed as markup: no image, no extra script, no dialog.
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 1
    assert tab.dialogs == []


def test_a_forbidden_request_says_why(
    web_stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
    open_tab: Callable[[], Tab],
) -> None:
    request = create(client("dana", "data-scientist"), make_version(), "Staging")
    # A person whose roles give no access to the model: the API's answer is shown, the same
    # 404 as for a request that does not exist (ids cannot be probed).
    tab = open_tab()
    page = tab.page
    tab.sign_in(request_path(request["id"]), "olga")
    message = page.locator("#message")
    expect(message).to_be_visible()
    expect(message).to_contain_text("RESOURCE_DOES_NOT_EXIST")
    body = client("olga", "auditor").get(
        "/api/2.0/signoff/transition-requests/get", params={"id": request["id"]}
    )
    assert body.status_code == 404
    expect(message).to_contain_text(body.json()["message"])
    expect(page.locator("#login")).to_be_hidden()


def test_a_change_made_behind_signoffs_back_stands_out_in_the_trail(
    web_stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
    open_tab: Callable[[], Tab],
) -> None:
    admin = client("ada", "platform-admin")
    seeded = make_version()
    reconcile = admin.post(f"{SIGNOFF}/reconciler/run")  # baseline, if this is the first pass
    assert reconcile.status_code == 200, reconcile.text
    wait_until(lambda: admin.get(f"{SIGNOFF}/reconciler/runs").json()["runs"], "a first pass")
    passes = len(admin.get(f"{SIGNOFF}/reconciler/runs").json()["runs"])
    httpx.post(
        f"{web_stack.mlflow_url}/api/2.0/mlflow/model-versions/transition-stage",
        json={
            "name": seeded.name,
            "version": seeded.version,
            "stage": "Staging",
            "archive_existing_versions": False,
        },
    ).raise_for_status()
    assert admin.post(f"{SIGNOFF}/reconciler/run").status_code == 200
    wait_until(
        lambda: len(admin.get(f"{SIGNOFF}/reconciler/runs").json()["runs"]) > passes,
        "the pass that sees the bypass",
    )
    request = create(client("dana", "data-scientist"), seeded, "Production")

    tab = open_tab()
    tab.sign_in(request_path(request["id"]), "lee")
    flagged = tab.page.locator("#activities li.flagged")
    expect(flagged).to_have_count(1)
    expect(flagged).to_contain_text("Out-of-band change")
    expect(flagged).to_contain_text("stage changed from None to Staging")
    expect(tab.page.locator("#activities li[data-type=REQUESTED_TRANSITION]")).not_to_have_class(
        re.compile("flagged")
    )
