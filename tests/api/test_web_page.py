"""The approver web page, driven in a real browser (Playwright with Debian's Chromium) against
real worker and API processes, Temporal and MLflow. People sign in through a loopback OpenID
Connect provider (`tests.support.oidc_provider`) speaking the real protocol.

The stack here runs its own policy: a move to Production waits on an `http` check whose URL is
a loopback server this module controls. It answers 503 ("not yet", so Temporal keeps retrying
and the check stays RUNNING) until a test releases that request, then `{"passed": true}`."""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, Playwright, expect, sync_playwright
from sqlalchemy import bindparam, text

from tests.support.http import SIGNOFF, create
from tests.support.mlflow import (
    MlflowServer,
    SeededVersion,
    mlflow_version,
    seed_version,
    stage_in_mlflow,
)
from tests.support.oidc_provider import LoopbackOidcProvider
from tests.support.polling import wait_until
from tests.support.processes import free_port
from tests.support.stack import SignoffStack, launch_stack
from tests.support.temporal import TemporalServer
from workflows.domain import AuditEntry, AuditType, RequestSnapshot, RequestState
from workflows.ledger import Ledger
from workflows.ledger.requests import add_entries, index_approver_roles, request_row

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
    break_glass: true
  - models: ["*"]
    to: "@release"
    when: {{tags: {{risk_tier: high}}}}
    approvals: {{quorum: 1, roles: [ml-lead], self_approval: false}}
    freezes: [{{from: {freeze_from}, to: {freeze_to}, reason: "release freeze"}}]
  - models: ["*"]
    to: "@release"
    approvals: {{quorum: 1, roles: [ml-lead], self_approval: false}}
"""
FREEZE_DAYS = 10
"""`@release` of a `risk_tier: high` version is frozen from yesterday to ten days on (UTC): an
approved request is SCHEDULED, to apply at midnight UTC after the freeze's last day."""
DIGEST_MAX_FILE_MB = 0.002
"""Artifact files above 2,097 bytes are pinned by path and size only."""


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
def gate(stack_ledger: str) -> Iterator[ReleaseGate]:
    """One per ledger's stack (`stack_ledger`): what it records is that stack's alone."""
    server = ReleaseGate()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def provider(stack_ledger: str) -> Iterator[LoopbackOidcProvider]:
    """One per ledger's stack (`stack_ledger`): what it records is that stack's alone."""
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
    today = datetime.now(UTC).date()
    policy.write_text(
        POLICY.format(
            gate_url=gate.url,
            freeze_from=today - timedelta(days=1),
            freeze_to=today + timedelta(days=FREEZE_DAYS),
        )
    )
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    provider.redirect_uris.add(f"{public_url}/ui/auth/callback")
    provider.post_logout_redirect_uris.add(f"{public_url}/ui/signed-out")
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
        SIGNOFF_DIGEST_MAX_FILE_MB=str(DIGEST_MAX_FILE_MB),
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

    def __init__(
        self,
        browser: Browser,
        base_url: str,
        *,
        viewport: dict[str, int] | None = None,
        timezone_id: str | None = None,
    ):
        self.base_url = base_url
        self.context = browser.new_context(
            base_url=base_url, viewport=viewport, timezone_id=timezone_id
        )
        # Playwright's own default: a bound on a loaded CI machine, never a figure tested.
        self.context.set_default_timeout(30_000)
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
        pages = ("/ui/", "/ui/signed-out", request_path("0123abcd"))
        for path in (*pages, "/ui/assets/app.js", "/ui/assets/style.css"):
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
    # Lee also holds a role this rule does not count: only the one he approves in is recorded.
    lee = client("lee", "data-scientist", "ml-lead")
    first = lee.post(
        "/api/2.0/mlflow/transition-requests/approve",
        json={"name": seeded.name, "version": seeded.version, "stage": "Production"},
    )
    assert first.status_code == 200, first.text
    assert first.json()["activity"]["roles"] == ["ml-lead"]
    stored = lee.get(f"{SIGNOFF}/transition-requests/get", params={"id": request["id"]}).json()
    assert [(a["user_id"], a["roles"]) for a in stored["request"]["approvals"]] == [
        ("lee", ["ml-lead"])
    ]

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
    expect(page.locator("#approvals li[data-kind=APPROVED]")).to_contain_text("lee · ml-lead")
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


def test_a_break_glass_review_waits_for_its_reviewer_in_the_inbox(
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
    open_tab: Callable[[], Tab],
) -> None:
    seeded = make_version()
    moved = client("ada", "platform-admin").post(
        "/api/2.0/mlflow/databricks/model-versions/transition-stage",
        json={
            "name": seeded.name,
            "version": seeded.version,
            "stage": "Staging",
            "comment": "INC-5: hotfix now",
        },
    )
    assert moved.status_code == 200, moved.text

    tab = open_tab()
    tab.sign_in("/ui/", "lee")  # an ml-lead: the Staging rule's approvers review its moves
    row = tab.page.locator("#reviews-body tr", has_text=seeded.name)
    expect(row).to_contain_text("ada")
    expect(row).to_contain_text("INC-5: hotfix now")
    expect(row).to_contain_text("None → Staging")
    row.get_by_role("button", name="Acknowledge").click()
    expect(row).to_have_count(0)
    listed = client("lee", "ml-lead").get(
        "/api/2.0/signoff/break-glass/reviews/list", params={"name": seeded.name, "state": "all"}
    )
    [review] = listed.json()["reviews"]
    assert review["state"] == "ACKNOWLEDGED"
    assert [a["user_id"] for a in review["acknowledgements"]] == ["lee"]


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


# -- the whole path, as people take it ---------------------------------------------------------


def shoot(page: Page, name: str, tmp_path: Path) -> Path:
    """Save a screenshot: into $SIGNOFF_SCREENSHOTS (`scripts/screenshots` points it at
    docs/screenshots) when set, else into the test's tmp_path."""
    folder = Path(os.environ.get("SIGNOFF_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    return path


def assert_no_horizontal_scroll(page: Page) -> None:
    """The page is no wider than the window; else name the elements that stick out."""
    wide = page.evaluate(
        """() => {
            const limit = document.documentElement.clientWidth;
            if (document.documentElement.scrollWidth <= limit) return [];
            return Array.from(document.querySelectorAll("body *"))
                .filter((node) => node.getBoundingClientRect().right > limit + 1)
                .slice(0, 8)
                .map((node) => `${node.tagName}#${node.id}.${node.className}`);
        }"""
    )
    assert wide == [], wide


def test_a_request_from_the_model_page_is_approved_by_two_people_and_applied(
    web_stack: SignoffStack,
    gate: ReleaseGate,
    make_version: Callable[..., SeededVersion],
    open_tab: Callable[..., Tab],
    tmp_path: Path,
) -> None:
    champion = make_version()
    httpx.post(
        f"{web_stack.mlflow_url}/api/2.0/mlflow/model-versions/transition-stage",
        json={
            "name": champion.name,
            "version": champion.version,
            "stage": "Production",
            "archive_existing_versions": False,
        },
    ).raise_for_status()
    seeded = make_version(champion.name)

    # Dana asks for Production from the model's page.
    dana = open_tab()
    dana.sign_in(f"/ui/models/{seeded.name}", "dana")
    versions = dana.page.locator("#versions-body")
    expect(versions.locator(f"tr[data-version='{champion.version}']")).to_contain_text("Production")
    expect(versions.locator(f"tr[data-version='{seeded.version}']")).to_contain_text("None")
    dana.page.select_option("#request-version", seeded.version)
    dana.page.select_option("#request-target", "Production")
    dana.page.fill("#request-comment", "AUC 0.93 on the March holdout")
    dana.page.click("#request-form button[type=submit]")
    dana.page.wait_for_url("**/ui/requests/*")
    request_id = dana.page.url.rsplit("/", 1)[1]
    expect(dana.page.locator("#request-details")).to_contain_text("PENDING")
    # Her own request: she may cancel, not approve, and the page says why.
    expect(dana.page.locator("#approve")).to_be_hidden()
    expect(dana.page.locator("#cancel")).to_be_visible()
    expect(dana.page.locator("#approve-refusal")).to_contain_text(
        "to approve a transition to Production CAN_MANAGE_PRODUCTION_VERSIONS is needed"
    )
    gate.release(request_id)

    approvers = {"lee": open_tab(), "mia": open_tab()}
    for number, (user, tab) in enumerate(approvers.items(), start=1):
        page = tab.page
        tab.sign_in("/ui/", user)
        expect(page.locator("#tab-waiting")).to_have_attribute("aria-selected", "true")
        row = page.locator(f"#list-body tr[data-request-id='{request_id}']")
        expect(row).to_contain_text(seeded.name)
        expect(row).to_contain_text("None → Production")
        expect(row).to_contain_text("dana")
        expect(row).to_contain_text(f"{number - 1}/2")
        expect(row).to_contain_text("1 passed", timeout=30_000)
        if number == 1:
            shoot(page, "inbox.png", tmp_path)
        row.locator("a").click()
        page.wait_for_url(f"**{request_path(request_id)}")

        # The evidence: what is asked, the policy in words, the check and what it said, what
        # happens to the version in Production now, where to look in MLflow.
        details = page.locator("#request-details")
        expect(details).to_contain_text("AUC 0.93 on the March holdout")
        expect(page.locator("#policy-words")).to_contain_text("2 approvals from ml-lead")
        check = page.locator("#checks li[data-check='http:release-gate']")
        expect(check).to_have_attribute("data-status", "PASSED")
        expect(check.locator("pre.evidence")).to_contain_text("released by the test")
        expect(page.locator("#holder")).to_contain_text(
            f"version {champion.version} stays in Production"
        )
        links = page.locator("#mlflow-links a")
        expect(links.first).to_have_attribute(
            "href", re.compile(rf"/#/models/.*/versions/{seeded.version}$")
        )
        expect(links.nth(1)).to_have_attribute("href", re.compile(rf"/#/runs/{seeded.run_id}$"))

        if number == 1:
            page.fill("#comment-text", "Looks good; the holdout is the right one.")
            page.click("#comment-form button[type=submit]")
            expect(page.locator("#comments")).to_contain_text("the holdout is the right one")
            shoot(page, "request.png", tmp_path)

        # Approving Production asks first; going back changes nothing.
        page.click("#approve")
        expect(page.locator("#confirm-text")).to_contain_text(
            f"{seeded.name} version {seeded.version} to Production"
        )
        page.click("#confirm-no")
        expect(page.locator("#confirm")).to_be_hidden()
        expect(page.locator("#approvals-title")).to_have_text(f"Approvals {number - 1}/2")
        page.fill("#action-comment", f"approved by {user}")
        page.click("#approve")
        page.click("#confirm-yes")
        expect(page.locator("#approvals")).to_contain_text(f"approved by {user}")

    page = approvers["mia"].page
    expect(page.locator("#request-details")).to_contain_text("APPLIED", timeout=30_000)
    assert stage_in_mlflow(web_stack.mlflow_url, seeded) == "Production"
    # The trail is complete: requested, two approvals, applied, and the comment.
    trail = page.locator("#activities")
    expect(trail.locator("li[data-type=REQUESTED_TRANSITION]")).to_contain_text("dana")
    expect(trail.locator("li[data-type=APPROVED_REQUEST]")).to_have_count(2)
    expect(trail.locator("li[data-type=APPLIED_TRANSITION]")).to_have_count(1)
    expect(page.locator("#actions")).to_be_hidden()
    # No longer waiting for anyone; it is among the decided ones.
    page.goto("/ui/")
    expect(page.locator(f"#list-body tr[data-request-id='{request_id}']")).to_have_count(0)
    page.click("#tab-decided")
    expect(page.locator(f"#list-body tr[data-request-id='{request_id}']")).to_contain_text(
        "APPLIED"
    )


def test_an_approver_without_the_role_sees_why_there_is_no_button(
    web_stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
    open_tab: Callable[..., Tab],
) -> None:
    request = create(client("dana", "data-scientist"), make_version(), "Production")
    tab = open_tab()
    tab.sign_in(request_path(request["id"]), "ada")
    page = tab.page
    expect(page.locator("#request-details")).to_contain_text("PENDING")
    expect(page.locator("#approve")).to_be_hidden()
    refusal = page.locator("#approve-refusal")
    expect(refusal).to_contain_text("only ml-lead may approve")
    expect(refusal).to_contain_text("ada is not one")
    expect(refusal).to_contain_text("You hold platform-admin.")
    # Not waiting for her either.
    page.goto("/ui/")
    expect(page.locator("#list-empty, #list-table").first).to_be_visible()
    expect(page.locator(f"#list-body tr[data-request-id='{request['id']}']")).to_have_count(0)


def test_self_approval_shows_the_refusal_reason(
    web_stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
    open_tab: Callable[..., Tab],
) -> None:
    request = create(client("lee", "ml-lead"), make_version(), "Staging")
    tab = open_tab()
    tab.sign_in(request_path(request["id"]), "lee")
    expect(tab.page.locator("#approve")).to_be_hidden()
    expect(tab.page.locator("#approve-refusal")).to_contain_text(
        "lee may not approve their own request; the policy forbids self-approval"
    )
    tab.page.goto("/ui/")
    tab.page.click("#tab-mine")
    expect(tab.page.locator(f"#list-body tr[data-request-id='{request['id']}']")).to_be_visible()


def test_a_comment_with_a_script_renders_as_text_and_its_author_may_edit_and_delete_it(
    web_stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
    open_tab: Callable[..., Tab],
) -> None:
    request = create(client("dana", "data-scientist"), make_version(), "Staging")
    text = f'<script>alert("x")</script>{XSS}'
    tab = open_tab()
    page = tab.page
    tab.sign_in(request_path(request["id"]), "lee")
    page.fill("#comment-text", text)
    page.click("#comment-form button[type=submit]")
    item = page.locator("#comments li.comment-item").last
    expect(item.locator("p.comment")).to_have_text(text)
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 1
    item.locator("button.edit-comment").click()
    page.locator("#comments textarea.edit-text").fill("second thoughts")
    page.locator("#comments button.save-comment").click()
    expect(page.locator("#comments li.comment-item").last.locator("p.comment")).to_have_text(
        "second thoughts"
    )
    page.locator("#comments li.comment-item").last.locator("button.delete-comment").click()
    expect(page.locator("#comments")).to_contain_text("No comments yet.")
    assert tab.dialogs == []


def test_a_request_page_is_usable_at_phone_width(
    web_stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
    browser: Browser,
    tmp_path: Path,
) -> None:
    seeded = make_version(f"a-model-with-a-rather-long-name-{uuid.uuid4().hex}")
    request = create(client("dana", "data-scientist"), seeded, "Staging", comment="x" * 300)
    tab = Tab(browser, web_stack.api_url, viewport={"width": 390, "height": 844})
    try:
        page = tab.page
        tab.sign_in("/ui/", "lee")
        expect(page.locator(f"#list-body tr[data-request-id='{request['id']}']")).to_be_visible()
        assert_no_horizontal_scroll(page)
        shoot(page, "phone-inbox.png", tmp_path)
        page.locator(f"#list-body tr[data-request-id='{request['id']}'] a").click()
        expect(page.locator("#approve")).to_be_visible()
        assert_no_horizontal_scroll(page)
        # Keyboard only: the comment box, then the decision.
        page.focus("#action-comment")
        page.keyboard.type("fine by me")
        page.keyboard.press("Tab")
        expect(page.locator("#approve")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("#request-details")).to_contain_text("APPLIED", timeout=30_000)
        assert_no_horizontal_scroll(page)
        shoot(page, "phone-request.png", tmp_path)
    finally:
        tab.context.close()


def test_a_bad_request_link_explains_itself_and_leads_back(
    web_stack: SignoffStack, open_tab: Callable[..., Tab]
) -> None:
    tab = open_tab()
    tab.sign_in("/ui/requests/not-a-request", "lee")
    bad = tab.page.locator("#bad-link")
    expect(bad).to_be_visible()
    expect(bad).to_contain_text("does not name a transition request")
    expect(tab.page.locator("#message")).to_be_hidden()
    bad.locator("a").click()
    tab.page.wait_for_url("**/ui/")
    expect(tab.page.locator("#list-view")).to_be_visible()


def test_a_rejected_request_shows_the_rejection_not_an_empty_list(
    web_stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
    open_tab: Callable[..., Tab],
) -> None:
    seeded = make_version()
    request = create(client("dana", "data-scientist"), seeded, "Staging")
    rejected = client("lee", "ml-lead").post(
        "/api/2.0/mlflow/transition-requests/reject",
        json={"name": seeded.name, "version": seeded.version, "stage": "Staging", "comment": "no"},
    )
    assert rejected.status_code == 200, rejected.text
    tab = open_tab()
    tab.sign_in(request_path(request["id"]), "mia")
    expect(tab.page.locator("#request-details")).to_contain_text("REJECTED")
    decision = tab.page.locator("#approvals li[data-kind=REJECTED]")
    expect(decision).to_contain_text("lee · ml-lead")
    expect(decision).to_contain_text("no")
    expect(tab.page.locator("#approvals")).not_to_contain_text("No decisions yet")
    expect(tab.page.locator("#actions")).to_be_hidden()
    expect(tab.page.locator("#refusals")).to_be_hidden()


def test_the_inbox_filters_pages_and_puts_the_oldest_waiting_first(
    web_stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
) -> None:
    dana = client("dana", "data-scientist")
    first = make_version()
    second = make_version(first.name)
    third = make_version(first.name)
    older = create(dana, first, "Staging")
    newer = create(dana, second, "Staging")
    production = create(dana, third, "Production")
    lee = client("lee", "ml-lead")

    def inbox(**query: Any) -> dict[str, Any]:
        answer = lee.get("/ui/api/inbox", params={"model": first.name} | query)
        assert answer.status_code == 200, answer.text
        return answer.json()

    waiting = inbox()
    assert [row["id"] for row in waiting["rows"]] == [older["id"], newer["id"], production["id"]]
    # The model filter's choices are the tab's models whatever the filter (others' too).
    assert waiting["counts"]["waiting"] == 3 and first.name in waiting["models"]
    row = waiting["rows"][2]
    assert row["approvals_needed"] == 2 and row["quorum"] == 2
    assert row["checks"]["running"] == 1
    assert row["expires_timestamp"] == row["creation_timestamp"] + 7 * 86_400_000
    assert [r["id"] for r in inbox(target="Production")["rows"]] == [production["id"]]
    page_one = inbox(page_size=2)
    assert [r["id"] for r in page_one["rows"]] == [older["id"], newer["id"]]
    page_two = inbox(page_size=2, page_token=page_one["next_page_token"])
    assert page_two["total"] == 3 and [r["id"] for r in page_two["rows"]] == [production["id"]]
    assert page_two["next_page_token"] is None
    assert inbox(state="APPLIED")["rows"] == []
    # Lee approves the older one: it leaves his "waiting" and, applied, is among the decided.
    approved = lee.post(
        "/api/2.0/mlflow/transition-requests/approve",
        json={"name": first.name, "version": first.version, "stage": "Staging"},
    )
    assert approved.status_code == 200, approved.text
    wait_until(
        lambda: [r["id"] for r in inbox(tab="decided")["rows"]] == [older["id"]],
        "the approved request among the decided ones",
    )
    assert older["id"] not in [r["id"] for r in inbox()["rows"]]
    # Dana's own tab; and someone who may not read the model is refused a filter on it.
    mine = dana.get("/ui/api/inbox", params={"tab": "mine", "model": first.name}).json()
    assert {r["id"] for r in mine["rows"]} == {older["id"], newer["id"], production["id"]}
    assert dana.get("/ui/api/inbox", params={"model": first.name}).json()["rows"] == []
    outsider = client("olga", "auditor").get("/ui/api/inbox", params={"model": first.name})
    assert outsider.status_code == 403


# -- the inbox over a large ledger ---------------------------------------------------------------


def _seeded(model: str, n: int, **fields: Any) -> RequestSnapshot:
    """A request as its workflow would record it (`T_SEEDED` + n ms: older than any other)."""
    request_id = f"5eed{n:08x}"
    values: dict[str, Any] = {
        "id": request_id,
        "workflow_id": f"transition/{model}/{n}/Staging",
        "model": model,
        "version": str(n),
        "target": "Staging",
        "from_stage": "None",
        "requester": "dana",
        "state": RequestState.PENDING,
        "policy_hash": "0" * 64,
        "quorum": 1,
        "approver_roles": ["ml-lead"],
        "created_ms": T_SEEDED + n,
        "updated_ms": T_SEEDED + n,
    }
    return RequestSnapshot.model_validate(values | fields)


T_SEEDED = 1_000_000_000_000


def test_the_inbox_finds_what_waits_among_thousands_of_requests(
    web_stack: SignoffStack, client: Callable[..., httpx.Client]
) -> None:
    """2,400 requests of one model in the ledger, the ones waiting for lee the oldest (the
    last that a scan of the newest 2,000 would reach): each waiting one appears once, oldest
    first, page after page, and nothing else does."""
    model = f"crowded-{uuid.uuid4().hex[:8]}"
    wanted: list[str] = []
    seeded: list[RequestSnapshot] = []
    entries: list[AuditEntry] = []
    for n in range(2400):
        kind = n % 8 if n >= 120 else None
        if kind is None:  # the oldest: waiting for an ml-lead
            seeded.append(_seeded(model, n))
            wanted.append(seeded[-1].id)
        elif kind == 0:  # no approver at all (a quorum of 0, waiting for its checks)
            seeded.append(_seeded(model, n, approver_roles=[], quorum=0))
        elif kind == 1:  # waits for another role only
            seeded.append(_seeded(model, n, approver_roles=["platform-admin"]))
        elif kind == 2:  # lee's own request; the rule forbids self-approval
            seeded.append(_seeded(model, n, requester="lee"))
        elif kind == 3:  # lee's own, and the rule allows self-approval: it waits for him
            seeded.append(_seeded(model, n, requester="lee", self_approval=True))
            wanted.append(seeded[-1].id)
        elif kind == 4:  # lee approved it already; it waits for a second approval
            seeded.append(_seeded(model, n, quorum=2))
            entries.append(_approval(seeded[-1], "lee"))
        elif kind == 5:  # being applied: nothing left to decide
            seeded.append(_seeded(model, n, state=RequestState.APPLYING))
        elif kind == 6:  # decided long ago
            seeded.append(_seeded(model, n, state=RequestState.APPLIED))
        else:  # recorded before Signoff indexed approver roles: today's policy says ml-lead
            seeded.append(_seeded(model, n, approver_roles=None))
            wanted.append(seeded[-1].id)
    wanted_in_order = [r.id for r in sorted(seeded, key=lambda r: r.created_ms) if r.id in wanted]
    ledger = Ledger(web_stack.database_url)
    try:
        with ledger.database.session() as session:
            for request in seeded:
                session.add(request_row(request))
            session.flush()
            for request in seeded:
                index_approver_roles(session, request)
            add_entries(session, entries)
        lee = client("lee", "ml-lead")

        def page(**query: Any) -> dict[str, Any]:
            answer = lee.get("/ui/api/inbox", params={"page_size": 100} | query)
            assert answer.status_code == 200, answer.text
            return answer.json()

        found: list[str] = []
        token: str | None = None
        while True:
            body = page(model=model, **({"page_token": token} if token else {}))
            found.extend(row["id"] for row in body["rows"])
            token = body["next_page_token"]
            if token is None:
                break
        assert found == wanted_in_order
        assert body["total"] == body["counts"]["waiting"] == len(wanted)
        assert body["counts"]["mine"] == sum(1 for r in seeded if r.requester == "lee")
        assert body["counts"]["decided"] == sum(1 for r in seeded if not r.state.is_open)
        # Unfiltered, the oldest waiting anywhere come first: these.
        assert [row["id"] for row in page(page_size=5)["rows"]] == wanted_in_order[:5]
        decided = page(model=model, tab="decided", page_size=3)["rows"]
        assert [row["state"] for row in decided] == ["APPLIED"] * 3
        # A page token is its tab's, and only well-formed ones are taken.
        decided_token = page(model=model, tab="decided", page_size=1)["next_page_token"]
        for bad in ("not-a-token", decided_token):
            refused = lee.get("/ui/api/inbox", params={"page_token": bad})
            assert refused.status_code == 400, bad
            assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    finally:
        with ledger.database.session() as session:
            for table in ("request_approver_roles", "activities", "transition_requests"):
                column = "model_name" if table != "request_approver_roles" else "request_id"
                values = [model] if column == "model_name" else [r.id for r in seeded]
                session.execute(
                    text(f"DELETE FROM {table} WHERE {column} IN :values").bindparams(  # noqa: S608
                        bindparam("values", expanding=True)
                    ),
                    {"values": values},
                )
        ledger.dispose()


def _approval(request: RequestSnapshot, user: str) -> AuditEntry:
    return AuditEntry(
        id=f"{request.id}-2",
        request_id=request.id,
        seq=2,
        model=request.model,
        version=request.version,
        activity_type=AuditType.APPROVED_REQUEST,
        user_id=user,
        creation_timestamp=request.created_ms + 1,
        roles=["ml-lead"],
    )


def test_the_model_page_lists_versions_signoff_never_saw(
    web_stack: SignoffStack,
    make_version: Callable[..., SeededVersion],
    client: Callable[..., httpx.Client],
) -> None:
    """Versions no request touched and that are not the latest of a stage still show, newest
    first, each with its stage and aliases from MLflow."""
    first = make_version()
    for _ in range(2):
        make_version(first.name)
    httpx.post(
        f"{web_stack.mlflow_url}/api/2.0/mlflow/registered-models/alias",
        json={"name": first.name, "alias": "shadow", "version": "1"},
    ).raise_for_status()
    view = client("dana", "data-scientist").get(f"/ui/api/models/{first.name}")
    assert view.status_code == 200, view.text
    versions = [(v["version"], v["stage"], v["aliases"]) for v in view.json()["versions"]]
    assert versions == [("3", "None", []), ("2", "None", []), ("1", "None", ["shadow"])]


# -- regulated parts: change windows, the artifact digest, tiers, rollback -----------------------


def _with_files(mlflow_url: str, files: dict[str, bytes], **tags: str) -> SeededVersion:
    """A new version whose run holds `files` under `model/` (its source), tagged `tags`."""
    with httpx.Client(base_url=mlflow_url, timeout=30) as mlflow:
        version = seed_version(mlflow, tags=tags)
        run = mlflow.get("/api/2.0/mlflow/runs/get", params={"run_id": version.run_id}).json()
    folder = Path(run["run"]["info"]["artifact_uri"].removeprefix("file://")) / "model"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return version


def test_a_scheduled_rollback_shows_when_it_applies_what_is_approved_and_can_be_cancelled(
    web_stack: SignoffStack,
    client: Callable[..., httpx.Client],
    browser: Browser,
) -> None:
    seeded = _with_files(
        web_stack.mlflow_url,
        {"weights.bin": b"w" * 2000, "big.bin": b"b" * 3000},
        risk_tier="high",
    )
    dana, lee = client("dana", "data-scientist"), client("lee", "ml-lead")
    opened = dana.post(
        f"{SIGNOFF}/rollback",
        json={"name": seeded.name, "target": "@release", "version": seeded.version},
    )
    assert opened.status_code == 200, opened.text
    request = opened.json()["request"]
    target = {"name": seeded.name, "version": seeded.version, "stage": "@release"}
    approved = lee.post("/api/2.0/mlflow/transition-requests/approve", json=target)
    assert approved.status_code == 200, approved.text
    assert approved.json()["request"]["state"] == "SCHEDULED"
    apply_at = approved.json()["request"]["apply_at"]

    # Approved, so it waits for nobody: not in an approver's "waiting" tab, nor among the
    # decided ones (it is still open); in the requester's own, saying when it applies.
    def ids(who: httpx.Client, tab: str) -> list[str]:
        page = who.get("/ui/api/inbox", params={"tab": tab, "model": seeded.name})
        assert page.status_code == 200, page.text
        return [row["id"] for row in page.json()["rows"]]

    mia = client("mia", "ml-lead")
    assert ids(mia, "waiting") == [] and ids(mia, "decided") == []
    mine = dana.get("/ui/api/inbox", params={"tab": "mine", "model": seeded.name}).json()
    [row] = mine["rows"]
    assert (row["id"], row["state"], row["rollback"]) == (request["id"], "SCHEDULED", True)
    assert row["apply_at_timestamp"] == apply_at and row["expires_timestamp"] is None
    scheduled = dana.get("/ui/api/inbox", params={"tab": "mine", "state": "SCHEDULED"}).json()
    assert request["id"] in [r["id"] for r in scheduled["rows"]]

    tab = Tab(browser, web_stack.api_url, timezone_id="Asia/Tokyo")
    try:
        page = tab.page
        tab.sign_in("/ui/", "dana")
        page.click("#tab-mine")
        listed = page.locator(f"#list-body tr[data-request-id='{request['id']}']")
        expect(listed.locator(".badge.rollback")).to_have_text("rollback")
        expect(listed).to_contain_text("SCHEDULED")
        expect(listed.locator(".apply-at")).to_contain_text("applies in")
        listed.locator("a").click()
        page.wait_for_url(f"**{request_path(request['id'])}")

        details = page.locator("#request-details")
        expect(details).to_contain_text("SCHEDULED")
        local = datetime.fromtimestamp(apply_at / 1000, ZoneInfo("Asia/Tokyo"))
        expect(details.locator("dd.apply-at")).to_contain_text(
            f"{local:%a %Y-%m-%d %H:%M} Asia/Tokyo (GMT+9) (in "
        )
        expect(details.locator("dd.reason")).to_contain_text("inside the freeze 'release freeze'")
        expect(details.locator("dd.tier")).to_have_text("risk_tier=high")
        expect(details.locator("dd.rollback")).to_contain_text("@release")
        expect(page.locator("#request-title .badge.rollback")).to_have_text("rollback")
        expect(page.locator("#digest")).to_contain_text("2 files, 4.9 KB in all · sha256 ")
        expect(page.locator("#digest-note")).to_contain_text(
            "1 file(s) above 0.002 MB recorded by path and size only, not hashed: model/big.bin"
        )
        expect(page.locator("#refresh-note")).to_be_visible()  # still open: kept current
        expect(page.locator("#approve")).to_be_hidden()
        expect(page.locator("#reject")).to_be_hidden()

        page.fill("#action-comment", "the incident is over")
        page.click("#cancel")
        expect(details).to_contain_text("CANCELLED")
        expect(details.locator("dd.apply-at")).to_have_count(0)
        expect(page.locator("#actions")).to_be_hidden()
        expect(page.locator("#activities li[data-type=CANCELLED_REQUEST]")).to_contain_text(
            "the incident is over"
        )
    finally:
        tab.context.close()
    assert "aliases" not in mlflow_version(web_stack.mlflow_url, seeded)
