"""The activities of CI checks: dispatch a job, poll it. Each picks the client of the check's
system (`check.type`) from `CLIENT_MODULES`.

Adding a CI system: write `workflows/ci/<system>.py` implementing `CiClient` (see
`workflows/ci/base.py`) with a module-level `from_settings(settings: WorkerSettings) -> CiClient`,
and name the module in `CLIENT_MODULES`. Modules are imported on first use, so a worker
without one of them still runs every other check. Optionally, a client may implement
`find_existing(check, ctx, since_ms) -> CiRunRef | None`: a retried dispatch then reuses the
job an earlier attempt started instead of starting a second one.

Evidence conventions, shared by every system so the request page reads alike: `system`,
`run_url` (what a person opens), `run_id`, `status`, `conclusion` (the system's own word).

The callback token is derived here, not in the workflow (which has no secret): see
`workflows.ci.callback`. Every attempt of a dispatch derives the same token, so a job started
by an attempt whose answer was lost still holds the token Signoff accepts; the heartbeat
details keep only when the first attempt started (to find such a job). The workflow receives
the token's SHA-256 only.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.ci.base import CiClient, CiContext, CiOutcome, CiRunRef
from workflows.ci.callback import CALLBACK_PATH, NO_CALLBACK_KEY, callback_token
from workflows.domain import now_ms
from workflows.errors import CI_NO_CALLBACK_KEY, CI_NO_CLIENT
from workflows.messages import CiDispatched, CiDispatchInput, CiPollInput, callback_token_digest

if TYPE_CHECKING:
    from workflows.settings import WorkerSettings

CLIENT_MODULES: dict[str, str] = {
    "github_actions": "workflows.ci.github",
    "jenkins": "workflows.ci.jenkins",
}


class CiActivities:
    def __init__(
        self, settings: WorkerSettings, clients: Mapping[str, CiClient] | None = None
    ) -> None:
        """`clients` overrides the client of a system (tests); the rest come from
        `CLIENT_MODULES`, built from `settings` on first use."""
        self.settings = settings
        self._clients: dict[str, CiClient] = dict(clients or {})

    @property
    def callback_url(self) -> str:
        return self.settings.callback_base_url + CALLBACK_PATH

    def client_for(self, system: str) -> CiClient:
        client = self._clients.get(system)
        if client is None:
            module_name = CLIENT_MODULES.get(system)
            try:
                if module_name is None:
                    raise LookupError(f"no module is registered for {system!r}")
                factory = importlib.import_module(module_name).from_settings
            except (ImportError, AttributeError, LookupError) as err:
                raise ApplicationError(
                    f"this worker has no client for {system} checks ({err})",
                    type=CI_NO_CLIENT,
                    non_retryable=True,
                ) from None
            client = self._clients[system] = factory(self.settings)
        return client

    @activity.defn
    async def dispatch_ci(self, inp: CiDispatchInput) -> CiDispatched:
        key = self.settings.callback_key
        if key is None:
            raise ApplicationError(NO_CALLBACK_KEY, type=CI_NO_CALLBACK_KEY, non_retryable=True)
        check_id = inp.check.check_id
        token = callback_token(key, request_id=inp.request_id, check_id=check_id)
        first_ms = _first_attempt_ms(activity.info().heartbeat_details)
        retried = first_ms is not None
        if first_ms is None:
            first_ms = now_ms()
        # Remembered for the next attempt should this one fail after the job was started.
        activity.heartbeat(first_ms)
        ctx = CiContext(
            request_id=inp.request_id,
            model=inp.model,
            version=inp.version,
            target=inp.target,
            check_id=check_id,
            callback_url=self.callback_url,
            callback_token=token,
        )
        client = self.client_for(inp.check.type)
        ref: CiRunRef | None = None
        find_existing = getattr(client, "find_existing", None)
        if retried and find_existing is not None:
            ref = await find_existing(inp.check, ctx, first_ms)
            if ref is not None:
                activity.logger.info("reusing %s job %s of an earlier attempt", ref.system, ref)
        if ref is None:
            ref = await client.dispatch(inp.check, ctx)
        if ref.request_id is None:
            ref = ref.model_copy(update={"request_id": inp.request_id})
        return CiDispatched(ref=ref, token_sha256=callback_token_digest(token))

    @activity.defn
    async def poll_ci(self, inp: CiPollInput) -> CiOutcome:
        return await self.client_for(inp.check.type).poll(inp.check, inp.ref)


def _first_attempt_ms(details: Any) -> int | None:
    """When the first attempt of this dispatch started, from the heartbeat details of an
    earlier attempt (`[first_ms]`; runs from before the token was derived heartbeated
    `[token, first_ms]`, so the last detail is read)."""
    try:
        first_ms = details[-1]
    except (TypeError, IndexError, KeyError):
        return None
    if isinstance(first_ms, bool) or not isinstance(first_ms, int | float):
        return None
    return int(first_ms)
