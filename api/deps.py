"""FastAPI dependencies: the services a route needs and the principal who calls it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import AuthenticationError, TokenVerifier
from api.errors import ApiError
from api.rate_limit import RateLimiter, retry_after_header
from api.services.errors import Unavailable
from api.services.web_auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    SessionRefused,
    session_principal,
    web_sign_in,
)
from api.settings import ApiSettings
from policies import Policy, Principal
from workflows.client import TEMPORAL_WAIT_S, Transitions, connect
from workflows.ledger import Ledger
from workflows.mlflow_client import MlflowRegistry
from workflows.webhooks.events import WebhookEvent, announce_all, with_request_link

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the routes share, built once per process by the app's lifespan."""

    settings: ApiSettings
    policy: Policy
    policy_hash: str
    verifier: TokenVerifier
    ledger: Ledger
    registry: MlflowRegistry
    draining: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the process shuts down (`api.server`): long-polls answer at once."""
    rate_limiter: RateLimiter | None = None
    """The per-principal rate limit (`api.rate_limit`); None: no limit."""
    _transitions: Transitions | None = None
    _connect_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def transitions(self) -> Transitions:
        """Connect to Temporal on first use, so the API starts (and answers /readyz) while
        Temporal is still coming up."""
        if self._transitions is None:
            async with self._connect_lock:
                if self._transitions is None:
                    try:
                        client = await asyncio.wait_for(connect(self.settings), TEMPORAL_WAIT_S)
                    except Exception as err:
                        raise Unavailable(
                            f"Temporal at {self.settings.temporal_address} is not reachable "
                            f"({err or f'no answer within {TEMPORAL_WAIT_S:g} s'}); check "
                            "SIGNOFF_TEMPORAL_ADDRESS or start it",
                            which="temporal",
                        ) from err
                    self._transitions = Transitions(client, self.settings.task_queue)
        return self._transitions

    async def announce(self, events: list[WebhookEvent], *, strict: bool = False) -> None:
        """Announce what just happened to the subscribed webhooks. The deliveries are durable
        once started. If Temporal cannot be reached, a `strict` caller gets the error (its
        sender can retry: announcing is idempotent per event); otherwise the event is logged
        as lost and the call that caused it, already done, still succeeds."""
        base = self.settings.callback_base_url
        try:
            client = (await self.transitions()).client
            await asyncio.wait_for(
                announce_all(
                    client,
                    self.ledger,
                    self.settings.task_queue,
                    [with_request_link(event, base) for event in events],
                ),
                TEMPORAL_WAIT_S,
            )
        except Exception as err:
            if strict:
                raise
            log.error(
                "could not announce %s to webhooks: %s",
                ", ".join(event.event for event in events),
                err,
            )


async def get_services(request: Request) -> Services:
    """A coroutine, though it awaits nothing: FastAPI runs a plain function dependency on a
    worker thread, a thread hop on every call."""
    return request.app.state.services


async def get_transitions(services: Annotated[Services, Depends(get_services)]) -> Transitions:
    return await services.transitions()


bearer_credentials = HTTPBearer(auto_error=False)
"""The bearer token of a call, or None (callers outside dependency injection await it)."""


async def current_principal(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_credentials)],
) -> Principal:
    """The verified caller: a bearer token, or the web page's session cookie (with its CSRF
    token on state-changing calls, `api.services.web_auth`); 401 otherwise. A coroutine: a
    JWKS fetch it may need never blocks the event loop. Callers outside dependency injection
    must await it."""
    if credentials is None:
        try:
            session = await session_principal(
                web_sign_in(request.app.state),
                method=request.method,
                session_id=request.cookies.get(SESSION_COOKIE),
                csrf_token=request.headers.get(CSRF_HEADER),
            )
        except SessionRefused as err:
            raise ApiError(err.status, str(err)) from err
        if session is None:
            raise ApiError(401, "no bearer token; send 'Authorization: Bearer <JWT>'")
        principal = session
    else:
        principal = await bearer_principal(services, credentials.credentials)
    enforce_rate_limit(services, principal)
    return principal


def enforce_rate_limit(services: Services, principal: Principal) -> None:
    """429 REQUEST_LIMIT_EXCEEDED, with `Retry-After`, when `principal` has spent its calls
    (`api.rate_limit`); nothing else of the call runs."""
    if services.rate_limiter is None:
        return
    wait_s = services.rate_limiter.take(principal.sub)
    if wait_s > 0:
        limiter = services.rate_limiter
        raise ApiError(
            429,
            f"{principal.sub} made more than {limiter.burst} calls at once or "
            f"{limiter.per_s:g} a second; retry in {retry_after_header(wait_s)} s",
            headers={"Retry-After": retry_after_header(wait_s)},
        )


async def bearer_principal(services: Services, token: str) -> Principal:
    """The principal a bearer token names, verified; 401 otherwise."""
    try:
        return await services.verifier.verify(token)
    except AuthenticationError as err:
        raise ApiError(401, str(err)) from err


ServicesDep = Annotated[Services, Depends(get_services)]
TransitionsDep = Annotated[Transitions, Depends(get_transitions)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
