"""The Jenkins client against a loopback server playing Jenkins' remote access API."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator

import pytest
from temporalio.exceptions import ApplicationError

from policies import JenkinsCheck
from tests.support.ci_callback import CALLBACK_BODY_KEYS, Recorder
from tests.support.jenkins import CRUMB_FIELD, SIGNOFF_PARAMETERS, FakeJenkins
from workflows.ci.base import CiContext, CiOutcome, CiRunRef
from workflows.ci.jenkins import JenkinsClient
from workflows.errors import CI_REFUSED, CI_UNAVAILABLE
from workflows.settings import WorkerSettings


@pytest.fixture
def jenkins() -> Iterator[FakeJenkins]:
    with FakeJenkins() as fake:
        yield fake


def client_for(fake: FakeJenkins, *, token: str | None = None) -> JenkinsClient:
    return JenkinsClient(fake.url, fake.user, token or fake.token, timeout=5)


def context(request_id: str = "req-1", check_id: str = "jenkins:validate-model") -> CiContext:
    return CiContext(
        request_id=request_id,
        model="fraud-detector",
        version="7",
        target="Production",
        check_id=check_id,
        callback_url="http://signoff.test/api/2.0/signoff/ci/callback",
        callback_token="cb-secret-123",
    )


async def poll_until_done(
    client: JenkinsClient, check: JenkinsCheck, ref: CiRunRef, timeout: float = 10
) -> list[CiOutcome]:
    """Every outcome seen, the last one final; each poll continues from the ref it returned."""
    seen: list[CiOutcome] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = await client.poll(check, ref)
        seen.append(outcome)
        if outcome.status != "running":
            return seen
        ref = outcome.ref or ref
        await asyncio.sleep(0.05)
    raise AssertionError(f"still running after {timeout}s: {seen[-1]}")


# -- dispatch ---------------------------------------------------------------------------------


async def test_dispatch_sends_the_crumb_of_its_session_and_the_parameters(
    jenkins: FakeJenkins,
) -> None:
    check = JenkinsCheck(job="validate-model", parameters={"dataset": "holdout", "model": "x"})
    ref = await client_for(jenkins).dispatch(check, context())

    assert ref.system == "jenkins" and ref.run_id is None
    assert ref.queue_url == f"{jenkins.url}/queue/item/1/"
    crumb_get, post = jenkins.requests
    assert (crumb_get.method, crumb_get.path) == ("GET", "/crumbIssuer/api/json")
    assert (post.method, post.path) == ("POST", "/job/validate-model/buildWithParameters")
    credentials = base64.b64encode(f"{jenkins.user}:{jenkins.token}".encode()).decode()
    assert post.headers["authorization"] == f"Basic {credentials}"
    # The crumb is valid only with the session cookie the crumb request opened.
    assert post.headers[CRUMB_FIELD.lower()] == next(iter(jenkins._sessions.values()))
    assert jenkins._cookie_name in post.headers["cookie"]
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert post.form == {
        "dataset": "holdout",
        "model": "fraud-detector",  # the policy's parameters cannot override Signoff's
        "version": "7",
        "target": "Production",
        "request_id": "req-1",
        "check": "jenkins:validate-model",
        "callback_url": "http://signoff.test/api/2.0/signoff/ci/callback",
        "callback_token": "cb-secret-123",
    }
    # Jenkins kept what the job defines; the password parameter's value is never shown.
    queued = (await client_for(jenkins).poll(check, ref)).ref
    assert queued is not None
    build = jenkins.builds("validate-model")[0]
    assert build.parameters["callback_token"] == "cb-secret-123"
    assert "dataset" not in build.parameters


async def test_dispatch_without_csrf_protection_sends_no_crumb() -> None:
    with FakeJenkins(csrf=False) as jenkins:
        check = JenkinsCheck(job="validate-model")
        ref = await client_for(jenkins).dispatch(check, context())
        crumb_get, post = jenkins.requests
        assert crumb_get.path == "/crumbIssuer/api/json"
        assert CRUMB_FIELD.lower() not in post.headers
        assert (await poll_until_done(client_for(jenkins), check, ref))[-1].status == "passed"


async def test_progress_is_counted_in_reads_too() -> None:
    """The fake's read-count knobs, which the time-skipping workflow tests rely on."""
    with FakeJenkins(queue_reads=2, build_reads=3) as jenkins:
        check = JenkinsCheck(job="validate-model")
        client = client_for(jenkins)
        seen = await poll_until_done(client, check, await client.dispatch(check, context()))
        assert [o.evidence["status"] for o in seen] == [
            "queued",
            "queued",
            "building",  # the poll that saw the executable read the build at once
            "building",
            "building",
            "completed",
        ]


async def test_find_existing_reuses_what_an_earlier_attempt_started() -> None:
    """A dispatch whose answer was lost: the retry finds the queue item, then the build, by the
    request id parameter; Jenkins itself merges an identical trigger while it is queued."""
    with FakeJenkins(queue_reads=1, build_reads=None) as jenkins:
        check = JenkinsCheck(job="validate-model")
        client = client_for(jenkins)
        since = int(time.time() * 1000)
        assert await client.find_existing(check, context(), since) is None

        jenkins.lose_next_trigger_answers(1)
        with pytest.raises(ApplicationError) as caught:
            await client.dispatch(check, context())
        assert not caught.value.non_retryable and "502" in caught.value.message
        found = await client.find_existing(check, context(), since)
        assert found is not None and found.run_id is None
        assert found.queue_url == f"{jenkins.url}/queue/item/1/"
        assert found.request_id == "req-1"
        # The same trigger again while queued: Jenkins answers with the same item.
        assert (await client.dispatch(check, context())).queue_url == found.queue_url
        assert await client.find_existing(check, context("req-other"), since) is None

        started = await client.poll(check, found)
        assert started.ref is not None and started.ref.run_id is None  # read once: still queued
        started = await client.poll(check, found)
        assert started.ref is not None and started.ref.run_id == "1"
        again = await client.find_existing(check, context(), since)
        assert again is not None
        assert (again.run_id, again.url) == ("1", f"{jenkins.url}/job/validate-model/1/")
        assert len(jenkins.builds("validate-model")) == 1


async def test_folder_jobs_use_nested_job_paths() -> None:
    with FakeJenkins(jobs={"ml team/models/validate": SIGNOFF_PARAMETERS}) as jenkins:
        check = JenkinsCheck(job="ml team/models/validate")
        client = client_for(jenkins)
        ref = await client.dispatch(check, context(check_id=check.check_id))
        post = jenkins.requests_to("/buildWithParameters")[0]
        assert post.path == "/job/ml%20team/job/models/job/validate/buildWithParameters"
        final = (await poll_until_done(client, check, ref))[-1]
        assert final.status == "passed"
        assert final.evidence["run_url"] == (
            f"{jenkins.url}/job/ml%20team/job/models/job/validate/1/"
        )
        assert jenkins.requests_to("/job/ml%20team/job/models/job/validate/1/api/json")


# -- polling: queue item -> build -> result ---------------------------------------------------


async def test_queue_item_becomes_a_build_whose_success_passes() -> None:
    with FakeJenkins(queue_delay=0.3, build_duration=0.3) as jenkins:
        check = JenkinsCheck(job="validate-model")
        client = client_for(jenkins)
        ref = await client.dispatch(check, context())
        seen = await poll_until_done(client, check, ref)

        queued, *_, final = seen
        assert queued.status == "running" and queued.ref is not None
        assert queued.ref.run_id is None and "quiet period" in queued.summary
        building = [o for o in seen if o.status == "running" and o.ref and o.ref.run_id]
        assert building, "the build was seen running"
        assert final.status == "passed"
        assert final.ref is not None and final.ref.run_id == "1"
        assert final.ref.url == f"{jenkins.url}/job/validate-model/1/"
        assert final.evidence == {
            "system": "jenkins",
            "job": "validate-model",
            "run_url": f"{jenkins.url}/job/validate-model/1/",
            "run_id": "1",
            "status": "completed",
            "conclusion": "SUCCESS",
            "duration_ms": 300,
        }
        assert queued.evidence["status"] == "queued"
        assert queued.evidence["queue_url"] == f"{jenkins.url}/queue/item/1/"
        assert building[0].evidence["status"] == "building"
        assert "SUCCESS" in final.summary
        assert jenkins.requests_to("/queue/item/1/api/json")


@pytest.mark.parametrize("result", ["FAILURE", "UNSTABLE", "ABORTED", "NOT_BUILT"])
async def test_any_result_but_success_fails(result: str) -> None:
    with FakeJenkins(outcome=result) as jenkins:  # type: ignore[arg-type]
        check = JenkinsCheck(job="validate-model")
        client = client_for(jenkins)
        final = (await poll_until_done(client, check, await client.dispatch(check, context())))[-1]
        assert final.status == "failed"
        assert final.evidence["conclusion"] == result
        assert final.evidence["run_id"] == "1"
        assert final.evidence["run_url"] == f"{jenkins.url}/job/validate-model/1/"
        assert final.summary == f"Jenkins build #1 of 'validate-model': {result}"


async def test_a_build_cancelled_in_the_queue_fails() -> None:
    with FakeJenkins(queue_delay=30) as jenkins:
        check = JenkinsCheck(job="validate-model")
        client = client_for(jenkins)
        ref = await client.dispatch(check, context())
        assert (await client.poll(check, ref)).status == "running"
        jenkins.cancel_queue_item(1)
        final = await client.poll(check, ref)
        assert final.status == "failed"
        assert "cancelled in the queue" in final.summary
        assert final.evidence["conclusion"] == "CANCELLED"


async def test_a_forgotten_queue_item_is_found_by_its_queue_id() -> None:
    """Jenkins drops a queue item ~5 minutes after it left the queue; a slow poller then finds
    the build in the job's builds by `queueId`."""
    with FakeJenkins(queue_delay=30) as jenkins:
        check = JenkinsCheck(job="validate-model")
        client = client_for(jenkins)
        await client.dispatch(check, context("other"))  # queue item 1, build 1
        ref = await client.dispatch(check, context())  # queue item 2, build 2
        jenkins.forget_queue_item(1)
        jenkins.forget_queue_item(2)
        final = (await poll_until_done(client, check, ref))[-1]
        assert final.status == "passed"
        assert final.ref is not None and final.ref.run_id == "2"
        assert jenkins.requests_to("/job/validate-model/api/json")


async def test_builds_are_read_under_the_configured_url_not_jenkins_root_url() -> None:
    """Jenkins reports URLs under its configured root URL, which the worker may not reach."""
    with FakeJenkins(root_url="https://ci.example.invalid/") as jenkins:
        check = JenkinsCheck(job="validate-model")
        client = client_for(jenkins)
        final = (await poll_until_done(client, check, await client.dispatch(check, context())))[-1]
        assert final.status == "passed"
        assert final.evidence["run_url"] == "https://ci.example.invalid/job/validate-model/1/"
        assert jenkins.requests_to("/job/validate-model/1/api/json")  # under jenkins.url


# -- refusals that retrying cannot fix --------------------------------------------------------


async def test_wrong_credentials_are_not_retried(jenkins: FakeJenkins) -> None:
    with pytest.raises(ApplicationError) as caught:
        await client_for(jenkins, token="wrong").dispatch(
            JenkinsCheck(job="validate-model"), context()
        )
    assert caught.value.non_retryable and caught.value.type == CI_REFUSED
    assert "401" in caught.value.message
    assert "SIGNOFF_JENKINS_USER" in caught.value.message
    assert "SIGNOFF_JENKINS_TOKEN" in caught.value.message
    assert not jenkins.requests_to("/buildWithParameters")


async def test_missing_credentials_are_not_retried(jenkins: FakeJenkins) -> None:
    with pytest.raises(ApplicationError) as caught:
        await JenkinsClient(jenkins.url, None, None).dispatch(
            JenkinsCheck(job="validate-model"), context()
        )
    assert caught.value.non_retryable
    assert "403" in caught.value.message and "anonymous" in caught.value.message


async def test_an_unknown_job_is_not_retried(jenkins: FakeJenkins) -> None:
    with pytest.raises(ApplicationError) as caught:
        await client_for(jenkins).dispatch(JenkinsCheck(job="team/nope"), context())
    assert caught.value.non_retryable
    assert "404" in caught.value.message and "'team/nope'" in caught.value.message


async def test_jobs_that_cannot_be_triggered_are_not_retried(jenkins: FakeJenkins) -> None:
    jenkins.add_job("disabled", SIGNOFF_PARAMETERS).disabled = True
    jenkins.add_job("plain", None)
    jenkins.add_job("locked", SIGNOFF_PARAMETERS).build_permission = False
    for job, said in (
        ("disabled", "disabled"),
        ("plain", "not parameterized"),
        ("locked", "Job/Build"),  # its 403 page mentions the crumb header: still final
    ):
        with pytest.raises(ApplicationError) as caught:
            await client_for(jenkins).dispatch(JenkinsCheck(job=job), context())
        assert caught.value.non_retryable and said in caught.value.message


def test_no_jenkins_url_is_a_clear_refusal() -> None:
    with pytest.raises(ApplicationError) as caught:
        JenkinsClient.from_settings(WorkerSettings(jenkins_url=None))
    assert caught.value.non_retryable and "SIGNOFF_JENKINS_URL" in caught.value.message


def test_from_settings_uses_the_jenkins_settings() -> None:
    client = JenkinsClient.from_settings(
        WorkerSettings(jenkins_url="http://j:8080/", jenkins_user="bot", jenkins_token="t0k")
    )
    assert client.url == "http://j:8080"


# -- Jenkins down: retryable ------------------------------------------------------------------


async def test_503_is_retryable_and_the_check_goes_on_when_jenkins_is_back(
    jenkins: FakeJenkins,
) -> None:
    check = JenkinsCheck(job="validate-model")
    client = client_for(jenkins)
    jenkins.go_down("503")
    with pytest.raises(ApplicationError) as caught:
        await client.dispatch(check, context())
    assert not caught.value.non_retryable and caught.value.type == CI_UNAVAILABLE
    assert "503" in caught.value.message
    jenkins.come_back()
    ref = await client.dispatch(check, context())
    jenkins.go_down("503")
    with pytest.raises(ApplicationError) as caught:
        await client.poll(check, ref)
    assert not caught.value.non_retryable
    jenkins.come_back()
    assert (await poll_until_done(client, check, ref))[-1].status == "passed"


async def test_a_stale_crumb_is_retried(jenkins: FakeJenkins) -> None:
    jenkins.forget_next_sessions(1)  # Jenkins restarted between the crumb and the trigger
    client = client_for(jenkins)
    with pytest.raises(ApplicationError) as caught:
        await client.dispatch(JenkinsCheck(job="validate-model"), context())
    assert not caught.value.non_retryable and "crumb" in caught.value.message
    ref = await client.dispatch(JenkinsCheck(job="validate-model"), context())
    assert ref.queue_url == f"{jenkins.url}/queue/item/1/"


async def test_connection_refused_is_retryable(jenkins: FakeJenkins) -> None:
    check = JenkinsCheck(job="validate-model")
    client = client_for(jenkins)
    ref = await client.dispatch(check, context())
    jenkins.go_down("refuse")
    for call in (client.dispatch(check, context()), client.poll(check, ref)):
        with pytest.raises(ApplicationError) as caught:
            await call
        assert not caught.value.non_retryable and caught.value.type == CI_UNAVAILABLE
        assert "cannot reach Jenkins" in caught.value.message
    jenkins.come_back()
    assert (await poll_until_done(client, check, ref))[-1].status == "passed"


async def test_the_fake_calls_back_like_the_jenkinsfile() -> None:
    """`callback=True`: the fake posts what infra/ci/jenkins/Jenkinsfile posts when a build ends."""
    recorder = Recorder()
    try:
        with FakeJenkins(callback=True, outcome="UNSTABLE") as jenkins:
            ctx = context().model_copy(update={"callback_url": recorder.url})
            await client_for(jenkins).dispatch(JenkinsCheck(job="validate-model"), ctx)
            deadline = time.monotonic() + 10
            while not jenkins.callbacks and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
    finally:
        recorder.close()
    ((_, body),) = recorder.received
    assert set(body) == CALLBACK_BODY_KEYS
    assert body | {"callback_token": "…"} == {
        "request_id": "req-1",
        "check": "jenkins:validate-model",
        "passed": False,
        "details_url": f"{jenkins.url}/job/validate-model/1/",
        "summary": "validate-model: UNSTABLE",
        "callback_token": "…",
    }
    assert body["callback_token"] == "cb-secret-123"
    assert jenkins.callbacks[0]["answered"] == 200
