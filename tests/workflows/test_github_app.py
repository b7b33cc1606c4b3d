"""The GitHub App's side of a deployment gate, against the loopback GitHub: where an answer may
go (never a URL from a payload), the App JWT and its cached installation tokens, the answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from temporalio.exceptions import ApplicationError

from tests.support.github import FakeGithub
from workflows.deployments.app_auth import REFRESH_BEFORE_S, GithubAppAuth, read_private_key
from workflows.deployments.callback import callback_target, send_answer
from workflows.errors import GITHUB_REFUSED, GITHUB_UNAVAILABLE
from workflows.messages import DeploymentEvent, GateAnswer

REPO, INSTALLATION, APP_ID = "acme/models", 31, "1001"
API = "https://api.github.com"
REVIEW = "/repos/acme/models/actions/runs/77/deployment_protection_rule"


@pytest.mark.parametrize(
    ("url", "api"),
    [
        (f"{API}{REVIEW}", API),
        (f"https://API.github.com{REVIEW}", API + "/"),
        (f"https://ghe.example.com/api/v3{REVIEW}", "https://ghe.example.com/api/v3"),
        (
            "https://api.github.com/repos/ACME/Models/actions/runs/77/deployment_protection_rule",
            API,
        ),
    ],
)
def test_the_review_url_of_the_event_s_repository_on_the_configured_api_is_accepted(
    url: str, api: str
) -> None:
    assert callback_target(url, api, REPO) == "77"


@pytest.mark.parametrize(
    "url",
    [
        f"http://api.github.com{REVIEW}",  # another scheme
        f"https://api.github.com:8443{REVIEW}",  # another port
        f"https://evil.example{REVIEW}",  # another host
        f"https://api.github.com.evil.example{REVIEW}",
        f"https://user:pw@api.github.com{REVIEW}",
        f"https://api.github.com{REVIEW}?redirect=https://evil.example",
        f"https://api.github.com{REVIEW}#x",
        "https://api.github.com/repos/other/repo/actions/runs/77/deployment_protection_rule",
        "https://api.github.com/repos/acme/models/actions/runs/77/pending_deployments",
        "https://api.github.com/repos/acme/models/actions/runs/7x/deployment_protection_rule",
        f"https://api.github.com/api/v3{REVIEW}/../../../../admin",
    ],
)
def test_any_other_callback_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        callback_target(url, API, REPO)


def test_a_key_that_is_not_an_rsa_pem_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError) as caught:
        read_private_key("not-a-key-but-secret")
    assert "not-a-key-but-secret" not in str(caught.value)


@pytest.fixture
def github_app() -> Iterator[tuple[FakeGithub, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    with FakeGithub() as fake:
        fake.install_app(APP_ID, public.decode(), {INSTALLATION: {REPO}})
        yield fake, pem


def answer(state: str = "approved", run_id: int = 77) -> GateAnswer:
    event = DeploymentEvent(
        delivery_id="d-1",
        repository=REPO,
        repository_id="5",
        run_id=str(run_id),
        environment="production",
        installation_id=str(INSTALLATION),
        received_ms=0,
    )
    return GateAnswer(event=event, state=state, comment="Signoff says so")  # type: ignore[arg-type]


async def test_installation_tokens_are_cached_until_near_their_expiry(
    github_app: tuple[FakeGithub, str],
) -> None:
    fake, pem = github_app
    auth = GithubAppAuth(fake.url, APP_ID, pem.replace("\n", "\\n"))  # a key on one line
    assert "PRIVATE" not in repr(auth)
    first = await auth.installation_token(str(INSTALLATION))
    assert await auth.installation_token(str(INSTALLATION)) == first
    assert fake.app is not None and len(fake.app.jwt_claims) == 1
    fake.app.token_ttl_s = REFRESH_BEFORE_S - 1  # a token that is about to expire when issued
    auth.forget(str(INSTALLATION))
    short = await auth.installation_token(str(INSTALLATION))
    assert await auth.installation_token(str(INSTALLATION)) not in (first, short)
    assert len(fake.app.jwt_claims) == 3


async def test_the_answer_goes_to_the_review_endpoint_as_the_installation(
    github_app: tuple[FakeGithub, str],
) -> None:
    fake, pem = github_app
    fake.request_deployment(REPO, 77, "production")
    auth = GithubAppAuth(fake.url, APP_ID, pem)
    answered = await send_answer(auth, answer())
    assert answered.status_code == 204
    (review,) = fake.reviews
    assert review.body == {
        "environment_name": "production",
        "state": "approved",
        "comment": "Signoff says so",
    }
    # Nothing waits any more: GitHub refuses a second answer, for good.
    with pytest.raises(ApplicationError) as again:
        await send_answer(auth, answer())
    assert again.value.type == GITHUB_REFUSED and again.value.non_retryable


async def test_github_refusing_the_app_or_failing_is_said_plainly(
    github_app: tuple[FakeGithub, str],
) -> None:
    fake, pem = github_app
    wrong_app = GithubAppAuth(fake.url, "999", pem)
    with pytest.raises(ApplicationError) as refused:
        await wrong_app.installation_token(str(INSTALLATION))
    assert refused.value.type == GITHUB_REFUSED
    assert "SIGNOFF_GITHUB_APP_ID" in refused.value.message
    fake.fail_next(1, 502)
    with pytest.raises(ApplicationError) as failing:
        await GithubAppAuth(fake.url, APP_ID, pem).installation_token(str(INSTALLATION))
    assert failing.value.type == GITHUB_UNAVAILABLE and not failing.value.non_retryable
