"""MLflow's UI through the door (`/mlflow/`), in a real browser (Playwright with Debian's
Chromium) against the real API and the session's MLflow, signed in through the loopback OpenID
Connect provider: the person sees what the policy lets them read and nothing else, a governed
move made by the UI's own REST call is refused in MLflow's shape, a page of another origin
cannot write with their cookie, and the UI's files come from MLflow unchanged."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.api import test_web_page as web
from tests.support.mlflow import MlflowServer, SeededVersion, seed_version, stage_in_mlflow
from tests.support.oidc_provider import LoopbackOidcProvider
from tests.support.processes import free_port
from tests.support.stack import SignoffStack, launch_api
from tests.support.temporal import TemporalServer

pw, browser = web.pw, web.browser

CLIENT_ID = "signoff-web"
SLOW_MS = 30_000
"""How long MLflow's UI may take to fill a page on a loaded machine (a bound, not a wait)."""
SERVICE_TOKEN = f"svc-{uuid.uuid4().hex}"
"""Signoff's own MLflow token: it must never reach a browser."""
POLICY = """\
roles:
  fraud-team: {"fraud-*": CAN_EDIT}
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
tracking:
  fraud-team: {"fraud-*": EDIT}
transitions:
  - to: Production
    approvals: {quorum: 1, roles: [ml-lead]}
"""


@pytest.fixture(scope="module")
def provider(stack_ledger: str) -> Iterator[LoopbackOidcProvider]:
    """One per ledger's stack (`stack_ledger`): what it records is that stack's alone."""
    server = LoopbackOidcProvider(client_id=CLIENT_ID, users={"fay": ["fraud-team"]}).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def ui_stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: TemporalServer,
    mlflow_server: MlflowServer,
    provider: LoopbackOidcProvider,
) -> Iterator[SignoffStack]:
    """The API alone (nothing here runs a workflow), signing people in through `provider`."""
    root = tmp_path_factory.mktemp("signoff-mlflow-ui")
    (root / "policy.yaml").write_text(POLICY)
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    provider.redirect_uris.add(f"{public_url}/ui/auth/callback")
    stack = launch_api(
        root,
        temporal_server.address,
        mlflow_server.url,
        port=port,
        SIGNOFF_POLICY_FILE=str(root / "policy.yaml"),
        SIGNOFF_PUBLIC_URL=public_url,
        SIGNOFF_WEB_OIDC_ISSUER=provider.issuer,
        SIGNOFF_WEB_OIDC_CLIENT_ID=CLIENT_ID,
        SIGNOFF_WEB_DEV_LOGIN="true",
        # MLflow here checks no token; what matters is that none reaches the browser.
        SIGNOFF_MLFLOW_TOKEN=SERVICE_TOKEN,
    )
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def registry(mlflow_server: MlflowServer) -> dict[str, Any]:
    """In MLflow itself: a fraud model and experiment (fay may read them), a churn model and
    experiment (fay may not)."""
    tag = uuid.uuid4().hex[:8]
    with httpx.Client(base_url=mlflow_server.url, timeout=30) as http:
        fraud = seed_version(http, f"fraud-ui-{tag}")
        churn = seed_version(http, f"churn-ui-{tag}")
        experiments = {}
        for name in (f"fraud-exp-{tag}", f"churn-exp-{tag}"):
            created = http.post("/api/2.0/mlflow/experiments/create", json={"name": name})
            assert created.status_code == 200, created.text
            experiments[name.split("-")[0]] = (name, created.json()["experiment_id"])
        run = http.post(
            "/api/2.0/mlflow/runs/create",
            json={"experiment_id": experiments["fraud"][1], "run_name": f"fraud-run-{tag}"},
        )
        assert run.status_code == 200, run.text
        run_id = run.json()["run"]["info"]["run_id"]
        for model in (fraud.name, churn.name):  # a version of each registered from the run
            created = http.post(
                "/api/2.0/mlflow/model-versions/create",
                json={"name": model, "source": f"runs:/{run_id}/model", "run_id": run_id},
            )
            assert created.status_code == 200, created.text
    return {
        "fraud": fraud,
        "churn": churn,
        "experiments": experiments,
        "run": run.json()["run"]["info"],
    }


@pytest.fixture
def tab(browser: Browser, ui_stack: SignoffStack) -> Iterator[Page]:
    context = browser.new_context(base_url=ui_stack.api_url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    yield page
    context.close()


def sign_in_to_mlflow(page: Page, base_url: str, user: str) -> None:
    """Open `/mlflow/` signed out: off to the provider, and back to MLflow's UI."""
    page.goto("/mlflow/")
    expect(page.locator("#username")).to_be_visible()
    page.fill("#username", user)
    page.click("#provider-sign-in")
    page.wait_for_url(f"{base_url}/mlflow/**")


def search(page: Page, placeholder: str, text: str) -> None:
    box = page.get_by_placeholder(placeholder)
    box.fill(text)
    box.press("Enter")


def ui_call(page: Page, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A POST made as MLflow's UI makes it: a relative `ajax-api/...` URL from its page, with the
    session cookie only."""
    return page.evaluate(
        """async ([path, body]) => {
            const r = await fetch(path, {method: "POST", body: JSON.stringify(body),
                                         headers: {"Content-Type": "application/json"}});
            return {status: r.status, body: await r.json()};
        }""",
        [path, body],
    )


# -- tests ---------------------------------------------------------------------------------------


def test_the_ui_shows_what_the_person_may_read_and_refuses_a_governed_move(
    tab: Page, ui_stack: SignoffStack, mlflow_server: MlflowServer, registry: dict[str, Any]
) -> None:
    fraud: SeededVersion = registry["fraud"]
    churn: SeededVersion = registry["churn"]
    sign_in_to_mlflow(tab, ui_stack.api_url, "fay")

    # The lists, searched for this module's names: the fraud ones only.
    tag = fraud.name.rsplit("-", 1)[1]
    tab.goto("/mlflow/#/models")
    search(tab, "Search registered models", tag)
    expect(tab.get_by_role("link", name=fraud.name)).to_be_visible(timeout=SLOW_MS)
    expect(tab.get_by_text(churn.name)).to_have_count(0)

    tab.goto("/mlflow/#/experiments")
    search(tab, "Search experiments", tag)
    expect(tab.get_by_role("link", name=registry["experiments"]["fraud"][0])).to_be_visible(
        timeout=SLOW_MS
    )
    expect(tab.get_by_text(registry["experiments"]["churn"][0])).to_have_count(0)

    # The run's page (MLflow's UI reads it by GraphQL): the versions registered from it, of the
    # models fay may read only.
    run = registry["run"]
    tab.goto(f"/mlflow/#/experiments/{run['experiment_id']}/runs/{run['run_id']}")
    expect(tab.get_by_text(run["run_name"]).first).to_be_visible(timeout=SLOW_MS)
    expect(tab.get_by_role("link", name=re.compile(re.escape(fraud.name)))).to_be_visible()
    expect(tab.get_by_text(churn.name)).to_have_count(0)

    # The UI's own call to move the version to Production, with the session: refused as MLflow
    # refuses, saying how to ask for it; MLflow is left as it was.
    answer = ui_call(
        tab,
        "ajax-api/2.0/mlflow/model-versions/transition-stage",
        {"name": fraud.name, "version": fraud.version, "stage": "Production",
         "archive_existing_versions": False},
    )  # fmt: skip
    assert answer["status"] == 403
    assert answer["body"]["error_code"] == "PERMISSION_DENIED"
    assert "transition-requests/create" in answer["body"]["message"]
    assert stage_in_mlflow(mlflow_server.url, fraud) == "None"

    # An ungoverned write from the UI's page goes through, as the person.
    tagged = ui_call(
        tab,
        "ajax-api/2.0/mlflow/registered-models/set-tag",
        {"name": fraud.name, "key": "team", "value": "fraud"},
    )
    assert tagged["status"] == 200, tagged
    with httpx.Client(base_url=mlflow_server.url, timeout=30) as http:
        got = http.get("/api/2.0/mlflow/registered-models/get", params={"name": fraud.name})
    assert {"key": "team", "value": "fraud"} in got.json()["registered_model"]["tags"]


class OtherOrigin:
    """A page on another loopback port: another origin of the same site, so `SameSite=Lax`
    lets the browser send Signoff's cookie with its form's POST."""

    def __init__(self, target: str) -> None:
        form = (
            f'<form id="f" method="post" enctype="text/plain" action="{target}">'
            '<input type="hidden" name=\'{"name": "fraud-planted", "x": "\' value=\'"}\'>'
            '</form><button id="go" onclick="document.getElementById(\'f\').submit()">go</button>'
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(form)))
                self.end_headers()
                self.wfile.write(form)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_page_of_another_origin_cannot_write_with_the_session(
    tab: Page, ui_stack: SignoffStack, mlflow_server: MlflowServer
) -> None:
    sign_in_to_mlflow(tab, ui_stack.api_url, "fay")
    target = f"{ui_stack.api_url}/mlflow/ajax-api/2.0/mlflow/registered-models/create"
    other = OtherOrigin(target)
    try:
        tab.goto(other.url)
        tab.click("#go")
        tab.wait_for_url(target)
        refusal = json.loads(tab.locator("body").inner_text())
    finally:
        other.close()
    # The cookie came along (else 401), and the origin check said no.
    assert refusal["error_code"] == "PERMISSION_DENIED", refusal
    assert "Signoff's own pages" in refusal["message"]
    with httpx.Client(base_url=mlflow_server.url, timeout=30) as http:
        got = http.get("/api/2.0/mlflow/registered-models/get", params={"name": "fraud-planted"})
    assert got.status_code == 404


def test_signed_out_the_page_sends_to_sign_in_and_calls_answer_401(ui_stack: SignoffStack) -> None:
    with httpx.Client(base_url=ui_stack.api_url, timeout=30) as http:
        page = http.get("/mlflow/")
        assert page.status_code == 303
        assert page.headers["location"] == "/ui/auth/login?return_to=%2Fmlflow%2F"
        assert http.get("/mlflow").headers["location"] == "/mlflow/"
        call = http.get("/mlflow/ajax-api/2.0/mlflow/registered-models/search")
        assert call.status_code == 401
        assert call.json()["error_code"] == "UNAUTHENTICATED"
        gone = http.get(
            "/mlflow/ajax-api/2.0/mlflow/registered-models/search",
            headers={"Cookie": "signoff_session=not-a-session"},
        )
        assert gone.status_code == 401
        assert http.get("/mlflow/not-an-mlflow-route").status_code == 404


def test_graphql_is_authorized_as_the_rest_calls_are(
    ui_stack: SignoffStack, registry: dict[str, Any]
) -> None:
    run = registry["run"]
    query = "query Q($d: MlflowGetRunInput!) { mlflowGetRun(input: $d) { run { info { runName } modelVersions { name } } } }"  # noqa: E501
    with httpx.Client(base_url=ui_stack.api_url, timeout=30) as http:
        signed_in = http.post(
            "/ui/auth/dev-login", json={"subject": "fay", "roles": ["fraud-team"]}
        )
        # `Origin` as a browser would send it: the write rule holds for GraphQL too.
        headers = {
            "Cookie": f"signoff_session={signed_in.cookies['signoff_session']}",
            "Origin": ui_stack.api_url,
        }

        def ask(body: dict[str, Any], **extra: str) -> httpx.Response:
            return http.post("/mlflow/graphql", json=body, headers=headers | extra)

        got = ask({"query": query, "variables": {"d": {"runId": run["run_id"]}}})
        assert got.status_code == 200, got.text
        answer = got.json()["data"]["mlflowGetRun"]["run"]
        assert answer["info"]["runName"] == run["run_name"]
        assert [v["name"] for v in answer["modelVersions"]] == [registry["fraud"].name]

        # The seeded versions' run lies in an experiment fay has no level on: as if missing.
        hidden = ask({"query": query, "variables": {"d": {"runId": registry["churn"].run_id}}})
        missing = ask({"query": query, "variables": {"d": {"runId": "0" * 32}}})
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

        mutation = ask({"query": 'mutation { testMutation(inputString: "x") { output } }'})
        aliased = ask({"query": 'query { r: mlflowGetRun(input: {runId: "x"}) { run { info { runName } } } }'})  # fmt: skip # noqa: E501
        assert mutation.status_code == aliased.status_code == 403
        assert ask({"query": "query {"}).status_code == 400
        foreign = ask({"query": query}, Origin="http://127.0.0.1:1")
        assert foreign.status_code == 403 and "own pages" in foreign.json()["message"]


def test_mlflows_files_are_served_unchanged_with_their_cache_headers(
    ui_stack: SignoffStack, mlflow_server: MlflowServer
) -> None:
    with (
        httpx.Client(base_url=ui_stack.api_url, timeout=30) as http,
        httpx.Client(base_url=mlflow_server.url, timeout=30) as direct,
    ):
        signed_in = http.post(
            "/ui/auth/dev-login", json={"subject": "fay", "roles": ["fraud-team"]}
        )
        assert signed_in.status_code == 200, signed_in.text
        # The cookie is `Secure`: httpx keeps it off plain http, a browser not on loopback.
        session = {"Cookie": f"signoff_session={signed_in.cookies['signoff_session']}"}
        page = http.get("/mlflow/", headers=session)
        assert page.status_code == 200
        assert page.content == direct.get("/").content  # MLflow's page, unchanged
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache, private"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"

        script = re.search(r'src="(static-files/static/js/main\.[0-9a-f]+\.js)"', page.text)
        assert script is not None, page.text
        # The built files need no session: they hold no data.
        served = http.get(f"/mlflow/{script[1]}")
        own = direct.get(f"/{script[1]}")
        assert served.status_code == 200
        assert served.content == own.content
        assert served.headers["content-type"] == own.headers["content-type"]
        assert served.headers["cache-control"] == own.headers["cache-control"]
        assert "max-age=" in served.headers["cache-control"]
        assert served.headers["x-content-type-options"] == "nosniff"
        # A revalidation reaches MLflow and comes back 304.
        again = http.get(f"/mlflow/{script[1]}", headers={"If-None-Match": own.headers["etag"]})
        assert again.status_code == 304 and not again.content

        for answer in (page, served):
            assert SERVICE_TOKEN not in answer.text
            assert not any(SERVICE_TOKEN in value for value in answer.headers.values())
            assert "set-cookie" not in answer.headers
        assert http.post(f"/mlflow/{script[1]}").status_code == 405
        assert http.get("/mlflow/static-files/%2e%2e/%2e%2e/setup.py").status_code == 404
